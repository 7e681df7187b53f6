"""Demo world: write the EDGAR-like inventory ({D}/inventory.nc) and the truth ({D}/truth.nc).

Thin glue around gzcarbon.demo.inventory; the power plants of the truth are the power stage's
hourly point sources × the documented factor.
"""

import logging

from gzcarbon.districts import district_matrix
from gzcarbon.grid import Grid
from inversion.inventory import write_inventory, write_netcdf_atomic
from inversion.prior import flux_encoding, read_point_sources
from gzcarbon.demo.inventory import make_inventory, make_truth
from gzcarbon.logs import script_logging

script_logging(snakemake.log[0])  # noqa: F821
log = logging.getLogger("demo_inventory")

grid = Grid.from_config(snakemake.params.grid)
hour_start, hour_end = snakemake.params.hours
names, dmat = district_matrix(snakemake.input.districts, grid.lon_edges, grid.lat_edges)
log.info("grid %s; %d districts; hours %s .. %s", grid.describe(), len(names), hour_start, hour_end)

inventory = make_inventory(grid, names, dmat)
write_inventory(inventory, snakemake.output.inventory)
log.info("wrote %s", snakemake.output.inventory)

truth = make_truth(
    inventory,
    read_point_sources(snakemake.input.point_sources),
    grid,
    names,
    dmat,
    hour_start,
    hour_end,
    seed=int(snakemake.params.seed),
)
write_netcdf_atomic(truth, snakemake.output.truth, flux_encoding(truth))
log.info("wrote %s", snakemake.output.truth)
