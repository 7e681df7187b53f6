"""Hourly aggregation of a known series, and truth -> raw files -> calibrated hourly values."""
import numpy as np
import pandas as pd
import pytest

import stations
from stations import hourly, qc
from gzcarbon.demo.stations import write_demo_raw

from station_truth import make_truth


def test_demo_signal_shapes_keep_hourly_means():
    from gzcarbon.demo.stations import area_preserving_signal, plateau_signal
    hours = pd.date_range("2025-01-01", periods=30, freq="h")
    y = np.random.default_rng(4).normal(420, 6, 30)
    t = pd.date_range("2025-01-01", periods=30 * 3600, freq="s").to_numpy() + np.timedelta64(500, "ms")
    for f in (plateau_signal, area_preserving_signal):
        v = f(hours, y, t)
        np.testing.assert_allclose(v.reshape(30, 3600).mean(axis=1), y, atol=2e-3)
    v = plateau_signal(hours, y, t).reshape(30, 3600)
    # flat between the ramps (2 min each side of the hour boundaries)
    assert np.ptp(v[:, 130:3470], axis=1).max() < 1e-9


def test_aggregate_known_series():
    dt = 10.0
    t = pd.Timestamp("2025-01-01") + pd.to_timedelta(np.arange(3 * 360) * dt, unit="s")
    v = np.repeat([400.0, 410.0, 420.0], 360) + np.tile(np.arange(360) % 2, 3)   # +0/+1 pattern
    usable = np.ones(len(t), bool)
    usable[720 + 144:] = False                 # third hour: 144 of 360 records = 40 % coverage
    extrap = np.zeros(len(t), bool)
    extrap[0] = True
    hours = pd.date_range("2025-01-01", periods=4, freq="h")
    out = hourly.aggregate(t.to_numpy(), v, usable, extrap, dt, 1.0, 0.5, hours)
    np.testing.assert_allclose(out["value"].to_numpy()[:3], [400.5, 410.5, 420.5])
    np.testing.assert_allclose(out["value_std_dev"].to_numpy()[:2], np.std([0, 1] * 180, ddof=1))
    assert out["nvalue"].tolist() == [360, 360, 144, 0]
    np.testing.assert_allclose(out["coverage"], [1, 1, 0.4, 0])
    assert out["qcflag"].tolist() == [hourly.HOUR_CAL_EXTRAPOLATED, 0, hourly.LOW_COVERAGE, hourly.LOW_COVERAGE]
    assert np.isnan(out["value"].iloc[3])
    # duty 0.25 (inlet sampled a quarter of the time): 90 records = full coverage
    out2 = hourly.aggregate(t.to_numpy()[:90], v[:90], usable[:90], extrap[:90], dt, 0.25, 0.5, hours[:1])
    np.testing.assert_allclose(out2["coverage"], [1.0])


@pytest.fixture(scope="module")
def tower_run(tmp_path_factory, tower):
    d = tmp_path_factory.mktemp("nst")
    truth = make_truth([tower], days=2, seed=5, noise_ppm=3.0)      # hour-to-hour jumps of ppm
    truth.to_csv(d / "truth_signal.csv", index=False)
    write_demo_raw(d / "truth_signal.csv", tower, d / "raw" / "NST", seed=20250101, record_seconds=10.0)
    ing = hourly.process_site(d / "raw" / "NST", tower, flush_seconds=60, min_coverage=0.5,
                              period=("2025-01-01", "2025-01-03"))
    return d, truth, ing


def test_end_to_end_truth_to_hourly(tower_run, tower):
    d, truth, ing = tower_run
    tr = truth.assign(time=pd.to_datetime(truth["time"]).dt.tz_convert(None))
    for h, tol_mean, tol_max in ((220.0, 0.05, 0.15), (50.0, 0.1, 0.4)):
        hr = ing.hourly[h]
        assert len(hr) == 48
        t = tr[tr["intake_height"] == h].set_index("time")
        true_hourly = (t["background"] + t["enhancement"] + t["noise"]).reindex(hr.index)
        good = (hr["qcflag"] & hourly.LOW_COVERAGE) == 0
        assert good.sum() >= 44
        diff = (hr["value"] - true_hourly)[good]
        assert diff.abs().mean() < tol_mean, (h, diff.abs().mean())
        assert diff.abs().max() < tol_max, (h, diff.abs().max())
    assert not ing.calibration.target_summary["exceeds_goal"]
    assert abs(ing.calibration.target_summary["bias"]) < 0.1


def test_every_line_accounted(tower_run):
    _, _, ing = tower_run
    s = ing.summary
    assert (s["lines_read"] == s["lines_truncated"] + s["lines_unparsable"] + s["lines_blank"]
            + s["lines_parsed"]).all()
    assert (s["lines_parsed"] == s["lines_duplicate"] + s["records"]).all()
    assert (s["records"] == s["records_ambient"] + s["records_tank"] + s["records_other_valve"]).all()
    assert (s["records_ambient"] == s["ambient_excluded"] + s["ambient_outside_period"]
            + s["ambient_low_coverage"] + s["ambient_used"]).all()
    assert s["lines_duplicate"].sum() == 15            # one restart overlap after midnight
    assert s["flag_alarm"].sum() > 0 and s["flag_flush"].sum() > 0
    # the records flagged as spikes include the injected ones that survived the other flags
    rec = ing.records
    assert len(rec) == s["records"].sum()


