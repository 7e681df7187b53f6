"""Demo world: the truth's hourly Jacobian from its own site-day footprints (transport.jacobian)."""

import logging

import numpy as np

from gzcarbon.logs import script_logging
from transport.jacobian import assemble, hour_axis, save_jacobian
from transport.receptors import read_receptors

script_logging(snakemake.log[0])  # noqa: F821

rec = read_receptors(snakemake.input.receptors)
start, end = snakemake.params.hours
grid = dict(snakemake.params.grid)
res = assemble(list(snakemake.input.footprints), rec, grid, start, end)
save_jacobian(snakemake.output.jacobian, res.H, rec, hour_axis(start, end), grid,
              outside=res.outside, missing=res.missing,
              left_domain_fraction=res.left_domain_fraction)
logging.info("truth H %s, nnz %d, %d receptors without a truth footprint", res.H.shape, res.H.nnz,
             int(np.asarray(res.missing).sum()))
