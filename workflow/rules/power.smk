"""Power stage: hourly district emission factors (power_factors; demo inputs: demo.smk).

Formats: docs/power.md. The point sources feed the prior (prior.smk reads
{R}/power/point_sources.csv), so flux maps and power factors tell one story.
"""


rule power_factors:
    input:
        unpack(power_input_files),
        plants=PLANTS_FILE,
        districts=DISTRICTS_FILE,
    output:
        nc=res("power/emission_factors.nc"),
        csv=res("power/emission_factors.csv"),
        point_sources=res("power/point_sources.csv"),
        heatmap=report(
            res("power/heatmap.png"),
            category="Power emission factors",
            subcategory="{month}",
            caption="../report/power_heatmap.rst",
        ),
        summary=res("power/summary.csv"),
    params:
        axis=lambda wc: hour_axis(wc.month),
        month=lambda wc: wc.month,
        external_factor=config["power"]["external_factor"],
        utc_offset=config["stations"]["utc_offset_hours"],
        flows=lambda wc: "" if DEMO else config["inputs"].get("power_flows", ""),
    log:
        "logs/{month}/power_factors.log",
    benchmark:
        "benchmarks/runs/{month}/power_factors.tsv"
    script:
        "../scripts/power_factors.py"


rule accounting:
    """Territorial (the inversion's posterior district totals ± σ) and consumption-based CO2
    (electricity attributed to where it is consumed) per district over the inverted period,
    reconciled in {R}/accounting.csv (power.accounting; docs/power.md, "Two accountings")."""
    input:
        districts=res("districts.csv"),
        diagnostics=res("diagnostics.json"),
        power=res("power/emission_factors.nc"),
    output:
        res("accounting.csv"),
    log:
        "logs/{month}/accounting.log",
    benchmark:
        "benchmarks/runs/{month}/accounting.tsv"
    script:
        "../scripts/accounting.py"