def test_write_and_read_hourly(tower_run, tower, tmp_path):
    _, _, ing = tower_run
    out = tmp_path / "hourly" / "NST"
    paths = hourly.write_hourly_dir(ing, tower, out)
    assert sorted(p.name for p in paths) == ["NST_220m.nc", "NST_50m.nc"]
    assert (out / "ingest_summary.csv").exists() and (out / "calibration_cycles.csv").exists()
    ds = stations.read(out)                             # top inlet by default
    assert ds.attrs["intake_height"] == 220.0 and ds.attrs["site"] == "NST"
    assert ds.attrs["scale"] == "WMO CO2 X2019"
    np.testing.assert_allclose(ds["value"].values, ing.hourly[220.0]["value"].to_numpy())
    assert pd.DatetimeIndex(ds["time"].values)[0] == pd.Timestamp("2025-01-01")
    low = stations.read(out / "NST_50m.nc")
    assert low.attrs["intake_height"] == 50.0
    # ObsPack-style file in mol/mol is converted to ppm
    ob = ds.copy()
    ob["value"] = ob["value"] * 1e-6
    ob["value"].attrs["units"] = "mol mol-1"
    ob.to_netcdf(tmp_path / "obspack.nc")
    back = stations.read(tmp_path / "obspack.nc")
    np.testing.assert_allclose(back["value"].values, ds["value"].values, rtol=1e-12)


def test_read_raw_picarro_calibrated(tower_run, tower):
    d, _, ing = tower_run
    ds = stations.read(d / "raw" / "NST", site=tower)
    assert ds.attrs["calibrated"] == 1 and ds.sizes["time"] == len(ing.records)
    np.testing.assert_allclose(ds["value"].values, ing.records["value"].to_numpy())
    assert set(np.unique(ds["intake_height"].values[np.isfinite(ds["intake_height"].values)])) == {50.0, 220.0}
    raw = stations.read(d / "raw" / "NST")
    assert raw.attrs["calibrated"] == 0
    assert ((raw["qcflag"].values & qc.ALARM) != 0).sum() == ing.summary["flag_alarm"].sum()


def test_all_missing_day_is_flagged_not_lost(tower_run, tower, tmp_path):
    import shutil
    d, _, _ = tower_run
    raw = tmp_path / "raw"
    shutil.copytree(d / "raw" / "NST", raw)
    for f in raw.glob("*-20250102-*.dat"):
        f.unlink()
    ing = hourly.process_site(raw, tower, period=("2025-01-01", "2025-01-03"))
    hr = ing.hourly[220.0]
    day2 = hr.loc["2025-01-02"]
    assert len(day2) == 24 and day2["value"].isna().all() and (day2["nvalue"] == 0).all()
    assert ((day2["qcflag"] & hourly.LOW_COVERAGE) != 0).all()
    assert hr.loc["2025-01-01", "value"].notna().sum() >= 22
    # files outside the period (by their names) are not read, but listed with the reason
    ing1 = hourly.process_site(d / "raw" / "NST", tower, period=("2025-01-01", "2025-01-01T06:00"),
                               margin_hours=1)
    st = ing1.summary["status"]
    assert (st == "read").sum() == 8                    # files 00..07 h (period + 1 h margin)
    assert (st == "outside_period").sum() == 40 and len(st) == 48
    assert ing1.summary.loc[st == "outside_period", "records"].sum() == 0
    assert len(ing1.hourly[220.0]) == 6


def test_bad_site_metadata_gives_clear_error(tower_run, tower):
    d, _, _ = tower_run
    broken = dict(tower, calibration={"tanks": [], "target": None})
    ing = hourly.process_site(d / "raw" / "NST", broken)
    # no tanks: nothing is calibrated, every ambient record is flagged missing, hours low coverage
    assert ing.calibration.cycles.empty
    assert (ing.hourly[220.0]["qcflag"] & hourly.LOW_COVERAGE).all()
    assert ing.summary["flag_missing"].sum() == ing.summary["records"].sum()


def test_already_hourly_inputs(tower_run, tower, tmp_path):
    """A site delivering ObsPack-like NetCDF (one per inlet) goes through the same output."""
    _, _, ing = tower_run
    src = tmp_path / "src"
    hourly.write_hourly_dir(ing, tower, src)
    (src / "ingest_summary.csv").unlink()
    (src / "calibration_cycles.csv").unlink()
    (src / "target_tank.csv").unlink()
    again = hourly.process_site_hourly_files(src, tower, period=("2025-01-01", "2025-01-03"))
    for h in (220.0, 50.0):
        a, b = again.hourly[h], ing.hourly[h]
        ok = (b["qcflag"] & hourly.LOW_COVERAGE) == 0
        np.testing.assert_allclose(a["value"][ok], b["value"][ok])
        assert len(a) == 48
    assert again.summary["lines_read"].tolist() == [48, 48]
    out = tmp_path / "out"
    hourly.write_hourly_dir(again, tower, out)
    assert (out / "NST_220m.nc").exists() and (out / "ingest_summary.csv").exists()
