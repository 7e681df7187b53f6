"""Write one UTC day of synthetic ARL meteorology (demo world)."""

import logging

from gzcarbon.demo.met import write_met_day
from gzcarbon.logs import script_logging

script_logging(snakemake.log[0])  # noqa: F821

write_met_day(snakemake.output[0], snakemake.wildcards.metday, dict(snakemake.params.bounds),
              seed=int(snakemake.params.seed))
