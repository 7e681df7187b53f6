"""Hourly data of all sites -> the observations the inversion uses, with their hourly background.

Background method and night-time tower use from config (stations.background, stations.night_tower;
docs/stations.md); the ARL files are an input only when one of them needs the wind or PBL height.
"""

import logging

from stations.selection import select, write_selected
from gzcarbon.logs import script_logging

script_logging(snakemake.log[0])  # noqa: F821
log = logging.getLogger("select_obs")

df = select(list(snakemake.input.hourly), utc_offset_hours=snakemake.params.utc_offset,
            select_hours_local=snakemake.params.hours_local,
            background_sigma_ppm=snakemake.params.background_sigma,
            background=dict(snakemake.params.background or {}),
            met_files=list(snakemake.input.met),
            night_tower=dict(snakemake.params.night_tower or {}),
            tower_ids=list(snakemake.params.tower_ids),
            plausibility=dict(snakemake.params.plausibility or {}))
log.info("selected %d hourly observations from %d sites; background mean %.2f ppm, sigma %.2f ppm",
         len(df), df["site"].nunique(), df["background"].mean(), df["background_sigma"].mean())
for site, counts in df.attrs.get("dropped", {}).items():
    log.info("site %s: window hours not selected by reason: %s", site, counts)
write_selected(df, snakemake.output[0])
