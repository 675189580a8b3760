"""Flux-fraction tag advection kernel: reference, convexity and exact per-tag conservation."""

import numpy as np
import pytest

from aqforecast.kernels.tagging import tag_fraction_line, tag_fraction_sweep


def _reference(mass, flux, frac, f_low, f_high):
    """Fixed-point iteration of the mixing rule (converges in n sweeps on a DAG)."""
    ntag, n = frac.shape
    out = frac.copy()
    for _ in range(n + 2):
        new = out.copy()
        for i in range(n):
            num = frac[:, i] * mass[i]
            den = mass[i]
            if flux[i] > 0:  # inflow from the left
                donor = f_low if i == 0 else out[:, i - 1]
                num = num + donor * flux[i]
                den += flux[i]
            if flux[i + 1] < 0:  # inflow from the right
                donor = f_high if i == n - 1 else out[:, i + 1]
                num = num - donor * flux[i + 1]
                den -= flux[i + 1]
            new[:, i] = num / den if den > 0 else frac[:, i]
        out = new
    return out


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
