"""Decomposition, halo exchange and gather/scatter: serial, in-process ranks and real MPI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from aqforecast.parallel import (
    Decomposition,
    HaloExchange,
    SerialComm,
    choose_process_grid,
    gather_field,
    scatter_field,
    split_sizes,
)
from aqforecast.parallel.comm import pack_arrays, unpack_arrays
from aqforecast.parallel.fake import run_ranks
from aqforecast.parallel.gather import allgather_window


def test_split_sizes_uneven():
    assert split_sizes(10, 3).tolist() == [4, 3, 3]
    assert split_sizes(7, 7).tolist() == [1] * 7
    with pytest.raises(ValueError):
        split_sizes(3, 4)


def test_choose_process_grid_prefers_square_blocks():
    assert choose_process_grid(4, 100, 100) == (2, 2)
    assert choose_process_grid(2, 48, 54) == (1, 2)
    assert choose_process_grid(2, 200, 50) == (2, 1)
    assert choose_process_grid(16, 150, 150) == (4, 4)


@pytest.mark.parametrize("py, px", [(1, 1), (1, 3), (3, 1), (2, 3)])
def test_blocks_tile_the_grid(py, px):
    ny, nx = 13, 17
    seen = np.zeros((ny, nx), int)
    for r in range(py * px):
        sy, sx = Decomposition(ny, nx, py, px, r, halo=2).block()
        seen[sy, sx] += 1
    assert np.all(seen == 1)


def _global_index_field(lead, ny, nx):
    jj, ii = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
    f = (jj * 1000 + ii).astype(float)
    return np.broadcast_to(f, lead + (ny, nx)) + np.arange(int(np.prod(lead) or 1)).reshape(
        lead + (1, 1)) * 1e6 if lead else f


def _check_halo(comm, py, px, corners, ny=11, nx=14, halo=2, lead=(2,)):
    d = Decomposition(ny, nx, py, px, comm.rank, halo)
    glob = _global_index_field(lead, ny, nx)
    padded = d.scatter_global(glob)
    expected = padded.copy()
    # wipe all ghosts, then exchange; interior-neighbour ghosts must come back exactly
    field = np.full_like(padded, -1.0)
    field[(...,) + d.interior()] = padded[(...,) + d.interior()]
    HaloExchange(comm, d, lead, corners=corners).exchange(field)
    (gy, gx) = d.padded_global_slices()
    jj = np.arange(gy.start, gy.stop)[:, None]
    ii = np.arange(gx.start, gx.stop)[None, :]
    inside = (jj >= 0) & (jj < ny) & (ii >= 0) & (ii < nx)
    h = halo
    sy, sx = d.block()
    own = (jj >= sy.start) & (jj < sy.stop) & (ii >= sx.start) & (ii < sx.stop)
    in_rows = (jj >= sy.start) & (jj < sy.stop)
    in_cols = (ii >= sx.start) & (ii < sx.stop)
    filled = inside & (own | in_rows | in_cols | corners)
    ok = np.where(filled, field == expected, field == -1.0)
    assert ok.all(), f"rank {comm.rank}: wrong ghost cells\n{np.argwhere(~ok.all(axis=0))}"
    del h
    return True


@pytest.mark.parametrize("py, px", [(1, 2), (2, 1), (2, 2), (3, 2), (1, 4)])
@pytest.mark.parametrize("corners", [True, False])
def test_halo_exchange_fills_expected_cells(py, px, corners):
    assert all(run_ranks(py * px, lambda c: _check_halo(c, py, px, corners)))


def test_serial_halo_is_noop():
    d = Decomposition(5, 6, 1, 1, 0, halo=1)
    f = np.arange(np.prod(d.padded_shape), dtype=float).reshape(d.padded_shape)
    g = f.copy()
    HaloExchange(SerialComm(), d).exchange(f)
    assert np.array_equal(f, g)


def test_gather_scatter_round_trip():
    ny, nx = 9, 10
    glob = np.random.default_rng(3).random((3, ny, nx))

    def body(comm):
        d = Decomposition(ny, nx, 2, 2, comm.rank, halo=1)
        loc = scatter_field(comm, d, glob if comm.rank == 0 else None)
        assert np.array_equal(loc, d.local_view(glob))
        total = comm.allreduce_sum(loc.sum())
        return gather_field(comm, d, loc), total

    out = run_ranks(4, body)
    assert np.array_equal(out[0][0], glob)
    assert all(o[0] is None for o in out[1:])
    assert out[0][1] == pytest.approx(glob.sum(), rel=1e-14)


def test_pack_unpack_round_trip_of_strided_views():
    rng = np.random.default_rng(5)
    base = rng.random((4, 6, 7))
    arrays = [base[:, 1:4, ::2], None, base[2], base[..., 3].T]
    buf, counts = pack_arrays(arrays, np.float64)
    assert list(counts) == [4 * 3 * 4, 0, 6 * 7, 7 * 4 - 7 * 4 + 24]
    back = unpack_arrays(buf, [None if a is None else a.shape for a in arrays])
    for a, b in zip(arrays, back):
        assert (a is None and b is None) or np.array_equal(a, b)


@pytest.mark.parametrize("window", [(slice(0, 9), slice(0, 10)), (slice(3, 7), slice(2, 8)),
                                    (slice(0, 2), slice(7, 10)), (slice(5, 6), slice(4, 5))])
def test_allgather_window_equals_the_global_window(window):
    """Every rank gets exactly the window of the global field, including ranks whose block
    holds none of it."""
    ny, nx = 9, 10
    glob = np.random.default_rng(4).random((2, 3, ny, nx)).astype(np.float32)
    sj, si = window

    def body(comm):
        d = Decomposition(ny, nx, 2, 2, comm.rank, halo=1)
        sy, sx = d.block()
        return allgather_window(comm, d, glob[..., sy, sx], sj, si)

    for got in run_ranks(4, body):
        assert got.dtype == np.float32
        assert np.array_equal(got, glob[..., sj, si])


def test_layout_transposes_round_trip_on_ranks():
    """Column blocks -> level slabs -> column blocks on 3 in-process ranks (fewer levels than
    ranks for one of the cases): every level slab holds the global planes, and back."""
    from aqforecast.transport.layout import Layout

    for nz in (5, 2):
        glob = np.random.default_rng(nz).random((4, nz, 8, 9))

        def body(comm):
            lay = Layout(comm, nz, 8, 9, halo=2)
            h = 2
            col = np.full(lay.column_shape((4,)), np.nan)
            sy, sx = lay.block
            col[..., h:h + nz, h:h + sy.stop - sy.start, h:h + sx.stop - sx.start] = \
                glob[..., sy, sx]
            lev = np.full(lay.level_shape((4,)), np.nan)
            lay.to_levels(col, lev)
            nl = len(lay.levels)
            if nl:
                assert np.array_equal(lev[..., h:h + nl, h:-h, h:-h], glob[:, lay.levels])
            back = np.full_like(col, np.nan)
            lay.to_columns(lev, back)
            return np.array_equal(back[..., h:h + nz, h:-h, h:-h], col[..., h:h + nz, h:-h, h:-h])

        assert all(run_ranks(3, body))


MPI_SCRIPT = textwrap.dedent("""
    import numpy as np
    from aqforecast.parallel import get_comm, Decomposition, HaloExchange, gather_field
    comm = get_comm()
    assert comm.size == 2, comm.size
    for py, px in [(1, 2), (2, 1)]:
        d = Decomposition(7, 9, py, px, comm.rank, halo=2)
        jj, ii = np.meshgrid(np.arange(7), np.arange(9), indexing="ij")
        glob = (jj * 100 + ii).astype(float)
        pad = d.scatter_global(glob)
        f = np.full_like(pad, -1.0)
        f[d.interior()] = pad[d.interior()]
        HaloExchange(comm, d).exchange(f)
        sy, sx = d.interior()
        # the ghost cells shared with the neighbour hold the neighbour's global values
        if px == 2:
            col = slice(sx.stop, sx.stop + 2) if comm.rank == 0 else slice(0, 2)
            assert np.array_equal(f[sy, col], pad[sy, col]), (py, px, comm.rank)
        else:
            row = slice(sy.stop, sy.stop + 2) if comm.rank == 0 else slice(0, 2)
            assert np.array_equal(f[row, sx], pad[row, sx]), (py, px, comm.rank)
        g = gather_field(comm, d, pad[d.interior()])
        if comm.rank == 0:
            assert np.array_equal(g, glob)
    tot = comm.allreduce_sum(np.array([comm.rank + 1.0]))
    assert tot[0] == 3.0
    # arrays by buffer (MPI_Alltoallv): strided views, both precisions, an empty message
    for dtype in (np.float32, np.float64):
        base = (np.arange(2 * 5 * 6) + 1000 * comm.rank).astype(dtype).reshape(2, 5, 6)
        send = [base[:, :, ::2], None] if comm.rank == 0 else [base[:, 1:3], base[0, :2]]
        shapes = [(2, 5, 3), (2, 2, 6)] if comm.rank == 0 else [None, (2, 6)]
        got = comm.alltoall_arrays(send, shapes, dtype)
        other = (np.arange(2 * 5 * 6) + 1000 * (1 - comm.rank)).astype(dtype).reshape(2, 5, 6)
        if comm.rank == 0:
            assert np.array_equal(got[0], base[:, :, ::2]) and got[0].dtype == dtype
            assert np.array_equal(got[1], other[:, 1:3])
        else:
            assert got[0] is None and np.array_equal(got[1], base[0, :2])
    from aqforecast.parallel.gather import allgather_window
    d = Decomposition(7, 9, 1, 2, comm.rank, halo=1)
    sy, sx = d.block()
    win = allgather_window(comm, d, glob[sy, sx], slice(2, 6), slice(3, 8))
    assert np.array_equal(win, glob[2:6, 3:8])
    if comm.rank == 0:
        print("MPI-OK")
""")


def _mpiexec():
    exe = shutil.which("mpiexec", path=os.path.dirname(sys.executable) + os.pathsep +
                       os.environ.get("PATH", ""))
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return None
    return exe


@pytest.mark.mpi
def test_real_mpi_two_ranks(tmp_path):
    exe = _mpiexec()
    if exe is None:
        pytest.skip("mpiexec/mpi4py not available")
    script = tmp_path / "halo_mpi.py"
    script.write_text(MPI_SCRIPT)
    res = subprocess.run([exe, "-n", "2", sys.executable, str(script)], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "MPI-OK" in res.stdout
