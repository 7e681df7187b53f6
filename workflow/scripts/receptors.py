"""Write receptors.csv: the receptor schedule of the month (docs/formats.md)."""

import logging

import pandas as pd

from gzcarbon.logs import script_logging
from stations.selection import night_settings
from transport.receptors import night_schedule, schedule, write_receptors

script_logging(snakemake.log[0])  # noqa: F821

rec = schedule(snakemake.params.sites, snakemake.params.days,
               hours_local=snakemake.params.hours_local, utc_offset=snakemake.params.utc_offset)
# stations.night_tower, typed (the same settings and sites as the selection uses)
night = night_settings(snakemake.params.night_tower)
if night.enabled:
    towers = [s for s in snakemake.params.sites
              if (s["id"] in night.sites) or (not night.sites and s.get("role") == "tower")]
    extra = night_schedule(towers, snakemake.params.days, night.hours_local, snakemake.params.utc_offset)
    order = {s["id"]: i for i, s in enumerate(snakemake.params.sites)}
    rec = pd.concat([rec, extra]).drop_duplicates("receptor_id")
    rec = (rec.assign(_order=rec["site"].map(order)).sort_values(["_order", "time"])
           .drop(columns="_order").reset_index(drop=True))
    logging.info("night-time tower receptors added: %d", len(extra))
write_receptors(snakemake.output[0], rec)
logging.info("%d receptors written to %s", len(rec), snakemake.output[0])
