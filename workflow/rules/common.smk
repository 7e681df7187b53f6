"""Helpers shared by all stage files — config validation (with defaults), paths and periods.

The configuration is typed by gzcarbon.config (pydantic models: the one source of defaults).
Validation runs when the Snakefile is parsed, so a missing or malformed value stops the run
before any job starts, with one message naming the key and what is allowed.
"""

import calendar
import math
import os
import sys
from datetime import date, datetime, timedelta, timezone

import yaml

REPO_DIR = os.path.abspath(os.path.join(workflow.current_basedir, "..", ".."))


from gzcarbon.config import ConfigError, validate_config  # noqa: E402


try:
    validate_config(config, REPO_DIR)
except ConfigError as err:
    raise SystemExit(f"\nConfiguration error:\n{err}\n(see config/README.md)\n")

from stations.sites import load_sites  # noqa: E402

try:
    _STATIONS = {"sites": load_sites(config["stations_file"])}
except ValueError as err:
    raise SystemExit(f"\nConfiguration error:\n{err}\n")

_ALL_SITE_IDS = [s["id"] for s in _STATIONS["sites"]]
_unknown = [s for s in config["sites"] if s not in _ALL_SITE_IDS]
if _unknown:
    raise SystemExit(
        f"\nConfiguration error:\nconfig key 'sites': unknown site id(s) {_unknown}. "
        f"Allowed: {_ALL_SITE_IDS} (from {config['stations_file']}).\n"
    )

SITES = [s for s in _STATIONS["sites"] if not config["sites"] or s["id"] in config["sites"]]
SITE_IDS = [s["id"] for s in SITES]
DEMO = bool(config["demo"]["enabled"])
# the gases inverted besides CO2 (config species; products under results/<month>/<gas>/)
OTHER_GASES = [g for g in config["species"] if g != "co2"]
# Which months: `--config month=…` on the command line wins over `months:` of a config file
# (the monthly cron script passes month=… and must get that month, whatever the operations
# config lists); otherwise a non-empty `months` list wins over `month`. docs/schedule.md.
_CLI_CONFIG = dict(workflow.config_settings.config or {})
if "month" in _CLI_CONFIG and "months" not in _CLI_CONFIG and config["months"]:
    print(f"Note: month={config['month']} from the command line replaces months "
          f"{list(config['months'])} of the config file.", file=sys.stderr)
    config["months"] = []
MONTHS = list(config["months"]) or [config["month"]]
STATIONS_FILE = config["stations_file"]
DISTRICTS_FILE = config["districts_file"]
PLANTS_FILE = config["plants_file"]
R = os.path.join(config["results_dir"], "{month}")
D = os.path.join(config["data_dir"], "demo", "{month}")


def res(path):
    """A path under the month's results directory (keeps the {month} wildcard)."""
    return os.path.join(R, path)


def demo(path):
    """A path under the month's demo-world directory (keeps the {month} wildcard)."""
    return os.path.join(D, path)


wildcard_constraints:
    month=r"\d{4}-\d{2}",
    site=r"[A-Z0-9]+",
    day=r"\d{8}",
    metday=r"\d{8}",
    gas=r"ch4|co",


def _month_days(month):
    """UTC days inverted for `month`: the whole month (demo: its first demo.days), or the
    config's `period` (start/end inside the month; checked by gzcarbon.config)."""
    y, m = (int(x) for x in month.split("-"))
    n = calendar.monthrange(y, m)[1]
    if DEMO:
        n = min(n, config["demo"]["days"])
    first, last = 1, n
    period = config.get("period") or {}
    if period.get("start"):
        first = date.fromisoformat(str(period["start"])).day
    if period.get("end"):
        last = date.fromisoformat(str(period["end"])).day
    if first > last:
        raise SystemExit(f"\nConfiguration error:\nconfig key 'period': no day of {month} between "
                         f"{period.get('start') or 'the 1st'} and the last day {last} of the run "
                         "(demo.days or period.end).\n")
    return [date(y, m, d) for d in range(first, last + 1)]


def period_days(month):
    """UTC days inverted for `month` as YYYYMMDD strings."""
    return [d.strftime("%Y%m%d") for d in _month_days(month)]


def _spinup_days():
    return max(1, math.ceil(config["transport"]["n_hours"] / 24))


def hour_axis(month):
    """(start, end) ISO UTC strings of the run's hourly axis, end exclusive."""
    days = _month_days(month)
    start = datetime.combine(days[0], datetime.min.time()) - timedelta(days=_spinup_days())
    end = datetime.combine(days[-1], datetime.min.time()) + timedelta(days=1)
    return start.isoformat(), end.isoformat()


