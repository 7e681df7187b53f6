"""Hourly prior flux {R}/prior.nc from the inventory and the power stage's point sources.

Thin glue around inversion.prior.build_prior.
"""

import logging

from gzcarbon.grid import Grid
from inversion.inventory import write_netcdf_atomic
from inversion.prior import build_prior, flux_encoding
from gzcarbon.logs import script_logging

script_logging(snakemake.log[0])  # noqa: F821

hour_start, hour_end = snakemake.params.hours
prior = build_prior(
    snakemake.input.inventory,
    snakemake.input.point_sources,
    Grid.from_config(snakemake.params.grid),
    hour_start,
    hour_end,
    utc_offset=int(snakemake.params.utc_offset),
)
write_netcdf_atomic(prior, snakemake.output.prior, flux_encoding(prior))
logging.getLogger("prior").info("wrote %s", snakemake.output.prior)
