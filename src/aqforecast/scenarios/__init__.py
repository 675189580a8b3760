"""Emission-reduction scenarios (DESIGN.md layer 7): the YAML schema and its scaling table
(:mod:`.schema`); scoring and the least-cost plan build on them."""

from .schema import ALL, Measure, Scenario, read_scenario, scenario_to_scaling

__all__ = ["ALL", "Measure", "Scenario", "read_scenario", "scenario_to_scaling"]
