# Prior flux from the inventory and the power stage's point sources (docs/formats.md, docs/inventory.md).


rule prior:
    """Hourly prior flux on the state grid: inventory sectors x temporal profiles + power point
    sources. The inventory is the demo world's inventory.nc or config `inputs.inventory` in any
    format inversion.read_inventory knows (EDGAR, ODIAC, CF NetCDF, the pipeline's own). With
    config outer_grid also flux_outer(time, olat, olon) of the outer cells from the coarse
    inventory (the demo's inventory_outer.nc or config `inputs.outer_inventory`; none: zero,
    warned; inversion.outer) plus the outer biosphere (bio_outer.nc or `inputs.outer_bio_prior`)."""
    input:
        unpack(prior_inputs),
        # the nested state (config outer_grid): the coarse inventory of the outer cells
        outer_inventory=(demo("inventory_outer.nc") if DEMO else config["inputs"].get("outer_inventory") or [])
        if OUTER_ENABLED else [],
        # its biosphere (a CF NEE file: the demo's bio_outer.nc or config `inputs.outer_bio_prior`)
        outer_bio_prior=(demo("bio_outer.nc") if DEMO else config["inputs"].get("outer_bio_prior") or [])
        if OUTER_ENABLED else [],
    output:
        prior=res("prior.nc"),
    params:
        grid=config["grid"],
        outer_grid=config["outer_grid"],
        met=config["met"],
        utc_offset=config["stations"]["utc_offset_hours"],
        hours=lambda wildcards: hour_axis(wildcards.month),
        inventory=prior_inventory_options(),
    log:
        "logs/{month}/prior.log",
    benchmark:
        "benchmarks/runs/{month}/prior.tsv"
    script:
        "../scripts/prior.py"


rule prior_gas:
    """Hourly prior of another gas, nmol m-2 s-1: CH4 from its inventory (sectors × diurnal and
    monthly profiles), CO from the CO2 prior's combustion sectors × the CO/CO2 emission ratios."""
    input:
        unpack(gas_prior_inputs),
    output:
        prior=res("{gas}/prior.nc"),
    params:
        grid=config["grid"],
        outer_grid=config["outer_grid"],
        met=config["met"],
        utc_offset=config["stations"]["utc_offset_hours"],
        hours=lambda wildcards: hour_axis(wildcards.month),
        temporal_profiles_ch4=config["inputs"]["temporal_profiles_ch4"],
    log:
        "logs/{month}/prior_{gas}.log",
    benchmark:
        "benchmarks/runs/{month}/prior_{gas}.tsv"
    script:
        "../scripts/prior_gas.py"
