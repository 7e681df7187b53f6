# Prior flux from the inventory and the power stage's point sources (docs/formats.md, docs/inventory.md).


rule prior:
    """Hourly prior flux on the state grid: inventory sectors x temporal profiles + power point
    sources. The inventory is the demo world's inventory.nc or config `inputs.inventory` in any
    format inversion.read_inventory knows (EDGAR, ODIAC, CF NetCDF, the pipeline's own)."""
    input:
        unpack(prior_inputs),
    output:
        prior=res("prior.nc"),
    params:
        grid=config["grid"],
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
        utc_offset=config["stations"]["utc_offset_hours"],
        hours=lambda wildcards: hour_axis(wildcards.month),
        temporal_profiles_ch4=config["inputs"]["temporal_profiles_ch4"],
    log:
        "logs/{month}/prior_{gas}.log",
    benchmark:
        "benchmarks/runs/{month}/prior_{gas}.tsv"
    script:
        "../scripts/prior_gas.py"
