"""Demo world glue: the true signal the synthetic analysers measure.

The other demo inputs are written by each stage's own generator (met: transport.smk, power:
power.smk, inventory and truth: prior.smk, raw analyser files: stations.smk).
"""


rule demo_truth_signal:
    input:
        truth=demo("truth.nc"),
        jacobian=res("jacobian_hourly.npz"),
        stations=STATIONS_FILE,
    output:
        demo("truth_signal.csv"),
    params:
        sites=SITES,
        period=lambda wc: period_days(wc.month),
        utc_offset=config["stations"]["utc_offset_hours"],
        seed=config["demo"]["seed"],
    log:
        "logs/{month}/demo_truth_signal.log",
    benchmark:
        "benchmarks/runs/{month}/demo_truth_signal.tsv"
    script:
        "../scripts/demo_truth_signal.py"
