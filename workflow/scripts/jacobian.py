"""Assemble the sparse hourly Jacobian from the site-day footprints (transport.jacobian) and
collect the receptors HYSPLIT failed on into one table (transport.stilt_driver.collect_failures)."""

import logging

import numpy as np

from transport.jacobian import assemble, hour_axis, save_jacobian
from transport.receptors import read_receptors
from transport.stilt_driver import collect_failures
from gzcarbon.logs import script_logging

script_logging(snakemake.log[0])  # noqa: F821

rec = read_receptors(snakemake.input.receptors)
start, end = snakemake.params.hours
grid = dict(snakemake.params.grid)
res = assemble(list(snakemake.input.footprints), rec, grid, start, end)
save_jacobian(snakemake.output.jacobian, res.H, rec, hour_axis(start, end), grid,
              outside=res.outside, missing=res.missing,
              left_domain_fraction=res.left_domain_fraction)
fails = collect_failures(list(snakemake.input.footprints), snakemake.output.failures)
lf = res.left_domain_fraction
logging.info("H %s, nnz %d, %d receptors missing, %d HYSPLIT failures, left-domain fraction "
             "median %.3f max %.3f", res.H.shape, res.H.nnz, int(res.missing.sum()), len(fails),
             float(np.nanmedian(lf)) if np.isfinite(lf).any() else float("nan"),
             float(np.nanmax(lf)) if np.isfinite(lf).any() else float("nan"))
