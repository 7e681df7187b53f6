"""Write the CF-1.8 monthly flux product {R}/flux_{month}.nc, checked against the CDL template."""

import logging

from gzcarbon.config import load_config
from gzcarbon.logs import script_logging
from products.flux_netcdf import write_flux_product

script_logging(snakemake.log[0])  # noqa: F821

sm = snakemake  # noqa: F821
# typed settings from the rule's params (rerun triggers)
settings = load_config({"products": {k: sm.params[k] for k in ("institution", "contact", "references")}}).products
write_flux_product(
    sm.input.posterior,
    sm.input.districts,
    sm.output[0],
    sm.input.geojson,
    month=sm.wildcards.month,
    config=dict(sm.config),
    inputs=[sm.input.posterior, sm.input.districts, sm.input.geojson] + ([sm.input.outer] if sm.input.get("outer") else []),
    demo=sm.params.demo,
    template=sm.input.template,
    institution=settings.institution,
    contact=settings.contact,
    references=settings.references,
    outer_csv=sm.input.get("outer"),  # a nested run (config outer_grid): outer.csv
)
