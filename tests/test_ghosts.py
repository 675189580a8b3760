"""The advection operator's ghost fill (one numba pass) against its NumPy form, bit for bit."""

import itertools

import numpy as np
import pytest

from aqforecast.transport.advection import fill_ghosts

FACES = (("west", "east"), ("south", "north"), ("bottom", "top"))


def _fill_ghosts_numpy(q, halo, shape, axis, boundary, fluxes, boundary_values=None):
    """The NumPy slice form the kernel replaced."""
    h = halo
    nz, ny, nx = shape
    n = (nx, ny, nz)[axis]
    qax = 3 - axis
    inner = [slice(None), slice(h, h + nz), slice(h, h + ny), slice(h, h + nx)]

    def sl(start, stop):
        idx = list(inner)
        idx[qax] = slice(start, stop)
        return tuple(idx)

    if boundary[0] == "periodic":
        q[sl(0, h)] = q[sl(n, n + h)]
        q[sl(n + h, n + 2 * h)] = q[sl(h, 2 * h)]
        return
    q[sl(0, h)] = q[sl(h, h + 1)]
    q[sl(n + h, n + 2 * h)] = q[sl(n + h - 1, n + h)]
    if not boundary_values:
        return
    flux = fluxes[axis]
    for btype, name, ghost, face, inward in (
            (boundary[0], FACES[axis][0], sl(0, h), 0, 1.0),
            (boundary[1], FACES[axis][1], sl(n + h, n + 2 * h), n, -1.0)):
        values = boundary_values.get(name)
        if btype != "inflow" or values is None:
            continue
        fidx = [slice(None)] * 3
        fidx[2 - axis] = slice(face, face + 1)
        face_flux = flux[tuple(fidx)] * inward
        np.copyto(q[ghost], values, where=(face_flux > 0.0)[None])


CASES = list(itertools.product(
    (0, 1, 2),
    (("open", "open"), ("periodic", "periodic"), ("inflow", "inflow"), ("closed", "inflow"),
     ("inflow", "open")),
    ("full", "levels-broadcast", "none")))


@pytest.mark.parametrize("axis,boundary,values", CASES)
def test_fill_ghosts_equals_numpy_form(axis, boundary, values):
    rng = np.random.default_rng(axis * 100 + len(values))
    nrow, nz, ny, nx, h = 3, 4, 5, 6, 3
    q = rng.random((nrow, nz + 2 * h, ny + 2 * h, nx + 2 * h))
    fluxes = (rng.normal(size=(nz, ny, nx + 1)), rng.normal(size=(nz, ny + 1, nx)),
              rng.normal(size=(nz + 1, ny, nx)))
    slab = {0: (nrow, nz, ny, h), 1: (nrow, nz, h, nx), 2: (nrow, h, ny, nx)}[axis]
    bvals = None
    if values == "full":
        bvals = {f: rng.random(slab) for f in FACES[axis]}
    elif values == "levels-broadcast":  # one value per row, broadcast over the slab
        bvals = {f: rng.random((nrow, 1, 1, 1)) for f in FACES[axis]}
    a, b = q.copy(), q.copy()
    fill_ghosts(a, h, (nz, ny, nx), axis, boundary, fluxes, bvals)
    _fill_ghosts_numpy(b, h, (nz, ny, nx), axis, boundary, fluxes, bvals)
    assert np.array_equal(a, b)
    if boundary == ("inflow", "inflow") and values == "full":
        assert not np.array_equal(a, q)  # something was filled


def test_fill_ghosts_on_a_level_run_view():
    """The operator fills the ghosts of a run of levels (a view with its z ghosts)."""
    rng = np.random.default_rng(7)
    nrow, nz, ny, nx, h = 2, 6, 4, 5, 3
    q = rng.random((nrow, nz + 2 * h, ny + 2 * h, nx + 2 * h))
    a, b = q.copy(), q.copy()
    fl = (rng.normal(size=(2, ny, nx + 1)), rng.normal(size=(2, ny + 1, nx)), None)
    vals = {"west": rng.random((nrow, 2, ny, h)), "east": rng.random((nrow, 2, ny, h))}
    fill_ghosts(a[:, 2:2 + 2 + 2 * h], h, (2, ny, nx), 0, ("inflow", "inflow"), fl, vals)
    _fill_ghosts_numpy(b[:, 2:2 + 2 + 2 * h], h, (2, ny, nx), 0, ("inflow", "inflow"), fl, vals)
    assert np.array_equal(a, b)
