"""Assemble the sparse hourly Jacobian from the site-day footprints (transport.jacobian) and
collect the receptors HYSPLIT failed on into one table (transport.stilt_driver.collect_failures)."""

import logging

import numpy as np

from transport.jacobian import build_jacobian_file
from transport.stilt_driver import collect_failures
from gzcarbon.logs import script_logging

script_logging(snakemake.log[0])  # noqa: F821

start, end = snakemake.params.hours
res = build_jacobian_file(snakemake.input.footprints, snakemake.input.receptors,
                          snakemake.params.grid, start, end, snakemake.output.jacobian,
                          outer_grid=dict(snakemake.params.outer_grid))
fails = collect_failures(list(snakemake.input.footprints), snakemake.output.failures)
lf = res.left_domain_fraction
logging.info("H %s, nnz %d, %d receptors missing, %d HYSPLIT failures, left-domain fraction "
             "median %.3f max %.3f", res.H.shape, res.H.nnz, int(res.missing.sum()), len(fails),
             float(np.nanmedian(lf)) if np.isfinite(lf).any() else float("nan"),
             float(np.nanmax(lf)) if np.isfinite(lf).any() else float("nan"))
