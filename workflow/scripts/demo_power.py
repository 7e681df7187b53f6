"""Write the demo power inputs (hourly plant generation, district loads, external-grid intensity)
on the run's hourly axis, seeded from config demo.seed. Formats: docs/power.md."""

import logging

from power import district_names
from gzcarbon.demo.power import write_demo
from gzcarbon.logs import script_logging

script_logging(snakemake.log[0])  # noqa: F821
log = logging.getLogger("demo_power")

start, end = snakemake.params.axis
info = write_demo(
    snakemake.input.plants,
    {"generation": snakemake.output.generation, "load": snakemake.output.load,
     "external": snakemake.output.external},
    start, end, seed=int(snakemake.params.seed),
    districts=district_names(snakemake.input.districts),
    external_factor=float(snakemake.params.external_factor),
)
log.info("demo power inputs %s .. %s written: %s", start, end, info)
