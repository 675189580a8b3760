"""Flux-fraction tag advection kernels: reference, convexity, exact per-tag conservation, and
the linear (donor-cell) mode."""

import numpy as np
import pytest

from aqforecast.kernels.tagging import (tag_fraction_line, tag_fraction_sweep,
                                        walcek_lines_tagged)


def _reference(mass, flux, frac, f_low, f_high):
    """The outflow-fraction rule in NumPy: outflow fractions g by fixed-point iteration (the
    chains of deficit cells, outflow > resident mass, form a DAG), then the new fractions."""
    ntag, n = frac.shape
    fin_l = np.maximum(flux[:-1], 0.0)
    fin_r = np.maximum(-flux[1:], 0.0)
    fin = fin_l + fin_r
    fout = np.maximum(flux[1:], 0.0) + np.maximum(-flux[:-1], 0.0)
    deficit = fout - mass
    share = np.where((deficit > 0) & (fin > 0),
                     np.minimum(deficit / np.where(fout > 0, fout, 1.0), 1.0), 0.0)

    def neighbours(g):
        dl = np.concatenate([f_low[:, None], g[:, :-1]], axis=1)
        dr = np.concatenate([g[:, 1:], f_high[:, None]], axis=1)
        return dl, dr

    g = frac.copy()
    for _ in range(n + 2):
        dl, dr = neighbours(g)
        gin = (dl * fin_l + dr * fin_r) / np.where(fin > 0, fin, 1.0)
        g = frac * (1.0 - share) + gin * share
    dl, dr = neighbours(g)
    keep = np.maximum(mass - fout, 0.0)
    denom = keep + fin
    return np.where(denom > 0, (frac * keep + dl * fin_l + dr * fin_r)
                    / np.where(denom > 0, denom, 1.0), frac)


def _random_case(rng, n, ntag):
    mass = rng.uniform(0.5, 2.0, n)
    flux = rng.normal(0.0, 0.4, n + 1)
    frac = rng.dirichlet(np.ones(ntag), n).T.copy()
    f_low = rng.dirichlet(np.ones(ntag))
    f_high = rng.dirichlet(np.ones(ntag))
    return mass, flux, frac, f_low, f_high


