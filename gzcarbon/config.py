"""The pipeline configuration: schema defaults, typed values, cross-key checks.

``validate_config`` is what the Snakefile runs at parse time (so a bad value stops the run before
any job starts, with one message naming the key and what is allowed); tools and tests call it to
get the very configuration a run would use. The schema is ``workflow/schemas/config.schema.yaml``
(:data:`SCHEMA_FILE`); ``config/README.md`` documents every key.
"""
from __future__ import annotations

import os
from pathlib import Path

import jsonschema
import yaml

REPO_DIR = str(Path(__file__).resolve().parents[1])
SCHEMA_FILE = os.path.join(REPO_DIR, "workflow", "schemas", "config.schema.yaml")


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


def _type_ok(value, typ):
    if typ == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if typ == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if typ == "boolean":
        return isinstance(value, bool)
    if typ == "array":
        return isinstance(value, list)
    if typ == "object":
        return isinstance(value, dict)
    return False


def coerce_strings(value, schema):
    """Values typed by the schema, where they arrived as strings.

    Snakemake passes nested ``--config`` values as strings (``--config demo='{"days": 7}'`` gives
    ``{"days": "7"}``). A string is parsed as YAML and taken when the result has a type the schema
    allows at that key; anything else is left for the validator to report.
    """
    if not isinstance(schema, dict):
        return value
    types = schema.get("type")
    types = [types] if isinstance(types, str) else list(types or [])
    if isinstance(value, str) and "string" not in types and types:
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            parsed = value
        if any(_type_ok(parsed, t) for t in types):
            value = parsed
    if isinstance(value, dict):
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        return {k: coerce_strings(v, props.get(k, extra if isinstance(extra, dict) else {}))
                for k, v in value.items()}
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [coerce_strings(v, schema["items"]) for v in value]
    return value


def validate_config(cfg: dict, schema_file: str | os.PathLike = SCHEMA_FILE,
                    repo_dir: str | os.PathLike = REPO_DIR) -> dict:
    """Fill defaults from the schema (in place) and raise ConfigError on the first bad value.

    Relative ``stations_file``/``districts_file``/``plants_file`` are looked up in the working
    directory, then in ``repo_dir``.
    """
    # `demo: true/false` is accepted as shorthand for `demo: {enabled: ...}`.
    if isinstance(cfg.get("demo"), str) and cfg["demo"].lower() in ("true", "false"):
        cfg["demo"] = cfg["demo"].lower() == "true"
    if isinstance(cfg.get("demo"), bool):
        cfg["demo"] = {"enabled": cfg["demo"]}
    with open(schema_file) as fh:
        schema = yaml.safe_load(fh)
    cfg.update(coerce_strings(dict(cfg), schema))
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
    if h0 == h1 or h0 == 24:
        raise ConfigError(
            f"config key 'stations.select_hours_local': [{h0}, {h1}] is not a window; give "
            "[start, end) local hours with start in 0-23, e.g. [12, 16] (start > end wraps midnight: [22, 6])."
        )
    for key in ("results_dir", "data_dir"):
        # 'results/' and 'results' must name the same files (a trailing slash gave a
        # MissingInputException: the rules' paths and the targets were spelled differently).
        cfg[key] = os.path.normpath(cfg[key])
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
        if not os.path.exists(cfg[key]) and os.path.exists(os.path.join(repo_dir, cfg[key])):
            cfg[key] = os.path.join(repo_dir, cfg[key])
        if not os.path.exists(cfg[key]):
            raise ConfigError(f"config key '{key}': file '{cfg[key]}' does not exist.")
    return cfg
