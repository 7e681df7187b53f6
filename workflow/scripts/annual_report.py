"""The annual report of a budget year (products.annual.write_annual): districts.csv, report.html
(+ report.pdf when a PDF engine is installed) and flux_<year>.nc (the months' flux products reduced
lazily with dask)."""

import os
from pathlib import Path

from gzcarbon.logs import script_logging
from products.annual import covered_months, write_annual

script_logging(snakemake.log[0])  # noqa: F821
sm = snakemake  # noqa: F821
year = int(sm.wildcards.year)
months = list(sm.params.months_run) + list(sm.params.months_on_disk)
results_dir = Path(sm.output.districts).parents[1]  # <results_dir>/<year>/districts.csv
previous = os.path.join(results_dir, str(year - 1), "districts.csv")
run = list(sm.params.months_run)
flux = dict(zip(run, sm.input.flux)) | dict(sm.params.flux_on_disk)
accounting = dict(zip(run, sm.input.accounting)) | dict(sm.params.accounting_on_disk)
engine = sm.params.pdf_engine  # "none": no PDF (a stale one is removed)
write_annual(sm.output.districts, sm.output.html, year, covered_months(year, results_dir, months),
             budgets=sm.params.budgets, flash_dirs=dict(sm.params.flash_dirs),
             previous_csv=previous if os.path.exists(previous) else None,
             accounting_files=accounting, flux_files=flux, out_flux=sm.output.flux, pdf_engine=engine,
             language=sm.params.language, districts_geojson=sm.input.geojson)
