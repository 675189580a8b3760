"""Emission scaling factors by region x sector x pollutant (the inversion and scenario path).

A :class:`ScalingTable` maps ``(region, sector, pollutant) -> factor`` (default 1). Keys may use
``"*"`` as a wildcard in any position; for each concrete combination the most specific matching
key wins (fewest wildcards); two different keys of equal specificity matching the same
combination are an error. Pollutants are the inventory pollutants of
:data:`aqforecast.emissions.inventory.POLLUTANTS`; ``PM10`` stands for both ``PM25`` and ``PMC``
(a PM10 cut also cuts the PM2.5 inside it); the usual spellings (NOx, PM2.5, VOC, ...) are accepted.
Region names include the remainder region ``outside``. Unknown names raise ``KeyError`` listing
the known ones, so a scenario with a typo fails before any run.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .inventory import POLLUTANTS, canonical_pollutant

__all__ = ["ScalingTable"]

WILDCARD = "*"


class ScalingTable:
    """Factors keyed by (region, sector, pollutant); see the module docstring."""

    def __init__(self, factors: Mapping[tuple[str, str, str], float] | None = None):
        self.factors: dict[tuple[str, str, str], float] = {}
        for key, v in (factors or {}).items():
            if not (isinstance(key, tuple) and len(key) == 3):
                raise KeyError(f"scaling key {key!r} must be (region, sector, pollutant)")
            v = float(v)
            if not np.isfinite(v) or v < 0:
                raise ValueError(f"scaling factor for {key} is {v}; expected a finite value >= 0")
            r, s, p = (str(k).strip() for k in key)
            if p != WILDCARD:
                c = canonical_pollutant(p)
                if c is None:
                    raise KeyError(f"scaling key {key}: unknown pollutant {p!r}; known: "
                                   f"{', '.join(POLLUTANTS)}, PM10")
                p = c
            pols = ("PM25", "PMC") if p == "PM10" else (p,)
            for q in pols:
                self.factors[(r, s, q)] = v

    @classmethod
    def from_dataframe(cls, df) -> "ScalingTable":
        """From a DataFrame with columns region, sector, species (or pollutant), factor."""
        cols = set(df.columns)
        pcol = "species" if "species" in cols else "pollutant"
        need = {"region", "sector", pcol, "factor"}
        if not need <= cols:
            raise KeyError(f"scaling DataFrame needs columns {sorted(need)}, got {sorted(cols)}")
        return cls({(r, s, p): f for r, s, p, f in
                    zip(df["region"], df["sector"], df[pcol], df["factor"])})

    @classmethod
    def coerce(cls, obj) -> "ScalingTable":
        """Accept None, a ScalingTable, a dict or a DataFrame."""
        if obj is None:
            return cls()
        if isinstance(obj, ScalingTable):
            return obj
        if hasattr(obj, "columns"):
            return cls.from_dataframe(obj)
        return cls(obj)

    def resolve(self, regions, sectors, pollutants=POLLUTANTS) -> np.ndarray:
        """Dense factors ``(nregion, nsector, npollutant)`` for the given names."""
        regions, sectors, pollutants = tuple(regions), tuple(sectors), tuple(pollutants)
        for (r, s, p) in self.factors:
            for name, known, what in ((r, regions, "region"), (s, sectors, "sector"),
                                      (p, pollutants, "pollutant")):
                if name != WILDCARD and name not in known:
                    raise KeyError(f"scaling key {(r, s, p)}: unknown {what} {name!r}; known: "
                                   f"{', '.join(known)}")
        out = np.ones((len(regions), len(sectors), len(pollutants)))
        best = np.full(out.shape, 4, dtype=int)       # wildcards of the key applied (4 = none)
        owner: dict[tuple[int, int, int], tuple] = {}
        for key, v in self.factors.items():
            nwild = sum(k == WILDCARD for k in key)
            ri = range(len(regions)) if key[0] == WILDCARD else [regions.index(key[0])]
            si = range(len(sectors)) if key[1] == WILDCARD else [sectors.index(key[1])]
            pi = range(len(pollutants)) if key[2] == WILDCARD else [pollutants.index(key[2])]
            for a in ri:
                for b in si:
                    for c in pi:
                        if nwild < best[a, b, c]:
                            best[a, b, c], out[a, b, c] = nwild, v
                            owner[(a, b, c)] = key
                        elif nwild == best[a, b, c] and out[a, b, c] != v:
                            raise ValueError(f"scaling keys {owner[(a, b, c)]} and {key} both "
                                             f"set ({regions[a]}, {sectors[b]}, "
                                             f"{pollutants[c]}) with equal specificity")
        return out

    def __repr__(self) -> str:
        return f"ScalingTable({len(self.factors)} factors)"
