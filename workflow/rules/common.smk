"""Helpers shared by all stage files — config validation (with defaults), paths and periods.

Validation runs when the Snakefile is parsed, so a missing or malformed value stops the run
before any job starts, with one message naming the key and what is allowed.
"""

import calendar
import math
import os
from datetime import date, datetime, timedelta, timezone

import jsonschema
import yaml

SCHEMA_FILE = os.path.join(workflow.current_basedir, "..", "schemas", "config.schema.yaml")
REPO_DIR = os.path.abspath(os.path.join(workflow.current_basedir, "..", ".."))


class ConfigError(Exception):
    """A bad configuration value: the message names the key and the fix."""


def _extend_with_default(validator_class):
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for prop, subschema in properties.items():
                if "default" in subschema and prop not in instance:
                    instance[prop] = (
                        dict(subschema["default"])
                        if isinstance(subschema["default"], dict)
                        else subschema["default"]
                    )
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


def _describe(error):
    key = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    sch = error.schema
    if error.validator == "additionalProperties":
        allowed = ", ".join(sorted(sch.get("properties", {})))
        return f"config key '{key}': {error.message}. Allowed keys here: {allowed}."
    allowed = []
    for k in ("enum", "pattern", "type", "minimum", "maximum", "exclusiveMinimum", "minItems", "maxItems"):
        if k in sch:
            allowed.append(f"{k}={sch[k]}")
    hint = f" Allowed: {', '.join(allowed)}." if allowed else ""
    desc = f" ({sch['description']})" if "description" in sch else ""
    return f"config key '{key}'{desc}: {error.message}.{hint}"


def validate_config(cfg):
    """Fill defaults from the schema and raise ConfigError on the first bad value."""
    # `demo: true/false` is accepted as shorthand for `demo: {enabled: ...}`.
    if isinstance(cfg.get("demo"), str) and cfg["demo"].lower() in ("true", "false"):
        cfg["demo"] = cfg["demo"].lower() == "true"
    if isinstance(cfg.get("demo"), bool):
        cfg["demo"] = {"enabled": cfg["demo"]}
    with open(SCHEMA_FILE) as fh:
        schema = yaml.safe_load(fh)
    validator = _extend_with_default(jsonschema.Draft202012Validator)(schema)
    errors = sorted(validator.iter_errors(cfg), key=lambda e: list(e.absolute_path))
    if errors:
        seen, lines = set(), []
        for e in errors:  # one message per key
            key = tuple(e.absolute_path)
            if key not in seen:
                seen.add(key)
                lines.append(_describe(e))
        raise ConfigError("\n".join(lines))
    g = cfg["grid"]
    if not (g["lon_min"] < g["lon_max"] and g["lat_min"] < g["lat_max"]):
        raise ConfigError("config key 'grid': lon_min < lon_max and lat_min < lat_max are required.")
    for k in ("lon", "lat"):
        n = (g[f"{k}_max"] - g[f"{k}_min"]) / g["res"]
        if abs(n - round(n)) > 1e-6:
            raise ConfigError(
                f"config key 'grid.res': ({k}_max - {k}_min) / res = {n:.4f} is not a whole number "
                "of cells; adjust the bounds or the resolution."
            )
    m = cfg["met"]
    if not (m["lon_min"] <= g["lon_min"] and m["lon_max"] >= g["lon_max"]
            and m["lat_min"] <= g["lat_min"] and m["lat_max"] >= g["lat_max"]):
        raise ConfigError("config key 'met': the met domain must contain the state 'grid'.")
    inv = cfg["inversion"]
    per_day = 24 // inv["time_step_hours"]
    if per_day > 1 and not inv["diurnal_corr"] > -1.0 / (per_day - 1):
        raise ConfigError(
            f"config key 'inversion.diurnal_corr': {inv['diurnal_corr']} must be > {-1.0 / (per_day - 1):.4g} "
            f"with {per_day} steps per day (time_step_hours {inv['time_step_hours']}); below that the "
            "prior time correlation is not positive definite."
        )
    h0, h1 = cfg["stations"]["select_hours_local"]
    if not h0 < h1:
        raise ConfigError(
            f"config key 'stations.select_hours_local': [{h0}, {h1}] must be [start, end) with start < end."
        )
    if not cfg["demo"]["enabled"]:
        for key in ("met_dir", "raw_obs_dir", "inventory", "power_generation", "power_load"):
            val = cfg["inputs"][key]
            if not val:
                raise ConfigError(
                    f"config key 'inputs.{key}' is empty but demo.enabled is false: "
                    "give the path of your data, or set demo.enabled: true."
                )
            if not os.path.exists(val):
                raise ConfigError(f"config key 'inputs.{key}': path '{val}' does not exist.")
    for key in ("stations_file", "districts_file", "plants_file"):
        # Relative paths are looked up in the working directory, then in the repository.
        if not os.path.exists(cfg[key]) and os.path.exists(os.path.join(REPO_DIR, cfg[key])):
            cfg[key] = os.path.join(REPO_DIR, cfg[key])
        if not os.path.exists(cfg[key]):
            raise ConfigError(f"config key '{key}': file '{cfg[key]}' does not exist.")
    return cfg


try:
    validate_config(config)
except ConfigError as err:
    raise SystemExit(f"\nConfiguration error:\n{err}\n(see config/README.md)\n")

with open(config["stations_file"]) as _fh:
    _STATIONS = yaml.safe_load(_fh)

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


def _month_days(month):
    y, m = (int(x) for x in month.split("-"))
    n = calendar.monthrange(y, m)[1]
    if DEMO:
        n = min(n, config["demo"]["days"])
    return [date(y, m, d) for d in range(1, n + 1)]


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
    if DEMO:
        return expand(demo("met/{metday}_gz.arl"), month=wildcards.month,
                      metday=met_days(wildcards.month))
    fmt = config["inputs"]["met_file_format"]
    return [os.path.join(config["inputs"]["met_dir"],
                         datetime.strptime(d, "%Y%m%d").strftime(fmt))
            for d in met_days(wildcards.month)]


def raw_obs_dir(wildcards):
    if DEMO:
        return os.path.join(D.format(month=wildcards.month), "raw", wildcards.site)
    return os.path.join(config["inputs"]["raw_obs_dir"], wildcards.site)


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
        ]
    return out
