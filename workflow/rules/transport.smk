"""Transport: receptors, HYSPLIT-STILT footprints per site-day, hourly Jacobian.

See docs/transport.md and docs/formats.md (Transport).
"""


rule receptors:
    """Receptor schedule: top inlet of every site, every hour of the selection window."""
    input:
        stations=STATIONS_FILE,
    output:
        res("receptors.csv"),
    params:
        sites=SITES,
        days=lambda wc: period_days(wc.month),
        hours_local=config["stations"]["select_hours_local"],
        utc_offset=config["stations"]["utc_offset_hours"],
        night_tower=config["stations"].get("night_tower", {}),
    log:
        "logs/{month}/receptors.log",
    benchmark:
        "benchmarks/runs/{month}/receptors.tsv"
    script:
        "../scripts/receptors.py"


rule footprints:
    """HYSPLIT-STILT footprints of one site-day (resumable: per-receptor cache in footprints/work,
    keyed by everything a footprint depends on; stale entries are recomputed).

    Checks first that the met covers every receptor's window and position (names missing hours and
    files); a receptor HYSPLIT fails on is listed in {day}_failures.csv, not fatal; an I/O fault
    (disk full, permission) stops the job naming the file and the cause.
    Re-run triggers: receptors.csv and the met files (input), the station's position and top inlet,
    the transport settings, the grid and the pystilt/HYSPLIT identity (params)."""
    input:
        met=met_files,
        receptors=res("receptors.csv"),
    output:
        footprints=res("footprints/{site}/{day}.nc"),
        failures=res("footprints/{site}/{day}_failures.csv"),
    params:
        work_dir=lambda wc: os.path.abspath(
            os.path.join(R.format(month=wc.month), "footprints", "work", wc.site)),
        grid=config["grid"],
        transport=config["transport"],
        station=_station_position,
        software=TRANSPORT_SOFTWARE,
        met_file_format=lambda wc: "%Y%m%d_gz.arl" if DEMO else config["inputs"]["met_file_format"],
        left_domain_warn=config["transport"].get("left_domain_warn", 0.1),
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
    """Sparse hourly Jacobian from all site-day footprints of the month (footprints on another grid
    are regridded conservatively), and the month's table of receptors HYSPLIT failed on."""
    input:
        footprints=footprint_files,
        failures=lambda wc: [f.removesuffix(".nc") + "_failures.csv" for f in footprint_files(wc)],
        receptors=res("receptors.csv"),
    output:
        jacobian=res("jacobian_hourly.npz"),
        failures=res("footprints/failures.csv"),
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
