"""HYSPLIT-STILT end to end for one receptor on a small synthetic met (slow: runs HYSPLIT)."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from transport.stilt_driver import StiltSettings, run_site_day
from gzcarbon.demo.met import write_met_day

MET = dict(lon_min=111.5, lon_max=115.5, lat_min=21.5, lat_max=25.0, res=0.1)
GRID = dict(lon_min=112.9, lon_max=114.1, lat_min=22.5, lat_max=24.0, res=0.01)


@pytest.mark.slow
def test_one_receptor_footprint_cached_and_failure_recorded(tmp_path):
    met = tmp_path / "met"
    files = [write_met_day(met / "20241231_gz.arl", "2024-12-31", MET, seed=1, hours=range(20, 24)),
             write_met_day(met / "20250101_gz.arl", "2025-01-01", MET, seed=1, hours=range(0, 6))]
    rec = pd.DataFrame(dict(receptor_id=["YXU_202501010430_50", "YXU_202501020430_50"],
                            site="YXU", time=pd.to_datetime(["2025-01-01 04:30",
                                                             "2025-01-02 04:30"]),
                            lon=113.28, lat=23.13, agl=50.0))
    settings = StiltSettings(n_hours=6, numpar=50, seed=7, kmixd=0)
    out = tmp_path / "fp" / "YXU" / "20250101.nc"
    s = run_site_day(rec, files, GRID, settings, out, tmp_path / "work", check_met=False)
    # the second receptor has no met: recorded, not fatal
    assert s["n_done"] == 1 and s["n_failed"] == 1
    fails = pd.read_csv(out.with_name("20250101_failures.csv"))
    assert list(fails.receptor_id) == ["YXU_202501020430_50"]
    with xr.open_dataset(out) as ds:
        foot = ds.foot.sel(receptor="YXU_202501010430_50")
        assert ds.foot.dtype == np.float32
        assert foot.min() >= 0 and float(foot.sum()) > 0.05
        times = pd.to_datetime(ds.time.values)
        assert times[-1] == pd.Timestamp("2025-01-01 04:00") and len(times) == 7
        # grid sum never exceeds the total sensitivity of the hour
        gs = foot.sum(("lat", "lon")).values
        tot = ds.foot_total.sel(receptor="YXU_202501010430_50").values
        assert np.all(gs <= tot * (1 + 1e-4) + 1e-9)
        # the hour of release (first 30 min) is near the site: all of its mass is in the grid
        assert gs[-1] == pytest.approx(tot[-1], rel=1e-3)
        first = ds.foot.values.copy()
    # resumable: the finished receptor comes from the cache, bytes identical
    s2 = run_site_day(rec.iloc[:1], files, GRID, settings, out, tmp_path / "work", check_met=False)
    assert s2["n_computed"] == 0 and s2["n_done"] == 1
    with xr.open_dataset(out) as ds:
        np.testing.assert_array_equal(ds.foot.values, first)
    # deterministic: a fresh run in another work directory gives the same footprint
    out2 = tmp_path / "fp2" / "YXU" / "20250101.nc"
    run_site_day(rec.iloc[:1], files, GRID, settings, out2, tmp_path / "work2", check_met=False)
    with xr.open_dataset(out2) as ds:
        np.testing.assert_array_equal(ds.foot.values, first)
