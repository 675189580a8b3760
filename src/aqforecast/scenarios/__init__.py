"""Emission-reduction scenarios (DESIGN.md layer 7): the YAML schemas of scenarios and targets
and the scaling table a scenario becomes (:mod:`.schema`), city and station daily statistics
(:mod:`.cities`), days over the standard (:mod:`.exceedances`), scoring one scenario or several
in parallel (:mod:`.score`: tags, response, brute; :mod:`.response`), the pre/post evaluation on
a posterior inventory (:mod:`.prepost`), and the least-cost plan (:mod:`.plan` on the models and
solvers of :mod:`.optimise`)."""

from .schema import (ALL, Limit, Measure, Scenario, Target, read_scenario, read_target,
                     scenario_to_scaling)

__all__ = ["ALL", "Limit", "Measure", "Scenario", "Target", "read_scenario", "read_target",
           "scenario_to_scaling"]
