"""Stations stage: calibrated QC-flagged hourly data, selection.

Formats: docs/formats.md (Stations) and docs/stations.md (flags, calibration, background).
"""


rule hourly_obs:
    input:
        raw=raw_obs_inputs,
        stations=STATIONS_FILE,
    output:
        directory(res("obs/hourly/{site}")),
    params:
        raw_dir=raw_obs_dir,
        axis=lambda wc: hour_axis(wc.month),
        flush_seconds=config["stations"]["flush_seconds"],
        min_coverage=config["stations"]["min_coverage"],
        plausibility=config["stations"]["plausibility"],
        target_tank=config["stations"]["target_tank"],
        allow_wet_correction=config["stations"]["allow_wet_correction"],
        time_reference=config["stations"].get("time_reference"),
    log:
        "logs/{month}/hourly_obs_{site}.log",
    benchmark:
        "benchmarks/runs/{month}/hourly_obs_{site}.tsv"
    script:
        "../scripts/hourly_obs.py"


_check_background_config()
_check_boundary_config()


rule select_obs:
    input:
        hourly=expand(res("obs/hourly/{site}"), site=SITE_IDS, allow_missing=True),
        met=select_met_files,
        boundary=select_boundary_input,
    output:
        res("obs/selected.csv"),
    params:
        utc_offset=config["stations"]["utc_offset_hours"],
        hours_local=config["stations"]["select_hours_local"],
        background_sigma=config["stations"]["background_sigma_ppm"],
        background=config["stations"]["background"],
        night_tower=config["stations"]["night_tower"],
        tower_ids=[s["id"] for s in SITES if s.get("role") == "tower"],
        plausibility=config["stations"]["plausibility"],
    log:
        "logs/{month}/select_obs.log",
    benchmark:
        "benchmarks/runs/{month}/select_obs.tsv"
    script:
        "../scripts/select_obs.py"



if OTHER_GASES:

    rule hourly_obs_gases:
        """CH4 and/or CO hourly data of a site from the same raw files, one job for every gas of
        config species (CO corrected for water vapour before calibration): {R}/<gas>/obs/hourly/{site}/."""
        input:
            raw=raw_obs_inputs,
            stations=STATIONS_FILE,
        output:
            [directory(res(f"{g}/obs/hourly/{{site}}")) for g in OTHER_GASES],
        params:
            raw_dir=raw_obs_dir,
            axis=lambda wc: hour_axis(wc.month),
            flush_seconds=config["stations"]["flush_seconds"],
            min_coverage=config["stations"]["min_coverage"],
            plausibility=config["stations"]["plausibility"],
            target_tank=config["stations"]["target_tank"],
            allow_wet_correction=config["stations"]["allow_wet_correction"],
            time_reference=config["stations"].get("time_reference"),
            species=OTHER_GASES,
        log:
            "logs/{month}/hourly_obs_gases_{site}.log",
        benchmark:
            "benchmarks/runs/{month}/hourly_obs_gases_{site}.tsv"
        script:
            "../scripts/hourly_obs.py"

rule select_obs_gas:
    """The gas's observations with their background (the CO2 method, σ in ppb from gases.<gas>)."""
    input:
        hourly=expand(res("{gas}/obs/hourly/{site}"), site=SITE_IDS, allow_missing=True),
        met=select_met_files,
    output:
        res("{gas}/obs/selected.csv"),
    params:
        utc_offset=config["stations"]["utc_offset_hours"],
        hours_local=config["stations"]["select_hours_local"],
        background_sigma=lambda wc: gas_setting(wc.gas, "background_sigma_ppb"),
        background=gas_background,
        night_tower=config["stations"]["night_tower"],
        tower_ids=[s["id"] for s in SITES if s.get("role") == "tower"],
        plausibility=config["stations"]["plausibility"],
    log:
        "logs/{month}/select_obs_{gas}.log",
    benchmark:
        "benchmarks/runs/{month}/select_obs_{gas}.tsv"
    script:
        "../scripts/select_obs.py"
