"""Selection keeps exactly the well-mixed local hours of the top inlets; basic background."""
import numpy as np
import pandas as pd

from stations import hourly, selection


def write_site(tmp, site, values_by_height, qcflag=None):
    d = tmp / site["id"]
    d.mkdir()
    for h, v in values_by_height.items():
        hours = pd.date_range("2025-01-01", periods=len(v), freq="h")
        hr = pd.DataFrame({"value": v, "value_std_dev": 0.1, "nvalue": 500, "coverage": 0.9,
                           "qcflag": 0 if qcflag is None else qcflag}, index=hours)
        hourly.to_dataset(hr, site, h, "co2", "WMO CO2 X2019").to_netcdf(d / f"{site['id']}_{h:g}m.nc")
    return d


def test_selection_hours_and_background(tmp_path, tower, urban):
    n = 48
    bg = 420 + 0.02 * np.arange(n)
    lt = (np.arange(n) + 8) % 24
    enh_urban = 5 + 3 * np.cos(2 * np.pi * lt / 24)
    flags = np.zeros(n, int)
    flags[5] = hourly.LOW_COVERAGE                     # 13 LT on day 1 at the urban site: dropped
    d1 = write_site(tmp_path, tower, {220.0: bg.copy(), 50.0: bg + 9.0})
    d2 = write_site(tmp_path, urban, {50.0: bg + enh_urban}, qcflag=flags)
    sel = selection.select([d1, d2], utc_offset_hours=8, select_hours_local=(12, 16),
                           background_sigma_ppm=2.0, half_window_hours=2,
                           background={"method": "baseline"})
    assert list(sel.columns) == selection.COLUMNS
    t = pd.to_datetime(sel["time"])
    assert sorted(set(((t.dt.hour + 8) % 24).tolist())) == [12, 13, 14, 15]
    assert sorted(set(t.dt.hour.tolist())) == [4, 5, 6, 7]
    assert (sel["site"] == "NST").sum() == 8 and (sel["site"] == "YXU").sum() == 7
    assert set(sel.loc[sel["site"] == "NST", "intake_height"]) == {220.0}
    # the tower's top inlet is the minimum: the background recovers bg (a linear ramp) to within
    # the ramp over the smoothing window (running min of a rising series lags by 2 h)
    exp = 420 + 0.02 * (t.dt.hour + 24 * (t.dt.day - 1)).to_numpy()
    assert np.abs(sel["background"] - exp).max() <= 0.02 * 2 + 1e-9
    assert (sel["background_sigma"] == 2.0).all()


def test_local_window_wraps_midnight():
    t = pd.Series(pd.date_range("2025-01-01", periods=24, freq="h"))
    m = selection.in_local_window(t, 8, (22, 2))          # 22, 23, 0, 1 LT = 14, 15, 16, 17 UTC
    assert np.flatnonzero(m).tolist() == [14, 15, 16, 17]


def test_nan_only_day_is_reported(caplog):
    import logging

    import numpy as np
    import pandas as pd

    from stations.selection import _warn_empty_days

    t = pd.date_range("2025-01-01T04:00", periods=52, freq="h")  # two days + 4 hours
    tab = pd.DataFrame({"site": "YXU", "time": t})
    window = ((t.hour + 8) % 24 >= 12) & ((t.hour + 8) % 24 < 16)
    ok = np.ones(len(t), bool)
    ok[(t >= "2025-01-02") & (t < "2025-01-03")] = False  # NaN-only 2 January (UTC)
    with caplog.at_level(logging.WARNING):
        empty = _warn_empty_days(tab, np.asarray(window), ok, 8)
    assert empty == [("YXU", "2025-01-02")]
    assert "no usable hourly value on 2025-01-02" in caplog.text
