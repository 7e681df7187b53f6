"""A year of operation (docs/year.md): flash reports of a month still running and the annual report.

    snakemake --cores 2 flash                                          # every month of the run, cut-off flash.cutoff
    snakemake --cores 2 --config year=2025 'months=[2025-01,2025-02]'  # the annual report of 2025

Flash: the month's own site-day footprints, observations and prior, inverted over the days up to the
cut-off, into <results_dir>/<month>/flash/<cutoff>/ (preliminary; the month's products supersede it).
Annual: <results_dir>/<year>/districts.csv and report.html from the months' districts.csv and
diagnostics.json, with the district factors carried through the year (inversion.sequential).
"""

import os


FLASH_TEMPLATE = os.path.join(workflow.basedir, "workflow", "report", "flux_product_flash.cdl")


wildcard_constraints:
    cutoff=r"\d{4}-\d{2}-\d{2}",
    year=r"\d{4}",


# A budget for a district the districts file does not have stops the run before any job starts
# (otherwise it would only fail in the reports, after the months' inversions).
if config["budgets"] and os.path.exists(DISTRICTS_FILE):
    from gzcarbon.districts import read_districts as _read_districts
    from gzcarbon.names import CITY as _CITY
    from products.budgets import BudgetConfigError as _BudgetConfigError
    from products.budgets import parse_budgets as _parse_budgets

    try:
        _parse_budgets(config["budgets"], known={d.name_en for d in _read_districts(DISTRICTS_FILE)} | {_CITY})
    except _BudgetConfigError as _err:
        raise SystemExit(f"\nConfiguration error:\n{_err}\n(districts file {DISTRICTS_FILE}; see "
                         "docs/report.md, Carbon budgets)\n")


rule flash:
    """Target: the flash report of every month of the run at its cut-off (flash.cutoff)."""
    input:
        flash_products,


rule flash_receptors:
    """The month's receptors released up to the end of the cut-off day."""
    input:
        res("receptors.csv"),
    output:
        flash("receptors.csv"),
    params:
        end=lambda wc: flash_hour_axis(wc.month, wc.cutoff)[1],
    log:
        "logs/{month}/flash_{cutoff}/receptors.log",
    benchmark:
        "benchmarks/runs/{month}/flash_{cutoff}_receptors.tsv"
    script:
        "../scripts/flash_receptors.py"


use rule jacobian as flash_jacobian with:
    input:
        footprints=flash_footprint_files,
        failures=lambda wc: [f.removesuffix(".nc") + "_failures.csv" for f in flash_footprint_files(wc)],
        receptors=flash("receptors.csv"),
    output:
        jacobian=flash("jacobian_hourly.npz"),
        failures=flash("footprints/failures.csv"),
    params:
        hours=lambda wc: flash_hour_axis(wc.month, wc.cutoff),
    log:
        "logs/{month}/flash_{cutoff}/jacobian.log",
    benchmark:
        "benchmarks/runs/{month}/flash_{cutoff}_jacobian.tsv"


use rule inversion as flash_inversion with:
    input:
        unpack(flash_inversion_inputs),
        # the nested state (config outer_grid, the default): as rule inversion
        **({**({"neighbours": config["neighbours_file"]} if config["neighbours_file"] else {}),
            **({"truth_outer": demo("truth_outer.nc")} if DEMO else {})} if OUTER_ENABLED else {}),
    output:
        posterior=flash("posterior.nc"),
        districts=flash("districts.csv"),
        modelled=flash("modelled.csv"),
        diagnostics=flash("diagnostics.json"),
        **({"outer": flash("outer.csv")} if OUTER_ENABLED else {}),
    params:
        period_end=lambda wc: flash_hour_axis(wc.month, wc.cutoff)[1],
    log:
        "logs/{month}/flash_{cutoff}/inversion.log",
    benchmark:
        "benchmarks/runs/{month}/flash_{cutoff}_inversion.tsv"


rule flash_flux_product:
    """The flash's CF flux product, marked preliminary (title, product_status, data_cutoff,
    coverage: products.annual.flash_attributes) and checked against flux_product.cdl with
    flux_product_flash.cdl."""
    input:
        posterior=flash("posterior.nc"),
        districts=flash("districts.csv"),
        diagnostics=flash("diagnostics.json"),
        geojson=DISTRICTS_FILE,
        template=FLUX_TEMPLATE,
        flash_template=FLASH_TEMPLATE,
        # the nested state (config outer_grid): the outer ring's and the neighbours' totals
        **({"outer": flash("outer.csv"), "outer_template": FLUX_TEMPLATE_OUTER} if OUTER_ENABLED else {}),
    output:
        flash("flux_{month}.nc"),
    params:
        month_days=lambda wc: period_days(wc.month),
        flash_days=lambda wc: flash_days(wc.month, wc.cutoff),
        demo=DEMO,
        institution=config["products"]["institution"],
        contact=config["products"]["contact"],
        references=config["products"]["references"],
    log:
        "logs/{month}/flash_{cutoff}/flux_product.log",
    benchmark:
        "benchmarks/runs/{month}/flash_{cutoff}_flux_product.tsv"
    script:
        "../scripts/flash_flux_product.py"


rule flash_report:
    """The preliminary report of the flash: cut-off, coverage, district totals ± σ (flash.json says
    what the directory holds)."""
    input:
        districts=flash("districts.csv"),
        diagnostics=flash("diagnostics.json"),
        flux=flash("flux_{month}.nc"),
        geojson=DISTRICTS_FILE,
    output:
        html=flash("report.html"),
        status=flash("flash.json"),
    params:
        month_days=lambda wc: period_days(wc.month),
        flash_days=lambda wc: flash_days(wc.month, wc.cutoff),
        language=config["report"]["language"],
    log:
        "logs/{month}/flash_{cutoff}/report.log",
    benchmark:
        "benchmarks/runs/{month}/flash_{cutoff}_report.tsv"
    script:
        "../scripts/flash_report.py"


rule annual_report:
    """The year's districts.csv (annual totals ± σ, correlated months), report.html (+ PDF) and the
    mean flux of the covered hours flux_{year}.nc (the months' flux products reduced lazily)."""
    input:
        unpack(annual_inputs),
        geojson=DISTRICTS_FILE,
    output:
        districts=os.path.join(config["results_dir"], "{year}", "districts.csv"),
        html=os.path.join(config["results_dir"], "{year}", "report.html"),
        flux=os.path.join(config["results_dir"], "{year}", "flux_{year}.nc"),
    params:
        months_on_disk=lambda wc: year_months(wc.year)[1],
        months_run=lambda wc: year_months(wc.year)[0],
        flux_on_disk=lambda wc: annual_disk_files(wc.year, "flux_{month}.nc"),
        accounting_on_disk=lambda wc: annual_disk_files(wc.year, "accounting.csv"),
        pdf_engine=config["report_pdf"],
        flash_dirs=lambda wc: {m: existing_flash_dirs(m) for m in
                               [f"{wc.year}-{i:02d}" for i in range(1, 13)]},
        budgets=config["budgets"],
        language=config["report"]["language"],
    log:
        "logs/{year}/annual_report.log",
    benchmark:
        "benchmarks/runs/{year}/annual_report.tsv"
    script:
        "../scripts/annual_report.py"