@pytest.mark.parametrize("n, ntag, seed", [(1, 1, 0), (2, 3, 1), (7, 4, 2), (40, 10, 3)])
def test_line_matches_reference(n, ntag, seed):
    rng = np.random.default_rng(seed)
    mass, flux, frac, fl, fh = _random_case(rng, n, ntag)
    out = np.empty_like(frac)
    tag_fraction_line(mass, flux, frac, fl, fh, out)
    np.testing.assert_allclose(out, _reference(mass, flux, frac, fl, fh), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(out.sum(axis=0), 1.0, rtol=1e-14)
    assert out.min() >= 0.0


def test_per_tag_mass_conserved_closed_line():
    rng = np.random.default_rng(7)
    n, ntag = 50, 6
    mass, flux, frac, fl, fh = _random_case(rng, n, ntag)
    flux[0] = flux[-1] = 0.0
    # keep each cell's outflow below its resident mass, as a monotone scheme does
    out_flux = np.maximum(flux[1:], 0) + np.maximum(-flux[:-1], 0)
    mass = mass + out_flux
    new_mass = mass + flux[:-1] - flux[1:]
    out = np.empty_like(frac)
    tag_fraction_line(mass, flux, frac, fl, fh, out)
    before = (frac * mass).sum(axis=1)
    after = (out * new_mass).sum(axis=1)
    np.testing.assert_allclose(after, before, rtol=1e-13)


def test_per_tag_mass_conserved_with_walcek_fluxes():
    """With the fluxes of a Walcek sweep (whose outflow can exceed a cell's resident mass next
    to a steep neighbour), each tag's mass follows the flux-form update exactly and the
    fractions stay convex; with donor-cell fluxes no cell is in deficit and every tag moves
    exactly like the bulk would if only it were present (pre-sweep donor fractions)."""
    from aqforecast.kernels.advection import walcek_line
    from aqforecast.kernels.tagging import upwind_line

    rng = np.random.default_rng(3)
    deficits = 0
    for trial in range(200):
        n, ntag, h = int(rng.integers(2, 15)), 3, 2
        q = rng.uniform(0.0, 2.0, n + 2 * h)
        q[rng.uniform(size=n + 2 * h) < 0.3] = 0.0
        m0 = rng.uniform(1.0, 2.0, n)
        phi = rng.uniform(-0.7, 0.7, n + 1)
        phi[0] = phi[-1] = 0.0  # closed line: every tag's total is conserved
        m1 = m0 - phi[1:] + phi[:-1]
        frac = rng.dirichlet(np.ones(ntag), n).T.copy()
        resident = q[h:h + n] * m0
        for scheme in ("walcek", "upwind"):
            line, flux = q.copy(), np.zeros(n + 1)
            if scheme == "walcek":
                walcek_line(line, h, phi, m0, m1, np.zeros(n + 2 * h, np.int8), flux, False)
                out_flux = np.maximum(flux[1:], 0) + np.maximum(-flux[:-1], 0)
                deficits += int((out_flux > resident * (1 + 1e-12)).sum())
            else:
                upwind_line(line, h, phi, m0, m1, flux)
            out = frac.copy()
            tag_fraction_line(resident, flux, frac, np.full(ntag, 1 / 3), np.full(ntag, 1 / 3),
                              out)
            np.testing.assert_allclose(out, _reference(resident, flux, frac,
                                                       np.full(ntag, 1 / 3),
                                                       np.full(ntag, 1 / 3)),
                                       rtol=1e-12, atol=1e-15)
            before = (frac * resident).sum(axis=1)
            after = (out * line[h:h + n] * m1).sum(axis=1)
            np.testing.assert_allclose(after, before, rtol=1e-12, atol=1e-15 * resident.sum())
            assert out.min() >= 0.0
            np.testing.assert_allclose(out.sum(axis=0), 1.0, rtol=1e-13)
            if scheme == "upwind":  # linear: tag k's concentration is donor cell of tag k alone
                for k in range(ntag):
                    tq = np.zeros(n + 2 * h)
                    tq[h:h + n] = q[h:h + n] * frac[k]
                    tflux = np.zeros(n + 1)
                    upwind_line(tq, h, phi, m0, m1, tflux)
                    np.testing.assert_allclose(out[k] * line[h:h + n], tq[h:h + n],
                                               rtol=1e-12, atol=1e-15)
    assert deficits > 20  # the deficit branch was exercised


def test_sweep_equals_lines():
    rng = np.random.default_rng(11)
    n0, n1, n, ntag = 3, 4, 9, 5
    mass = rng.uniform(0.5, 2, (n0, n1, n))
    flux = rng.normal(0, 0.3, (n0, n1, n + 1))
    frac = rng.dirichlet(np.ones(ntag), (n0, n1, n)).transpose(3, 0, 1, 2).copy()
    bl = rng.dirichlet(np.ones(ntag), (n0, n1)).transpose(2, 0, 1).copy()
    bh = rng.dirichlet(np.ones(ntag), (n0, n1)).transpose(2, 0, 1).copy()
    expected = frac.copy()
    for a in range(n0):
        for b in range(n1):
            out = np.empty((ntag, n))
            tag_fraction_line(mass[a, b], flux[a, b], frac[:, a, b].copy(), bl[:, a, b].copy(),
                              bh[:, a, b].copy(), out)
            expected[:, a, b] = out
    tag_fraction_sweep(mass, flux, frac, bl, bh)
    np.testing.assert_allclose(frac, expected, rtol=1e-14)


def _upwind_reference(q, h, phi, m0, m1):
    """NumPy donor cell of one padded line: q m1 = q m0 + F_low - F_high, F = phi q_upwind."""
    n = m0.size
    up = np.where(phi > 0, q[h - 1:h + n], q[h:h + n + 1])
    flux = phi * up
    return (q[h:h + n] * m0 + flux[:-1] - flux[1:]) / m1


def test_upwind_lines_tagged_are_linear_in_the_sources():
    """walcek_lines_tagged(upwind=True): the bulk is NumPy's donor cell, and every tag's
    concentration f_k q equals donor cell applied to that tag alone (to 1e-13), fractions convex."""
    rng = np.random.default_rng(5)
    n0, n1, n, h, ntag = 2, 3, 12, 3, 4
    mass = rng.uniform(1.0, 2.0, (n0, n1, n))
    phi = rng.normal(0.0, 0.3, (n0, n1, n + 1))
    tags = rng.uniform(0.0, 1.0, (ntag, n0, n1, n + 2 * h))  # tag mixing ratios incl. ghosts
    q = tags.sum(axis=0)[None].copy()
    frac = (tags[..., h:h + n] / q[0, ..., h:h + n])[None].copy()
    bl = (tags[..., h - 1] / q[0, ..., h - 1])[None].copy()
    bh = (tags[..., h + n] / q[0, ..., h + n])[None].copy()
    m0 = mass.copy()
    m1 = mass - phi[..., 1:] + phi[..., :-1]
    walcek_lines_tagged(q, h, mass, phi, 1.0, 0, np.zeros(1, np.int64), frac, bl, bh, True)
    np.testing.assert_array_equal(mass, m1)
    for a in range(n0):
        for b in range(n1):
            q_before = tags[:, a, b].sum(axis=0)
            ref = _upwind_reference(q_before, h, phi[a, b], m0[a, b], m1[a, b])
            np.testing.assert_allclose(q[0, a, b, h:h + n], ref, rtol=1e-14)
            for k in range(ntag):
                ref_k = _upwind_reference(tags[k, a, b], h, phi[a, b], m0[a, b], m1[a, b])
                np.testing.assert_allclose(frac[0, k, a, b] * q[0, a, b, h:h + n], ref_k,
                                           rtol=1e-13, atol=1e-15 * q_before.max())
    np.testing.assert_allclose(frac.sum(axis=1), 1.0, rtol=1e-14)
    assert frac.min() >= 0.0


def test_upwind_and_walcek_tagged_sweeps_differ():
    """The flag switches the scheme: on a smooth bump Walcek's face values are not the donor's
    (donor cell smears the peak more); both conserve the tracer mass."""
    n, h = 20, 3
    q0 = np.zeros((1, 1, 1, n + 2 * h))
    q0[..., h:h + n] = np.exp(-((np.arange(n) - 8.0) / 3.0) ** 2)
    out = []
    for upwind in (False, True):
        q = q0.copy()
        mass = np.ones((1, 1, n))
        phi = np.full((1, 1, n + 1), 0.4)
        phi[..., 0] = phi[..., -1] = 0.0
        walcek_lines_tagged(q, h, mass, phi, 1.0, 0, np.zeros(0, np.int64),
                            np.zeros((0, 0, 1, 1, n)), np.zeros((0, 0, 1, 1)),
                            np.zeros((0, 0, 1, 1)), upwind)
        out.append(q[0, 0, 0, h:h + n])
    m1 = np.r_[0.6, np.ones(n - 2), 1.4]  # closed ends: the air piles up at the high wall
    ref = _upwind_reference(q0[0, 0, 0], h, np.r_[0.0, np.full(n - 1, 0.4), 0.0], np.ones(n), m1)
    np.testing.assert_allclose(out[1], ref, rtol=1e-14, atol=1e-16)
    assert out[1].max() < out[0].max() - 1e-3
    for o in out:
        np.testing.assert_allclose((o * m1).sum(), q0.sum(), rtol=1e-14)


@pytest.mark.parametrize("closed", [0, 1, 3])
def test_tiled_tagged_sweep_equals_line_kernel(closed):
    """The model's tiled sweep (TILE lines of a row of the line grid at once, a
    partial last tile) gives bit for bit the line kernel's bulk, air mass and tag fractions."""
    from aqforecast.kernels.tagging import walcek_sweep_tagged

    rng = np.random.default_rng(closed)
    for n0, n1, n, nspec, ntagged, ntag in [(3, 5, 7, 3, 2, 4), (40, 1, 12, 2, 1, 3),
                                            (7, 9, 33, 4, 2, 5), (1, 1, 3, 1, 1, 2)]:
        h = 3
        q = rng.uniform(0.0, 2.0, (nspec, n0, n1, n + 2 * h))
        q[q < 0.5] = 0.0
        mass = rng.uniform(1.0, 2.0, (n0, n1, n))
        flux = rng.normal(0.0, 0.4, (n0, n1, n + 1))
        rows = np.sort(rng.choice(nspec, ntagged, replace=False)).astype(np.int64)
        frac = rng.dirichlet(np.ones(ntag), (ntagged, n0, n1, n)).transpose(0, 4, 1, 2, 3).copy()
        bl = rng.dirichlet(np.ones(ntag), (ntagged, n0, n1)).transpose(0, 3, 1, 2).copy()
        bh = rng.dirichlet(np.ones(ntag), (ntagged, n0, n1)).transpose(0, 3, 1, 2).copy()
        q1, m1, f1 = q.copy(), mass.copy(), frac.copy()
        walcek_lines_tagged(q1, h, m1, flux, 0.9, closed, rows, f1, bl, bh)
        q2, m2, f2 = q.copy(), mass.copy(), frac.copy()
        walcek_sweep_tagged(q2, h, m2, flux, 0.9, closed, rows, f2, bl, bh)
        np.testing.assert_array_equal(q2, q1)
        np.testing.assert_array_equal(m2, m1)
        np.testing.assert_array_equal(f2, f1)


@pytest.mark.parametrize("closed", [0, 3])
def test_tiled_tagged_sweep_vectorised_tag_update_equals_line_kernel(closed):
    """With the mixing ratios and fractions given as views whose lines lie next to each other
    in memory (as the model passes them for y and z sweeps), the tiled sweep copies the bulk and
    updates the tags of TILE lines at once (SIMD across lines, deficit cells included) and still
    gives bit for bit the line kernel's bulk, air mass and fractions."""
    from aqforecast.kernels.advection import TILE
    from aqforecast.kernels.tagging import walcek_sweep_tagged

    rng = np.random.default_rng(10 + closed)
    cases = [(3, 2 * TILE + 5, 9, 3, 2, 4), (2 * TILE + 3, 1, 12, 2, 1, 3),
             (2, TILE, 5, 2, 2, 6), (4, 7, 1, 1, 1, 3)]
    deficits = 0
    for n0, n1, n, nspec, ntagged, ntag in cases:
        h = 3
        # mixing ratios as a view whose lines are adjacent in memory, too (positions outermost)
        qbase = rng.uniform(0.0, 2.0, (nspec, n + 2 * h, n0, n1))
        qbase[qbase < 0.5] = 0.0
        q = qbase.transpose(0, 2, 3, 1)
        mass = rng.uniform(1.0, 2.0, (n0, n1, n))
        flux = rng.normal(0.0, 0.4, (n0, n1, n + 1))
        rows = np.sort(rng.choice(nspec, ntagged, replace=False)).astype(np.int64)
        base = rng.dirichlet(np.ones(ntag), (ntagged, n, n0, n1)).transpose(0, 4, 1, 2, 3).copy()
        frac = base.transpose(0, 1, 3, 4, 2)  # (ntagged, ntag, n0, n1, n), lines contiguous
        if n1 == 1:
            assert frac.strides[2] == frac.itemsize
        else:
            assert frac.strides[3] == frac.itemsize
        bl = rng.dirichlet(np.ones(ntag), (ntagged, n0, n1)).transpose(0, 3, 1, 2).copy()
        bh = rng.dirichlet(np.ones(ntag), (ntagged, n0, n1)).transpose(0, 3, 1, 2).copy()
        q1, m1, f1 = q.copy(), mass.copy(), frac.copy()
        walcek_lines_tagged(q1, h, m1, flux, 0.9, closed, rows, f1, bl, bh)
        q2, m2, b2 = qbase.copy().transpose(0, 2, 3, 1), mass.copy(), base.copy()
        f2 = b2.transpose(0, 1, 3, 4, 2)
        walcek_sweep_tagged(q2, h, m2, flux, 0.9, closed, rows, f2, bl, bh)
        np.testing.assert_array_equal(q2, q1)
        np.testing.assert_array_equal(m2, m1)
        np.testing.assert_array_equal(f2, f1)
        np.testing.assert_allclose(f2.sum(axis=1), 1.0, rtol=1e-12)
        deficits += _count_deficit_cells(q, h, mass, flux * 0.9, closed, rows)
    assert deficits > 10  # the tile's deficit passes were exercised


def _periodic_tag_case(rng, n0, n1, n, nspec, ntagged, ntag, h, flow, adjacent):
    """A periodic tagged sweep's inputs: random mixing ratios (zeros included) with periodic
    ghosts, random air mass, random divergent fluxes with face n = face 0 (``flow`` "mixed",
    "positive" or "negative"), random fractions. adjacent: q and frac are views whose lines lie
    next to each other in memory (the model's y and z sweeps), else each line is contiguous."""
    if adjacent:
        q = rng.uniform(0.0, 2.0, (nspec, n + 2 * h, n0, n1)).transpose(0, 2, 3, 1)
        assert q.strides[2] == q.itemsize
    else:
        q = rng.uniform(0.0, 2.0, (nspec, n0, n1, n + 2 * h))
    q[q < 0.5] = 0.0
    q[..., :h] = q[..., n:n + h]
    q[..., n + h:] = q[..., h:2 * h]
    mass = rng.uniform(1.0, 2.0, (n0, n1, n))
    flux = rng.normal(0.0, 0.4, (n0, n1, n + 1))
    if flow == "positive":
        flux = np.abs(flux)
    elif flow == "negative":
        flux = -np.abs(flux)
    flux[..., 3::7] = 0.0
    flux[..., 0].flat[::5] = 0.0
    flux[..., -1] = flux[..., 0]
    rows = np.sort(rng.choice(nspec, ntagged, replace=False)).astype(np.int64)
    base = rng.dirichlet(np.ones(ntag), (ntagged, n, n0, n1)).transpose(0, 4, 1, 2, 3).copy()
    frac = base.transpose(0, 1, 3, 4, 2)  # (ntagged, ntag, n0, n1, n)
    if not adjacent:
        frac = frac.copy()
    elif ntagged:
        assert frac.strides[3 if n1 > 1 else 2] == frac.itemsize
    bl = rng.dirichlet(np.ones(ntag), (ntagged, n0, n1)).transpose(0, 3, 1, 2).copy()
    bh = rng.dirichlet(np.ones(ntag), (ntagged, n0, n1)).transpose(0, 3, 1, 2).copy()
    return q, mass, flux, rows, frac, bl, bh


def _copy_like(v):
    """A copy of ``v`` with the same strides (so the copy's lines are laid out as v's)."""
    out = np.lib.stride_tricks.as_strided(np.empty(v.size), v.shape, v.strides) if v.size \
        else np.empty_like(v)
    # v (a transpose of a contiguous array) spans exactly v.size elements
    assert v.size == 0 or max(v.strides) * v.shape[np.argmax(v.strides)] == 8 * v.size
    out[...] = v
    return out


@pytest.mark.parametrize("adjacent", [False, True])
def test_periodic_tiled_tagged_sweep_equals_line_kernel(adjacent):
    """Periodic lines (closed = 4) take the tiled tagged sweep too: bit for bit the line
    kernel's bulk, air mass and tag fractions, with and without tags, for lines contiguous in
    memory (x: tags updated line by line) and lines adjacent in memory (y, z: SIMD tag
    update), several tiles, partial last tiles, n1 == 1, single-cell lines, scale != 1."""
    from aqforecast.kernels.advection import TILE
    from aqforecast.kernels.tagging import walcek_sweep_tagged

    rng = np.random.default_rng(40 + adjacent)
    cases = [(3, 2 * TILE + 5, 9, 3, 2, 4), (2 * TILE + 3, 1, 12, 2, 1, 3),
             (2, TILE, 5, 2, 2, 6), (4, 7, 1, 1, 1, 3), (5, 3, 33, 3, 0, 0),
             (TILE + 1, 1, 2, 2, 0, 0), (1, 1, 3, 1, 1, 2)]
    for n0, n1, n, nspec, ntagged, ntag in cases:
        for flow in ("mixed", "positive", "negative"):
            for scale in (0.9, 1.0 / 3.0):
                h = 3 if flow != "mixed" else 2
                q, mass, flux, rows, frac, bl, bh = _periodic_tag_case(
                    rng, n0, n1, n, nspec, ntagged, ntag, h, flow, adjacent)
                q1, m1, f1 = _copy_like(q), mass.copy(), _copy_like(frac)
                walcek_lines_tagged(q1, h, m1, flux, scale, 4, rows, f1, bl, bh)
                q2, m2, f2 = _copy_like(q), mass.copy(), _copy_like(frac)
                walcek_sweep_tagged(q2, h, m2, flux, scale, 4, rows, f2, bl, bh)
                np.testing.assert_array_equal(q2, q1)
                np.testing.assert_array_equal(m2, m1)
                np.testing.assert_array_equal(f2, f1)
                if ntagged:
                    np.testing.assert_allclose(f2.sum(axis=1), 1.0, rtol=1e-12)


def test_periodic_tagged_sweep_conserves_bulk_and_tags():
    """A periodic tagged sweep (tiled) moves the bulk and every tag only along the lines: per
    line, sum(q M), sum(M) and each tag's sum(f_k q M) are unchanged to round-off. (The tag
    kernels take the wrapped face's inflow fractions from bc_low/bc_high; with the same
    fractions everywhere these are consistent with a periodic line.)"""
    from aqforecast.kernels.tagging import walcek_sweep_tagged

    rng = np.random.default_rng(7)
    n0, n1, n, ntag, h = 3, 37, 11, 3, 3
    q, mass, flux, rows, frac, bl, bh = _periodic_tag_case(rng, n0, n1, n, 2, 1, ntag, h,
                                                           "mixed", True)
    frac[...] = np.array([0.2, 0.3, 0.5])[None, :, None, None, None]
    bl[...] = np.array([0.2, 0.3, 0.5])[None, :, None, None]
    bh[...] = bl
    before = (q[..., h:h + n] * mass).sum(axis=-1)
    tags_before = frac[0] * q[rows[0], ..., h:h + n] * mass
    air = mass.sum(axis=-1)
    walcek_sweep_tagged(q, h, mass, flux, 0.7, 4, rows, frac, bl, bh)
    np.testing.assert_allclose((q[..., h:h + n] * mass).sum(axis=-1), before, rtol=1e-13,
                               atol=1e-14)
    np.testing.assert_allclose(mass.sum(axis=-1), air, rtol=1e-14)
    tags_after = frac[0] * q[rows[0], ..., h:h + n] * mass
    np.testing.assert_allclose(tags_after.sum(axis=-1), tags_before.sum(axis=-1), rtol=1e-12,
                               atol=1e-14)


def _count_deficit_cells(q, h, mass, phi, closed, rows):
    """Cells of the tagged rows whose Walcek outflow exceeds their resident tracer mass while
    they receive inflow (the cells whose outflow carries inflow fractions)."""
    from aqforecast.kernels.advection import walcek_line

    count = 0
    n0, n1, n = mass.shape
    for a in range(n0):
        for b in range(n1):
            p = phi[a, b].copy()
            if closed & 1:
                p[0] = 0.0
            if closed & 2:
                p[-1] = 0.0
            m0 = mass[a, b]
            m1 = m0 - p[1:] + p[:-1]
            for s in rows:
                line = q[s, a, b].copy()
                resident = line[h:h + n] * m0
                f = np.empty(n + 1)
                walcek_line(line, h, p, m0, m1, np.empty(n + 2 * h, np.int8), f, False)
                fout = np.maximum(f[1:], 0.0) + np.maximum(-f[:-1], 0.0)
                fin = np.maximum(f[:-1], 0.0) + np.maximum(-f[1:], 0.0)
                count += int(np.sum((fout > resident) & (fin > 0.0)))
    return count


def test_tag_fractions_stay_finite_with_denormal_fluxes():
    """Tracer fluxes of ~1e-316 (an emptied cell next to a nearly empty one) occur in real
    runs; the weights must not overflow (1/denom = inf, 0 * inf = NaN) in the line and the tile
    kernels."""
    from aqforecast.kernels.tagging import tag_fraction_line, walcek_sweep_tagged

    tiny = -3.83e-316
    mass = np.array([9.8e-6, 0.0, 1.6e-315])
    flux = np.array([-5.0e-2, -9.8e-6, tiny, tiny])
    frac = np.array([[0.25, 0.5, 1.0], [0.75, 0.5, 0.0]])
    out = np.empty_like(frac)
    tag_fraction_line(mass, flux, frac, np.array([0.5, 0.5]), np.array([0.3, 0.7]), out)
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out.sum(axis=0), 1.0, rtol=1e-12)
    # the same line in a tile of lines adjacent in memory
    h, n, nlines = 3, 3, 4
    qbase = np.zeros((1, n + 2 * h, nlines, 1))
    qbase[0, h:h + n, :, 0] = np.array([2.97e-14, 0.0, 4.9e-324])[:, None]
    q = qbase.transpose(0, 2, 3, 1)
    m = np.full((nlines, 1, n), 3.3e8)
    f = np.zeros((nlines, 1, n + 1))
    f[:, 0, 2:] = -1.3e-307
    base = np.zeros((1, 2, n, nlines, 1))
    base[0, 0] = 1.0
    fr = base.transpose(0, 1, 3, 4, 2)
    walcek_sweep_tagged(q, h, m, f, 1.0, 0, np.zeros(1, np.int64), fr,
                        np.full((1, 2, nlines, 1), 0.5), np.full((1, 2, nlines, 1), 0.5))
    assert np.all(np.isfinite(fr))


