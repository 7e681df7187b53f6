"""Rule check_inputs (issue 16.4): a good set of real-format inputs passes; each missing piece
(met hours, a site's observations, an inventory that does not cover the grid, an hour of power
load) gives its own line naming the piece. The checks run the stages' own readers on: ARL files
written by `transport.arl.write_arl` (HYSPLIT's layout), a real ICOS CO2 file as OpenGHG stores it
(tests/data/obs), the real EDGAR v6.0 file (tests/data/inventory) and power CSVs in the documented
format. Also: the rule file makes every other rule of a real run wait for the check."""

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
ICOS_TOH = DATA / "obs" / "openghg_icos_toh_co2_147m.nc"  # 2017-12-13 01:00 .. 2017-12-14 06:00 UTC
EDGAR = DATA / "inventory" / "v6.0_CO2_excl_short-cycle_org_C_2015_TOTALS.5.3x5.1.nc"
MET = dict(lon_min=111.5, lon_max=115.5, lat_min=21.5, lat_max=25.0, res=0.1)
GRID = dict(lon_min=113.0, lon_max=113.6, lat_min=22.9, lat_max=23.5, res=0.01)


def _module():
    spec = importlib.util.spec_from_file_location("check_inputs", ROOT / "workflow" / "scripts" / "check_inputs.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


ci = _module()


def _arl(path, day):
    from gzcarbon.demo.met import met_fields
    from transport.arl import PRESSURE_LEVELS, MetGrid, write_arl

    times = pd.date_range(day, periods=24, freq="h")
    return write_arl(path, MetGrid.from_bounds(MET), PRESSURE_LEVELS, ((t, *met_fields(t, MET, seed=1)) for t in times))


def _power(tmp_path, hours):
    import power

    districts = power.district_names(ROOT / "config" / "districts.geojson")
    plants = power.read_plants(ROOT / "config" / "power_plants.csv", districts)
    disp = plants.index[plants["dispatched"]]
    gen = pd.DataFrame([(t.isoformat(), p, 0.5 * plants.loc[p, "capacity_mw"]) for t in hours for p in disp],
                       columns=["time", "plant_id", "generation_mwh"])
    load = pd.DataFrame([(t.isoformat(), d, 800.0) for t in hours for d in districts],
                        columns=["time", "district", "load_mwh"])
    gen.to_csv(tmp_path / "generation.csv", index=False)
    load.to_csv(tmp_path / "load.csv", index=False)
    return tmp_path / "generation.csv", tmp_path / "load.csv"


@pytest.fixture
def good(tmp_path):
    """Settings as rule check_inputs passes them for a run of 2017-12-13 (one day + one spin-up day)
    at two sites, and the files they name."""
    from stations.sites import load_sites

    sites = [s for s in load_sites(ROOT / "config" / "stations.yaml") if s["id"] in ("NST", "YXU")]
    (tmp_path / "met").mkdir()
    met = [_arl(tmp_path / "met" / f"{d}_gz.arl", d) for d in ("20171212", "20171213")]
    for s in sites:
        (tmp_path / "obs" / s["id"]).mkdir(parents=True)
        shutil.copy(ICOS_TOH, tmp_path / "obs" / s["id"] / ICOS_TOH.name)
    period = ("2017-12-12T00:00:00", "2017-12-14T00:00:00")
    gen, load = _power(tmp_path, pd.date_range(*period, freq="h", inclusive="left"))
    return {
        "month": "2017-12", "period": list(period), "spinup_days": 1, "days": ["20171213"], "sites": sites,
        "hours_local": [12, 16], "utc_offset": 8, "night_tower": {}, "n_hours": 24,
        "footprints_from": "stilt", "met_source": "arl", "met_files": [str(p) for p in met],
        "met_file_format": "%Y%m%d_gz.arl", "met_bounds": MET, "era5_files": [], "wrf_files": [],
        "raw_obs_dir": str(tmp_path / "obs"), "grid": GRID, "inventory": str(EDGAR),
        "inventory_options": {"inventory_format": "auto", "inventory_species": "co2"},
        "districts_file": str(ROOT / "config" / "districts.geojson"),
        "plants_file": str(ROOT / "config" / "power_plants.csv"),
        "power": {"generation": str(gen), "load": str(load), "external": "", "flows": ""},
    }


def test_a_good_set_of_real_format_inputs_passes(good):
    table = ci.run_checks(good)
    assert ci.failures(table) == []
    ok = table[table["status"] == "ok"]
    assert set(ok[ok["check"] == "met"]["item"]) == {"NST", "YXU"}
    assert set(ok[ok["check"] == "obs"]["item"]) == {"NST", "YXU"}
    obs = ok[ok["check"] == "obs"].iloc[0]
    assert "1 file(s) (hourly), 2017-12-13 01:00 .. 2017-12-14 06:00" == obs["found"]
    assert {"generation", "load"} <= set(ok[ok["check"] == "power"]["item"])
    inv = ok[(ok["check"] == "inventory") & (ok["item"] == str(EDGAR))].iloc[0]
    assert inv["found"].startswith("edgar, sectors total")
    # the prior's optional files are not given: warnings, not failures
    warn = table[table["status"] == "warning"]
    assert set(warn["item"]) == {"downscale_proxy", "temporal_profiles", "bio_prior"}


def test_each_missing_piece_gives_its_own_line(good, tmp_path):
    Path(good["met_files"][0]).unlink()  # the spin-up day's met
    shutil.rmtree(Path(good["raw_obs_dir"]) / "YXU")  # one site without files
    lat, lon = np.arange(23.005, 23.3, 0.01), np.arange(113.005, 113.3, 0.01)  # covers part of the grid only
    xr.Dataset({"road": (("lat", "lon"), np.ones((lat.size, lon.size)) * 1e-9, {"units": "kg m-2 s-1"})},
               coords={"lat": lat, "lon": lon}).to_netcdf(tmp_path / "small.nc")
    good["inventory"] = str(tmp_path / "small.nc")
    load = pd.read_csv(good["power"]["load"])
    load.drop(index=5).to_csv(good["power"]["load"], index=False)  # one district-hour gone
    lines = ci.failures(ci.run_checks(good))
    assert len(lines) == 5, lines
    assert lines[0].startswith("met NST: met files missing") and "20171212_gz.arl" in lines[0]
    assert lines[1].startswith("met YXU: met files missing")
    assert lines[2].startswith("obs YXU: no folder") and "YXU" in lines[2]
    assert lines[3].startswith(f"inventory {tmp_path / 'small.nc'}: the inventory does not cover the state grid")
    assert lines[4].startswith(f"power load: {good['power']['load']}") and "2017-12-12T00:00" in lines[4]


def test_obs_outside_the_period_and_met_hours_lacking_are_named(good):
    good["days"], good["period"] = ["20171220"], ["2017-12-19T00:00:00", "2017-12-21T00:00:00"]
    table = ci.run_checks(good)
    obs = table[table["check"] == "obs"]
    assert list(obs["status"]) == ["missing", "missing"]
    assert "no data in the run's period" in obs.iloc[0]["detail"]
    assert "2017-12-13 01:00 .. 2017-12-14 06:00" in obs.iloc[0]["found"]
    met = table[table["check"] == "met"]
    assert list(met["status"]) == ["missing", "missing"] and "met lacks" in met.iloc[0]["detail"]


def test_odiac_of_another_month_is_a_missing_piece(good, tmp_path):
    pytest.importorskip("PIL")
    from PIL import Image, TiffImagePlugin

    info = TiffImagePlugin.ImageFileDirectory_v2()
    info[33550], info.tagtype[33550] = (0.01, 0.01, 0.0), 12
    info[33922], info.tagtype[33922] = (0.0, 0.0, 0.0, 112.9, 23.6, 0.0), 12
    p = tmp_path / "odiac2022_1km_excl_intl_1706.tif"  # June, for a December run
    Image.fromarray(np.ones((80, 80), np.float32), mode="F").save(p, tiffinfo=info)
    good["inventory"] = str(p)
    lines = ci.failures(ci.run_checks(good))
    assert lines == [f"inventory {p}: an ODIAC file of month 06 for a run in month 12: give the run's month"]


@pytest.mark.slow
def test_every_rule_of_a_real_run_waits_for_the_check(good, tmp_path):
    """Dry run of a real configuration: the four parts of the check are the only jobs without a parent.
    (A dry run reads no file: empty stand-ins name the month's ARL files.)"""
    (tmp_path / "met_dry").mkdir()
    for d in pd.date_range("2017-11-30", "2017-12-31"):
        (tmp_path / "met_dry" / f"{d:%Y%m%d}_gz.arl").touch()
    cfg = {"month": "2017-12", "demo": {"enabled": False}, "sites": ["NST", "YXU"], "grid": GRID,
           "results_dir": str(tmp_path / "results"),
           "inputs": {"met_dir": str(tmp_path / "met_dry"), "raw_obs_dir": good["raw_obs_dir"],
                      "inventory": str(EDGAR), "power_generation": good["power"]["generation"],
                      "power_load": good["power"]["load"]}}
    (tmp_path / "real.yaml").write_text(yaml.safe_dump(cfg))
    out = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--forceall", "--configfile",
                          str(tmp_path / "real.yaml"), "--d3dag"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    import json

    dag = json.loads(out.stdout[out.stdout.index("{"):])
    names = {n["id"]: n["value"]["rule"] for n in dag["nodes"]}
    has_parent = {edge["v"] for edge in dag["edges"]}  # u -> v: v needs u
    roots = {names[i] for i in names if i not in has_parent}
    assert roots == {"check_inputs_part"}, roots
    parts = sorted(n["value"]["label"] for n in dag["nodes"] if n["value"]["rule"] == "check_inputs_part")
    assert len(parts) == 4, parts
