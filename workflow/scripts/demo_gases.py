"""Demo world: the CH4 inventory ({D}/inventory_ch4.nc) and the true CH4 and CO
({D}/truth_ch4.nc, {D}/truth_co.nc).

Thin glue around gzcarbon.demo.gases: the CH4 truth is the CH4 inventory with the registered
errors; the CO truth is the CO2 truth's combustion sectors × the true CO/CO2 ratios (the prior
table's × the registered errors; docs/demo.md).
"""

import logging

import xarray as xr

from gzcarbon.demo.gases import CO_COMBUSTION_SECTORS, make_ch4_inventory, make_ch4_truth, make_co_truth
from gzcarbon.demo.delta import make_outer_gas_inventory, make_outer_gas_truths
from gzcarbon.districts import district_matrix
from gzcarbon.grid import Grid, NestedGrid
from gzcarbon.neighbours import read_neighbours
from gzcarbon.logs import script_logging
from inversion.emission_ratios import read_emission_ratios
from inversion.inventory import write_netcdf_atomic
from inversion.prior import flux_encoding

script_logging(snakemake.log[0])  # noqa: F821
log = logging.getLogger("demo_gases")

grid = Grid.from_config(snakemake.params.grid)
hour_start, hour_end = snakemake.params.hours
seed = int(snakemake.params.seed)
names, dmat = district_matrix(snakemake.input.districts, grid.lon_edges, grid.lat_edges)

inventory = make_ch4_inventory(grid, names, dmat)
write_netcdf_atomic(inventory, snakemake.output.inventory_ch4,
                    {v: {"zlib": True, "complevel": 4} for v in inventory.data_vars})
log.info("wrote %s", snakemake.output.inventory_ch4)

truth_ch4 = make_ch4_truth(inventory, grid, names, dmat, hour_start, hour_end, seed)
write_netcdf_atomic(truth_ch4, snakemake.output.truth_ch4, flux_encoding(truth_ch4))
log.info("wrote %s", snakemake.output.truth_ch4)

ratios = read_emission_ratios(snakemake.input.ratios, CO_COMBUSTION_SECTORS)
with xr.open_dataset(snakemake.input.truth) as co2_truth:
    co2_truth = co2_truth.load()
if not grid.matches(co2_truth["lon"].values, co2_truth["lat"].values):
    raise ValueError(f"{snakemake.input.truth}: not on the config grid ({grid.describe()}); rebuild it")
truth_co = make_co_truth(co2_truth, ratios, grid, dmat, seed)
write_netcdf_atomic(truth_co, snakemake.output.truth_co, flux_encoding(truth_co))
log.info("wrote %s", snakemake.output.truth_co)

# the nested state: the neighbours' coarse CH4/CO inventories and the outer cells' truths
# (gzcarbon.demo.delta; errors pre-registered in docs/gases.md)
nested = NestedGrid.from_config({"grid": snakemake.params.grid, "outer_grid": snakemake.params.outer_grid,
                                 "met": snakemake.params.met})
if nested.enabled:
    neighbours = read_neighbours(snakemake.input.neighbours)
    table = {k: (float(r), 0.0) for k, r in ratios["ratio_mol_per_mol"].items()}
    for g in ("ch4", "co"):
        inv = make_outer_gas_inventory(nested, neighbours, snakemake.input.neighbours, g, table)
        write_netcdf_atomic(inv, snakemake.output[f"inventory_outer_{g}"],
                            {f"emi_{g}": {"dtype": "float32", "zlib": True, "complevel": 4}})
        log.info("wrote %s (%s)", snakemake.output[f"inventory_outer_{g}"], inv[f"emi_{g}"].attrs[f"total_emi_{g}"])
    truths = make_outer_gas_truths(nested, neighbours, snakemake.input.neighbours, (hour_start, hour_end), seed, table)
    for g, ds in truths.items():
        write_netcdf_atomic(ds, snakemake.output[f"truth_outer_{g}"], {"flux_outer": {"zlib": True, "complevel": 4}})
        log.info("wrote %s", snakemake.output[f"truth_outer_{g}"])
