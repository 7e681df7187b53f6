"""Hourly prior flux of another gas, {R}/{gas}/prior.nc (nmol m-2 s-1): CH4 from its inventory,
CO from the CO2 prior's combustion sectors × the CO/CO2 emission ratios (inversion.prior); on the
nested grid (config outer_grid) also `flux_outer` of the outer cells from the gas's coarse outer
inventory (inversion.outer.with_outer_gas_prior; docs/gases.md)."""

import logging

from gzcarbon.grid import Grid, NestedGrid
from gzcarbon.logs import script_logging
from inversion.inventory import write_netcdf_atomic
from inversion.outer import with_outer_gas_prior
from inversion.prior import build_ch4_prior, build_co_prior, flux_encoding

script_logging(snakemake.log[0])  # noqa: F821

sm = snakemake  # noqa: F821
gas = sm.wildcards.gas
if gas == "ch4":
    hour_start, hour_end = sm.params.hours
    prior = build_ch4_prior(sm.input.inventory, Grid.from_config(sm.params.grid), hour_start, hour_end,
                            utc_offset=int(sm.params.utc_offset),
                            temporal_profiles=sm.params.temporal_profiles_ch4)
else:
    prior = build_co_prior(sm.input.co2_prior, sm.input.ratios)
nested = NestedGrid.from_config({"grid": sm.params.grid, "outer_grid": sm.params.outer_grid, "met": sm.params.met})
prior = with_outer_gas_prior(prior, nested, sm.input.get("outer_inventory") or "", gas)
enc = flux_encoding(prior)
if "flux_outer" in prior:
    enc["flux_outer"] = {"zlib": True, "complevel": 4}
write_netcdf_atomic(prior, sm.output.prior, enc)
logging.getLogger("prior_gas").info("wrote %s", sm.output.prior)
