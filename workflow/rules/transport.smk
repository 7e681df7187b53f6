"""Transport: receptors, met conversion (ERA5/WRF -> ARL), footprints per site-day (HYSPLIT-STILT,
or read from the user's files with transport.footprints_from: files), hourly Jacobian.

See docs/transport.md and docs/formats.md (Transport).
"""

MET_SOURCE = "demo" if DEMO else config["inputs"]["met_source"]
FOOTPRINTS_FROM = config["transport"]["footprints_from"]
if FOOTPRINTS_FROM == "files":
    from transport.from_files import find_footprint_files

    try:
        USER_FOOTPRINTS = [str(p) for p in find_footprint_files(config["transport"]["footprint_files"])]
    except FileNotFoundError as err:
        raise SystemExit(f"\nConfiguration error:\n{err}\n(see docs/transport.md)\n")


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


if MET_SOURCE in ("era5", "wrf"):

    rule met_convert:
        """One UTC day of ERA5 (pressure- and single-level NetCDF, old or new CDS layout, zips
        split by step type) or WRF (wrfout) meteorology converted to an ARL file
        (transport.era5_to_arl / transport.wrf_to_arl); the footprints rule reads these."""
        input:
            config["inputs"]["era5_files"] if MET_SOURCE == "era5" else config["inputs"]["wrf_files"],
        output:
            res("met/{metday}_gz.arl"),
        params:
            source=MET_SOURCE,
        resources:
            mem_mb=4000,
        log:
            "logs/{month}/met_convert_{metday}.log",
        benchmark:
            "benchmarks/runs/{month}/met_convert_{metday}.tsv"
        script:
            "../scripts/met_convert.py"


if FOOTPRINTS_FROM == "files":

    rule footprint_matches:
        """Pair every receptor with one release of the user's footprint files (site, hour,
        position, inlet height); stops naming the receptors without a footprint and the files
        whose releases in the period match no receptor."""
        input:
            receptors=res("receptors.csv"),
            files=USER_FOOTPRINTS,
        output:
            res("footprints/matches.csv"),
        params:
            layer_height=config["transport"].get("footprint_layer_height"),
        log:
            "logs/{month}/footprint_matches.log",
        benchmark:
            "benchmarks/runs/{month}/footprint_matches.tsv"
        script:
            "../scripts/footprint_matches.py"

    rule footprints:
        """Site-day footprints from the user's files (transport.from_files): the matched
        releases on clock hours, regridded conservatively onto the state grid (with outer_grid
        enabled, the part outside the inner grid onto the outer cells)."""
        input:
            matches=res("footprints/matches.csv"),
            files=USER_FOOTPRINTS,
        output:
            footprints=res("footprints/{site}/{day}.nc"),
            failures=res("footprints/{site}/{day}_failures.csv"),
        params:
            grid=config["grid"],
            outer_grid=config["outer_grid"],
            transport=config["transport"],
            footprints_from="files",
        resources:
            mem_mb=1500,
        log:
            "logs/{month}/footprints_{site}_{day}.log",
        benchmark:
            "benchmarks/runs/{month}/footprints_{site}_{day}.tsv"
        script:
            "../scripts/footprints.py"

else:

    rule footprints:
        """HYSPLIT-STILT footprints of one site-day (resumable: per-receptor cache in
        footprints/work, keyed by everything a footprint depends on; stale entries are
        recomputed).

        Checks first that the met covers every receptor's window and position (names missing
        hours and files); a receptor HYSPLIT fails on is listed in {day}_failures.csv, not fatal;
        an I/O fault (disk full, permission) stops the job naming the file and the cause.
        With outer_grid enabled the footprint is gridded on the inner and the outer grid (every
        hour's sensitivity in one of them or beyond the outer box) and each particle's exit point
        from the outer box is kept (docs/formats.md, "Footprints").
        Re-run triggers: receptors.csv and the met files (input), the station's position and top
        inlet, the transport settings, the grids and the pystilt/HYSPLIT identity (params).
        Met files of any names (inputs.met_files) reach pystilt through per-hour links."""
        input:
            met=met_files,
            receptors=res("receptors.csv"),
        output:
            footprints=res("footprints/{site}/{day}.nc"),
            failures=res("footprints/{site}/{day}_failures.csv"),
        params:
            # relative to the working directory: a run directory moved or copied elsewhere keeps
            # its params (the driver resolves it)
            work_dir=lambda wc: os.path.join(R.format(month=wc.month), "footprints", "work",
                                             wc.site),
            grid=config["grid"],
            outer_grid=config["outer_grid"],
            transport=config["transport"],
            station=_station_position,
            software=TRANSPORT_SOFTWARE,
            met_file_format=lambda wc: (
                None if MET_SOURCE == "arl" and config["inputs"]["met_files"]
                else config["inputs"]["met_file_format"] if MET_SOURCE == "arl"
                else "%Y%m%d_gz.arl"),
            left_domain_warn=config["transport"].get("left_domain_warn", 0.1),
            footprints_from="stilt",
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
    are regridded conservatively; with outer_grid enabled the columns are hour x (inner + outer
    cells), the outer ones from foot_outer), and the month's table of receptors HYSPLIT failed on."""
    input:
        footprints=footprint_files,
        failures=lambda wc: [f.removesuffix(".nc") + "_failures.csv" for f in footprint_files(wc)],
        receptors=res("receptors.csv"),
    output:
        jacobian=res("jacobian_hourly.npz"),
        failures=res("footprints/failures.csv"),
    params:
        grid=config["grid"],
        outer_grid=config["outer_grid"],
        hours=lambda wc: hour_axis(wc.month),
    resources:
        mem_mb=4000,
    log:
        "logs/{month}/jacobian.log",
    benchmark:
        "benchmarks/runs/{month}/jacobian.tsv"
    script:
        "../scripts/jacobian.py"


if BOUNDARY_MODEL:

    rule boundary_background:
        """The model boundary at every receptor (stations.background.method: model): the boundary
        field sampled where and when each particle left the outer domain (transport.boundary),
        averaged per receptor, with its spread and the shares of particles per inflow side."""
        input:
            footprints=footprint_files,
            receptors=res("receptors.csv"),
            field=boundary_field_inputs,
        output:
            res("boundary/background.csv"),
        params:
            model=config["stations"]["background"]["model"],
            grid=config["grid"],
            outer_grid=config["outer_grid"],
            met=config["met"],
        resources:
            mem_mb=2000,
        log:
            "logs/{month}/boundary_background.log",
        benchmark:
            "benchmarks/runs/{month}/boundary_background.tsv"
        script:
            "../scripts/boundary_background.py"
