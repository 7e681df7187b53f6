"""Demo world: the synthetic global-model boundary field in CarbonTracker's layout, one file per UTC
day from the first back-trajectory day to the period's end, made from the demo truth's background
with the documented errors of gzcarbon.demo.boundary.BoundaryErrors (docs/boundary.md)."""

import logging

from gzcarbon.demo.boundary import BoundaryErrors, write_demo_boundary
from gzcarbon.logs import script_logging
from stations.background import read_truth_background

script_logging(snakemake.log[0])  # noqa: F821
params = snakemake.params  # noqa: F821
bg = read_truth_background(snakemake.input.truth)  # noqa: F821
met = params.met
box = (met["lon_min"], met["lon_max"], met["lat_min"], met["lat_max"])
errors = BoundaryErrors()
paths = write_demo_boundary(bg, params.days, snakemake.output[0], box, int(params.seed), errors)  # noqa: F821
logging.info("wrote %d CT-layout files (%s .. %s); errors %s", len(paths), paths[0].name, paths[-1].name,
             errors.as_dict())
