"""Guangzhou CO2 flux pipeline.

    snakemake --cores 2                         # the embedded demo month (config/config.yaml)
    snakemake --cores 2 --config month=2025-02  # another month
    snakemake --profile workflow/profiles/slurm # on a SLURM cluster

Stages (one rule file each): demo world -> stations -> transport -> prior -> inversion -> power
-> products. See docs/formats.md for the file at every seam.
"""

import os


configfile: os.path.join(workflow.basedir, "config", "config.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/functions.smk"
include: "workflow/rules/power.smk"
include: "workflow/rules/transport.smk"
include: "workflow/rules/demo.smk"
include: "workflow/rules/stations.smk"
include: "workflow/rules/prior.smk"
include: "workflow/rules/inversion.smk"
include: "workflow/rules/products.smk"
include: "workflow/rules/check.smk"
include: "workflow/rules/year.smk"
include: "workflow/rules/network.smk"
include: "workflow/rules/columns.smk"


rule all:
    input:
        final_products,
        year_products,
    default_target: True
    message:
        "All products of {}: see {}/<month>/report.html".format(
            ", ".join(MONTHS), config["results_dir"]
        )


onstart:
    # One run at a time per results/data directory, across working directories (gzcarbon.locks).
    from gzcarbon.locks import RunLockError, acquire_run_lock

    try:
        acquire_run_lock(config["results_dir"], "results directory")
        if DEMO:
            acquire_run_lock(config["data_dir"], "data directory")
    except RunLockError as err:
        raise SystemExit(f"\nError: {err}\n")


onsuccess:
    for m in MONTHS:
        print(
            f"\nDone. Results for {m}: {config['results_dir']}/{m}/  "
            f"(report: {config['results_dir']}/{m}/report.html, flux maps: "
            f"{config['results_dir']}/{m}/flux_{m}.nc, districts: "
            f"{config['results_dir']}/{m}/districts.csv, power factors: "
            f"{config['results_dir']}/{m}/power/emission_factors.csv)"
        )
