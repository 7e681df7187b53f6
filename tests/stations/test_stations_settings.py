"""Issue 14.3 (stations): the typed configuration (`gzcarbon.config.StationsConfig`) is the one
source of the stations stage's settings.

- the pipeline's scripts (hourly_obs.py, select_obs.py, run with the params their rules pass for a
  partial config) and the Python API (`stations.hourly.ingest`, `stations.selection.
  select_from_config`) given the same partial config give the same hourly flags and selection;
- a library default of a setting the config holds is the config's default (no second copy).
"""
import copy
import inspect
import importlib
import pkgutil
import runpy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import stations
from gzcarbon.config import (BackgroundConfig, NightTowerConfig, PlausibilityConfig, StationsConfig,
                             TargetTankConfig, load_config, validate_config)
from gzcarbon.demo.stations import write_demo_raw
from stations import background, calibration, hourly, plausibility, selection

from station_truth import make_truth
from pipeline_conftest import script_object

REPO = Path(__file__).resolve().parents[2]
STATIONS_FILE = REPO / "config" / "stations.yaml"
RULES = (REPO / "workflow" / "rules" / "stations.smk").read_text(encoding="utf-8")
PERIOD = ("2025-01-01", "2025-01-02")
PARTIAL = {"stations": {
    "flush_seconds": 90, "min_coverage": 0.7,
    "plausibility": {"range": {"co2": [350, 440]}, "stuck_minutes": 3},
    "target_tank": {"max_bias": {"co2": 0.05}},
    "select_hours_local": [11, 17], "background_sigma_ppm": 1.5,
    "background": {"method": "baseline", "half_window_hours": 3}}}


_snakemake = script_object


def _script(name: str, sm) -> None:
    runpy.run_path(str(REPO / "workflow" / "scripts" / name), init_globals={"snakemake": sm},
                   run_name="__main__")


@pytest.fixture(scope="module")
def raw(tmp_path_factory, urban):
    d = tmp_path_factory.mktemp("yxu_settings")
    truth = make_truth([urban], days=1, seed=3, noise_ppm=3.0)
    write_demo_raw(truth, urban, d / "raw", seed=11, record_seconds=10.0)
    return d / "raw"


def _hourly(path: Path) -> dict:
    out = {}
    for f in sorted(path.glob("*.nc")):
        with xr.open_dataset(f) as ds:
            out[f.name] = {v: ds[v].to_numpy() for v in ("value", "value_std_dev", "nvalue", "qcflag")}
    return out


def test_script_path_equals_python_api_for_a_partial_config(raw, urban, all_sites, tmp_path):
    config = validate_config(copy.deepcopy(PARTIAL), REPO)
    st = config["stations"]
    # rule hourly_obs passes each setting as a param (a rerun trigger), from the validated config
    params = {"raw_dir": None, "axis": PERIOD}
    for key in ("flush_seconds", "min_coverage", "plausibility", "target_tank", "allow_wet_correction"):
        assert f'{key}=config["stations"]["{key}"]' in RULES, key
        params[key] = st[key]
    params["time_reference"] = st.get("time_reference")
    by_script = tmp_path / "script" / "YXU"
    _script("hourly_obs.py", _snakemake({"raw": str(raw), "stations": str(STATIONS_FILE)}, {"out": str(by_script)},
                                        params, tmp_path / "hourly.log", config, site="YXU"))
    typed = load_config(PARTIAL).stations
    ing = hourly.ingest(raw, urban, typed, period=PERIOD, sites=all_sites, stations_file=str(STATIONS_FILE))
    by_api = tmp_path / "api" / "YXU"
    hourly.write_hourly_dir(ing, urban, by_api)
    got, want = _hourly(by_script), _hourly(by_api)
    assert got.keys() == want.keys() and got
    for name in got:
        for var in got[name]:
            np.testing.assert_array_equal(got[name][var], want[name][var], err_msg=f"{name} {var}")
    # the partial config matters: a longer flush, a narrower range (records above 440 ppm dropped)
    # and a higher coverage threshold keep fewer records and flag more hours than the defaults
    default = hourly.ingest(raw, urban, None, period=PERIOD, sites=all_sites, stations_file=str(STATIONS_FILE))
    for h, df in ing.hourly.items():
        assert df["nvalue"].sum() < default.hourly[h]["nvalue"].sum()
        assert (df["qcflag"] & hourly.LOW_COVERAGE != 0).sum() > (default.hourly[h]["qcflag"] & hourly.LOW_COVERAGE != 0).sum()
    assert ing.info["plausible_range"] == [350.0, 440.0] and ing.info["stuck_minutes"] == 3.0
    assert ing.info["target_tank_max_bias"] == 0.05

    # rule select_obs: params from the same config, against selection.select_from_config
    sel_params = {"utc_offset": st["utc_offset_hours"], "hours_local": st["select_hours_local"],
                  "background_sigma": st["background_sigma_ppm"], "background": st["background"],
                  "night_tower": st["night_tower"], "tower_ids": [], "plausibility": st["plausibility"]}
    for key, name in (("utc_offset", "utc_offset_hours"), ("hours_local", "select_hours_local"),
                      ("background_sigma", "background_sigma_ppm"), ("background", "background"),
                      ("night_tower", "night_tower"), ("plausibility", "plausibility")):
        assert f'{key}=config["stations"]["{name}"]' in RULES, key
    out = tmp_path / "selected.csv"
    _script("select_obs.py", _snakemake({"hourly": [str(by_script)], "met": []}, {"out": str(out)}, sel_params,
                                        tmp_path / "select.log", config))
    api = selection.select_from_config([by_api], PARTIAL["stations"])
    script = pd.read_csv(out)
    pd.testing.assert_frame_equal(script, pd.read_csv(_written(api, tmp_path / "api.csv")))
    local = (pd.to_datetime(script["time"]) + pd.Timedelta(hours=8)).dt.hour
    # the window [11, 17) local, not the default [12, 16): 16 h is selected
    assert set(local) <= set(range(11, 17)) and 16 in set(local) and (script["background_sigma"] == 1.5).all()


