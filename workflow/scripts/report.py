"""The self-contained monthly HTML report {R}/report.html (PDF beside it when an engine is
installed) and the district table {R}/district_table.csv (kt CO2)."""

import logging

from gzcarbon.logs import script_logging
from products.report import write_district_csv, write_report
from products.settings import report_settings

script_logging(snakemake.log[0])  # noqa: F821

sm = snakemake  # noqa: F821
# the report's settings, typed, from the rule's params (rerun triggers): report_pdf, budgets, the
# stations' UTC offset and selection window (and the selected hours per day of that window), the
# report's language
settings = report_settings({"report_pdf": sm.params.pdf_engine, "budgets": sm.params.budgets,
                            "stations": {"utc_offset_hours": sm.params.utc_offset,
                                         "select_hours_local": sm.params.hours_local},
                            "report": {"language": sm.params.language}})
# earlier months of the year for the budget comparison: produced in this run (inputs) or found
# on disk (params); see docs/report.md
history = [(f"{b}/districts.csv", f"{b}/diagnostics.json") for b in sm.params.budget_existing]
history += list(zip(sm.input.budget_districts, sm.input.budget_diagnostics))
write_district_csv(sm.input.districts, sm.output.table)
write_report(
    sm.output.html,
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
    config=dict(sm.config),
    demo=sm.params.demo,
    budget_history=history,
    failures_csv=sm.input.failures,
    hourly_dirs=list(sm.input.hourly),
    jacobian=sm.input.jacobian,
    posterior_nc=sm.input.posterior,
    footprint_files=list(sm.input.footprints),
    districts_geojson=sm.input.geojson,
    flash_dirs=list(sm.params.flash_dirs),
    accounting_csv=sm.input.get("accounting"),  # territorial vs consumption-based (power/accounting.py)
    outer_csv=sm.input.get("outer"),  # a nested run (config outer_grid): the outer domain's section
    gases=[(g, sm.input[f"{g}_districts"], sm.input[f"{g}_diagnostics"], sm.input[f"{g}_maps"])
           for g in getattr(sm.params, "gases", [])],
    **settings,
)
