"""HYSPLIT-STILT footprints of one site-day (transport.stilt_driver.run_site_day)."""

import logging

from transport.receptors import read_receptors, site_day
from transport.stilt_driver import StiltSettings, run_site_day

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, force=True,
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")

rec = site_day(read_receptors(snakemake.input.receptors), snakemake.wildcards.site,
               snakemake.wildcards.day)
run_site_day(rec, list(snakemake.input.met), dict(snakemake.params.grid),
             StiltSettings.from_config(dict(snakemake.params.transport)), snakemake.output[0],
             snakemake.params.work_dir, met_file_format=snakemake.params.met_file_format)
