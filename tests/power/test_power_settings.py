"""Issue 14.3 (power): the typed configuration is the one source of the power stage's defaults.

- ``power.emission_factors`` called from Python without settings uses the config's defaults
  (``power.external_factor``, ``stations.utc_offset_hours``);
- the pipeline's script (workflow/scripts/power_factors.py, run with the params rule
  ``power_factors`` passes for a partial config) gives the same factors as the Python API given the
  same partial config through ``gzcarbon.config.load_config``.
"""

import copy
import inspect
import os
import re
import runpy

import numpy as np
import pytest
import xarray as xr

import power
from gzcarbon.atomic import write_csv
from gzcarbon.config import load_config, validate_config
from gzcarbon.demo.power import make_demo
from power import factors, marginal, products
from pipeline_conftest import script_object

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PLANTS = os.path.join(REPO, "config", "power_plants.csv")
DISTRICTS = os.path.join(REPO, "config", "districts.geojson")
START, END = "2025-01-01T00:00:00", "2025-01-03T00:00:00"


@pytest.fixture(scope="module")
def tables():
    return make_demo(PLANTS, START, END, seed=11)


def test_python_defaults_are_the_configs(tables):
    g, l, e, _ = tables
    cfg = load_config({})
    ds = power.emission_factors(PLANTS, g, l)          # no external series: the scalar default
    np.testing.assert_array_equal(ds["external_intensity"], cfg.power.external_factor)
    # the local hour of day of the marginal factors: stations.utc_offset_hours (8), not 0
    explicit = power.emission_factors(PLANTS, g, l, e, utc_offset_hours=cfg.stations.utc_offset_hours)
    default = power.emission_factors(PLANTS, g, l, e)
    utc = power.emission_factors(PLANTS, g, l, e, utc_offset_hours=0)
    xr.testing.assert_identical(default, explicit)
    pairs, pairs_utc = default["marginal_pairs_by_hour"].to_numpy(), utc["marginal_pairs_by_hour"].to_numpy()
    np.testing.assert_array_equal(pairs, np.roll(pairs_utc, cfg.stations.utc_offset_hours))
    assert not np.array_equal(pairs, pairs_utc)
    # every library default of a setting the config holds is the config's value
    for fn in (factors.emission_factors, marginal.marginal_factors, products.hour_of_day_table,
               products.plot_heatmap, products.monthly_summary):
        params = inspect.signature(fn).parameters
        if "utc_offset_hours" in params:
            assert params["utc_offset_hours"].default == cfg.stations.utc_offset_hours, fn.__name__
        if "external_factor" in params:
            assert params["external_factor"].default == cfg.power.external_factor, fn.__name__


def test_no_number_of_the_config_is_repeated_in_the_package():
    """The factor and the offset are written once, in gzcarbon/config.py: no literal copy of them
    in power/ (a copy is how the library and the pipeline drift apart)."""
    cfg = load_config({})
    value = repr(cfg.power.external_factor)
    for name in sorted(os.listdir(os.path.join(REPO, "power"))):
        if name.endswith(".py"):
            text = open(os.path.join(REPO, "power", name), encoding="utf-8").read()
            assert value not in text, f"power/{name} repeats power.external_factor {value}"
            assert not re.search(r"utc_offset_hours: int = \d", text), f"power/{name}: a literal UTC offset"


_snakemake = script_object


def test_script_path_equals_python_api_for_a_partial_config(tables, tmp_path):
    partial = {"power": {"external_factor": 0.45}, "stations": {"utc_offset_hours": 7}}
    config = validate_config(copy.deepcopy(partial), REPO)
    g, l, _, _ = tables
    files = {"generation": str(tmp_path / "generation.csv"), "load": str(tmp_path / "load.csv")}
    write_csv(g, files["generation"], index=False)
    write_csv(l, files["load"], index=False)
    out = {k: str(tmp_path / f) for k, f in (("nc", "ef.nc"), ("csv", "ef.csv"), ("point_sources", "ps.csv"),
                                              ("heatmap", "heatmap.png"), ("summary", "summary.csv"))}
    # the params of rule power_factors (workflow/rules/power.smk), from the validated config
    params = {"axis": (START, END), "month": "2025-01", "external_factor": config["power"]["external_factor"],
              "utc_offset": config["stations"]["utc_offset_hours"], "flows": ""}
    rule = open(os.path.join(REPO, "workflow", "rules", "power.smk"), encoding="utf-8").read()
    assert 'external_factor=config["power"]["external_factor"]' in rule
    assert 'utc_offset=config["stations"]["utc_offset_hours"]' in rule
    sm = _snakemake({**files, "plants": PLANTS, "districts": DISTRICTS}, out, params,
                    str(tmp_path / "power.log"), config)
    runpy.run_path(os.path.join(REPO, "workflow", "scripts", "power_factors.py"),
                   init_globals={"snakemake": sm}, run_name="__main__")

    typed = load_config(partial)
    api = power.emission_factors(PLANTS, files["generation"], files["load"],
                                 districts=power.district_names(DISTRICTS),
                                 external_factor=typed.power.external_factor, start=START, end=END,
                                 utc_offset_hours=typed.stations.utc_offset_hours)
    with xr.open_dataset(out["nc"]) as got:
        np.testing.assert_array_equal(got["external_intensity"], 0.45)
        for var in ("consumption_factor", "production_factor", "marginal_factor", "marginal_factor_by_hour"):
            np.testing.assert_allclose(got[var].to_numpy(), api[var].to_numpy(), rtol=1e-12, equal_nan=True)
