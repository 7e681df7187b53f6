"""Write the CF-1.8 monthly flux product {R}/flux_{month}.nc, checked against the CDL template."""

import logging

from products.flux_netcdf import write_flux_product
from gzcarbon.logs import script_logging

script_logging(snakemake.log[0])  # noqa: F821

sm = snakemake  # noqa: F821
write_flux_product(
    sm.input.posterior,
    sm.input.districts,
    sm.output[0],
    sm.input.geojson,
    month=sm.wildcards.month,
    config=dict(sm.config),
    inputs=[sm.input.posterior, sm.input.districts, sm.input.geojson],
    demo=sm.params.demo,
    template=sm.input.template,
)
