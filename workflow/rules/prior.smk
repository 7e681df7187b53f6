# Prior flux and the demo world's inventory and truth (docs/formats.md, docs/inventory.md).


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


rule prior:
    """Hourly prior flux on the state grid: inventory sectors x diurnal profiles + power point sources."""
    input:
        inventory=inventory_file,
        point_sources=res("power/point_sources.csv"),
    output:
        prior=res("prior.nc"),
    params:
        grid=config["grid"],
        utc_offset=config["stations"]["utc_offset_hours"],
        hours=lambda wildcards: hour_axis(wildcards.month),
    log:
        "logs/{month}/prior.log",
    benchmark:
        "benchmarks/runs/{month}/prior.tsv"
    script:
        "../scripts/prior.py"
