"""Transport: demo meteorology, receptors, HYSPLIT-STILT footprints per site-day, hourly Jacobian.

See docs/transport.md and docs/formats.md (Transport).
"""


rule demo_met:
    """Synthetic ARL meteorology of one UTC day (demo world only)."""
    output:
        D + "/met/{metday}_gz.arl",
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


rule receptors:
    """Receptor schedule: top inlet of every site, every hour of the selection window."""
    input:
        stations=STATIONS_FILE,
    output:
        R + "/receptors.csv",
    params:
        sites=SITES,
        days=lambda wc: period_days(wc.month),
        hours_local=config["stations"]["select_hours_local"],
        utc_offset=config["stations"]["utc_offset_hours"],
    log:
        "logs/{month}/receptors.log",
    benchmark:
        "benchmarks/runs/{month}/receptors.tsv"
    script:
        "../scripts/receptors.py"


rule footprints:
    """HYSPLIT-STILT footprints of one site-day (resumable: per-receptor cache in footprints/work)."""
    input:
        met=met_files,
        receptors=R + "/receptors.csv",
    output:
        R + "/footprints/{site}/{day}.nc",
    params:
        work_dir=lambda wc: os.path.abspath(
            R.format(month=wc.month) + f"/footprints/work/{wc.site}"),
        grid=config["grid"],
        transport=config["transport"],
        met_file_format=lambda wc: "%Y%m%d_gz.arl" if DEMO else config["inputs"]["met_file_format"],
    threads: 1
    resources:
        mem_mb=1500,
        runtime=120,
    log:
        "logs/{month}/footprints_{site}_{day}.log",
    benchmark:
        "benchmarks/runs/{month}/footprints_{site}_{day}.tsv"
    script:
        "../scripts/footprints.py"


rule jacobian:
    """Sparse hourly Jacobian from all site-day footprints of the month."""
    input:
        footprints=footprint_files,
        receptors=R + "/receptors.csv",
    output:
        R + "/jacobian_hourly.npz",
    params:
        grid=config["grid"],
        hours=lambda wc: hour_axis(wc.month),
    resources:
        mem_mb=4000,
    log:
        "logs/{month}/jacobian.log",
    benchmark:
        "benchmarks/runs/{month}/jacobian.tsv"
    script:
        "../scripts/jacobian.py"
