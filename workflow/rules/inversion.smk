"""Inversion: analytical Bayesian solution on the state grid (see docs/inversion.md).

Inputs: hourly Jacobian, selected observations, hourly prior, district polygons (and in the demo the
true flux, to report `truth_t`). Outputs per docs/formats.md "Inversion outputs in detail";
diagnostics.json includes the cross-validation (each site left out, blocks of days;
docs/inversion.md "Cross-validation").
"""


rule inversion:
    """Posterior flux, district totals with exact sigma, modelled series and diagnostics."""
    input:
        unpack(_inversion_inputs),
    output:
        posterior=res("posterior.nc"),
        districts=res("districts.csv"),
        modelled=res("modelled.csv"),
        diagnostics=res("diagnostics.json"),
    params:
        inversion=config["inversion"],
        period_start=lambda wc: period_days(wc.month)[0],
        period_end=lambda wc: hour_axis(wc.month)[1],
        seed=config["demo"]["seed"],
        utc_offset_hours=config["stations"]["utc_offset_hours"],
    threads: 2
    resources:
        mem_mb=4000,
    log:
        "logs/{month}/inversion.log",
    benchmark:
        "benchmarks/runs/{month}/inversion.tsv"
    script:
        "../scripts/invert.py"
