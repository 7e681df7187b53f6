"""The demo world: every rule that writes a synthetic input (met, raw analyser files, inventory
and truth, power dispatch, the true signal the synthetic analysers measure).

Real runs (demo.enabled: false) use none of these rules: the stage rules read the same formats
from `inputs.*` (docs/formats.md). The generators live in the package `gzcarbon.demo`, above
the stages; no stage package imports it (tests/test_architecture.py).
"""


TRUTH_TRANSPORT = _truth_transport_settings()
# the nested state (config outer_grid): the demo world then also writes the delta around the city
OUTER_ENABLED = bool(config["outer_grid"]["enabled"])
# the neighbouring cities and regions (tools/make_prd_cities.py; gzcarbon.neighbours)
NEIGHBOURS_FILE = os.path.join(REPO_DIR, "config", "prd_cities.geojson")
# the CO/CO2 ratio table the CO prior uses (inputs.emission_ratios_co; the shipped table when empty)
EMISSION_RATIOS_CO = config["inputs"].get("emission_ratios_co") or os.path.join(
    REPO_DIR, "config", "emission_ratios_co.csv")


rule demo_truth_signal:
    """The true hourly signal through the truth's own transport (H_truth @ x_truth + noise; with
    outer_grid the nested truth: the city's and the delta's) and the signal budget per site
    (signal_budget.csv: city, inner box outside the city, outer cells; docs/demo.md). It reads the
    truth's Jacobian only, so the demo's observations need not wait for the inversion's footprints
    (the comparison with the inversion's transport: rule demo_truth_transport)."""
    input:
        truth=demo("truth.nc"),
        truth_jacobian=demo("truth_transport/jacobian_hourly.npz"),
        stations=STATIONS_FILE,
        districts=DISTRICTS_FILE,
        truth_outer=demo("truth_outer.nc") if OUTER_ENABLED else [],
    output:
        signal=demo("truth_signal.csv"),
        budget=demo("signal_budget.csv"),
    params:
        grid=config["grid"],
        outer_grid=config["outer_grid"],
        met=config["met"],
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


rule demo_truth_transport:
    """The sidecar truth_transport.json of the truth signal: the truth's transport settings, the
    identical-twin flag and the measured difference H_truth x - H_inv x per site (the inversion
    copies it into diagnostics.json; docs/demo.md)."""
    input:
        truth=demo("truth.nc"),
        truth_jacobian=demo("truth_transport/jacobian_hourly.npz"),
        jacobian=res("jacobian_hourly.npz"),
        budget=demo("signal_budget.csv"),
        truth_outer=demo("truth_outer.nc") if OUTER_ENABLED else [],
    output:
        sidecar=demo("truth_transport.json"),
    params:
        grid=config["grid"],
        outer_grid=config["outer_grid"],
        met=config["met"],
        transport=config["transport"],
        truth_transport=TRUTH_TRANSPORT,
    log:
        "logs/{month}/demo_truth_transport.log",
    benchmark:
        "benchmarks/runs/{month}/demo_truth_transport.tsv"
    script:
        "../scripts/demo_truth_transport.py"


rule demo_truth_footprints:
    """The truth's own HYSPLIT-STILT footprints of one site-day, for the receptors of receptors.csv
    only (the afternoon top inlets the selection uses): other seed, more particles, wind and
    mixed-layer-height errors (demo.truth_transport; gzcarbon.demo.truth_errors)."""
    input:
        met=met_files,
        receptors=res("receptors.csv"),
    output:
        footprints=demo("truth_transport/footprints/{site}/{day}.nc"),
        failures=demo("truth_transport/footprints/{site}/{day}_failures.csv"),
    params:
        work_dir=lambda wc: os.path.join(
            D.format(month=wc.month), "truth_transport", "footprints", "work", wc.site),
        grid=config["grid"],
        outer_grid=config["outer_grid"],
        transport=config["transport"],
        truth_transport=TRUTH_TRANSPORT,
        station=_station_position,
        software=TRANSPORT_SOFTWARE,
    threads: 1
    resources:
        mem_mb=1500,
        runtime=120,
    priority: PRIORITY_TRUTH_FOOTPRINTS
    log:
        "logs/{month}/demo_truth_footprints_{site}_{day}.log",
    benchmark:
        "benchmarks/runs/{month}/demo_truth_footprints_{site}_{day}.tsv"
    script:
        "../scripts/demo_truth_footprints.py"


rule demo_truth_jacobian:
    """The truth's sparse hourly Jacobian from its site-day footprints (with outer_grid: columns
    hour x (inner + outer cells), as the inversion's)."""
    input:
        footprints=lambda wc: expand(demo("truth_transport/footprints/{site}/{day}.nc"),
                                     month=wc.month, site=SITE_IDS, day=period_days(wc.month)),
        receptors=res("receptors.csv"),
    output:
        jacobian=demo("truth_transport/jacobian_hourly.npz"),
    params:
        grid=config["grid"],
        outer_grid=config["outer_grid"],
        hours=lambda wc: hour_axis(wc.month),
    resources:
        mem_mb=4000,
    log:
        "logs/{month}/demo_truth_jacobian.log",
    benchmark:
        "benchmarks/runs/{month}/demo_truth_jacobian.tsv"
    script:
        "../scripts/demo_truth_jacobian.py"


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
    """Demo world: a site's Picarro G2401 raw files (CO2, CH4 and CO from their true signals; CO
    written wet, as the analyser writes it)."""
    input:
        truth=demo("truth_signal.csv"),
        ch4=demo("truth_signal_ch4.csv"),
        co=demo("truth_signal_co.csv"),
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


