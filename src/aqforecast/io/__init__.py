"""Input/output: CF NetCDF (atomic), WRF reader, station/satellite readers, restart files."""

from .netcdf import (  # noqa: F401
    CF_CONVENTIONS,
    InputFileError,
    atomic_path,
    global_attrs,
    grid_dataset,
    open_dataset,
    species_attrs,
    write_dataset,
)
