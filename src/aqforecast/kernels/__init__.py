"""Numba kernels: numpy arrays in, numpy arrays out (explicit ``out`` arguments).

No xarray, config, MPI or I/O here (DESIGN.md layer 1). Every kernel works on interior points,
takes the halo width as an argument where it reads ghost cells, and has a plain-NumPy reference
implementation in the tests.

Modules: :mod:`.advection` (donor cell, Walcek 2000), :mod:`.diffusion` (implicit vertical
diffusion with emissions and dry deposition), :mod:`.deposition` (Wesely 1989 resistances,
particle deposition velocity, wet scavenging, Holtslag-Boville 1993 Kz).
"""
