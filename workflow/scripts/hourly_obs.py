"""Raw analyser files of one site -> calibrated, QC-flagged hourly NetCDF per inlet + summaries."""

import logging

from stations.hourly import process_site, write_hourly_dir
from stations.sites import get_site

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, force=True)
log = logging.getLogger("hourly_obs")

site = get_site(snakemake.input.stations, snakemake.wildcards.site)
ing = process_site(snakemake.input.raw, site, flush_seconds=snakemake.params.flush_seconds,
                   min_coverage=snakemake.params.min_coverage, on_bad_lines="skip",
                   period=snakemake.params.axis)
for p in ing.problems:
    log.warning("dropped: %s", p)
tot = ing.summary.sum(numeric_only=True)
log.info("ingest totals:\n%s", tot.to_string())
log.info("target tank: %s", ing.calibration.target_summary)
write_hourly_dir(ing, site, snakemake.output[0])
