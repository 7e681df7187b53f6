"""Network design: where to measure next (config network_design, docs/network.md).

In-situ candidate sites get receptors on the first network_design.max_candidate_days of the period
at the hours the inversion selects, HYSPLIT-STILT footprints through the same footprint script and
per-receptor cache as the stations, and a Jacobian on the run's hours and cells; column and mobile
candidates get their rows on the same days and hours through the inversion's transport (rule
network_extra_rows: a ColumnReceptor per hour, or a vehicle's segments); rule
network_design_month then gives the exact district and city sigma with each candidate added to
the current network, and a greedy choice of k sites. Not part of the default target: `snakemake
--cores 2 network_design`.
"""


rule network_receptors:
    """The candidates' table and receptor schedule (their inlet, every selected hour of the days)."""
    output:
        receptors=res("network/receptors.csv"),
        table=res("network/candidate_sites.csv"),
    params:
        candidates=lambda wc: network_candidate_records(),
        days=lambda wc: network_days(wc.month),
        hours_local=config["stations"]["select_hours_local"],
        utc_offset=config["stations"]["utc_offset_hours"],
    log:
        "logs/{month}/network_receptors.log",
    benchmark:
        "benchmarks/runs/{month}/network_receptors.tsv"
    script:
        "../scripts/network_receptors.py"


rule network_footprints:
    """HYSPLIT-STILT footprints of one candidate-day (the footprints rule's script and cache)."""
    input:
        met=met_files,
        receptors=res("network/receptors.csv"),
    output:
        footprints=res("network/footprints/{site}/{day}.nc"),
        failures=res("network/footprints/{site}/{day}_failures.csv"),
    params:
        work_dir=lambda wc: os.path.join(R.format(month=wc.month), "footprints", "work", wc.site),
        grid=config["grid"],
        outer_grid=config["outer_grid"],
        transport=config["transport"],
        station=network_station_position,
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
        "logs/{month}/network_footprints_{site}_{day}.log",
    benchmark:
        "benchmarks/runs/{month}/network_footprints_{site}_{day}.tsv"
    script:
        "../scripts/footprints.py"


rule network_jacobian:
    """The candidates' hourly Jacobian on the run's hours and (nested) cells."""
    input:
        footprints=network_footprint_files,
        failures=lambda wc: [f.removesuffix(".nc") + "_failures.csv" for f in network_footprint_files(wc)],
        receptors=res("network/receptors.csv"),
    output:
        jacobian=res("network/jacobian_hourly.npz"),
        failures=res("network/footprints/failures.csv"),
    params:
        grid=config["grid"],
        outer_grid=config["outer_grid"],
        hours=lambda wc: hour_axis(wc.month),
    resources:
        mem_mb=4000,
    log:
        "logs/{month}/network_jacobian.log",
    benchmark:
        "benchmarks/runs/{month}/network_jacobian.tsv"
    script:
        "../scripts/jacobian.py"


rule network_extra_rows:
    """Rows of one column or mobile candidate (inversion.network.extra_candidate): a column sensor's
    ColumnReceptor per selected hour, or a vehicle's segments along its track, through the
    inversion's transport; R by type (observations.column / observations.mobile)."""
    input:
        met=met_files,
        selected=res("obs/selected.csv"),
    output:
        rows=res("network/extra/{site}.npz"),
    params:
        candidate=network_candidate_row,
        # only what the rows depend on: adding a candidate does not re-run the others' transport
        network={k: config["network_design"][k] for k in ("column", "mobile")},
        observations=config["observations"],
        days=lambda wc: network_days(wc.month),
        hours=lambda wc: hour_axis(wc.month),
        hours_local=config["stations"]["select_hours_local"],
        utc_offset=config["stations"]["utc_offset_hours"],
        grid=config["grid"],
        outer_grid=config["outer_grid"],
        met=config["met"],
        transport=config["transport"],
        software=TRANSPORT_SOFTWARE,
        met_file_format=extra_met_file_format,
        work_dir=lambda wc: os.path.join(R.format(month=wc.month), "network", "work_extra", wc.site),
    threads: 1
    resources:
        mem_mb=2000,
        runtime=120,
    log:
        "logs/{month}/network_extra_rows_{site}.log",
    benchmark:
        "benchmarks/runs/{month}/network_extra_rows_{site}.tsv"
    script:
        "../scripts/network_extra_rows.py"


