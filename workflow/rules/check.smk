"""Real runs: the input check runs first (issue 16.4).

Four parts, one job each (`check_inputs_part`, {part} = met, obs, inventory, power): the met
covers every receptor, the observations each site and the period, the inventory the grid and the
month, the power inputs every hour; each writes {R}/input_check/{part}.csv or stops with one line
per missing piece; rule `check_inputs` joins them into {R}/input_check.csv
(workflow/scripts/check_inputs.py, docs/formats.md "Input check"). Every other rule of a real run
with a {month} output waits for a check, added to its inputs by this file (included last): the
rules of `RULE_PARTS` wait for the parts they read, every other rule for the whole check. A part
has the inputs and settings of the rules waiting for it only (no more), so a re-run part goes
with a re-run of those rules anyway. Demo runs have no check (their inputs are made by the demo
rules).
"""

CHECK_PARTS = ("met", "obs", "inventory", "power")
#: stage rules that wait only for the parts of the check covering what they read
RULE_PARTS = {"hourly_obs": ("obs",), "select_obs": ("obs",), "receptors": ("met",),
              "footprints": ("met",), "jacobian": ("met",), "power_factors": ("power",),
              "prior": ("inventory", "power")}
#: the settings each part reads (its params: a changed setting re-runs that part only)
PART_SETTINGS = {
    "met": ("sites", "days", "hours_local", "utc_offset", "night_tower", "n_hours", "footprints_from",
            "footprint_files", "footprint_layer_height", "met_source", "met_files", "met_file_format",
            "era5_files", "wrf_files"),
    "obs": ("sites", "period", "spinup_days", "raw_obs_dir"),
    "inventory": ("month", "period", "grid", "inventory", "inventory_options"),
    "power": ("period", "districts_file", "plants_file", "power"),
}


def input_check_file(wildcards):
    """The whole input check of the month (real runs only)."""
    return [] if DEMO else [res("input_check.csv").format(month=wildcards.month)]


def _input_check_parts(parts):
    def files(wildcards):
        if DEMO:
            return []
        return [res(f"input_check/{p}.csv").format(month=wildcards.month) for p in parts]
    return files


def _check_inputs_present(wildcards):
    """The real input files of the part that exist (inputs, so that a changed or late file re-runs
    the part; a missing one is reported by the check itself)."""
    from types import SimpleNamespace

    inputs, part = config["inputs"], wildcards.part
    files = [STATIONS_FILE] if part in ("met", "obs") else []
    if part == "met" and inputs["met_source"] == "arl" and config["transport"]["footprints_from"] != "files":
        files += met_files(wildcards)
    elif part == "met":
        files += list(inputs["era5_files"]) + list(inputs["wrf_files"])
    elif part == "obs":
        for sid in SITE_IDS:
            found = raw_obs_inputs(SimpleNamespace(month=wildcards.month, site=sid))
            files += found if isinstance(found, list) else []
    elif part == "inventory":
        files += [v for k, v in prior_inputs(wildcards).items() if k != "point_sources"]
    else:
        files += [DISTRICTS_FILE, PLANTS_FILE] + [inputs[f"power_{k}"] for k in
                                                  ("generation", "load", "external", "flows")]
    return sorted({f for f in files if f and isinstance(f, str) and os.path.isfile(f)})


def _check_settings(wildcards):
    return {k: v for k, v in _all_check_settings(wildcards).items() if k in PART_SETTINGS[wildcards.part]}


def _all_check_settings(wildcards):
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


rule check_inputs_part:
    """Real runs: one part of the input check (one line per missing piece)."""
    input:
        _check_inputs_present,
    output:
        res("input_check/{part}.csv"),
    params:
        settings=_check_settings,
    wildcard_constraints:
        part="|".join(CHECK_PARTS),
    log:
        log="logs/{month}/check_inputs_{part}.log",
        table="logs/{month}/input_check_{part}.csv",
    benchmark:
        "benchmarks/runs/{month}/check_inputs_{part}.tsv"
    script:
        "../scripts/check_inputs.py"


rule check_inputs:
    """Real runs: the parts of the input check as one table."""
    input:
        parts=expand(res("input_check/{part}.csv"), part=CHECK_PARTS, allow_missing=True),
    output:
        res("input_check.csv"),
    log:
        log="logs/{month}/check_inputs.log",
    script:
        "../scripts/check_inputs.py"


if not DEMO:
    for _rule in list(workflow.rules):
        if _rule.name not in ("check_inputs", "check_inputs_part") and not _rule.name.startswith("demo_") \
                and "month" in _rule.wildcard_names:
            _parts = RULE_PARTS.get(_rule.name)
            _rule.set_input(input_check=_input_check_parts(_parts) if _parts else input_check_file)
