"""Stations stage: demo raw analyser files, calibrated QC-flagged hourly data, selection.

Formats: docs/formats.md (Stations) and docs/stations.md (flags, calibration, background).
"""


rule demo_raw_obs:
    input:
        truth=D + "/truth_signal.csv",
        stations=STATIONS_FILE,
    output:
        directory(D + "/raw/{site}"),
    params:
        seed=config["demo"]["seed"],
        record_seconds=5.0,
    log:
        "logs/{month}/demo_raw_obs_{site}.log",
    benchmark:
        "benchmarks/runs/{month}/demo_raw_obs_{site}.tsv"
    script:
        "../scripts/demo_raw_obs.py"


rule hourly_obs:
    input:
        raw=raw_obs_dir,
        stations=STATIONS_FILE,
    output:
        directory(R + "/obs/hourly/{site}"),
    params:
        axis=lambda wc: hour_axis(wc.month),
        flush_seconds=config["stations"]["flush_seconds"],
        min_coverage=config["stations"]["min_coverage"],
    log:
        "logs/{month}/hourly_obs_{site}.log",
    benchmark:
        "benchmarks/runs/{month}/hourly_obs_{site}.tsv"
    script:
        "../scripts/hourly_obs.py"


rule select_obs:
    input:
        hourly=expand(R + "/obs/hourly/{site}", site=SITE_IDS, allow_missing=True),
    output:
        R + "/obs/selected.csv",
    params:
        utc_offset=config["stations"]["utc_offset_hours"],
        hours_local=config["stations"]["select_hours_local"],
        background_sigma=config["stations"]["background_sigma_ppm"],
    log:
        "logs/{month}/select_obs.log",
    benchmark:
        "benchmarks/runs/{month}/select_obs.tsv"
    script:
        "../scripts/select_obs.py"
