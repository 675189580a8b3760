"""Source apportionment by tagged tracers (SCIENCE.md 6; DESIGN.md layer 4).

* :mod:`.tagset` -- :class:`TagSet` (region x sector tags + IC/BC tags, tagged species expanded
  to their precursor families) and :class:`TagState` (storage ``(ntagged, ntag, nz, ny, nx)``);
* :mod:`.apportion` -- :func:`apportion_chemistry` after each chemistry step (PSAT/OSAT with the
  GRS mapping) and :class:`ModelTagChemistry`, the model's ``tag_chemistry`` callable;
* :mod:`.linear` -- initial tags, tagged emissions on the tag axis, boundary inflow fractions,
  fraction conversions and :func:`sum_check`.

Per model step: linear operators act on the tag rows exactly as on the bulk; around chemistry::

    before = tagset.snapshot(conc)              # bulk of the tagged species
    diag = chemistry(conc, ...)                 # updates conc in place
    apportion_chemistry(tags, before, conc, diag, tagset)
"""

from .apportion import (REGIME_THRESHOLD, ModelTagChemistry, apportion_chemistry,  # noqa: F401
                        o3_nox_weight)
from .linear import (boundary_fractions, from_fractions, initial_tags, sum_check,  # noqa: F401
                     tag_emissions, to_fractions)
from .tagset import (BACKGROUND, BOUNDARY, INITIAL, PRECURSORS, TagSet, TagState,  # noqa: F401
                     expand_tagged_species)

__all__ = [
    "TagSet", "TagState", "PRECURSORS", "INITIAL", "BOUNDARY", "BACKGROUND",
    "expand_tagged_species", "apportion_chemistry", "o3_nox_weight", "ModelTagChemistry",
    "REGIME_THRESHOLD", "initial_tags", "tag_emissions", "boundary_fractions", "to_fractions",
    "from_fractions", "sum_check",
]