def test_tag_cell_kernels_read_and_write_padded_arrays_in_place():
    """fractions_from_tag_cells / tags_from_fraction_cells on halo-padded views equal the
    NumPy formulas (f = c_k / c, the fallback tag takes empty cells; c_k = (f c) s) bit for bit,
    and leave the halos alone."""
    from aqforecast.kernels.tagging import fractions_from_tag_cells, tags_from_fraction_cells

    rng = np.random.default_rng(11)
    nspec, ntag, nz, ny, nx, h = 5, 4, 3, 6, 7, 2
    rows = np.array([3, 1], dtype=np.int64)
    nt = rows.size
    q = rng.uniform(0.0, 2.0, (nspec, nz + 2 * h, ny + 2 * h, nx + 2 * h))
    q[1, h, h, h:h + 3] = 0.0  # empty cells
    tagc = rng.uniform(0.0, 1.0, (nt * ntag, nz + 2 * h, ny + 2 * h, nx + 2 * h))
    inner = (slice(None), slice(h, h + nz), slice(h, h + ny), slice(h, h + nx))
    bulk = q[inner][rows]
    frac = np.empty((nt, ntag, nz, ny, nx))
    fractions_from_tag_cells(q[inner], rows, tagc[inner], ntag, 2, frac)
    c = tagc[inner].reshape(nt, ntag, nz, ny, nx)
    with np.errstate(divide="ignore", invalid="ignore"):
        want = np.where(bulk[:, None] > 0, c / bulk[:, None],
                        (np.arange(ntag) == 2)[None, :, None, None, None] * 1.0)
    assert np.array_equal(frac, want)
    assert np.all(frac[1, :, 0, 0, :3] == (np.arange(ntag) == 2)[:, None])
    before = tagc.copy()
    scale = rng.uniform(0.9, 1.1, (nz, ny, nx))
    tags_from_fraction_cells(q[inner], rows, frac, ntag, scale, tagc[inner])
    assert np.array_equal(tagc[inner], ((frac * bulk[:, None]) * scale).reshape(
        nt * ntag, nz, ny, nx))
    halo = np.ones(tagc.shape, bool)
    halo[inner] = False
    assert np.array_equal(tagc[halo], before[halo])


