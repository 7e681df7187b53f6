"""The maps of another gas (CH4, CO) into {R}/{gas}/maps/: flux maps and the district bar chart."""

import logging

from gzcarbon.config import load_config
from gzcarbon.logs import script_logging
from products.maps import make_gas_figures

script_logging(snakemake.log[0])  # noqa: F821

sm = snakemake  # noqa: F821
make_gas_figures(
    sm.input.posterior,
    sm.input.districts,
    sm.input.stations,
    sm.input.geojson,
    sm.output[0],
    gas=sm.wildcards.gas,
    site_ids=sm.params.site_ids,
    language=load_config({"report": {"language": sm.params.language}}).report.language,
)
logging.getLogger("maps_gas").info("done")
