"""Raw analyser files (or already-hourly files) of one site -> hourly NetCDF per inlet + summaries."""

import logging

from stations.hourly import process_site, process_site_hourly_files, write_hourly_dir
from stations.read import detect_format
from stations.sites import get_site
from gzcarbon.logs import script_logging

script_logging(snakemake.log[0])  # noqa: F821
log = logging.getLogger("hourly_obs")

site = get_site(snakemake.input.stations, snakemake.wildcards.site)
raw = snakemake.input.raw
fmt = detect_format(raw)
log.info("site %s: %s holds %s files", site["id"], raw, fmt)
if fmt == "picarro":
    ing = process_site(raw, site, flush_seconds=snakemake.params.flush_seconds,
                       min_coverage=snakemake.params.min_coverage, on_bad_lines="skip",
                       period=snakemake.params.axis)
else:
    ing = process_site_hourly_files(raw, site, min_coverage=snakemake.params.min_coverage,
                                    period=snakemake.params.axis)
for p in ing.problems:
    log.warning("dropped: %s", p)
log.info("ingest totals:\n%s", ing.summary.sum(numeric_only=True).to_string())
log.info("target tank: %s", ing.calibration.target_summary)
write_hourly_dir(ing, site, snakemake.output[0])
