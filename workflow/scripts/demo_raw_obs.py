"""Demo world: Picarro G2401-style raw files of one site from the true hourly CO2, CH4 and CO signals."""

import logging

from stations.sites import get_site
from gzcarbon.demo.stations import write_demo_raw
from gzcarbon.logs import script_logging

script_logging(snakemake.log[0])  # noqa: F821

site = get_site(snakemake.input.stations, snakemake.wildcards.site)
write_demo_raw(snakemake.input.truth, site, snakemake.output[0], seed=snakemake.params.seed,
               record_seconds=snakemake.params.record_seconds,
               gases={"ch4": snakemake.input.ch4, "co": snakemake.input.co})
