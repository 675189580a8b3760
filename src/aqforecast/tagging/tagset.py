"""The tags of a run and their storage (SCIENCE.md 6.1).

A :class:`TagSet` lists the source tags -- every (region, sector) pair of the emission model
(regions from the config polygons plus the remainder ``outside``), then the initial-condition tag
``("initial", "ic")`` and the boundary-inflow tag ``("boundary", "bc")`` -- and the tagged
species. CMAQ-ISAM likewise always adds ICON/BCON tags (CMAQ User's Guide ch. 11); with
``initial_and_boundary_tags: false`` one ``("background", "icbc")`` tag takes both, because the
initial and inflowing mass must belong to some tag for sum(tags) = bulk to hold.

Tagged species are expanded to the *precursor families* the chemistry apportionment needs
(:data:`PRECURSORS`, applied transitively, only for species the model carries):

* SO4 <- SO2 (sulfate production by SO2-tag shares, PSAT);
* HNO3 (GRS SGN) and SNGN <- NO, NO2 (nitrate production by NOx-tag shares); HNO3 <-> NO3 form
  the total-nitrate family of the NH4NO3 equilibrium, NH3 <-> NH4 the total-ammonia family;
* NO <-> NO2 (the NOx family: NOx tags change by dNOx x NOx shares);
* O3 <- NO, NO2, ROC (production by NOx- or ROC-tag shares by regime, OSAT);
* H2O2 <- ROC (GRS radicals come from ROC, R1) [D].

Storage (:class:`TagState`): one contiguous array ``(ntagged, ntag, nz, ny, nx)`` in model units
(gases mol mol-1, aerosols kg kg-1), float64 or float32 (config ``tags.dtype``); ``state[name]``
is the ``(ntag, nz, ny, nx)`` view of one species. Memory = ntagged x ntag x cells x 8 (4) bytes:
the sample config (7 species -> 11 with precursors, 6 regions x 5 sectors + 2 = 32 tags) on a
150 x 150 x 20 grid takes 1.27 GB in float64, 0.63 GB in float32. float32 costs a tag-sum error
of ~3e-8 relative (kept from accumulating by the per-step renormalisation) and individual tags
drift from float64 by ~6e-8 median, ~2e-6 worst after 6 h of chemistry; the measurement is in
:mod:`aqforecast.tagging.apportion`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from .. import species as species_registry

log = logging.getLogger(__name__)

__all__ = ["PRECURSORS", "INITIAL", "BOUNDARY", "BACKGROUND", "TagSet", "TagState",
           "expand_tagged_species"]

#: Species whose tags the apportionment of a tagged species reads (applied transitively).
PRECURSORS: dict[str, tuple[str, ...]] = {
    "SO4": ("SO2",),
    "HNO3": ("NO", "NO2", "NO3"),
    "NO3": ("HNO3",),
    "SNGN": ("NO", "NO2"),
    "NO": ("NO2",),
    "NO2": ("NO",),
    "NH3": ("NH4",),
    "NH4": ("NH3",),
    "O3": ("NO", "NO2", "ROC"),
    "H2O2": ("ROC",),
}

#: Labels (region, sector) of the special tags.
INITIAL = ("initial", "ic")
BOUNDARY = ("boundary", "bc")
BACKGROUND = ("background", "icbc")


def expand_tagged_species(requested: Iterable[str], model_species: Sequence[str]
                          ) -> tuple[list[str], list[str]]:
    """Close ``requested`` under :data:`PRECURSORS` within ``model_species``.

    Returns (tagged species in model order, the species that were added). Precursors the model
    does not carry are skipped (logged; their attribution falls back, see
    :func:`aqforecast.tagging.apportion.apportion_chemistry`).
    """
    model_species = list(model_species)
    requested = list(requested)
    unknown = [s for s in requested if s not in model_species]
    if unknown:
        raise ValueError(f"tagged species {unknown} are not model species {model_species}")
    todo, have = list(requested), set(requested)
    while todo:
        s = todo.pop()
        for p in PRECURSORS.get(s, ()):
            if p in have:
                continue
            if p not in model_species:
                log.info("tagging %s uses %s tags, but the model does not carry %s", s, p, p)
                continue
            have.add(p)
            todo.append(p)
    tagged = [s for s in model_species if s in have]
    return tagged, [s for s in tagged if s not in requested]


class TagSet:
    """Source tags and tagged species of one run.

    Parameters
    ----------
    source_tags: (region, sector) pairs in emission-model order (``EmissionModel.tags``).
    species: requested tagged species (empty = every transported model species).
    model_species: the model's species, in the order of its concentration stack.
    initial_and_boundary: add the IC and BC tags (else one background tag).
    dtype: storage type of tag arrays ("float64" or "float32").
    """

    def __init__(self, source_tags: Iterable[tuple[str, str]], species: Iterable[str],
                 model_species: Sequence[str], initial_and_boundary: bool = True,
                 dtype="float64"):
        tags = [(str(r), str(s)) for r, s in source_tags]
        special = [INITIAL, BOUNDARY] if initial_and_boundary else [BACKGROUND]
        clash = [t for t in tags if t[0] in {r for r, _ in special}]
        if clash:
            raise ValueError(f"region names {sorted({r for r, _ in clash})} are reserved")
        if len(set(tags)) != len(tags):
            raise ValueError("duplicate (region, sector) tags")
        self.source_tags: tuple[tuple[str, str], ...] = tuple(tags)
        self.tags: tuple[tuple[str, str], ...] = tuple(tags + special)
        self.model_species = list(model_species)
        requested = list(species) or [s for s in self.model_species
                                      if species_registry.get(s).transported]
        self.requested_species = requested
        self.species, self.added_species = expand_tagged_species(requested, self.model_species)
        if self.added_species:
            log.info("tagged species %s expanded by precursor families %s", requested,
                     self.added_species)
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float64, np.float32):
            raise ValueError(f"tag dtype must be float64 or float32, got {self.dtype}")
        self._index = {t: n for n, t in enumerate(self.tags)}

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_emission_model(cls, emission_model, species, model_species,
                            initial_and_boundary=True, dtype="float64") -> "TagSet":
        """Tags = ``emission_model.tags`` (regions incl. ``outside`` x inventory sectors)."""
        return cls(emission_model.tags, species, model_species, initial_and_boundary, dtype)

    @classmethod
    def from_config(cls, cfg, emission_model=None) -> "TagSet":
        """From a :class:`~aqforecast.config.RunConfig` (``tags`` section).

        With an emission model its tags are used (the sectors of the inventory); without, the
        config regions + ``outside`` times ``tags.sectors``.
        """
        t = cfg.tags
        if emission_model is not None:
            source = emission_model.tags
        else:
            from ..emissions.regions import OUTSIDE
            regions = [r.name for r in cfg.regions] + [OUTSIDE]
            source = [(r, s) for r in regions for s in t.sectors]
        return cls(source, t.species, cfg.species, t.initial_and_boundary_tags, t.dtype)

    # ------------------------------------------------------------------ lookups
    @property
    def ntag(self) -> int:
        return len(self.tags)

    @property
    def ntagged(self) -> int:
        return len(self.species)

    @property
    def regions(self) -> np.ndarray:
        """Region of each tag (ntag,), for the ``tag_region`` output coordinate."""
        return np.array([r for r, _ in self.tags], dtype=str)

    @property
    def sectors(self) -> np.ndarray:
        """Sector of each tag (ntag,), for the ``tag_sector`` output coordinate."""
        return np.array([s for _, s in self.tags], dtype=str)

    def labels(self) -> tuple[list[str], list[str]]:
        """``(regions, sectors)`` lists, the ``tags`` argument of ``FieldSeriesWriter``."""
        return [r for r, _ in self.tags], [s for _, s in self.tags]

    def index(self, region: str, sector: str) -> int:
        try:
            return self._index[(region, sector)]
        except KeyError:
            raise KeyError(f"no tag ({region!r}, {sector!r})") from None

    @property
    def initial_index(self) -> int:
        """Index of the tag that receives the initial state."""
        return self._index.get(INITIAL, self._index.get(BACKGROUND))

    @property
    def boundary_index(self) -> int:
        """Index of the tag that receives lateral/top inflow."""
        return self._index.get(BOUNDARY, self._index.get(BACKGROUND))

    def region_indices(self, region: str) -> np.ndarray:
        return np.array([n for n, (r, _) in enumerate(self.tags) if r == region], dtype=np.int64)

    def sector_indices(self, sector: str) -> np.ndarray:
        return np.array([n for n, (_, s) in enumerate(self.tags) if s == sector], dtype=np.int64)

    def species_index(self, name: str) -> int:
        return self.species.index(name)

    @property
    def model_rows(self) -> np.ndarray:
        """Rows of the model's concentration stack that carry tags (ntagged,)."""
        return np.array([self.model_species.index(s) for s in self.species], dtype=np.int64)

    def nbytes(self, shape: Sequence[int]) -> int:
        """Bytes of the tag storage for a grid of ``shape`` (nz, ny, nx)."""
        return int(self.ntagged * self.ntag * np.prod(shape) * self.dtype.itemsize)

    def bulk(self, conc, name: str) -> np.ndarray:
        """Bulk field of ``name`` from a mapping or a model stack (nspec, ...)."""
        if isinstance(conc, Mapping):
            return conc[name]
        return conc[self.model_species.index(name)]

    def snapshot(self, conc) -> dict[str, np.ndarray]:
        """Copies of the tagged species' bulk fields (what the chemistry apportionment needs as
        ``before``; cheaper than copying the whole stack)."""
        return {s: np.array(self.bulk(conc, s), dtype=float, copy=True) for s in self.species}

    def __repr__(self) -> str:
        return (f"TagSet({len(self.source_tags)} source tags + {self.ntag - len(self.source_tags)}"
                f" special, species={self.species}, dtype={self.dtype})")


