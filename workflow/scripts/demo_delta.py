"""Demo world: the delta around the city (nested state, config outer_grid): the EDGAR-format coarse
inventory of the outer box ({D}/inventory_outer.nc), the outer biosphere prior in CarbonTracker's
flux1x1 layout ({D}/bio_outer.nc) and the true flux of the outer cells
({D}/truth_outer.nc). Thin glue around gzcarbon.demo.delta (docs/demo.md, "The delta")."""

import logging

import pandas as pd
import xarray as xr

from gzcarbon.demo.delta import make_outer_bio_prior, make_outer_inventory, make_outer_truth
from gzcarbon.grid import NestedGrid
from gzcarbon.logs import script_logging
from gzcarbon.neighbours import read_neighbours
from inversion.inventory import write_netcdf_atomic
from inversion.prior import read_point_sources

script_logging(snakemake.log[0])  # noqa: F821
log = logging.getLogger("demo_delta")

nested = NestedGrid.from_config({"grid": snakemake.params.grid, "outer_grid": snakemake.params.outer_grid,
                                 "met": snakemake.params.met})
if not nested.enabled:
    raise ValueError("rule demo_delta needs config outer_grid.enabled: true (the delta lives on the outer grid)")
hours = tuple(snakemake.params.hours)
path = snakemake.input.neighbours
neighbours = read_neighbours(path)
with xr.open_dataset(snakemake.input.inventory) as inv:
    inventory = inv.load()
with xr.open_dataset(snakemake.input.truth) as tr:
    gfac = tr["gpp_day_factor"].to_series() if "gpp_day_factor" in tr else None
log.info("outer grid %s (%d outer cells); %d neighbours from %s", nested.outer.describe(), nested.n_outer,
         len(neighbours), path)
coarse = make_outer_inventory(nested, neighbours, path, inventory,
                              read_point_sources(snakemake.input.point_sources), hours)
write_netcdf_atomic(coarse, snakemake.output.inventory,
                    {"emi_co2": {"dtype": "float32", "zlib": True, "complevel": 4}})
log.info("wrote %s (%s)", snakemake.output.inventory, coarse["emi_co2"].attrs["total_emi_co2"])
bio = make_outer_bio_prior(nested, neighbours, path, hours)
write_netcdf_atomic(bio, snakemake.output.bio, {"bio_flux_opt": {"zlib": True, "complevel": 4}})
log.info("wrote %s (%d steps, %d x %d cells)", snakemake.output.bio, bio.time.size, bio.latitude.size,
         bio.longitude.size)
if gfac is not None:
    gfac.index = pd.DatetimeIndex(gfac.index)
truth = make_outer_truth(nested, neighbours, path, hours, int(snakemake.params.seed), gpp_day_factor=gfac)
write_netcdf_atomic(truth, snakemake.output.truth,
                    {v: {"zlib": True, "complevel": 4} for v in ("flux_outer", "flux_outer_bio")})
log.info("wrote %s", snakemake.output.truth)