def test_float32_fractions_finite_for_denormal_bulk():
    """float32 fractions use one reciprocal of the bulk per cell; a bulk below 2^-1024 (NO
    titrated at night reached 1.5e-323 in the sample case) makes it overflow and 0 * inf gave NaN
    fractions, which the sweeps spread along their lines. Such cells now count as empty (all to
    the fallback tag), so the tags still sum to the bulk; normal cells keep c_k * (1 / c)."""
    from aqforecast.kernels.tagging import (MIN_RECIPROCAL_BULK, fractions_from_tag_cells,
                                            tags_from_fraction_cells_normalised)

    ntag, nz, ny, nx = 3, 2, 2, 5
    bulk = np.full((1, nz, ny, nx), 2e-9)
    bulk[0, 0, 0] = [1.5e-323, 5e-309, 1e-300, 2e-300, 0.0]
    tagc = np.zeros((ntag, nz, ny, nx))
    tagc[1] = 0.25 * bulk[0]
    tagc[2] = 0.75 * bulk[0]
    rows = np.zeros(1, np.int64)
    frac = np.empty((1, ntag, nz, ny, nx), np.float32)
    fractions_from_tag_cells(bulk, rows, tagc, ntag, 0, frac)
    assert np.all(np.isfinite(frac))
    tiny = bulk[0, 0, 0] <= MIN_RECIPROCAL_BULK
    assert tiny.tolist() == [True, True, True, False, True]
    assert np.array_equal(frac[0, :, 0, 0][:, tiny], np.repeat([[1.0], [0.0], [0.0]], 4, 1))
    assert np.allclose(frac[0, 1][~(bulk[0] <= MIN_RECIPROCAL_BULK)], 0.25, rtol=1e-7)
    assert np.allclose(frac[0, 2][~(bulk[0] <= MIN_RECIPROCAL_BULK)], 0.75, rtol=1e-7)
    out = np.empty_like(tagc)
    tags_from_fraction_cells_normalised(bulk, rows, frac, ntag, np.ones((nz, ny, nx)), out)
    assert np.all(np.isfinite(out))
    assert np.allclose(out.sum(axis=0), bulk[0], rtol=1e-15, atol=0)


