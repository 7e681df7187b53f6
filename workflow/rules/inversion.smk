"""Inversion: analytical Bayesian solution on the state grid (see docs/inversion.md).

Inputs: hourly Jacobian, selected observations, hourly prior, district polygons (and in the demo the
true flux, to report `truth_t`). Outputs per docs/formats.md "Inversion outputs in detail";
diagnostics.json includes the cross-validation (each site left out, blocks of days;
docs/inversion.md "Cross-validation").
"""


rule inversion:
    """Posterior flux, district totals with exact sigma, modelled series and diagnostics. With config
    outer_grid the state is nested (docs/inversion.md, "Nested outer domain"): outer.csv (the outer
    ring and each neighbour of the neighbours file) and the outer cells in posterior.nc."""
    input:
        unpack(_inversion_inputs),
        # the nested state: the neighbours' geometry and, in the demo, the outer cells' truth
        **({**({"neighbours": config["neighbours_file"]} if config["neighbours_file"] else {}),
            **({"truth_outer": demo("truth_outer.nc")} if DEMO else {})} if OUTER_ENABLED else {}),
        # column and mobile rows (observations.column / .mobile enabled; docs/columns.md)
        **extra_obs_inputs(),
    output:
        posterior=res("posterior.nc"),
        districts=res("districts.csv"),
        modelled=res("modelled.csv"),
        diagnostics=res("diagnostics.json"),
        **({"outer": res("outer.csv")} if OUTER_ENABLED else {}),
    params:
        inversion=config["inversion"],
        period_start=lambda wc: period_days(wc.month)[0],
        period_end=lambda wc: hour_axis(wc.month)[1],
        seed=config["demo"]["seed"],
        utc_offset_hours=config["stations"]["utc_offset_hours"],
    threads: 2
    resources:
        mem_mb=4000,
    log:
        "logs/{month}/inversion.log",
    benchmark:
        "benchmarks/runs/{month}/inversion.tsv"
    script:
        "../scripts/invert.py"


rule inversion_gas:
    """The same inversion for CH4 or CO: the CO2 hourly Jacobian (footprints do not depend on the
    gas; rows of the gas's selected observations), the gas's prior and error settings (gases.<gas>)."""
    input:
        unpack(gas_inversion_inputs),
    output:
        posterior=res("{gas}/posterior.nc"),
        districts=res("{gas}/districts.csv"),
        modelled=res("{gas}/modelled.csv"),
        diagnostics=res("{gas}/diagnostics.json"),
        **({"outer": res("{gas}/outer.csv")} if OUTER_ENABLED else {}),
    params:
        inversion=gas_inversion_config,
        period_start=lambda wc: period_days(wc.month)[0],
        period_end=lambda wc: hour_axis(wc.month)[1],
        seed=config["demo"]["seed"],
        utc_offset_hours=config["stations"]["utc_offset_hours"],
        gas=lambda wc: wc.gas,
    threads: 2
    resources:
        mem_mb=4000,
    log:
        "logs/{month}/inversion_{gas}.log",
    benchmark:
        "benchmarks/runs/{month}/inversion_{gas}.tsv"
    script:
        "../scripts/invert.py"


rule joint:
    """Joint fossil-CO2/CO inversion (config inversion.joint_co.enabled; docs/gases.md): fossil and
    biogenic CO2 per district and the city with sigma and their posterior correlation."""
    input:
        unpack(joint_inputs),
    output:
        districts=res("joint/districts.csv"),
        diagnostics=res("joint/diagnostics.json"),
        **({"outer": res("joint/outer.csv")} if OUTER_ENABLED else {}),
    params:
        inversion=config["inversion"],
        co=config["gases"]["co"],
        period_start=lambda wc: period_days(wc.month)[0],
        period_end=lambda wc: hour_axis(wc.month)[1],
        utc_offset_hours=config["stations"]["utc_offset_hours"],
    threads: 2
    resources:
        mem_mb=4000,
    log:
        "logs/{month}/joint.log",
    benchmark:
        "benchmarks/runs/{month}/joint.tsv"
    script:
        "../scripts/joint.py"
