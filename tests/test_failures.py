"""The bad-input matrix (issue 8 item 5): each bad input gives one clear message naming the file,
the field and what to do — asserted here on the package functions the rule scripts call.

docs/failures.md lists the same cases with the message and the fix. The pipeline-level checks at
the end (marked slow) corrupt a file of a finished tiny run and check what Snakemake reports and
that the documented fix works.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml

from pipeline_conftest import MONTH, ROOT, copy_run, run_snakemake, tiny_config

GRID = {"lon_min": 112.90, "lon_max": 114.10, "lat_min": 22.50, "lat_max": 24.00, "res": 0.01}
SMALL_GRID = {"lon_min": 113.0, "lon_max": 113.2, "lat_min": 23.0, "lat_max": 23.2, "res": 0.01}


def _cut_in_half(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


# --------------------------------------------------------------------------- NetCDF files
def _site_day_file(path: Path, units="ppm / (umol m-2 s-1)") -> Path:
    """A real site-day footprint file (two receptors, 3 hours) in the format of rule footprints."""
    from gzcarbon.grid import Grid
    from transport.stilt_driver import combine

    g = Grid.from_config(SMALL_GRID)
    rng = np.random.default_rng(0)
    dss = []
    for k, rid in enumerate(["NST_202501010530_220", "NST_202501010630_220"]):
        hours = pd.date_range("2025-01-01T03:00", periods=3, freq="h") + pd.Timedelta(hours=k)
        foot = rng.gamma(0.5, 1e-3, (3, g.ny, g.nx)).astype(np.float32)
        dss.append(xr.Dataset(
            {"foot": (("time", "lat", "lon"), foot), "foot_total": (("time",), foot.sum((1, 2)) * 1.1)},
            coords={"time": hours.values, "lat": g.lat, "lon": g.lon},
            attrs={"receptor_id": rid, "release_time": (hours[-1] + pd.Timedelta("30min")).isoformat()}))
    ds = combine(dss, g)
    ds["foot"].attrs["units"] = units
    ds.to_netcdf(path)
    return path


def _receptors():
    return pd.DataFrame({"receptor_id": ["NST_202501010530_220", "NST_202501010630_220"],
                         "site": "NST", "time": ["2025-01-01T05:30:00", "2025-01-01T06:30:00"],
                         "lon": 113.1, "lat": 23.1, "agl": 220.0})


def test_good_site_day_file_is_assembled(tmp_path):
    """The reference for the two cases below: the same file, intact, assembles."""
    from transport.jacobian import assemble

    f = _site_day_file(tmp_path / "20250101.nc")
    H, outside, missing = assemble([f], _receptors(), SMALL_GRID, "2025-01-01T00:00",
                                   "2025-01-02T00:00")[:3]
    with xr.open_dataset(f) as ds:
        np.testing.assert_allclose(H.sum(axis=1).A1, ds["foot"].sum(("time", "lat", "lon")).values,
                                   rtol=1e-6)
    assert not missing.any()


def test_truncated_footprint_file(tmp_path):
    from transport.footprints import FootprintFormatError
    from transport.jacobian import assemble

    f = _cut_in_half(_site_day_file(tmp_path / "20250101.nc"))
    with pytest.raises(FootprintFormatError) as err:
        assemble([f], _receptors(), SMALL_GRID, "2025-01-01T00:00", "2025-01-02T00:00")
    msg = str(err.value)
    assert str(f) in msg and "truncated or corrupt" in msg
    assert "Delete it and re-run with `--forcerun jacobian`" in msg


def test_footprint_of_wrong_units(tmp_path):
    from transport.footprints import FootprintFormatError
    from transport.jacobian import assemble

    f = _site_day_file(tmp_path / "20250101.nc", units="ppm / (mol m-2 s-1)")
    with pytest.raises(FootprintFormatError) as err:
        assemble([f], _receptors(), SMALL_GRID, "2025-01-01T00:00", "2025-01-02T00:00")
    msg = str(err.value)
    assert str(f) in msg and "ppm / (mol m-2 s-1)" in msg and "ppm / (umol m-2 s-1)" in msg
    # a single footprint in unknown units is refused by the general reader too
    g = tmp_path / "one.nc"
    xr.Dataset({"foot": (("time", "lat", "lon"), np.ones((1, 2, 2)), {"units": "s m2 kg-1"})},
               coords={"time": [np.datetime64("2025-01-01T00:00")], "lat": [23.0, 23.01],
                       "lon": [113.0, 113.01]}).to_netcdf(g)
    from transport.footprints import read_footprint
    with pytest.raises(FootprintFormatError, match=r"one.nc: footprint units 's m2 kg-1' unknown"):
        read_footprint(g)


def _prior_file(path: Path, hours: pd.DatetimeIndex) -> Path:
    from gzcarbon.grid import Grid
    from inversion.prior import flux_dataset

    g = Grid.from_config(SMALL_GRID)
    f = np.ones((len(hours), g.ny, g.nx))
    ds = flux_dataset(g, hours, {"industry": f, "road": 0.5 * f}, {"title": "test prior"})
    ds.to_netcdf(path)
    return path


def test_truncated_prior_file(tmp_path):
    from inversion.run import read_flux

    hours = pd.date_range("2025-01-01", periods=24, freq="h")
    good = _prior_file(tmp_path / "good.nc", hours)
    vals, lat, lon = read_flux(good, "prior", hours)
    assert vals.shape == (24, 20, 20) and np.allclose(vals, 1.5)
    bad = _cut_in_half(_prior_file(tmp_path / "prior.nc", hours))
    with pytest.raises(ValueError, match=r"prior .*prior.nc: cannot be opened as NetCDF"):
        read_flux(bad, "prior", hours)


def _inventory_file(path: Path, grid: dict) -> Path:
    from gzcarbon.grid import Grid
    from inversion.inventory import inventory_dataset, write_inventory

    g = Grid.from_config(grid)
    e = np.full((g.ny, g.nx), 1e-8)
    ds = inventory_dataset(g, {s: e for s in ("industry", "road", "residential")},
                           {s: np.ones(24) for s in ("industry", "road", "residential")},
                           np.zeros((24, g.ny, g.nx)),
                           {"title": "t", "institution": "t", "source": "t", "utc_offset_hours": 8})
    write_inventory(ds, path)
    return path


def test_truncated_inventory(tmp_path):
    from inversion.inventory import InventoryError, read_inventory

    f = _cut_in_half(_inventory_file(tmp_path / "inventory.nc", SMALL_GRID))
    with pytest.raises(InventoryError, match=r"inventory .*inventory.nc: cannot be opened as NetCDF"):
        read_inventory(f)


def test_inventory_on_a_different_grid(tmp_path):
    from gzcarbon.grid import Grid
    from inversion.inventory import InventoryError, read_inventory

    coarse = dict(SMALL_GRID, res=0.05)
    f = _inventory_file(tmp_path / "inventory.nc", coarse)
    assert read_inventory(f, Grid.from_config(coarse))["emi_road"].shape == (4, 4)
    with pytest.raises(InventoryError) as err:
        read_inventory(f, Grid.from_config(SMALL_GRID))
    msg = str(err.value)
    assert "inventory.nc is on a different grid" in msg and "Regrid the inventory" in msg
    assert "0.05" in msg and "0.01" in msg   # both grids are described


# --------------------------------------------------------------------------- raw analyser files
def _records(start="2025-01-01T00:00:00", n=720, dt=5.0, co2=420.0) -> pd.DataFrame:
    """Picarro records every ``dt`` s (ambient valve 1)."""
    from stations.picarro import G2401_COLUMNS

    t0 = pd.Timestamp(start).timestamp()
    df = pd.DataFrame({c: 0.0 for c in G2401_COLUMNS if c not in ("DATE", "TIME")}, index=range(n))
    df["EPOCH_TIME"] = t0 + dt * np.arange(n)
    df["CavityPressure"], df["CavityTemp"], df["MPVPosition"] = 140.0, 45.0, 1.0
    df["CO2"] = df["CO2_dry"] = co2 + np.arange(n) * 1e-3
    df["CH4"] = df["CH4_dry"] = 2.0
    return df


def test_raw_file_with_a_missing_column(tmp_path):
    from stations.picarro import PicarroFormatError, format_records, read_raw

    text = format_records(_records())
    lines = [ln.split() for ln in text.splitlines()]
    k = lines[0].index("MPVPosition")
    f = tmp_path / "SN1-20250101-000000Z-DataLog_User.dat"
    f.write_text("\n".join(" ".join(r[:k] + r[k + 1:]) for r in lines) + "\n")
    with pytest.raises(PicarroFormatError) as err:
        read_raw(tmp_path)
    msg = str(err.value)
    assert str(f) in msg and "lacks column(s) MPVPosition" in msg and "Export the DataLog_User" in msg


def test_duplicated_and_unsorted_times_are_removed_sorted_and_counted(tmp_path):
    from stations.picarro import read_raw, write_dat

    rec = _records(n=100)
    # file 2 repeats the last 10 records of file 1 (an analyser restart) and has 5 records swapped
    a, b = rec.iloc[:60], pd.concat([rec.iloc[50:60], rec.iloc[60:]])
    b = pd.concat([b.iloc[:20], b.iloc[20:25].iloc[::-1], b.iloc[25:]])
    write_dat(tmp_path / "SN1-20250101-000000Z-DataLog_User.dat", a)
    write_dat(tmp_path / "SN1-20250101-000500Z-DataLog_User.dat", b)
    rr = read_raw(tmp_path)
    assert len(rr.records) == 100
    assert np.all(np.diff(rr.records["EPOCH_TIME"].to_numpy()) > 0)
    np.testing.assert_array_equal(rr.records["EPOCH_TIME"].to_numpy(), rec["EPOCH_TIME"].to_numpy())
    s = rr.summary.set_index("file")
    assert s["lines_duplicate"].tolist() == [0, 10]
    assert s["lines_out_of_order"].sum() == 4   # 5 reversed records: 4 come after a later one
    assert (s["lines_parsed"] == s["lines_duplicate"] + s["records"]).all()


def test_local_time_stamps_are_refused(tmp_path):
    from stations.picarro import PicarroFormatError, read_raw, write_dat

    rec = _records()
    local = pd.to_datetime(rec["EPOCH_TIME"], unit="s") + pd.Timedelta(hours=8)
    rec["DATE"], rec["TIME"] = local.dt.strftime("%Y-%m-%d"), local.dt.strftime("%H:%M:%S.000")
    f = tmp_path / "SN1-20250101-000000Z-DataLog_User.dat"
    write_dat(f, rec)
    with pytest.raises(PicarroFormatError) as err:
        read_raw(tmp_path)
    msg = str(err.value)
    assert str(f) in msg and "+8.00 h" in msg and "logs local time" in msg and "Set the analyser to UTC" in msg


def _hourly_dir(path: Path, site: str, lon: float, values: np.ndarray, hours) -> Path:
    path.mkdir(parents=True)
    n = len(hours)
    xr.Dataset({"value": ("time", values), "value_std_dev": ("time", np.full(n, 0.2)),
                "nvalue": ("time", np.full(n, 600)), "qcflag": ("time", np.zeros(n, np.int64))},
               coords={"time": hours.values},
               attrs={"site": site, "lon": lon, "lat": 23.1, "intake_height": 50.0,
                      "elevation": 10.0, "scale": "WMO CO2 X2019"}).to_netcdf(path / f"{site}_50m.nc")
    return path


def test_nan_only_day(tmp_path):
    """A day where one site has no valid value drops that site-day only; no values at all stops."""
    from stations.selection import select

    hours = pd.date_range("2025-01-01", periods=48, freq="h")
    a = 420 + np.arange(48) * 0.01
    a[24:] = np.nan                      # site A: 2 January is NaN only
    da = _hourly_dir(tmp_path / "A", "AAA", 113.1, a, hours)
    db = _hourly_dir(tmp_path / "B", "BBB", 113.3, 421 + np.arange(48) * 0.01, hours)
    sel = select([da, db], utc_offset_hours=8, select_hours_local=(12, 16))
    day = pd.to_datetime(sel["time"]).dt.day
    assert set(sel.loc[day == 1, "site"]) == {"AAA", "BBB"}
    assert set(sel.loc[day == 2, "site"]) == {"BBB"}
    assert np.isfinite(sel["value"]).all() and np.isfinite(sel["background"]).all()
    dn = _hourly_dir(tmp_path / "N", "NNN", 113.2, np.full(48, np.nan), hours)
    with pytest.raises(ValueError, match="no usable hourly values in any site"):
        select([dn], utc_offset_hours=8, select_hours_local=(12, 16))


# --------------------------------------------------------------------------- meteorology
MET_BOUNDS = {"lon_min": 111.5, "lon_max": 115.5, "lat_min": 21.5, "lat_max": 25.0, "res": 0.1}


@pytest.fixture(scope="module")
def full_met_day(tmp_path_factory):
    """ARL met of 2025-01-01 00..08 UTC, every hour."""
    from gzcarbon.demo.met import write_met_day

    d = tmp_path_factory.mktemp("met_full")
    write_met_day(d / "20250101_gz.arl", "2025-01-01", MET_BOUNDS, seed=3, hours=list(range(9)))
    return d / "20250101_gz.arl"


@pytest.fixture(scope="module")
def met_day(tmp_path_factory):
    """ARL met of 2025-01-01 00..08 UTC with 04 UTC missing (written ~0.5 s)."""
    from gzcarbon.demo.met import write_met_day

    d = tmp_path_factory.mktemp("met")
    write_met_day(d / "20250101_gz.arl", "2025-01-01", MET_BOUNDS, seed=3,
                  hours=[0, 1, 2, 3, 5, 6, 7, 8])
    return d / "20250101_gz.arl"


def test_met_file_missing_one_hour(met_day):
    from transport.arl import MetCoverageError, check_met_coverage

    rec = _receptors().assign(time=["2025-01-01T02:30:00", "2025-01-01T06:30:00"])
    check_met_coverage([met_day], rec.iloc[:1], -2)            # 00..03 UTC present
    with pytest.raises(MetCoverageError) as err:
        check_met_coverage([met_day], rec, -2)
    msg = str(err.value)
    assert re.search(r"lacks? 1 hour\(s\)", msg) and "2025-01-01 04:00" in msg
    assert "20250101_gz.arl" in msg
    assert "NST_202501010630_220" in msg and "Add the ARL files" in msg


def test_receptor_outside_the_met_domain(met_day):
    from transport.arl import MetCoverageError, check_met_coverage

    rec = _receptors().assign(time="2025-01-01T02:30:00", lon=[113.1, 117.2])
    with pytest.raises(MetCoverageError) as err:
        check_met_coverage([met_day], rec, -2)
    msg = str(err.value)
    assert "outside the met domain" in msg and "NST_202501010630_220 (117.200E" in msg
    assert "Widen the met domain" in msg


def test_hysplit_failing_on_one_receptor_is_recorded_not_fatal(full_met_day, tmp_path):
    """Real HYSPLIT runs: the receptor outside the met grid fails, the other one is kept, the
    failure is listed, and a re-run retries only the failed receptor."""
    from transport.stilt_driver import StiltSettings, run_site_day

    rec = _receptors().assign(time=["2025-01-01T05:30:00", "2025-01-01T06:30:00"],
                              lon=[113.1, 118.0])
    settings = StiltSettings(n_hours=2, numpar=10, seed=7)
    out, work = tmp_path / "NST" / "20250101.nc", tmp_path / "work"
    grid = dict(SMALL_GRID, lon_min=112.9, lon_max=113.3)
    met_day = full_met_day
    s = run_site_day(rec, [met_day], grid, settings, out, work, check_met=False)
    assert (s["n_receptors"], s["n_done"], s["n_failed"]) == (2, 1, 1)
    fails = pd.read_csv(out.with_name("20250101_failures.csv"))
    assert fails["receptor_id"].tolist() == ["NST_202501010630_220"]
    assert "SimulationError" in fails["error"].iloc[0]
    with xr.open_dataset(out) as ds:
        assert ds["receptor"].values.tolist() == ["NST_202501010530_220"]
        assert ds.attrs["failed_receptors"] == "NST_202501010630_220"
        assert float(ds["foot"].sum()) > 0
    cache = work / "NST_202501010530_220.nc"
    m0 = cache.stat().st_mtime_ns
    s2 = run_site_day(rec, [met_day], grid, settings, out, work, check_met=False)
    assert (s2["n_computed"], s2["n_failed"]) == (0, 1)       # cached one reused, failed one retried
    assert cache.stat().st_mtime_ns == m0


# --------------------------------------------------------------------------- registry and config
def test_plant_in_an_unknown_district(tmp_path):
    from power.registry import PowerInputError, read_plants

    text = (ROOT / "config/power_plants.csv").read_text()
    assert text.count(",Huangpu,113.498,") == 1
    f = tmp_path / "plants.csv"
    f.write_text(text.replace(",Huangpu,113.498,", ",Tianhee,113.498,"))
    with pytest.raises(PowerInputError) as err:
        read_plants(str(f))
    msg = str(err.value)
    line = 1 + next(i for i, ln in enumerate(text.splitlines()) if ln.startswith("HY_EAST,"))
    assert f"{f}, row {line}" in msg and "unknown district 'Tianhee'" in msg and "'Tianhe'" in msg


def _dry_run_with(tmp_path, edit) -> str:
    cfg = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    edit(cfg)
    f = tmp_path / "bad.yaml"
    f.write_text(yaml.safe_dump(cfg))
    proc = run_snakemake(tmp_path, f, "--dry-run", timeout=300)
    assert proc.returncode != 0
    return proc.stdout + proc.stderr


def test_config_typo_in_a_section(tmp_path):
    def edit(cfg):
        cfg.setdefault("transport", {})["numpars"] = 100
    msg = _dry_run_with(tmp_path, edit)
    assert "Configuration error" in msg and "config key 'transport'" in msg
    assert "unknown key 'numpars'" in msg and "numpar" in msg.split("Allowed keys here:")[1]
    assert "Missing output" not in msg and "jobid" not in msg   # stopped before any job


def test_config_unknown_site(tmp_path):
    msg = _dry_run_with(tmp_path, lambda cfg: cfg.update(sites=["NTS"]))
    assert "config key 'sites': unknown site id(s) ['NTS']" in msg and "'NST'" in msg


def test_config_diurnal_corr_below_positive_definite_limit(tmp_path):
    msg = _dry_run_with(tmp_path, lambda cfg: cfg.setdefault("inversion", {}).update(diurnal_corr=-0.5))
    assert "config key 'inversion.diurnal_corr': -0.5 must be > -0.3333" in msg and "4 steps per day" in msg
    assert "jobid" not in msg


def test_config_unknown_upwind_background_site(tmp_path):
    def edit(cfg):
        cfg.setdefault("stations", {})["background"] = {"sites": {"YXU": {"method": "upwind", "upwind_site": "XXX"}}}
    msg = _dry_run_with(tmp_path, edit)
    assert "config key 'stations.background.sites.YXU.upwind_site': 'XXX' is not a site" in msg
    assert "'CHU'" in msg and "jobid" not in msg


# --------------------------------------------------------------------------- pipeline level
@pytest.mark.slow
def test_pipeline_truncated_footprint_is_named_and_fixed_by_deleting(tiny_reference_run, tmp_path):
    """A site-day file cut in half after a finished run: the Jacobian job stops with the message
    naming the file; the documented fix (delete it, re-run with --forcerun jacobian) recomputes
    that site-day from the receptor cache (no HYSPLIT run) and the run completes with the same
    products. (Deleting alone is not enough once the products exist: Snakemake does not rebuild
    a missing intermediate file whose consumers are up to date.)"""
    from pipeline_conftest import product_differences

    run = copy_run(tiny_reference_run, tmp_path / "run")
    cfg = tiny_config(run)
    fp = run / "results" / MONTH / "footprints" / "NST" / "20250101.nc"
    mtime = fp.stat().st_mtime_ns
    _cut_in_half(fp)
    os.utime(fp, ns=(mtime, mtime))          # silent corruption: Snakemake sees nothing new
    mtime_only = ("--rerun-triggers", "mtime")   # ignore code edits made since the reference run
    proc = run_snakemake(run, cfg, "--forcerun", "jacobian", *mtime_only)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "Error in rule jacobian" in out and "logs/2025-01/jacobian.log" in out
    log = (run / "logs" / MONTH / "jacobian.log").read_text() + out
    assert "footprints/NST/20250101.nc: cannot be opened as NetCDF" in log
    assert "Delete it and re-run with `--forcerun jacobian`" in log
    fp.unlink()
    proc = run_snakemake(run, cfg, "--forcerun", "jacobian", *mtime_only)
    assert proc.returncode == 0, proc.stderr[-3000:]
    flog = (run / "logs" / MONTH / "footprints_NST_20250101.log").read_text()
    assert flog.count("cached") == 2 and "trajectories" not in flog
    assert product_differences(tiny_reference_run, run) == []
