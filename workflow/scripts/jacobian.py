"""Assemble the sparse hourly Jacobian from the site-day footprints (transport.jacobian)."""

import logging

from transport.jacobian import assemble, hour_axis, save_jacobian
from transport.receptors import read_receptors

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, force=True)

rec = read_receptors(snakemake.input.receptors)
start, end = snakemake.params.hours
H, outside, missing = assemble(list(snakemake.input.footprints), rec, dict(snakemake.params.grid),
                               start, end)
save_jacobian(snakemake.output[0], H, rec, hour_axis(start, end), dict(snakemake.params.grid),
              outside=outside, missing=missing)
logging.info("H %s, nnz %d, %d receptors missing", H.shape, H.nnz, int(missing.sum()))
