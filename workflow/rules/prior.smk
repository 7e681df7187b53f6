# Prior flux from the inventory and the power stage's point sources (docs/formats.md, docs/inventory.md).


def _inventory_option(key, default):
    """config `inputs.<key>` of the prior; pending gzcarbon.config field (InputsConfig): until the
    typed config holds it, the default proposed in docs/inventory.md."""
    return config["inputs"].get(key, default)  # pending gzcarbon.config field


def prior_inventory_options(wildcards=None):
    """How the prior reads the inventory (inversion.prior.InventoryOptions); the demo world writes
    the pipeline's own inventory.nc."""
    if DEMO:
        return {"inventory_format": "gzcarbon"}
    return {key: _inventory_option(key, default) for key, default in (
        ("inventory_format", "auto"), ("inventory_species", "co2"), ("downscale_proxy", ""),
        ("temporal_profiles", ""), ("bio_prior", ""))}


def prior_inputs(wildcards):
    """The inventory, the power stage's point sources and, in a real run, the optional proxy,
    profile and biosphere files (inputs, so that a changed file re-runs the prior)."""
    files = {"inventory": inventory_file(wildcards),
             "point_sources": res("power/point_sources.csv").format(month=wildcards.month)}
    opts = prior_inventory_options()
    for key in ("downscale_proxy", "temporal_profiles", "bio_prior"):
        if opts.get(key):
            files[key] = opts[key]
    return files


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
