"""Products of a month: the CF flux NetCDF, PNG figures and the self-contained HTML report.

Inputs are the seams of docs/formats.md ("Inversion outputs in detail", power, stations).
"""

import os

FLUX_TEMPLATE = os.path.join(workflow.basedir, "workflow", "report", "flux_product.cdl")


def _hours_per_day():
    h0, h1 = config["stations"]["select_hours_local"]
    return h1 - h0


rule flux_product:
    input:
        posterior=R + "/posterior.nc",
        districts=R + "/districts.csv",
        geojson=DISTRICTS_FILE,
        template=FLUX_TEMPLATE,
    output:
        R + "/flux_{month}.nc",
    params:
        demo=DEMO,
    log:
        "logs/{month}/flux_product.log",
    benchmark:
        "benchmarks/runs/{month}/flux_product.tsv"
    script:
        "../scripts/flux_product.py"


rule maps:
    input:
        posterior=R + "/posterior.nc",
        districts=R + "/districts.csv",
        modelled=R + "/modelled.csv",
        selected=R + "/obs/selected.csv",
        stations=STATIONS_FILE,
        geojson=DISTRICTS_FILE,
    output:
        report(
            directory(R + "/maps"),
            patterns=["{name}.png"],
            category="Maps and figures",
            caption="../report/maps.rst",
        ),
    params:
        site_ids=SITE_IDS,
        days=lambda wc: period_days(wc.month),
        hours_per_day=_hours_per_day(),
    log:
        "logs/{month}/maps.log",
    benchmark:
        "benchmarks/runs/{month}/maps.tsv"
    script:
        "../scripts/maps.py"


rule report:
    input:
        districts=R + "/districts.csv",
        diagnostics=R + "/diagnostics.json",
        modelled=R + "/modelled.csv",
        selected=R + "/obs/selected.csv",
        stations=STATIONS_FILE,
        maps=R + "/maps",
        flux=R + "/flux_{month}.nc",
        power_heatmap=R + "/power/heatmap.png",
        power_summary=R + "/power/summary.csv",
    output:
        report(
            R + "/report.html",
            category="Monthly report",
            caption="../report/report.rst",
        ),
    params:
        site_ids=SITE_IDS,
        days=lambda wc: period_days(wc.month),
        hours_per_day=_hours_per_day(),
        demo=DEMO,
    log:
        "logs/{month}/report.log",
    benchmark:
        "benchmarks/runs/{month}/report.tsv"
    script:
        "../scripts/report.py"
