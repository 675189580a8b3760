"""Numba kernels: numpy arrays in, numpy arrays out (explicit ``out`` arguments).

No xarray, config, MPI or I/O here (DESIGN.md layer 1). Every kernel works on interior points,
takes the halo width as an argument where it reads ghost cells, and has a plain-NumPy reference
implementation in the tests.

Modules: :mod:`.advection` (donor cell, Walcek 2000), :mod:`.diffusion` (implicit vertical
diffusion with emissions and dry deposition), :mod:`.deposition` (Wesely 1989 resistances,
particle deposition velocity, wet scavenging, Holtslag-Boville 1993 Kz), :mod:`.tagging` and
:mod:`.apportion` (source tags), :mod:`.chemistry` (LU, Rosenbrock tableaux).

Parallelism: a gridded kernel is a ``nogil`` function of a range of work items (rows, lines,
tiles, cells) run on a pool of threads by :mod:`.threads` (``numba.get_num_threads()``
threads), not numba's ``prange``, whose loop body is compiled a second time with every function
it calls (that doubled the model's compile time). Helpers called by one kernel are
``inline="always"`` for the same reason; :mod:`.layout` gives each kernel one compiled
specialisation for C-contiguous and strided views alike.
"""
