"""The demo world: every rule that writes a synthetic input (met, raw analyser files, inventory
and truth, power dispatch, the true signal the synthetic analysers measure).

Real runs (demo.enabled: false) use none of these rules: the stage rules read the same formats
from `inputs.*` (docs/formats.md). The generators live in the package `gzcarbon.demo`, above
the stages; no stage package imports it (tests/test_architecture.py).
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


rule demo_met:
    """Synthetic ARL meteorology of one UTC day (demo world only)."""
    output:
        demo("met/{metday}_gz.arl"),
    params:
        bounds=config["met"],
        seed=config["demo"]["seed"],
    log:
        "logs/{month}/demo_met_{metday}.log",
    benchmark:
        "benchmarks/runs/{month}/demo_met_{metday}.tsv"
    resources:
        mem_mb=500,
    script:
        "../scripts/demo_met.py"


rule demo_raw_obs:
    input:
        truth=demo("truth_signal.csv"),
        stations=STATIONS_FILE,
    output:
        directory(demo("raw/{site}")),
    params:
        seed=config["demo"]["seed"],
        record_seconds=5.0,
    log:
        "logs/{month}/demo_raw_obs_{site}.log",
    benchmark:
        "benchmarks/runs/{month}/demo_raw_obs_{site}.tsv"
    script:
        "../scripts/demo_raw_obs.py"


rule demo_inventory:
    """Demo world: the EDGAR-like prior inventory and the hourly true flux + background."""
    input:
        districts=DISTRICTS_FILE,
        point_sources=res("power/point_sources.csv"),
    output:
        inventory=demo("inventory.nc"),
        truth=demo("truth.nc"),
    params:
        grid=config["grid"],
        seed=config["demo"]["seed"],
        hours=lambda wildcards: hour_axis(wildcards.month),
    log:
        "logs/{month}/demo_inventory.log",
    benchmark:
        "benchmarks/runs/{month}/demo_inventory.tsv"
    script:
        "../scripts/demo_inventory.py"


rule demo_power:
    input:
        plants=PLANTS_FILE,
        districts=DISTRICTS_FILE,
    output:
        generation=demo("power/generation.csv"),
        load=demo("power/load.csv"),
        external=demo("power/external_intensity.csv"),
    params:
        axis=lambda wc: hour_axis(wc.month),
        seed=config["demo"]["seed"],
        external_factor=config["power"]["external_factor"],
    log:
        "logs/{month}/demo_power.log",
    benchmark:
        "benchmarks/runs/{month}/demo_power.tsv"
    script:
        "../scripts/demo_power.py"