def _written(df, path):
    selection.write_selected(df, path)
    return path


def _models():
    """(model, field name) of every setting of the stations section and its subsections."""
    out = []
    for model in (StationsConfig, BackgroundConfig, NightTowerConfig, PlausibilityConfig, TargetTankConfig):
        out += [(model, name) for name in model.model_fields]
    return out


def _norm(v):
    return [_norm(x) for x in v] if isinstance(v, (list, tuple)) else v


def test_library_defaults_are_the_configs():
    """Every parameter of a stations function named like a config setting defaults to the config's
    value (or None: 'take it from the config'), and no module keeps a table of defaults."""
    defaults = {}
    for model, name in _models():
        defaults.setdefault(name, set()).add(repr(_norm(model.model_fields[name].get_default(
            call_default_factory=True))))
    checked = 0
    for info in pkgutil.iter_modules(stations.__path__):
        mod = importlib.import_module(f"stations.{info.name}")
        assert not [n for n in vars(mod) if n.endswith("DEFAULTS")], f"stations.{info.name} keeps a defaults table"
        for fname, fn in inspect.getmembers(mod, inspect.isfunction):
            if fn.__module__ != mod.__name__:
                continue
            for p in inspect.signature(fn).parameters.values():
                if p.name in defaults and p.default is not inspect.Parameter.empty and p.default is not None:
                    assert repr(_norm(p.default)) in defaults[p.name], (mod.__name__, fname, p.name, p.default)
                    checked += 1
    assert checked >= 15      # flush_seconds, min_coverage, half_window_hours, utc_offset_hours, ...


def test_sections_take_mappings_with_the_configs_defaults():
    # a partial mapping is completed by the model: the same object as the pipeline's section
    full = load_config({"stations": {"plausibility": {"stuck_minutes": 3}}}).stations
    assert plausibility.settings({"stuck_minutes": 3}) == full.plausibility
    assert calibration.target_settings(None) == full.target_tank
    assert selection.night_settings({}) == full.night_tower
    bg = {"upwind_site": "HDU", "sites": {"NST": {"method": "baseline"}, "YXU": {"min_wind_speed_ms": 2}}}
    assert background.settings(bg, "NST").method == "baseline"
    assert background.settings(bg, "YXU").min_wind_speed_ms == 2 and background.settings(bg, "YXU").upwind_site == "HDU"
    assert background.settings(bg, "CHU") == background.settings(bg)         # no override: the section
    assert background.needs_met(bg, ["YXU"]) and not background.needs_met(bg, ["NST"])
    with pytest.raises(ValueError, match=r"stations.night_tower.hours_local"):
        selection.night_settings({"hours_local": [22]})
    with pytest.raises(background.BackgroundConfigError, match=r"stations.background.sectors.*\[from, to\]"):
        background.settings({"sectors": [[0, 400]]})
