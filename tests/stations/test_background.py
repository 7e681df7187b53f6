"""Background: wind sectors, wind from ARL files, upwind-site background vs a known truth,
fallback to the baseline, night-time tower selection."""
import numpy as np
import pandas as pd
import pytest

from stations import background as bgm
from stations import hourly, selection


def test_wind_direction_and_sectors():
    # wind from the north blows southwards: v < 0
    np.testing.assert_allclose(bgm.wind_direction([0, -1, 0, 1, -1], [-1, 0, 1, 0, -1]),
                               [0, 90, 180, 270, 45], atol=1e-12)
    d = np.array([0, 45, 89.9, 90, 180, 300, 350, 359.9])
    assert bgm.in_sectors(d, [[0, 90]]).tolist() == [1, 1, 1, 0, 0, 0, 0, 0]
    assert bgm.in_sectors(d, [[300, 30]]).tolist() == [1, 0, 0, 0, 0, 1, 1, 1]     # wraps north
    assert bgm.in_sectors(d, [[0, 360]]).all()
    assert bgm.in_sectors(d, [[170, 190], [40, 50]]).tolist() == [0, 1, 0, 0, 1, 0, 0, 0]
    with pytest.raises(bgm.BackgroundConfigError, match=r"stations.background.sectors.*\[from, to\]"):
        bgm.settings({"sectors": [[0, 400]]})
    with pytest.raises(bgm.BackgroundConfigError, match=r"stations.background.sites.NST.method"):
        bgm.settings({"sites": {"NST": {"method": "magic"}}}, "NST")
    st = bgm.settings({"upwind_site": "HDU", "sites": {"NST": {"sectors": [[300, 30]]}}}, "NST")
    # typed settings: per-site keys on top of the section's, unset ones inherit (wind_at, speed)
    assert st.upwind_site == "HDU" and st.sectors == [(300, 30)] and st.method == "upwind"
    assert st.wind_at == "upwind_site" and st.min_wind_speed_ms == 1.0 and st.sites == {}


def test_wind_at_sites_reads_arl(tmp_path):
    arlmet = pytest.importorskip("arlmet")
    from transport.arl import MetGrid
    grid = MetGrid(112.0, 116.0, 21.0, 24.0, 0.1)           # 41 x 31 points
    lon, lat = np.meshgrid(grid.lons, grid.lats)
    axis = arlmet.PressureAxis(levels=[0.0, 1000.0])
    p = tmp_path / "20250101_test.arl"
    f = arlmet.File(p, mode="w", source="TEST", grid=grid.arl_grid(), vertical_axis=axis)
    t0 = pd.Timestamp("2025-01-01")
    for h in range(3):
        rs = f.create_recordset(t0 + pd.Timedelta(hours=h), forecast=0)
        fields = {"U10M": (-2.0 - 0.5 * (lon - 112.0)) * (h + 1) / 3,   # linear: bilinear is exact
                  "V10M": np.full(lon.shape, -2.0),
                  "PBLH": 100.0 + 100.0 * (lat - 21.0) + 50 * h}
        for name, data in fields.items():
            rs.create_datarecord(name, 0, forecast=0, data=data.astype(np.float32))
        f.flush()
    f.close()
    w = bgm.wind_at_sites([p], {"A": (113.25, 23.05), "B": (115.0, 22.0)})
    a = w["A"]
    assert list(a.index) == list(pd.date_range(t0, periods=3, freq="h"))
    u_true = (-2.0 - 0.5 * 1.25) * np.arange(1, 4) / 3
    np.testing.assert_allclose(a["u10"], u_true, atol=0.02)
    np.testing.assert_allclose(a["v10"], -2.0, atol=0.02)
    np.testing.assert_allclose(a["pblh"], 100 + 205 + 50 * np.arange(3), atol=1.0)
    np.testing.assert_allclose(a["direction"], np.degrees(np.arctan2(-u_true, 2.0)) % 360, atol=0.5)
    assert (a["direction"] > 0).all() and (a["direction"] < 90).all()   # from the north-east
    with pytest.raises(ValueError, match=r"20250101_test.arl: site C .* outside the grid"):
        bgm.wind_at_sites([p], {"C": (120.0, 22.0)})


def _hours(n=96):
    return pd.date_range("2025-01-01", periods=n, freq="h")


def test_upwind_recovers_truth_and_uncertainty_grows_in_gaps():
    hours = _hours()
    rng = np.random.default_rng(0)
    truth = pd.Series(420 + 3 * np.sin(np.arange(len(hours)) / 12), index=hours)
    up = truth + rng.normal(0, 0.5, len(hours))             # upwind site: background + noise
    sector = pd.Series(True, index=hours)
    sector.iloc[30:40] = False                               # 10 h of wind from the city
    sector.iloc[60:90] = False                               # 30 h: beyond max_gap_hours
    out = bgm.upwind(up, sector, hours, half_window_hours=2, upwind_sigma_ppm=0.3,
                     gap_sigma_ppm_per_hour=0.25, max_gap_hours=12)
    ok = out["gap_hours"] == 0
    err = (out["background"] - truth)[ok]
    # 5-hour mean of noise 0.5: sd 0.22; the curvature of the truth adds < 0.05
    assert abs(err.mean()) < 0.1 and np.sqrt((err ** 2).mean()) < 0.35
    # inside the 10-hour gap: linear interpolation, sigma grows with the distance to data
    g = out.iloc[30:40]
    assert g["gap_hours"].tolist() == [1, 2, 3, 4, 5, 5, 4, 3, 2, 1]
    assert np.all(np.diff(g["background_sigma"].to_numpy()[:5]) > 0)
    np.testing.assert_allclose(g["background_sigma"].iloc[4], np.sqrt(0.3 ** 2 + 1.25 ** 2), atol=1e-12)
    # gap longer than max_gap_hours: NaN (the caller falls back to the baseline)
    far = out.iloc[60:90]
    assert far["background"].isna().sum() == int((far["gap_hours"] > 12).sum()) == 6
    # reported sigma covers the actual error (within a factor 2) where data exist
    assert 0.5 < np.sqrt((err ** 2).mean()) / out.loc[ok, "background_sigma"].mean() < 2


