"""The flash report of a month (products.annual.write_flash): flash.json and report.html, preliminary."""

from gzcarbon.logs import script_logging
from products.annual import write_flash

script_logging(snakemake.log[0])  # noqa: F821
sm = snakemake  # noqa: F821
write_flash(sm.output.html, sm.output.status, sm.input.districts, sm.input.diagnostics,
            month=sm.wildcards.month, cutoff=sm.wildcards.cutoff, month_days=sm.params.month_days,
            flash_days=sm.params.flash_days, language=sm.params.language, districts_geojson=sm.input.geojson)