class TagState(Mapping):
    """Tag concentrations of all tagged species, ``data`` (ntagged, ntag, nz, ny, nx).

    Model units; ``state[name]`` is the (ntag, nz, ny, nx) view of one species. ``data`` may be
    given (e.g. a view of a model's halo-padded tag array reshaped to 5-D).
    """

    def __init__(self, tagset: TagSet, shape: Sequence[int] | None = None, data=None):
        self.tagset = tagset
        if data is None:
            if shape is None:
                raise ValueError("give the grid shape (nz, ny, nx) or the data array")
            data = np.zeros((tagset.ntagged, tagset.ntag) + tuple(shape), dtype=tagset.dtype)
        if data.shape[:2] != (tagset.ntagged, tagset.ntag):
            raise ValueError(f"tag data must be (ntagged={tagset.ntagged}, ntag={tagset.ntag},"
                             f" ...); got {data.shape}")
        self.data = data

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape[2:]

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self.data[self.tagset.species.index(name)]
        except ValueError:
            raise KeyError(f"{name!r} is not tagged; tagged: {self.tagset.species}") from None

    def __iter__(self):
        return iter(self.tagset.species)

    def __len__(self) -> int:
        return self.tagset.ntagged

    def fields(self, level=None) -> dict[str, np.ndarray]:
        """Per-species (ntag, nlev, ny, nx) copies for ``FieldSeriesWriter.add`` (levels
        ``level``: an index list or slice; all by default)."""
        sel = slice(None) if level is None else level
        return {s: np.array(self[s][:, sel]) for s in self}