def met_days(month):
    days = _month_days(month)
    first = days[0] - timedelta(days=_spinup_days())
    return [(first + timedelta(days=i)).strftime("%Y%m%d")
            for i in range((days[-1] - first).days + 1)]


def met_files(wildcards):
    """ARL files of the month's met days: the demo world's, the daily files converted by rule
    met_convert (inputs.met_source era5/wrf), the explicit list inputs.met_files (any names and
    periods), or one file per UTC day named by inputs.met_file_format in inputs.met_dir."""
    if DEMO:
        return expand(demo("met/{metday}_gz.arl"), month=wildcards.month,
                      metday=met_days(wildcards.month))
    if config["inputs"]["met_source"] in ("era5", "wrf"):
        return expand(res("met/{metday}_gz.arl"), month=wildcards.month,
                      metday=met_days(wildcards.month))
    if config["inputs"]["met_files"]:
        return list(config["inputs"]["met_files"])
    fmt = config["inputs"]["met_file_format"]
    return [os.path.join(config["inputs"]["met_dir"],
                         datetime.strptime(d, "%Y%m%d").strftime(fmt))
            for d in met_days(wildcards.month)]


def raw_obs_dir(wildcards):
    if DEMO:
        return os.path.join(D.format(month=wildcards.month), "raw", wildcards.site)
    return os.path.join(config["inputs"]["raw_obs_dir"], wildcards.site)


def raw_obs_inputs(wildcards):
    """Inputs of the hourly_obs job of a site: every file under its raw folder (real data).

    Listed one by one, at any depth, so that a file arriving late (also in a sub-folder) changes
    the input set and a file corrected in place changes its mtime: either re-runs the site's
    hourly job (a directory input would only see the folder's own mtime). Hidden files
    (temporaries of a copy in progress) are left out. The demo folder is an output of the
    demo_raw_obs job, so it stays a directory.
    """
    top = raw_obs_dir(wildcards)
    if DEMO or not os.path.isdir(top):
        return top  # a missing folder: Snakemake's MissingInputException names it
    files = []
    for root, dirs, names in os.walk(top):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        files += [os.path.join(root, n) for n in sorted(names) if not n.startswith(".")]
    if not files:
        return top
    return files


def inventory_file(wildcards):
    if DEMO:
        return demo("inventory.nc").format(month=wildcards.month)
    return config["inputs"]["inventory"]


def power_input_files(wildcards):
    if DEMO:
        return {key: demo(os.path.join("power", name)).format(month=wildcards.month)
                for key, name in (("generation", "generation.csv"), ("load", "load.csv"),
                                  ("external", "external_intensity.csv"))}
    files = {"generation": config["inputs"]["power_generation"],
             "load": config["inputs"]["power_load"]}
    if config["inputs"]["power_external"]:
        files["external"] = config["inputs"]["power_external"]
    return files


def footprint_files(wildcards):
    return expand(res("footprints/{site}/{day}.nc"), month=wildcards.month,
                  site=SITE_IDS, day=period_days(wildcards.month))


def final_products(wildcards=None):
    out = []
    for m in MONTHS:
        base = f"{config['results_dir']}/{m}"
        out += [
            f"{base}/report.html",
            f"{base}/flux_{m}.nc",
            f"{base}/districts.csv",
            f"{base}/power/emission_factors.csv",
            f"{base}/accounting.csv",  # territorial vs consumption-based (power/accounting.py)
        ]
        for g in OTHER_GASES:
            out += [f"{base}/{g}/flux_{m}.nc", f"{base}/{g}/districts.csv"]
        if config["inversion"]["joint_co"]["enabled"]:
            out.append(f"{base}/joint/districts.csv")  # fossil/biogenic CO2 (docs/gases.md)
    return out


# Job priority on few cores (issue 19.5; docs/performance.md, "The default run on 2 cores"). The
# demo's truth chain is the longest one of a demo run: its own footprints, then its Jacobian, the
# true signals, the raw analyser files, the hourly data and the selection, all before the
# inversion. Its footprints start first, so the rest of that chain runs beside the inversion's
# footprints; every other job keeps priority 0, so the short jobs stay free to fill a core beside
# the last footprint jobs (replayed on measured job CPU: benchmarks/default_run.py).
PRIORITY_TRUTH_FOOTPRINTS = 10