rule demo_delta:
    """Demo world, nested state only: the EDGAR-format coarse inventory of the outer box (the city's
    own inventory inside the inner box), the outer biosphere prior (CarbonTracker flux1x1 layout)
    and the true hourly flux of the outer cells (pre-registered
    delta errors; docs/demo.md, "The delta")."""
    input:
        inventory=demo("inventory.nc"),
        truth=demo("truth.nc"),
        point_sources=res("power/point_sources.csv"),
        neighbours=NEIGHBOURS_FILE,
    output:
        inventory=demo("inventory_outer.nc"),
        bio=demo("bio_outer.nc"),
        truth=demo("truth_outer.nc"),
    params:
        grid=config["grid"],
        outer_grid=config["outer_grid"],
        met=config["met"],
        seed=config["demo"]["seed"],
        hours=lambda wildcards: hour_axis(wildcards.month),
    resources:
        mem_mb=1500,
    log:
        "logs/{month}/demo_delta.log",
    benchmark:
        "benchmarks/runs/{month}/demo_delta.tsv"
    script:
        "../scripts/demo_delta.py"


rule demo_gases:
    """Demo world: the CH4 inventory, the true CH4 (registered errors) and the true CO (the CO2
    truth's combustion sectors × true CO/CO2 ratios); docs/demo.md, "The other gases"."""
    input:
        districts=DISTRICTS_FILE,
        truth=demo("truth.nc"),
        ratios=EMISSION_RATIOS_CO,
        # nested state: the neighbours' CH4 and CO (docs/gases.md, "CH4 and CO of the delta's neighbours")
        **({"neighbours": NEIGHBOURS_FILE} if OUTER_ENABLED else {}),
    output:
        inventory_ch4=demo("inventory_ch4.nc"),
        truth_ch4=demo("truth_ch4.nc"),
        truth_co=demo("truth_co.nc"),
        **({"inventory_outer_ch4": demo("inventory_outer_ch4.nc"), "inventory_outer_co": demo("inventory_outer_co.nc"),
            "truth_outer_ch4": demo("truth_outer_ch4.nc"), "truth_outer_co": demo("truth_outer_co.nc")}
           if OUTER_ENABLED else {}),
    params:
        grid=config["grid"],
        outer_grid=config["outer_grid"],
        met=config["met"],
        seed=config["demo"]["seed"],
        hours=lambda wildcards: hour_axis(wildcards.month),
    resources:
        mem_mb=3000,
    log:
        "logs/{month}/demo_gases.log",
    benchmark:
        "benchmarks/runs/{month}/demo_gases.tsv"
    script:
        "../scripts/demo_gases.py"


rule demo_gas_signals:
    """Demo world: the true hourly CH4 and CO signals (ppb) through the truth's own Jacobian, with
    a transport mismatch correlated with CO2's at the same hour."""
    input:
        truth_ch4=demo("truth_ch4.nc"),
        truth_co=demo("truth_co.nc"),
        truth_jacobian=demo("truth_transport/jacobian_hourly.npz"),
        co2_signal=demo("truth_signal.csv"),
        stations=STATIONS_FILE,
        # nested state: the neighbours' CH4 and CO truths (rule demo_gases)
        **({"truth_outer_ch4": demo("truth_outer_ch4.nc"), "truth_outer_co": demo("truth_outer_co.nc")}
           if OUTER_ENABLED else {}),
    output:
        ch4=demo("truth_signal_ch4.csv"),
        co=demo("truth_signal_co.csv"),
    params:
        sites=SITES,
        period=lambda wc: period_days(wc.month),
        utc_offset=config["stations"]["utc_offset_hours"],
        seed=config["demo"]["seed"],
    log:
        "logs/{month}/demo_gas_signals.log",
    benchmark:
        "benchmarks/runs/{month}/demo_gas_signals.tsv"
    script:
        "../scripts/demo_gas_signals.py"


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


rule demo_boundary:
    """Demo world: a global model's boundary field in CarbonTracker's layout (3°x2°, 25 levels,
    3-hourly), one file per met day and the day after, from the true background with documented errors
    (gzcarbon.demo.boundary; docs/boundary.md). Used by stations.background.method: model."""
    input:
        truth=demo("truth.nc"),
    output:
        directory(demo("boundary")),
    params:
        days=lambda wc: met_days(wc.month),
        met=config["met"],
        seed=config["demo"]["seed"],
    log:
        "logs/{month}/demo_boundary.log",
    benchmark:
        "benchmarks/runs/{month}/demo_boundary.tsv"
    script:
        "../scripts/demo_boundary.py"
