"""Explicit ARL file lists (config `inputs.met_files`): files of any names and periods, which a
strftime pattern cannot name (GDAS `gdas1.jan25.w1`), reach pystilt through per-hour links."""

import os

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from gzcarbon.demo.met import met_fields
from transport.arl import check_met_coverage, read_arl_index, write_arl, MetGrid, PRESSURE_LEVELS
from transport.stilt_driver import (LINK_FORMAT, StiltSettings, explicit_met_names,
                                    link_met_hours, run_site_day)

MET = dict(lon_min=111.5, lon_max=115.5, lat_min=21.5, lat_max=25.0, res=0.1)
GRID = dict(lon_min=112.9, lon_max=114.1, lat_min=22.5, lat_max=24.0, res=0.01)


def _write(path, times):
    steps = ((t, *met_fields(t, MET, seed=1)) for t in times)
    return write_arl(path, MetGrid.from_bounds(MET), PRESSURE_LEVELS, steps)


def _weekly_pair(tmp_path, step="1h"):
    """Two files split in the middle of a UTC day, named so that name order is the reverse of
    time order (as `gdas1.dec24.w5` / `gdas1.jan25.w1` would be across a year)."""
    t = pd.date_range("2024-12-31 20:00", "2025-01-01 06:00", freq=step)
    later = _write(tmp_path / "met" / "gdas1.aaa.w1", t[t >= "2025-01-01 02:00"])
    earlier = _write(tmp_path / "met" / "gdas1.zzz.w5", t[t < "2025-01-01 02:00"])
    return [later, earlier]


def test_links_point_each_hour_at_the_files_that_hold_it(tmp_path):
    files = _weekly_pair(tmp_path, step="3h")  # 3-hourly: 20, 23 | 02, 05
    idx = [read_arl_index(f) for f in files]
    met = link_met_hours(idx, "2024-12-31 22:00", "2025-01-01 05:00", tmp_path / "links")
    assert met["file_format"] == LINK_FORMAT and met["file_tres"] == "1h"
    links = {p.name: os.path.realpath(p) for p in (tmp_path / "links").iterdir()}
    by_hour = {}
    for name, target in links.items():
        by_hour.setdefault(name.split("_")[0], set()).add(os.path.basename(target))
    # 00 and 01 lie between the last step of the earlier file (23) and the first of the later (02)
    assert by_hour["2025010101"] == {"gdas1.zzz.w5", "gdas1.aaa.w1"}
    assert by_hour["2024123122"] == {"gdas1.zzz.w5"}
    assert by_hour["2025010105"] == {"gdas1.aaa.w1"}
    assert len(by_hour) == 8  # 22:00 .. 05:00
    # the cache key of a receptor names the real files of its window
    assert explicit_met_names(idx, "2024-12-31 22:30", 1) == ["gdas1.zzz.w5"]
    assert explicit_met_names(idx, "2025-01-01 04:30", 2) == ["gdas1.aaa.w1"]  # 02:00 a step
    # 01:00 is interpolated between 23 (earlier file) and 02 (later file): both are read
    assert sorted(explicit_met_names(idx, "2025-01-01 04:30", 3)) == ["gdas1.aaa.w1",
                                                                       "gdas1.zzz.w5"]
    rec = pd.DataFrame(dict(receptor_id=["A"], time=[pd.Timestamp("2025-01-01 04:30")],
                            lon=113.3, lat=23.1))
    check_met_coverage(files, rec, 6)  # 3-hourly steps cover the window


def test_hysplit_on_an_explicit_list_equals_the_daily_files(tmp_path):
    """The same met as daily pattern-named files and as two weekly-style files split mid-day,
    named in reverse time order: HYSPLIT gives the same footprint, to the byte (runs HYSPLIT:
    50 particles, 6 h, ~5 s)."""
    t = pd.date_range("2024-12-31 20:00", "2025-01-01 06:00", freq="1h")
    daily = [_write(tmp_path / "daily" / "20241231_gz.arl", t[t < "2025-01-01"]),
             _write(tmp_path / "daily" / "20250101_gz.arl", t[t >= "2025-01-01"])]
    weekly = _weekly_pair(tmp_path)
    rec = pd.DataFrame(dict(receptor_id=["YXU_202501010430_50"], site="YXU",
                            time=pd.to_datetime(["2025-01-01 04:30"]), lon=113.28, lat=23.13,
                            agl=50.0))
    settings = StiltSettings(n_hours=6, numpar=50, seed=7, kmixd=0)
    out_d = tmp_path / "fp_daily" / "20250101.nc"
    out_w = tmp_path / "fp_weekly" / "20250101.nc"
    s_d = run_site_day(rec, daily, GRID, settings, out_d, tmp_path / "work_d")
    s_w = run_site_day(rec, weekly, GRID, settings, out_w, tmp_path / "work_w",
                       met_file_format=None)
    assert s_d["n_done"] == s_w["n_done"] == 1, (s_d, s_w)
    with xr.open_dataset(out_d) as a, xr.open_dataset(out_w) as b:
        assert float(a.foot.sum()) > 0.05
        np.testing.assert_array_equal(a.foot.values, b.foot.values)
        np.testing.assert_array_equal(a.foot_total.values, b.foot_total.values)
        assert "gdas1.aaa.w1" in b.attrs["met_files_blake2b"]
        assert "gdas1.zzz.w5" in b.attrs["met_files_blake2b"]
    assert not list((tmp_path / "work_w").glob(".met_links_*"))  # links removed after the job
    # resumable: the cache key names the real files, so a second run reuses the receptor
    s2 = run_site_day(rec, weekly, GRID, settings, out_w, tmp_path / "work_w",
                      met_file_format=None)
    assert s2["n_computed"] == 0 and s2["n_done"] == 1