rule network_design_month:
    """Exact district and city sigma with each candidate added, the greedy k sites, the map and the
    report section (inversion.network, products.network)."""
    input:
        unpack(network_design_inputs),
    output:
        candidates=res("network/candidates.csv"),
        greedy=res("network/greedy.csv"),
        summary=res("network/design.json"),
        map=res("network/map.png"),
        report=res("network/report.html"),
    params:
        inversion=config["inversion"],
        network=config["network_design"],
        grid=config["grid"],
        outer_grid=config["outer_grid"],
        met=config["met"],
        stations=SITES,
        period_start=lambda wc: period_days(wc.month)[0],
        period_end=lambda wc: hour_axis(wc.month)[1],
        utc_offset_hours=config["stations"]["utc_offset_hours"],
    threads: 2
    resources:
        mem_mb=4000,
    log:
        "logs/{month}/network_design.log",
    benchmark:
        "benchmarks/runs/{month}/network_design.tsv"
    script:
        "../scripts/network_design.py"


rule network_design:
    """Target: the network design of every month of the run (docs/network.md)."""
    input:
        network_design_products,


if DEMO:

    rule network_truth_footprints:
        """Demo: the truth's own transport (other seed, more particles, wind and mixed-layer-height
        errors) at a candidate's receptors, for the coverage check of the predicted sigma
        (tools/network_osse.py, docs/network.md)."""
        input:
            met=met_files,
            receptors=res("network/receptors.csv"),
        output:
            footprints=demo("truth_transport/network/footprints/{site}/{day}.nc"),
            failures=demo("truth_transport/network/footprints/{site}/{day}_failures.csv"),
        params:
            work_dir=lambda wc: os.path.join(
                D.format(month=wc.month), "truth_transport", "footprints", "work", wc.site),
            grid=config["grid"],
            outer_grid=config["outer_grid"],
            transport=config["transport"],
            truth_transport=TRUTH_TRANSPORT,
            station=network_station_position,
            software=TRANSPORT_SOFTWARE,
        threads: 1
        resources:
            mem_mb=1500,
            runtime=120,
        log:
            "logs/{month}/network_truth_footprints_{site}_{day}.log",
        benchmark:
            "benchmarks/runs/{month}/network_truth_footprints_{site}_{day}.tsv"
        script:
            "../scripts/demo_truth_footprints.py"

    rule network_truth_jacobian:
        """Demo: the truth's Jacobian of the candidates' receptors."""
        input:
            footprints=lambda wc: expand(demo("truth_transport/network/footprints/{site}/{day}.nc"),
                                         month=wc.month, site=network_ids("insitu"),
                                         day=network_days(wc.month)),
            receptors=res("network/receptors.csv"),
        output:
            jacobian=demo("truth_transport/network/jacobian_hourly.npz"),
            failures=demo("truth_transport/network/footprints/failures.csv"),
        params:
            grid=config["grid"],
            outer_grid=config["outer_grid"],
            hours=lambda wc: hour_axis(wc.month),
        resources:
            mem_mb=4000,
        log:
            "logs/{month}/network_truth_jacobian.log",
        benchmark:
            "benchmarks/runs/{month}/network_truth_jacobian.tsv"
        script:
            "../scripts/jacobian.py"

    rule network_truth_extra:
        """Demo: the truth's own transport (other seed, more particles, wind and mixed-layer-height
        errors) for a column or mobile candidate's rows (tools/network_osse.py)."""
        input:
            met=met_files,
            selected=res("obs/selected.csv"),
        output:
            rows=demo("truth_transport/network/extra/{site}.npz"),
        params:
            candidate=network_candidate_row,
            network={k: config["network_design"][k] for k in ("column", "mobile")},
            observations=config["observations"],
            days=lambda wc: network_days(wc.month),
            hours=lambda wc: hour_axis(wc.month),
            hours_local=config["stations"]["select_hours_local"],
            utc_offset=config["stations"]["utc_offset_hours"],
            grid=config["grid"],
            outer_grid=config["outer_grid"],
            met=config["met"],
            transport=config["transport"],
            truth_transport=TRUTH_TRANSPORT,
            software=TRANSPORT_SOFTWARE,
            met_file_format=lambda wc: "%Y%m%d_gz.arl",
            work_dir=lambda wc: os.path.join(
                D.format(month=wc.month), "truth_transport", "network", "work_extra", wc.site),
        threads: 1
        resources:
            mem_mb=2000,
            runtime=120,
        log:
            "logs/{month}/network_truth_extra_{site}.log",
        benchmark:
            "benchmarks/runs/{month}/network_truth_extra_{site}.tsv"
        script:
            "../scripts/network_extra_rows.py"

    rule network_truth:
        """Target (demo): the truth's transport at every candidate (tools/network_osse.py)."""
        input:
            lambda wc: [os.path.join(config["data_dir"], "demo", m, "truth_transport", "network", "jacobian_hourly.npz")
                        for m in MONTHS if network_ids("insitu")]
            + [os.path.join(config["data_dir"], "demo", m, "truth_transport", "network", "extra", f"{c}.npz")
               for m in MONTHS for c in network_ids("extra")],
