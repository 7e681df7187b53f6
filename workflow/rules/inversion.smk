"""Inversion: analytical Bayesian solution on the state grid (see docs/inversion.md).

Inputs: hourly Jacobian, selected observations, hourly prior, district polygons (and in the demo the
true flux, to report `truth_t`). Outputs per docs/formats.md "Inversion outputs in detail".
"""


def _inversion_inputs(wildcards):
    files = {
        "jacobian": R.format(month=wildcards.month) + "/jacobian_hourly.npz",
        "selected": R.format(month=wildcards.month) + "/obs/selected.csv",
        "prior": R.format(month=wildcards.month) + "/prior.nc",
        "districts": DISTRICTS_FILE,
    }
    if DEMO:
        files["truth"] = D.format(month=wildcards.month) + "/truth.nc"
    return files


rule inversion:
    """Posterior flux, district totals with exact sigma, modelled series and diagnostics."""
    input:
        unpack(_inversion_inputs),
    output:
        posterior=R + "/posterior.nc",
        districts=R + "/districts.csv",
        modelled=R + "/modelled.csv",
        diagnostics=R + "/diagnostics.json",
    params:
        inversion=config["inversion"],
        period_start=lambda wc: period_days(wc.month)[0],
        period_end=lambda wc: hour_axis(wc.month)[1],
        seed=config["demo"]["seed"],
    threads: 2
    resources:
        mem_mb=4000,
    log:
        "logs/{month}/inversion.log",
    benchmark:
        "benchmarks/runs/{month}/inversion.tsv"
    script:
        "../scripts/invert.py"
