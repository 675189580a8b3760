"""Emissions: inventory readers, conservative regridding, regions, temporal/vertical profiles,
speciation, region x sector x pollutant scaling and tagged gridded fluxes.

Typical use (one model grid)::

    from aqforecast.emissions import EmissionModel
    em = EmissionModel.from_config(cfg, grid)                 # once: weights, masks, stacks
    f = em.emissions(t, scaling=table, met=plume_met)          # each step (cached per hour)
    f.surface   # (nspec, ny, nx) mol m-2 s-1 (gases) / kg m-2 s-1 (aerosols), into layer 1
    f.elevated  # (nspec, nz, ncol) into layer k of column f.columns[c] = (j, i)
    tf = em.tagged_emissions(t, scaling=table)                 # leading axis = em.tags
    table = read_scaling_table("scaling.csv")                  # CSV/NetCDF, rows multiply

Sources (each optional): a gridded inventory in the native layout (:mod:`.inventory`) or in
its distributor's files (EDGAR, CAMS-GLOB-ANT, HTAP, MEIC: :mod:`.layouts`, with units by
:mod:`.units` and names by a mapping file, :mod:`.mapping`), point sources and area sources.
See the module docstrings and docs/inventory_formats.md for formats and formulas.
"""

from .inventory import (  # noqa: F401
    POLLUTANTS,
    AreaSources,
    GriddedInventory,
    PointSources,
    canonical_pollutant,
    read_area_sources,
    read_gridded_inventory,
    read_point_sources,
)
from .layouts import InventoryLayout, read_pattern_inventory  # noqa: F401
from .mapping import InventoryMapping, read_mapping  # noqa: F401
from .model import EmissionFields, EmissionModel  # noqa: F401
from .regions import OUTSIDE, RegionMasks, read_geojson, region_fractions  # noqa: F401
from .regrid import ConservativeRegridder, overlap_weights  # noqa: F401
from .scaling import (  # noqa: F401
    ScalingRow,
    ScalingTable,
    ScalingTableError,
    read_scaling_table,
    write_scaling_table,
)
from .speciation import EMITTED_SPECIES, Speciation, SpeciationFactors  # noqa: F401
from .temporal import SectorProfile, TemporalProfiles, default_profiles  # noqa: F401
from .units import EmissionUnits, UnitsError, cell_area_lonlat, parse_emission_units  # noqa: F401
from .vertical import (  # noqa: F401
    PlumeMet,
    briggs_plume_rise,
    buoyancy_flux,
    layer_fractions,
    stack_layer_fractions,
)