@pytest.mark.parametrize("adjacent", [False, True, "padded"])
@pytest.mark.parametrize("closed", [0, 3, 4])
def test_float32_tag_update_matches_float64_line_kernel(adjacent, closed):
    """float32 fractions (the forecast's default, ``tags.transport_precision``): the tiled
    sweep's float32 stencil (lines adjacent in memory: y, z; lines one after another: x) with
    the deficit cells' outflow corrections gives the float64 line kernel's fractions to float32
    round-off, on cases with many deficit cells, several tiles, partial tiles, n1 == 1 and
    single-cell lines; the bulk and air mass stay bit for bit; fractions stay in [0, 1] and sum
    to 1 to float32 round-off. "padded": lines one after another but with a gap between them
    (fractions a view of a wider array), the tile copied through a work block."""
    from aqforecast.kernels.advection import TILE
    from aqforecast.kernels.tagging import walcek_sweep_tagged

    padded = adjacent == "padded"
    adjacent = adjacent is True
    rng = np.random.default_rng(70 + 2 * closed + adjacent + 7 * padded)
    cases = [(3, 2 * TILE + 5, 9, 3, 2, 4), (2 * TILE + 3, 1, 12, 2, 1, 3),
             (2, TILE, 5, 2, 2, 6), (4, 7, 1, 1, 1, 3), (1, 1, 3, 1, 1, 2)]
    deficits = 0
    for n0, n1, n, nspec, ntagged, ntag in cases:
        h = 3
        q, mass, flux, rows, frac, bl, bh = _periodic_tag_case(
            rng, n0, n1, n, nspec, ntagged, ntag, h, "mixed", adjacent)
        if closed != 4:  # open / closed lines: independent ghosts
            q[..., :h] = rng.uniform(0.0, 2.0, q[..., :h].shape)
        q1, m1, f1 = _copy_like(q), mass.copy(), _copy_like(frac)
        walcek_lines_tagged(q1, h, m1, flux, 0.9, closed, rows, f1, bl, bh)
        q2, m2 = _copy_like(q), mass.copy()
        f2 = _copy_like(frac)
        if padded:
            f32 = np.empty(f2.shape[:-1] + (f2.shape[-1] + 3,), np.float32)[..., :n]
        else:
            f32 = np.lib.stride_tricks.as_strided(np.empty(f2.size, np.float32), f2.shape,
                                                  tuple(s // 2 for s in f2.strides))
        f32[...] = frac
        walcek_sweep_tagged(q2, h, m2, flux, 0.9, closed, rows, f32, bl, bh)
        np.testing.assert_array_equal(q2, q1)
        np.testing.assert_array_equal(m2, m1)
        np.testing.assert_allclose(f32, f1, rtol=0, atol=2e-6)
        assert f32.min() >= 0.0 and f32.max() <= 1.0 + 1e-6
        np.testing.assert_allclose(f32.sum(axis=1), 1.0, atol=5e-6)
        if closed != 4:
            deficits += _count_deficit_cells(q, h, mass, flux * 0.9, closed, rows)
    if closed != 4:
        assert deficits > 10  # the deficit corrections were exercised


def test_float32_tag_fractions_flush_below_tiny():
    """float32 fractions below TINY (1e-15) become 0 in the sweep (no subnormal arithmetic)
    and nothing else changes beyond float32 round-off."""
    from aqforecast.kernels.tag_update32 import TINY
    from aqforecast.kernels.tagging import walcek_sweep_tagged

    n0, n1, n, ntag, h = 2, 3, 8, 3, 2
    q = np.ones((1, n0, n1, n + 2 * h))
    mass = np.ones((n0, n1, n))
    flux = np.full((n0, n1, n + 1), 0.3)
    frac = np.zeros((1, ntag, n0, n1, n), np.float32)
    frac[0, 0] = 1.0
    frac[0, 1, ..., 0] = 1e-30  # tiny, and shrinking further as it moves
    frac[0, 2, ..., 0] = 1e-3
    frac[0, 0, ..., 0] -= 1e-3
    bl = np.zeros((1, ntag, n0, n1))
    bl[0, 0] = 1.0
    bh = bl.copy()
    walcek_sweep_tagged(q, h, mass, flux, 1.0, 0, np.zeros(1, np.int64), frac, bl, bh)
    assert np.all(frac[0, 1] == 0.0)
    assert frac[0, 2].max() > TINY
    tiny = np.finfo(np.float32).tiny
    assert not np.any((frac > 0) & (frac < tiny))
