"""Hourly prior flux {R}/prior.nc from the inventory and the power stage's point sources.

Thin glue around inversion.prior.build_prior (any inventory format: docs/inventory.md) and, with
config outer_grid, inversion.outer.with_outer_prior (the outer cells' flux_outer).
"""

import logging

from gzcarbon.grid import Grid, NestedGrid
from gzcarbon.logs import script_logging
from inversion.inventory import write_netcdf_atomic
from inversion.outer import with_outer_prior
from inversion.prior import InventoryOptions, build_prior, flux_encoding

script_logging(snakemake.log[0])  # noqa: F821

hour_start, hour_end = snakemake.params.hours
prior = build_prior(
    snakemake.input.inventory,
    snakemake.input.point_sources,
    Grid.from_config(snakemake.params.grid),
    hour_start,
    hour_end,
    utc_offset=int(snakemake.params.utc_offset),
    options=InventoryOptions.from_config(dict(snakemake.params.inventory)),
)
nested = NestedGrid.from_config({"grid": dict(snakemake.params.grid), "outer_grid": dict(snakemake.params.outer_grid),
                                 "met": dict(snakemake.params.met)})
prior = with_outer_prior(prior, nested, snakemake.input.get("outer_inventory") or "",
                         int(snakemake.params.utc_offset), InventoryOptions.from_config(dict(snakemake.params.inventory)),
                         outer_bio_prior=snakemake.input.get("outer_bio_prior") or "")
write_netcdf_atomic(prior, snakemake.output.prior, flux_encoding(prior))
logging.getLogger("prior").info("wrote %s", snakemake.output.prior)
