"""``gzcarbon check``: do a real run's inputs cover the month? The checks of rule check_inputs
(workflow/scripts/check_inputs.py: the stages' own readers on every input), run without Snakemake,
with the settings the rule's params hold (workflow/rules/functions.smk ``_all_check_settings``)."""

from __future__ import annotations

import argparse
import calendar
import importlib.util
import math
import os
from datetime import date, datetime, timedelta

from .common import REPO, CliError, months_of, run_config

SCRIPT = REPO / "workflow" / "scripts" / "check_inputs.py"


def add_parser(sub) -> None:
    p = sub.add_parser("check", help="check a real run's inputs (met, observations, inventory, power)",
                       description="Check that the inputs of a real run (demo.enabled: false) cover the "
                       "month, with the same checks as the pipeline's rule check_inputs; prints the "
                       "table (check, item, status, needed, found, detail) and exits with 1 when a "
                       "piece is missing (one line each).")
    p.add_argument("--configfile", action="append", default=[], metavar="FILE",
                   help="config file(s) merged over config/config.yaml (as snakemake --configfile)")
    p.add_argument("--month", help="YYYY-MM (default: the config's month/months)")
    p.add_argument("--part", action="append", choices=("met", "obs", "inventory", "power"),
                   help="only this part (repeatable; default: all four)")
    p.add_argument("--csv", metavar="FILE", help="also write the table to FILE")


def check_module():
    """workflow/scripts/check_inputs.py as a module (its ``run_part`` and ``failures``)."""
    if not SCRIPT.is_file():
        raise CliError(f"{SCRIPT} not found: `gzcarbon check` needs the repository checkout")
    spec = importlib.util.spec_from_file_location("gzcarbon_check_inputs", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _days(month: str) -> list[date]:
    y, m = (int(x) for x in month.split("-"))
    return [date(y, m, d) for d in range(1, calendar.monthrange(y, m)[1] + 1)]


def _met_files(cfg: dict, met_days: list[str]) -> list[str]:
    inputs = cfg["inputs"]
    if inputs["met_source"] != "arl":
        return []   # ERA5/WRF: the check reads the source files (the ARL files are made by a rule)
    if inputs["met_files"]:
        return list(inputs["met_files"])
    return [os.path.join(inputs["met_dir"], datetime.strptime(d, "%Y%m%d").strftime(inputs["met_file_format"]))
            for d in met_days]


def settings(cfg: dict, month: str) -> dict:
    """The check's settings for ``month`` of the resolved real-run configuration ``cfg``."""
    from stations.sites import load_sites

    inputs, transport = cfg["inputs"], cfg["transport"]
    days = _days(month)
    spin = max(1, math.ceil(transport["n_hours"] / 24))
    start = datetime.combine(days[0], datetime.min.time()) - timedelta(days=spin)
    end = datetime.combine(days[-1], datetime.min.time()) + timedelta(days=1)
    met_days = [(days[0] - timedelta(days=spin) + timedelta(days=i)).strftime("%Y%m%d")
                for i in range((days[-1] - days[0]).days + spin + 1)]
    sites = [s for s in load_sites(cfg["stations_file"]) if not cfg["sites"] or s["id"] in cfg["sites"]]
    return {
        "month": month, "period": [start.isoformat(), end.isoformat()], "spinup_days": spin,
        "days": [d.strftime("%Y%m%d") for d in days], "sites": sites,
        "hours_local": cfg["stations"]["select_hours_local"], "utc_offset": cfg["stations"]["utc_offset_hours"],
        "night_tower": cfg["stations"].get("night_tower", {}), "n_hours": transport["n_hours"],
        "footprints_from": transport.get("footprints_from", "stilt"),
        "footprint_files": transport.get("footprint_files", ""),
        "footprint_layer_height": transport.get("footprint_layer_height"),
        "met_source": inputs["met_source"], "met_files": _met_files(cfg, met_days),
        "met_file_format": None if inputs["met_files"] else inputs["met_file_format"],
        "era5_files": inputs["era5_files"], "wrf_files": inputs["wrf_files"],
        "raw_obs_dir": inputs["raw_obs_dir"], "grid": cfg["grid"], "inventory": inputs["inventory"],
        "inventory_options": {k: inputs[k] for k in ("inventory_format", "inventory_species", "downscale_proxy",
                                                     "temporal_profiles", "bio_prior")},
        "districts_file": cfg["districts_file"], "plants_file": cfg["plants_file"],
        "power": {k: inputs[f"power_{k}"] for k in ("generation", "load", "external", "flows")},
    }


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    cfg = run_config(args.configfile, args.month)
    if cfg["demo"]["enabled"]:
        raise CliError("the configuration is a demo run (demo.enabled: true): its inputs are made by the "
                       "demo rules; give the real run's config file (--configfile) with demo.enabled: false")
    mod = check_module()
    parts = args.part or list(mod.PARTS)
    tables = [mod.run_part(part, settings(cfg, month)) for month in months_of(cfg) for part in parts]
    table = pd.concat(tables, ignore_index=True)
    with pd.option_context("display.max_colwidth", 100, "display.width", 250):
        print(table.to_string(index=False))
    if args.csv:
        from gzcarbon.atomic import write_csv

        write_csv(table, args.csv, index=False)
    lines = mod.failures(table)
    counts = table["status"].value_counts().to_dict()
    print(f"\n{len(table)} checks: " + ", ".join(f"{counts.get(k, 0)} {k}" for k in ("ok", "warning", "missing")))
    if lines:
        print("missing:\n  - " + "\n  - ".join(lines))
        return 1
    return 0
