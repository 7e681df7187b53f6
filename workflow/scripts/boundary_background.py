"""The model boundary at every receptor: the boundary field (stations.background.model: files,
format) sampled at the particles' exit points of the site-day footprints (transport.boundary),
averaged per receptor with the spread and the shares per inflow side -> {R}/boundary/background.csv."""

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from gzcarbon.grid import NestedGrid
from gzcarbon.logs import script_logging
from transport.boundary import exits_from_footprints, read_field, receptor_backgrounds, write_receptor_backgrounds

script_logging(snakemake.log[0])  # noqa: F821
log = logging.getLogger("boundary_background")

params = snakemake.params  # noqa: F821
model = params.model
files = []
for f in snakemake.input.field:  # noqa: F821
    p = Path(f)
    files += sorted(p.glob("*.nc")) if p.is_dir() else [p]
field = read_field(files, model["format"], "co2")
log.info("boundary field: %d file(s), format %s, %d times %s..%s, %d levels, lat %.2f..%.2f, lon %.2f..%.2f",
         len(files), model["format"], field.sizes["time"], pd.Timestamp(field["time"].values[0]),
         pd.Timestamp(field["time"].values[-1]), field.sizes["level"], field["lat"].values[0],
         field["lat"].values[-1], field["lon"].values[0], field["lon"].values[-1])
nested = NestedGrid.from_config({"grid": params.grid, "outer_grid": params.outer_grid, "met": params.met})
if nested.outer is None:
    raise SystemExit("stations.background.method: model needs the particles' exit points from the outer "
                     "domain: set outer_grid.enabled: true")
o = nested.outer
box = (o.lon_min, o.lon_max, o.lat_min, o.lat_max)
receptors = pd.read_csv(snakemake.input.receptors)  # noqa: F821
exits = exits_from_footprints(list(snakemake.input.footprints), receptors)  # noqa: F821
if exits.empty:
    raise SystemExit(f"no exit points in {len(snakemake.input.footprints)} footprint file(s): no receptor "  # noqa: F821
                     "has a footprint, so there is no model boundary to sample")
table = receptor_backgrounds(field, exits, box, float(model["inside_min_agl_m"]))
write_receptor_backgrounds(table, snakemake.output[0])  # noqa: F821
left = exits["left"].to_numpy(bool)
log.info("%d receptors, %d particles (%.1f %% left the outer box or the met domain, the rest sampled at "
         ">= %g m above ground); background mean %.2f ppm, spread median %.2f ppm; inflow shares N %.2f "
         "E %.2f S %.2f W %.2f", len(table), len(exits), 100 * left.mean(), float(model["inside_min_agl_m"]),
         table["background"].mean(), float(np.median(table["background_spread"])),
         *(table[f"share_{s}"].mean() for s in "NESW"))
