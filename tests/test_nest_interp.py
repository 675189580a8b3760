"""The nest boundary's bilinear interpolation kernel against its NumPy form (bit for bit)."""

import numpy as np
import pytest

from aqforecast.transport.nesting import _interp, bilinear_weights


def _interp_numpy(field, w):
    """The NumPy form: four gathered copies of every row, rows first, then columns."""
    j0, j1, wj, i0, i1, wi = w
    rj0, rj1 = j0[:, None], j1[:, None]
    ci0, ci1 = i0[None, :], i1[None, :]
    cj, dj = (1 - wj)[:, None], wj[:, None]
    a0 = field[..., rj0, ci0] * cj + field[..., rj1, ci0] * dj
    a1 = field[..., rj0, ci1] * cj + field[..., rj1, ci1] * dj
    return a0 * (1 - wi) + a1 * wi


@pytest.mark.parametrize("lead", [(), (3,), (4, 5), (2, 3, 2)])
def test_bilinear_kernel_equals_numpy_form(lead):
    rng = np.random.default_rng(len(lead))
    # a window of a halo-padded array, as the model passes its tags (not contiguous)
    field = rng.random(lead + (30, 40))[..., 2:28, 3:37]
    w = bilinear_weights(rng.uniform(-1.0, 27.0, 9), rng.uniform(-1.0, 35.0, 4), 26, 34)
    got = _interp(field, w)
    want = _interp_numpy(field, w)
    assert got.shape == want.shape == lead + (9, 4)
    assert np.array_equal(got, want)


def test_bilinear_reproduces_linear_fields_and_clamps():
    # bilinear interpolation is exact for a field linear in the cell indices (inside), and
    # clamps to the edge values outside
    ny, nx = 12, 15
    jj, ii = np.meshgrid(np.arange(ny) + 0.5, np.arange(nx) + 0.5, indexing="ij")
    field = np.stack([2.0 * jj - 3.0 * ii, 0.5 * ii + 1.0])[None]  # (1, 2, ny, nx)
    fj = np.array([0.5, 3.25, 7.8, 11.5])
    fi = np.array([0.5, 1.1, 9.99, 14.5])
    got = _interp(field, bilinear_weights(fj, fi, ny, nx))[0]
    assert np.allclose(got[0], 2.0 * fj[:, None] - 3.0 * fi[None, :], rtol=0, atol=1e-12)
    assert np.allclose(got[1], 0.5 * fi[None, :] + 1.0 + 0 * fj[:, None], rtol=0, atol=1e-12)
    out = _interp(field, bilinear_weights(np.array([-3.0, 40.0]), np.array([-2.0]), ny, nx))
    assert np.allclose(out[0, 0, :, 0], field[0, 0, [0, -1], 0], rtol=0, atol=1e-12)
