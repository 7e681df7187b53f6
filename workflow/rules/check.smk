"""Real runs: rule check_inputs runs first (issue 16.4).

It checks that the met covers every receptor, the observations each site and the period, the
inventory the grid and the month, the power inputs every hour, writes {R}/input_check.csv and
stops with one line per missing piece (workflow/scripts/check_inputs.py, docs/formats.md "Input
check"). Every other rule of a real run whose output belongs to a month waits for it: this file,
included last, adds `ancient({R}/input_check.csv)` to their inputs (ancient: the check orders the
jobs but a re-run check does not re-run the stages). Demo runs have no check (their inputs are
made by the demo rules).
"""


def input_check_file(wildcards):
    """The month's input check table (real runs only)."""
    return [] if DEMO else [ancient(res("input_check.csv").format(month=wildcards.month))]


def _check_inputs_present(wildcards):
    """The real input files that exist (inputs, so that a changed file re-runs the check; a
    missing one is reported by the check itself, not by Snakemake's MissingInputException)."""
    files = [STATIONS_FILE, DISTRICTS_FILE, PLANTS_FILE, config["inputs"]["inventory"],
             config["inputs"]["power_generation"], config["inputs"]["power_load"],
             config["inputs"]["power_external"], config["inputs"]["power_flows"]]
    files += prior_inputs(wildcards).values()
    if config["inputs"]["met_source"] == "arl" and config["transport"]["footprints_from"] != "files":
        files += met_files(wildcards)
    return sorted({f for f in files if f and isinstance(f, str) and os.path.isfile(f)})


def _check_settings(wildcards):
    m = wildcards.month
    inputs = config["inputs"]
    return {
        "month": m,
        "period": list(hour_axis(m)),
        "spinup_days": _spinup_days(),
        "days": period_days(m),
        "sites": SITES,
        "hours_local": config["stations"]["select_hours_local"],
        "utc_offset": config["stations"]["utc_offset_hours"],
        "night_tower": config["stations"].get("night_tower", {}),
        "n_hours": config["transport"]["n_hours"],
        "footprints_from": config["transport"].get("footprints_from", "stilt"),
        "footprint_files": config["transport"].get("footprint_files", ""),
        "footprint_layer_height": config["transport"].get("footprint_layer_height"),
        "met_source": inputs["met_source"],
        "met_files": met_files(wildcards) if inputs["met_source"] == "arl" else [],
        "met_file_format": None if inputs["met_files"] else inputs["met_file_format"],
        "era5_files": inputs["era5_files"],
        "wrf_files": inputs["wrf_files"],
        "raw_obs_dir": inputs["raw_obs_dir"],
        "grid": config["grid"],
        "inventory": inputs["inventory"],
        "inventory_options": prior_inventory_options(),
        "districts_file": DISTRICTS_FILE,
        "plants_file": PLANTS_FILE,
        "power": {"generation": inputs["power_generation"], "load": inputs["power_load"],
                  "external": inputs["power_external"], "flows": inputs["power_flows"]},
    }


rule check_inputs:
    """Real runs: every input covers the run (one table, one line per missing piece)."""
    input:
        _check_inputs_present,
    output:
        res("input_check.csv"),
    params:
        settings=_check_settings,
    log:
        log="logs/{month}/check_inputs.log",
        table="logs/{month}/input_check.csv",
    benchmark:
        "benchmarks/runs/{month}/check_inputs.tsv"
    script:
        "../scripts/check_inputs.py"


if not DEMO:
    for _rule in list(workflow.rules):
        if _rule.name != "check_inputs" and not _rule.name.startswith("demo_") and \
                "month" in _rule.wildcard_names:
            _rule.set_input(input_check=input_check_file)
