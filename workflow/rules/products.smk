"""Products of a month: the CF flux NetCDF, PNG figures and the self-contained HTML report.

Inputs are the seams of docs/formats.md ("Inversion outputs in detail", power, stations).
"""

import os

FLUX_TEMPLATE = os.path.join(workflow.basedir, "workflow", "report", "flux_product.cdl")
FLUX_TEMPLATE_OUTER = os.path.join(workflow.basedir, "workflow", "report", "flux_product_outer.cdl")


rule flux_product:
    input:
        posterior=res("posterior.nc"),
        districts=res("districts.csv"),
        geojson=DISTRICTS_FILE,
        template=FLUX_TEMPLATE,
        # the nested state (config outer_grid): the outer ring's and the neighbours' totals
        **({"outer": res("outer.csv"), "outer_template": FLUX_TEMPLATE_OUTER} if OUTER_ENABLED else {}),
    output:
        res("flux_{month}.nc"),
    params:
        demo=DEMO,
        institution=config["products"]["institution"],
        contact=config["products"]["contact"],
        references=config["products"]["references"],
    log:
        "logs/{month}/flux_product.log",
    benchmark:
        "benchmarks/runs/{month}/flux_product.tsv"
    script:
        "../scripts/flux_product.py"


rule maps:
    input:
        posterior=res("posterior.nc"),
        districts=res("districts.csv"),
        modelled=res("modelled.csv"),
        selected=res("obs/selected.csv"),
        stations=STATIONS_FILE,
        geojson=DISTRICTS_FILE,
    output:
        report(
            directory(res("maps")),
            patterns=["{name}.png"],
            category="Maps and figures",
            subcategory="{month}",
            caption="../report/maps.rst",
        ),
    params:
        site_ids=SITE_IDS,
        days=lambda wc: period_days(wc.month),
        hours_local=config["stations"]["select_hours_local"],
        language=config["report"]["language"],
    log:
        "logs/{month}/maps.log",
    benchmark:
        "benchmarks/runs/{month}/maps.tsv"
    script:
        "../scripts/maps.py"


rule report:
    input:
        # the other gases' district tables, diagnostics and maps (config species): a section each
        unpack(gas_report_inputs),
        districts=res("districts.csv"),
        diagnostics=res("diagnostics.json"),
        modelled=res("modelled.csv"),
        selected=res("obs/selected.csv"),
        stations=STATIONS_FILE,
        maps=res("maps"),
        flux=res("flux_{month}.nc"),
        power_heatmap=res("power/heatmap.png"),
        power_summary=res("power/summary.csv"),
        # what the problem box and the table of losses read (products/problems.py)
        failures=res("footprints/failures.csv"),
        hourly=expand(res("obs/hourly/{site}"), site=SITE_IDS, allow_missing=True),
        # what the figures of products/figures.py read (footprints, averaging kernel, districts)
        jacobian=res("jacobian_hourly.npz"),
        posterior=res("posterior.nc"),
        footprints=footprint_files,
        geojson=DISTRICTS_FILE,
        # the two accountings (power/accounting.py): their section of the report
        accounting=res("accounting.csv"),
        # the nested state (config outer_grid): the section on the outer domain
        **({"outer": res("outer.csv")} if OUTER_ENABLED else {}),
        budget_districts=lambda wc: [
            os.path.join(b, "districts.csv") for b in _budget_months(wc.month, True)
        ],
        budget_diagnostics=lambda wc: [
            os.path.join(b, "diagnostics.json") for b in _budget_months(wc.month, True)
        ],
    output:
        html=report(
            res("report.html"),
            category="Monthly report",
            subcategory="{month}",
            caption="../report/report.rst",
        ),
        table=report(
            res("district_table.csv"),
            category="District table",
            subcategory="{month}",
            caption="../report/district_table.rst",
        ),
    params:
        site_ids=SITE_IDS,
        days=lambda wc: period_days(wc.month),
        demo=DEMO,
        budgets=config["budgets"],
        budget_existing=lambda wc: _budget_months(wc.month, False),
        # flash reports of this month on disk (year.smk): their revisions table (docs/year.md)
        flash_dirs=lambda wc: existing_flash_dirs(wc.month),
        pdf_engine=config["report_pdf"],
        utc_offset=config["stations"]["utc_offset_hours"],
        hours_local=config["stations"]["select_hours_local"],
        language=config["report"]["language"],
        gases=OTHER_GASES,
    log:
        "logs/{month}/report.log",
    benchmark:
        "benchmarks/runs/{month}/report.tsv"
    script:
        "../scripts/report.py"


rule flux_product_gas:
    """CF-1.8 flux product of CH4 or CO, {R}/{gas}/flux_{month}.nc (the CO2 layout with the gas's
    standard name and units: products.flux_netcdf.GAS_CF)."""
    input:
        posterior=res("{gas}/posterior.nc"),
        districts=res("{gas}/districts.csv"),
        geojson=DISTRICTS_FILE,
        template=FLUX_TEMPLATE,
        # the nested state: the gas's outer ring and neighbours (docs/gases.md)
        **({"outer": res("{gas}/outer.csv"), "outer_template": FLUX_TEMPLATE_OUTER} if OUTER_ENABLED else {}),
    output:
        res("{gas}/flux_{month}.nc"),
    params:
        demo=DEMO,
        institution=config["products"]["institution"],
        contact=config["products"]["contact"],
        references=config["products"]["references"],
    log:
        "logs/{month}/flux_product_{gas}.log",
    benchmark:
        "benchmarks/runs/{month}/flux_product_{gas}.tsv"
    script:
        "../scripts/flux_product.py"


rule maps_gas:
    """Flux maps and the district bar chart of CH4 or CO, {R}/{gas}/maps/."""
    input:
        posterior=res("{gas}/posterior.nc"),
        districts=res("{gas}/districts.csv"),
        stations=STATIONS_FILE,
        geojson=DISTRICTS_FILE,
    output:
        directory(res("{gas}/maps")),
    params:
        site_ids=SITE_IDS,
        language=config["report"]["language"],
    log:
        "logs/{month}/maps_{gas}.log",
    benchmark:
        "benchmarks/runs/{month}/maps_{gas}.tsv"
    script:
        "../scripts/maps_gas.py"
