"""The self-contained monthly HTML report {R}/report.html."""

import logging

from products.report import write_report

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO,  # noqa: F821
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")

sm = snakemake  # noqa: F821
write_report(
    sm.output[0],
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
)
