"""PNG figures of the month into {R}/maps/: flux maps, station time series, district bars."""

import logging

from products.maps import make_all_figures
from gzcarbon.logs import script_logging

script_logging(snakemake.log[0])  # noqa: F821

sm = snakemake  # noqa: F821
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
    hours_per_day=sm.params.hours_per_day,
)
