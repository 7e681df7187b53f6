"""Demo world: the truth's hourly Jacobian from its own site-day footprints (transport.jacobian)."""

import logging

import numpy as np

from gzcarbon.logs import script_logging
from transport.jacobian import build_jacobian_file

script_logging(snakemake.log[0])  # noqa: F821

start, end = snakemake.params.hours
res = build_jacobian_file(snakemake.input.footprints, snakemake.input.receptors,
                          snakemake.params.grid, start, end, snakemake.output.jacobian,
                          outer_grid=dict(snakemake.params.outer_grid))
logging.info("truth H %s, nnz %d, %d receptors without a truth footprint", res.H.shape, res.H.nnz,
             int(np.asarray(res.missing).sum()))
