"""Raw analyser files (or already-hourly files) of one site -> hourly NetCDF per inlet + summaries.

``snakemake.input.raw``: the site's raw directory, or the list of its raw files (then
``params.raw_dir``, else the files' common folder, is searched again so that files that are not
read are still named in the log and the ingest summary). Plausibility, target-tank and wet
correction settings are rule params (docs/stations.md).
"""

import logging
import os
from pathlib import Path

from gzcarbon.config import load_config
from gzcarbon.logs import script_logging
from stations.hourly import ingest, write_hourly_dir
from stations.picarro import find_raw_files
from stations.sites import get_site, load_sites

script_logging(snakemake.log[0])  # noqa: F821
log = logging.getLogger("hourly_obs")

params = snakemake.params  # noqa: F821
# the typed stations section from the rule's params (every setting the rule depends on is a
# param, so a changed setting re-runs the site); keys not passed keep the config's defaults
STATION_KEYS = ("flush_seconds", "min_coverage", "plausibility", "target_tank", "allow_wet_correction",
                "time_reference")
settings = load_config({"stations": {k: getattr(params, k) for k in STATION_KEYS
                                     if getattr(params, k, None) is not None}}).stations

site = get_site(snakemake.input.stations, snakemake.wildcards.site)
raw_in = snakemake.input.raw
raw = list(raw_in) if not isinstance(raw_in, str) else raw_in
if isinstance(raw, list) and len(raw) == 1 and Path(raw[0]).is_dir():
    raw = raw[0]
if isinstance(raw, list):
    # the rule lists the raw files: search their folder so that the other files are counted too
    raw_dir = getattr(params, "raw_dir", None) or os.path.commonpath([str(Path(f).parent) for f in raw])
    listed = {str(Path(f)) for f in raw}
    on_disk, _ = find_raw_files(raw_dir)
    extra = [f for f in on_disk if str(f) not in listed]
    if extra:
        log.warning("site %s: %d raw file(s) in %s are not in the rule's input list (added after the "
                    "workflow was parsed?); they are read too, e.g. %s", site["id"], len(extra),
                    raw_dir, extra[0])
    raw = raw_dir
# rule hourly_obs: CO2; rule hourly_obs_gases: every other gas of config species, one output each
species = getattr(params, "species", ["co2"])
for sp, out_dir in zip([species] if isinstance(species, str) else list(species), snakemake.output):
    ing = ingest(raw, site, settings, species=sp, period=params.axis,
                 sites=load_sites(snakemake.input.stations), stations_file=str(snakemake.input.stations))
    for p in ing.problems:
        log.warning("%s dropped: %s", sp, p)
    log.info("%s ingest totals:\n%s", sp, ing.summary.sum(numeric_only=True).to_string())
    if "status" in ing.summary:
        log.info("raw files: %s", ing.summary["status"].value_counts().to_dict())
    log.info("%s target tank: %s", sp, ing.calibration.target_summary)
    log.info("%s hourly-file attributes: %s", sp, ing.info)
    write_hourly_dir(ing, site, out_dir, species=sp)
