"""Emission-reduction scenarios (DESIGN.md layer 7): the YAML schemas of scenarios and targets
and the scaling table a scenario becomes (:mod:`.schema`), city daily statistics
(:mod:`.cities`), scoring (:mod:`.score`: tags, brute) and the least-cost plan (:mod:`.plan`)."""

from .schema import (ALL, Limit, Measure, Scenario, Target, read_scenario, read_target,
                     scenario_to_scaling)

__all__ = ["ALL", "Limit", "Measure", "Scenario", "Target", "read_scenario", "read_target",
           "scenario_to_scaling"]