def _table(hours, values_by_site, heights=None):
    rows = []
    for s, v in values_by_site.items():
        rows.append(pd.DataFrame({"site": s, "time": hours, "value": v, "value_std_dev": 0.1,
                                  "nvalue": 100, "qcflag": 0, "intake_height": (heights or {}).get(s, 50.0),
                                  "lon": 113.0, "lat": 23.0}))
    return pd.concat(rows, ignore_index=True)


def test_site_backgrounds_upwind_beats_baseline_and_falls_back():
    hours = _hours(72)
    rng = np.random.default_rng(1)
    truth = pd.Series(425 + 2 * np.cos(np.arange(72) / 10), index=hours)
    lt = (hours.hour + 8) % 24
    city = 8 + 4 * np.cos(2 * np.pi * (lt - 3) / 24)
    tab = _table(hours, {"UP": truth + rng.normal(0, 0.4, 72),
                         "C1": truth + city + rng.normal(0, 2, 72),
                         "C2": truth + 0.5 * city + rng.normal(0, 2, 72)})
    wind_dir = np.where(np.arange(72) < 48, 45.0, 200.0)       # last day: wind from the city
    wind = {"UP": pd.DataFrame({"direction": wind_dir, "speed": 5.0, "pblh": 500.0}, index=hours)}
    cfg = {"method": "upwind", "upwind_site": "UP", "sectors": [[0, 90]], "max_gap_hours": 6}
    b = bgm.site_backgrounds(tab, cfg, wind, background_sigma_ppm=2.0, hours=hours)
    c1 = b["C1"]
    assert (c1["method"].iloc[:54] == "upwind").all() and (c1["method"].iloc[55:] == "baseline").all()
    assert (c1["background_sigma"].iloc[55:] == 2.0).all()
    e_up = bgm.background_error(c1["background"].iloc[:48], truth)
    base = bgm.site_backgrounds(tab, {"method": "baseline"}, None, hours=hours)["C1"]
    e_base = bgm.background_error(base["background"].iloc[:48], truth)
    assert e_up["rms"] < 0.4 < e_base["rms"]
    # per-site override: C2 uses the baseline
    b2 = bgm.site_backgrounds(tab, dict(cfg, sites={"C2": {"method": "baseline"}}), wind, hours=hours)
    np.testing.assert_allclose(b2["C2"]["background"], base["background"])
    assert (b2["C2"]["method"] == "baseline").all()
    # upwind site absent from the run: baseline everywhere, with a warning, no error
    b3 = bgm.site_backgrounds(tab[tab["site"] != "UP"], cfg, wind, hours=hours)
    assert (b3["C1"]["method"] == "baseline").all()
    with pytest.raises(ValueError, match="needs the wind at UP"):
        bgm.site_backgrounds(tab, cfg, None, hours=hours)


def test_night_tower_selection(tmp_path, tower, urban):
    n = 48
    hours = _hours(n)
    d = []
    for site, h in ((tower, 220.0), (urban, 50.0)):
        dd = tmp_path / site["id"]
        dd.mkdir()
        hr = pd.DataFrame({"value": 420.0, "value_std_dev": 0.1, "nvalue": 500, "coverage": 0.9,
                           "qcflag": 0}, index=hours)
        hourly.to_dataset(hr, site, h, "co2", "WMO CO2 X2019").to_netcdf(dd / f"{site['id']}_{h:g}m.nc")
        d.append(dd)
    pbl = pd.Series(np.where(np.arange(n + 1) < 24, 150.0, 400.0),          # day 2: deep night layer
                    index=pd.date_range("2025-01-01", periods=n + 1, freq="h"))
    wind = {s: pd.DataFrame({"direction": 45.0, "speed": 4.0, "pblh": pbl}) for s in ("NST", "YXU")}
    kw = dict(utc_offset_hours=8, select_hours_local=(12, 16), background={"method": "baseline"}, wind=wind)
    day_only = selection.select(d, **kw)
    assert len(day_only) == 2 * 8
    night = selection.select(d, night_tower={"enabled": True, "hours_local": [22, 6]},
                             tower_ids=["NST"], **kw)
    extra = night.merge(day_only, how="left", indicator=True).query("_merge == 'left_only'")
    t = pd.to_datetime(extra["time"]).dt.tz_convert(None)
    # only the tower, only local 22-06 h, only day 1 (PBL 150 m < 220 m); 14-21 UTC = 22-05 LT;
    # hour 23 UTC ends when the PBL is 400 m: not selected
    assert set(extra["site"]) == {"NST"}
    assert sorted(t.dt.hour.tolist()) == list(range(14, 22)) and (t.dt.day == 1).all()
    higher = selection.select(d, night_tower={"enabled": True, "min_height_above_pbl_m": 100},
                              tower_ids=["NST"], **kw)
    assert len(higher) == len(day_only)                      # 220 m is not 100 m above 150 m
