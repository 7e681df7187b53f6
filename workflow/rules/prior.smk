# Prior flux from the inventory and the power stage's point sources (docs/formats.md, docs/inventory.md).


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
