"""PNG figures of the month into {R}/maps/: flux maps, station time series, district bars."""

import logging

from gzcarbon.config import load_config
from gzcarbon.logs import script_logging
from products.maps import make_all_figures
from products.settings import hours_per_day

script_logging(snakemake.log[0])  # noqa: F821

sm = snakemake  # noqa: F821
window = load_config({"stations": {"select_hours_local": sm.params.hours_local}}).stations.select_hours_local
make_all_figures(
    sm.input.posterior,
    sm.input.districts,
    sm.input.modelled,
    sm.input.selected,
    sm.input.stations,
    sm.input.geojson,
    sm.output[0],
    site_ids=sm.params.site_ids,
    days=sm.params.days,
    hours_per_day=hours_per_day(window),
    language=load_config({"report": {"language": sm.params.language}}).report.language,
)
