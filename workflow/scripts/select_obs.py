"""Hourly data of all sites -> the observations the inversion uses, with their hourly background.

Background method and night-time tower use from config (stations.background, stations.night_tower;
docs/stations.md); the ARL files are an input only when one of them needs the wind or PBL height.
"""

import logging

from gzcarbon.config import load_config
from gzcarbon.logs import script_logging
from stations.selection import select_from_config, write_selected
from transport.boundary import read_receptor_backgrounds

script_logging(snakemake.log[0])  # noqa: F821
log = logging.getLogger("select_obs")

params = snakemake.params  # noqa: F821
# the typed stations section from the rule's params (each one a rerun trigger)
settings = load_config({"stations": {
    "utc_offset_hours": params.utc_offset, "select_hours_local": params.hours_local,
    "background_sigma_ppm": params.background_sigma, "background": params.background,
    "night_tower": params.night_tower, "plausibility": params.plausibility}}).stations
boundary = list(snakemake.input.get("boundary", []))  # noqa: F821 (background.method: model)
model_background = read_receptor_backgrounds(boundary[0]) if boundary else None
df = select_from_config(list(snakemake.input.hourly), settings, met_files=list(snakemake.input.met),
                        tower_ids=list(params.tower_ids), model_background=model_background)
log.info("selected %d hourly observations from %d sites; background mean %.2f ppm, sigma %.2f ppm",
         len(df), df["site"].nunique(), df["background"].mean(), df["background_sigma"].mean())
for site, counts in df.attrs.get("dropped", {}).items():
    log.info("site %s: window hours not selected by reason: %s", site, counts)
write_selected(df, snakemake.output[0])
