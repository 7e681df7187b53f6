"""Column and mobile observations in the same inversion as the in-situ sites (issue 23; docs/columns.md).

observations.column.enabled / observations.mobile.enabled (off by default): rule column_rows /
mobile_rows turn the column files (OCO-2/3 Lite, PROFFAST) and the track CSVs into rows of y, H
and R through the inversion's transport; rule inversion reads them. The demo world writes its
files from its truth through the truth's own transport (demo_columns, demo_mobile).
Every rule here runs HYSPLIT-STILT and takes the pystilt/HYSPLIT identity (TRANSPORT_SOFTWARE) as a
param, like the footprint rules: an upgrade re-runs them
(tests/transport/test_transport_rules_software.py).
"""


rule column_rows:
    """Column rows: hour means per instrument (0.1° cells of an overpass), one inversion-transport
    ColumnReceptor each (AK x pressure weights, (1 - AK) x prior, column background), on the
    state's grid (nested with outer_grid)."""
    input:
        files=column_files,
        met=met_files,
        jacobian=res("jacobian_hourly.npz"),
        selected=res("obs/selected.csv"),
    output:
        rows=res("extra/column_rows.npz"),
    params:
        kind="column",
        observations=config["observations"]["column"],
        grid=config["grid"],
        outer_grid=config["outer_grid"],
        met=config["met"],
        transport=config["transport"],
        software=TRANSPORT_SOFTWARE,
        met_file_format=extra_met_file_format,
        work_dir=lambda wc: os.path.join(R.format(month=wc.month), "extra", "work_column"),
    threads: 1
    resources:
        mem_mb=2000,
    log:
        "logs/{month}/column_rows.log",
    benchmark:
        "benchmarks/runs/{month}/column_rows.tsv"
    script:
        "../scripts/extra_rows.py"


rule mobile_rows:
    """Mobile rows: QC'd 1-minute segments of each track, one inversion-transport point receptor
    each (the sites' driver), along-track correlated mismatch."""
    input:
        files=mobile_files,
        met=met_files,
        jacobian=res("jacobian_hourly.npz"),
        selected=res("obs/selected.csv"),
    output:
        rows=res("extra/mobile_rows.npz"),
    params:
        kind="mobile",
        observations=config["observations"]["mobile"],
        grid=config["grid"],
        outer_grid=config["outer_grid"],
        met=config["met"],
        transport=config["transport"],
        software=TRANSPORT_SOFTWARE,
        met_file_format=extra_met_file_format,
        work_dir=lambda wc: os.path.join(R.format(month=wc.month), "extra", "work_mobile"),
    threads: 1
    resources:
        mem_mb=2000,
    log:
        "logs/{month}/mobile_rows.log",
    benchmark:
        "benchmarks/runs/{month}/mobile_rows.tsv"
    script:
        "../scripts/extra_rows.py"


if DEMO:

    rule demo_columns:
        """The demo's EM27/SUN PROFFAST file (Tianhe, 2 hours a day) and OCO-2 Lite granule (one
        overpass on the first day) from the truth through the truth's own transport
        (gzcarbon.demo.columns.write_demo_columns)."""
        input:
            met=met_files,
            truth=demo("truth.nc"),
            truth_outer=demo("truth_outer.nc") if OUTER_ENABLED else [],
        output:
            proffast=demo(DEMO_COLUMN_FILES[0]),
            oco=demo(DEMO_COLUMN_FILES[1]),
        params:
            kind="column",
            grid=config["grid"],
            outer_grid=config["outer_grid"],
            met=config["met"],
            transport=config["transport"],
            truth_transport=TRUTH_TRANSPORT,
            software=TRANSPORT_SOFTWARE,
            days=lambda wc: period_days(wc.month),
            seed=config["demo"]["seed"],
            utc_offset=config["stations"]["utc_offset_hours"],
            work_dir=lambda wc: os.path.join(D.format(month=wc.month), "truth_transport", "work_columns"),
        threads: 1
        log:
            "logs/{month}/demo_columns.log",
        benchmark:
            "benchmarks/runs/{month}/demo_columns.tsv"
        script:
            "../scripts/demo_columns.py"

    rule demo_mobile:
        """The demo's mobile track (12 minutes across Tianhe on the last day, 1 Hz records with road
        plumes) from the truth through the truth's own transport."""
        input:
            met=met_files,
            truth=demo("truth.nc"),
            truth_outer=demo("truth_outer.nc") if OUTER_ENABLED else [],
        output:
            track=demo(DEMO_TRACK_FILE),
        params:
            kind="mobile",
            grid=config["grid"],
            outer_grid=config["outer_grid"],
            met=config["met"],
            transport=config["transport"],
            truth_transport=TRUTH_TRANSPORT,
            software=TRANSPORT_SOFTWARE,
            days=lambda wc: period_days(wc.month),
            seed=config["demo"]["seed"],
            utc_offset=config["stations"]["utc_offset_hours"],
            work_dir=lambda wc: os.path.join(D.format(month=wc.month), "truth_transport", "work_mobile"),
        threads: 1
        log:
            "logs/{month}/demo_mobile.log",
        benchmark:
            "benchmarks/runs/{month}/demo_mobile.tsv"
        script:
            "../scripts/demo_columns.py"
