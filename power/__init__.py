"""Hourly district power emission factors for Guangzhou (carbon emission flow).

Public entry points:

    power.emission_factors(plants, generation, load, external=None, flows=None, ...) -> xarray.Dataset
    power.point_sources(ds_or_plants, generation=None, ...) -> DataFrame(time, plant_id, lon, lat, co2_t_per_h)
    power.read_plants(path_or_df, districts=None) -> DataFrame
    power.marginal_factors(ds, utc_offset_hours=...) -> xarray.Dataset   (marginal factors over ds hours)

Modules: registry (plants, districts), inputs (hourly input files),
flow (carbon emission flow kernel), marginal (marginal emission factors from hourly changes),
factors (entry points), products (NetCDF/CSV/heat map/summary), settings (defaults from
the typed configuration, gzcarbon.config).
"""

from .factors import emission_factors, point_sources
from .marginal import marginal_factors
from .registry import DISTRICTS, PowerInputError, district_names, read_plants

__all__ = [
    "DISTRICTS", "PowerInputError", "district_names", "emission_factors",
    "marginal_factors", "point_sources", "read_plants",
]
