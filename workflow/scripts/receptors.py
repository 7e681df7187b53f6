"""Write receptors.csv: the receptor schedule of the month (docs/formats.md)."""

import logging

from transport.receptors import schedule, write_receptors

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, force=True)

rec = schedule(snakemake.params.sites, snakemake.params.days,
               hours_local=snakemake.params.hours_local, utc_offset=snakemake.params.utc_offset)
write_receptors(snakemake.output[0], rec)
logging.info("%d receptors written to %s", len(rec), snakemake.output[0])
