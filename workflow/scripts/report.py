"""The self-contained monthly HTML report {R}/report.html (PDF beside it when an engine is
installed) and the district table {R}/district_table.csv (kt CO2)."""

import logging

from products.report import write_district_csv, write_report
from gzcarbon.logs import script_logging

script_logging(snakemake.log[0])  # noqa: F821

sm = snakemake  # noqa: F821
# earlier months of the year for the budget comparison: produced in this run (inputs) or found
# on disk (params); see docs/report.md
history = [(f"{b}/districts.csv", f"{b}/diagnostics.json") for b in sm.params.budget_existing]
history += list(zip(sm.input.budget_districts, sm.input.budget_diagnostics))
write_district_csv(sm.input.districts, sm.output.table)
write_report(
    sm.output.html,
    pdf_engine=sm.params.pdf_engine,
    month=sm.wildcards.month,
    districts_csv=sm.input.districts,
    diagnostics_json=sm.input.diagnostics,
    modelled_csv=sm.input.modelled,
    selected_csv=sm.input.selected,
    stations_yaml=sm.input.stations,
    maps_dir=sm.input.maps,
    flux_product=sm.input.flux,
    power_heatmap=sm.input.power_heatmap,
    power_summary=sm.input.power_summary,
    site_ids=sm.params.site_ids,
    days=sm.params.days,
    hours_per_day=sm.params.hours_per_day,
    config=dict(sm.config),
    demo=sm.params.demo,
    budgets=sm.params.budgets,
    budget_history=history,
    failures_csv=sm.input.failures,
    hourly_dirs=list(sm.input.hourly),
    utc_offset_hours=sm.params.utc_offset,
    select_hours_local=sm.params.hours_local,
)
