"""The annual report of a budget year (products.annual.write_annual): districts.csv and report.html."""

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
write_annual(sm.output.districts, sm.output.html, year, covered_months(year, results_dir, months),
             budgets=sm.params.budgets, flash_dirs=dict(sm.params.flash_dirs),
             previous_csv=previous if os.path.exists(previous) else None)
