"""Hourly data of all sites -> the observations the inversion uses, with a background estimate."""

import logging

from stations.selection import select, write_selected

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, force=True)
log = logging.getLogger("select_obs")

df = select(list(snakemake.input.hourly), utc_offset_hours=snakemake.params.utc_offset,
            select_hours_local=snakemake.params.hours_local,
            background_sigma_ppm=snakemake.params.background_sigma)
log.info("selected %d hourly observations from %d sites", len(df), df["site"].nunique())
write_selected(df, snakemake.output[0])
