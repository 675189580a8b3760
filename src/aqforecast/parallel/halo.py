"""Halo exchange for padded (..., ny + 2h, nx + 2h) arrays, set up once per field layout.

``HaloExchange(comm, decomp, leading_shape)`` allocates contiguous send/receive buffers for the
four sides once; each exchange is ``start(field)`` (pack, post non-blocking Irecv/Isend) then
``wait()`` (complete, unpack), so interior work can run in between. With ``corners=True`` the
exchange runs in two phases (west/east on interior rows, then south/north over the full padded
width), which also fills the corner ghosts correctly; the second phase starts inside ``wait()``.
Physical-boundary ghosts are left untouched (boundary conditions fill them).
"""

from __future__ import annotations

import numpy as np

from .decomposition import Decomposition

__all__ = ["HaloExchange"]

# message tags per direction of travel
_TAG = {"to_east": 11, "to_west": 12, "to_north": 13, "to_south": 14}


class HaloExchange:
    def __init__(self, comm, decomp: Decomposition, leading_shape: tuple[int, ...] = (),
                 dtype=np.float64, corners: bool = True):
        self.comm = comm
        self.decomp = decomp
        self.corners = corners
        self.leading_shape = tuple(leading_shape)
        h = decomp.halo
        ny, nx = decomp.local_shape
        self.shape = self.leading_shape + (ny + 2 * h, nx + 2 * h)
        self.dtype = np.dtype(dtype)
        self.west = decomp.neighbour(0, -1)
        self.east = decomp.neighbour(0, 1)
        self.south = decomp.neighbour(-1, 0)
        self.north = decomp.neighbour(1, 0)
        # x-phase slabs cover interior rows; y-phase slabs the full (or interior) width
        ywidth = nx + 2 * h if corners else nx
        xs = self.leading_shape + (ny, h)
        ys = self.leading_shape + (h, ywidth)
        buf = lambda s, nb: np.empty(s, self.dtype) if nb is not None else None  # noqa: E731
        self._send = {"w": buf(xs, self.west), "e": buf(xs, self.east),
                      "s": buf(ys, self.south), "n": buf(ys, self.north)}
        self._recv = {"w": buf(xs, self.west), "e": buf(xs, self.east),
                      "s": buf(ys, self.south), "n": buf(ys, self.north)}
        self._requests: list = []
        self._field: np.ndarray | None = None
        self._pending_y = False

    # slices of the padded array -------------------------------------------------------------
    def _x_slices(self):
        h = self.decomp.halo
        ny, nx = self.decomp.local_shape
        rows = slice(h, h + ny)
        return {"send_w": (rows, slice(h, 2 * h)), "send_e": (rows, slice(nx, nx + h)),
                "recv_w": (rows, slice(0, h)), "recv_e": (rows, slice(nx + h, nx + 2 * h))}

    def _y_slices(self):
        h = self.decomp.halo
        ny, nx = self.decomp.local_shape
        cols = slice(0, nx + 2 * h) if self.corners else slice(h, h + nx)
        return {"send_s": (slice(h, 2 * h), cols), "send_n": (slice(ny, ny + h), cols),
                "recv_s": (slice(0, h), cols), "recv_n": (slice(ny + h, ny + 2 * h), cols)}

    def _post(self, field, sl, sides):
        """sides: list of (key, neighbour, send tag, recv tag)."""
        for key, nb, _, rtag in sides:
            if nb is not None:
                self._requests.append(self.comm.irecv(self._recv[key], nb, rtag))
        for key, nb, stag, _ in sides:
            if nb is not None:
                np.copyto(self._send[key], field[(...,) + sl["send_" + key]])
                self._requests.append(self.comm.isend(self._send[key], nb, stag))

    def _x_sides(self):
        return [("w", self.west, _TAG["to_west"], _TAG["to_east"]),
                ("e", self.east, _TAG["to_east"], _TAG["to_west"])]

    def _y_sides(self):
        return [("s", self.south, _TAG["to_south"], _TAG["to_north"]),
                ("n", self.north, _TAG["to_north"], _TAG["to_south"])]

    def _unpack(self, field, sl, keys):
        for key in keys:
            if self._recv[key] is not None:
                field[(...,) + sl["recv_" + key]] = self._recv[key]

    # public -----------------------------------------------------------------------------------
    def start(self, field: np.ndarray) -> None:
        """Pack and post the exchange of ``field`` (shape ``self.shape``, modified in place)."""
        if field.shape != self.shape or field.dtype != self.dtype:
            raise ValueError(f"halo exchange set up for {self.shape} {self.dtype}, got "
                             f"{field.shape} {field.dtype}")
        if self._field is not None:
            raise RuntimeError("halo exchange already in flight; call wait() first")
        self._field = field
        self._post(field, self._x_slices(), self._x_sides())
        if self.corners:
            self._pending_y = True
        else:
            self._post(field, self._y_slices(), self._y_sides())

    def wait(self) -> None:
        """Complete the exchange started by :meth:`start`; ghosts are filled on return."""
        field = self._field
        if field is None:
            return
        self.comm.waitall(self._requests)
        self._requests = []
        self._unpack(field, self._x_slices(), ("w", "e"))
        if self._pending_y:
            self._pending_y = False
            self._post(field, self._y_slices(), self._y_sides())
            self.comm.waitall(self._requests)
            self._requests = []
        self._unpack(field, self._y_slices(), ("s", "n"))
        self._field = None

    def exchange(self, field: np.ndarray) -> None:
        """Blocking exchange: ``start`` + ``wait``."""
        self.start(field)
        self.wait()
