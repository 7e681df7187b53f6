"""Demo world: the synthetic global-model boundary field in CarbonTracker's layout, one file per UTC
day from the first back-trajectory day to the day after the period, made from the demo truth's background
with the documented errors of gzcarbon.demo.boundary.BoundaryErrors (docs/boundary.md)."""

import logging

import pandas as pd

from gzcarbon.demo.boundary import BoundaryErrors, write_demo_boundary
from gzcarbon.logs import script_logging
from stations.background import read_truth_background

script_logging(snakemake.log[0])  # noqa: F821
params = snakemake.params  # noqa: F821
bg = read_truth_background(snakemake.input.truth)  # noqa: F821
met = params.met
box = (met["lon_min"], met["lon_max"], met["lat_min"], met["lat_max"])
errors = BoundaryErrors()
# the met days and one more: CT's last 3-hour mean of a day is centred at 22:30, so particles leaving
# after it on the last day (night receptors) need the next day's file, as a real CT user does
days = sorted(pd.Timestamp(str(d)) for d in params.days)
days.append(days[-1] + pd.Timedelta(days=1))
paths = write_demo_boundary(bg, days, snakemake.output[0], box, int(params.seed), errors)  # noqa: F821
logging.info("wrote %d CT-layout files (%s .. %s); errors %s", len(paths), paths[0].name, paths[-1].name,
             errors.as_dict())
