"""The flash's CF flux product (products.flux_netcdf.write_flux_product with the flash's status:
marked preliminary with its data cut-off and coverage, checked against the flash template)."""

from gzcarbon.config import load_config
from gzcarbon.logs import script_logging
from products.annual import flash_status
from products.flux_netcdf import write_flux_product
from products.inputs import load_diagnostics

script_logging(snakemake.log[0])  # noqa: F821
sm = snakemake  # noqa: F821
settings = load_config({"products": {k: sm.params[k] for k in ("institution", "contact", "references")}}).products
status = flash_status(sm.wildcards.month, sm.wildcards.cutoff, sm.params.month_days, sm.params.flash_days,
                      load_diagnostics(sm.input.diagnostics))
outer = sm.input.get("outer")  # a nested run (config outer_grid): the flash's outer.csv
write_flux_product(sm.input.posterior, sm.input.districts, sm.output[0], sm.input.geojson, month=sm.wildcards.month,
                   config=dict(sm.config), inputs=[sm.input.posterior, sm.input.districts, sm.input.geojson]
                   + ([outer] if outer else []), demo=sm.params.demo, template=sm.input.template,
                   institution=settings.institution, contact=settings.contact, references=settings.references,
                   outer_csv=outer, flash=status)
