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
