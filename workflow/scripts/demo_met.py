"""Write one UTC day of synthetic ARL meteorology (demo world)."""

import logging

from transport.synthetic_met import write_met_day

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, force=True)

write_met_day(snakemake.output[0], snakemake.wildcards.metday, dict(snakemake.params.bounds),
              seed=int(snakemake.params.seed))
