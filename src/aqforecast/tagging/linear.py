"""Tags through the linear processes: initial state, emissions, boundary inflow, checks.

Vertical mixing (implicit), dry deposition, wet scavenging and first-order decay are linear in
the concentration, so the model applies the *same* operator (same tridiagonal matrix, same v_d,
same scavenging coefficient) to every tag row, and sum(tags) = bulk holds to round-off
(SCIENCE.md 6.2). What differs per tag is only the source term:

* emissions: tag k receives the emissions of its (region, sector) (:func:`tag_emissions`); the
  IC and BC tags receive none;
* initial state: the IC tag holds the whole initial bulk (:func:`initial_tags`);
* inflow through lateral/top boundaries carries the BC tag (:func:`boundary_fractions`), or, for
  a nest, the parent's tag fractions at the boundary (:func:`to_fractions` of the parent).

Advection carries tag *fractions* (:mod:`aqforecast.kernels.tagging`); :func:`to_fractions`
and :func:`from_fractions` convert. :func:`sum_check` measures the invariant.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..emissions.model import EmissionFields
from .tagset import TagSet, TagState

__all__ = ["initial_tags", "tag_emissions", "boundary_fractions", "to_fractions",
           "from_fractions", "sum_check"]


def initial_tags(tagset: TagSet, conc, shape: Sequence[int] | None = None) -> TagState:
    """Tags of the initial state: IC tag = bulk, all others 0.

    conc: mapping species -> (nz, ny, nx) or a model stack (nspec, nz, ny, nx) in
    ``tagset.model_species`` order (model units).
    """
    if shape is None:
        shape = np.shape(tagset.bulk(conc, tagset.species[0])) if tagset.species else (0, 0, 0)
    state = TagState(tagset, shape)
    ic = tagset.initial_index
    for s in tagset.species:
        state[s][ic] = tagset.bulk(conc, s)
    return state


def tag_emissions(fields: EmissionFields, tagset: TagSet, species=None) -> EmissionFields:
    """Re-order tagged emission fluxes (``EmissionModel.tagged_emissions``) onto the tag axis.

    Returns :class:`~aqforecast.emissions.model.EmissionFields` whose leading axis is
    ``tagset.tags`` (IC/BC rows zero) and whose species are ``species`` (default: the tagged
    species the emission model emits, in ``tagset.species`` order). ``surface`` (ntag, nspec,
    ny, nx), ``elevated`` (ntag, nspec, nz, ncol); ``to_dense()`` (ntag, nspec, nz, ny, nx).
    Units unchanged (mol m-2 s-1 gases, kg m-2 s-1 aerosols).
    """
    if fields.tags is None:
        raise ValueError("emission fields carry no tag axis (use tagged_emissions)")
    if species is None:
        species = [s for s in tagset.species if s in fields.species]
    missing = [s for s in species if s not in fields.species]
    if missing:
        raise KeyError(f"species {missing} are not emitted ({fields.species})")
    rows = []
    for t in fields.tags:
        try:
            rows.append(tagset.index(*t))
        except KeyError:
            raise KeyError(f"emission tag {t} is not in the TagSet") from None
    rows = np.asarray(rows, dtype=np.int64)
    cols = np.asarray([fields.species.index(s) for s in species], dtype=np.int64)
    surface = np.zeros((tagset.ntag, len(cols)) + fields.surface.shape[-2:])
    elevated = np.zeros((tagset.ntag, len(cols)) + fields.elevated.shape[-2:])
    surface[rows] = fields.surface[:, cols]
    elevated[rows] = fields.elevated[:, cols]
    return EmissionFields(fields.time, tuple(species), surface, elevated, fields.columns,
                          fields.shape, tagset.tags)


def boundary_fractions(tagset: TagSet, face_shape: Sequence[int], dtype=np.float64,
                       parent_fractions: np.ndarray | None = None) -> np.ndarray:
    """Tag fractions of inflow through a boundary face, (ntagged, ntag, *face_shape).

    Default: everything is the BC tag (fraction 1). For a nest pass the parent's fractions
    interpolated to the face, (ntagged, ntag, *face_shape), which are returned (checked).
    """
    shape = (tagset.ntagged, tagset.ntag) + tuple(face_shape)
    if parent_fractions is not None:
        f = np.asarray(parent_fractions, dtype=dtype)
        if f.shape != shape:
            raise ValueError(f"parent fractions must be {shape}, got {f.shape}")
        return f
    out = np.zeros(shape, dtype=dtype)
    out[:, tagset.boundary_index] = 1.0
    return out


def to_fractions(tags: np.ndarray, bulk: np.ndarray, empty_tag: int) -> np.ndarray:
    """Tag fractions f_k = c_k/c, (ntag, ...) from tags (ntag, ...) and bulk (...).

    Cells with no bulk get fraction 1 on ``empty_tag`` (e.g. the IC tag)."""
    b = np.asarray(bulk, dtype=np.float64)
    pos = b > 0.0
    with np.errstate(invalid="ignore", divide="ignore"):
        f = np.where(pos, tags / np.where(pos, b, 1.0), 0.0)
    f[empty_tag][~pos] = 1.0
    return f


def from_fractions(frac: np.ndarray, bulk: np.ndarray, out: np.ndarray | None = None
                   ) -> np.ndarray:
    """Tag concentrations c_k = f_k c (into ``out`` if given)."""
    return np.multiply(frac, np.asarray(bulk)[None], out=out, casting="same_kind")


def _max_rel(tags: np.ndarray, bulk: np.ndarray, floor: float) -> float:
    total = np.asarray(tags, dtype=np.float64).sum(axis=0)
    b = np.asarray(bulk, dtype=np.float64)
    scale = np.abs(b).max() if b.size else 0.0
    den = np.maximum(np.abs(b), floor * scale)
    dev = np.abs(total - b)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.where(den > 0.0, dev / np.where(den > 0.0, den, 1.0), np.where(dev > 0, np.inf,
                                                                               0.0))
    return float(rel.max()) if rel.size else 0.0


def sum_check(tags, bulk, tagset: TagSet | None = None, floor: float = 1e-12):
    """Largest relative deviation |sum_k c_k - c| / c over cells (and species).

    tags: (ntag, ...) with bulk (...), or mappings/stacks species -> (ntag, ...) with bulk
    mapping or model stack (then ``tagset`` names the stack rows). Cells whose bulk is below
    ``floor`` x the field maximum are measured against that floor instead (no 0/0).
    """
    if isinstance(tags, np.ndarray) and not isinstance(bulk, Mapping) and tagset is None:
        return _max_rel(tags, bulk, floor)
    if not isinstance(tags, Mapping):
        if tagset is None:
            raise ValueError("give the tagset for a (ntagged, ntag, ...) tag array")
        tags = TagState(tagset, data=tags)
    worst = 0.0
    for s in tags:
        if isinstance(bulk, Mapping):
            if s not in bulk:
                continue
            b = bulk[s]
        else:
            b = tagset.bulk(bulk, s) if tagset is not None else bulk[list(tags).index(s)]
        worst = max(worst, _max_rel(tags[s], b, floor))
    return worst
