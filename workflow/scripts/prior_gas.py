"""Hourly prior flux of another gas, {R}/{gas}/prior.nc (nmol m-2 s-1): CH4 from its inventory,
CO from the CO2 prior's combustion sectors × the CO/CO2 emission ratios (inversion.prior)."""

import logging

from gzcarbon.grid import Grid
from gzcarbon.logs import script_logging
from inversion.inventory import write_netcdf_atomic
from inversion.prior import build_ch4_prior, build_co_prior, flux_encoding

script_logging(snakemake.log[0])  # noqa: F821

sm = snakemake  # noqa: F821
if sm.wildcards.gas == "ch4":
    hour_start, hour_end = sm.params.hours
    prior = build_ch4_prior(sm.input.inventory, Grid.from_config(sm.params.grid), hour_start, hour_end,
                            utc_offset=int(sm.params.utc_offset),
                            temporal_profiles=sm.params.temporal_profiles_ch4)
else:
    prior = build_co_prior(sm.input.co2_prior, sm.input.ratios)
write_netcdf_atomic(prior, sm.output.prior, flux_encoding(prior))
logging.getLogger("prior_gas").info("wrote %s", sm.output.prior)
