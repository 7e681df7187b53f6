"""Background method `model`: the selection takes each hour's background from the receptor table of
transport.boundary (the model boundary sampled at the particles' exit points), with σ² = sigma_ppm²
+ spread²/n and the inflow-side shares; hours without a receptor fall back to the baseline."""
import numpy as np
import pandas as pd
import pytest

from stations import background as bgm
from stations import hourly, selection


def _dirs(tmp_path, tower, urban, hours):
    d = []
    for site, h, v in ((tower, 220.0, 421.0), (urban, 50.0, 430.0)):
        dd = tmp_path / site["id"]
        dd.mkdir()
        hr = pd.DataFrame({"value": v, "value_std_dev": 0.1, "nvalue": 500, "coverage": 0.9, "qcflag": 0},
                          index=hours)
        hourly.to_dataset(hr, site, h, "co2", "WMO CO2 X2019").to_netcdf(dd / f"{site['id']}_{h:g}m.nc")
        d.append(dd)
    return d


def test_selection_takes_the_model_boundary_of_each_receptor(tmp_path, tower, urban):
    hours = pd.date_range("2025-01-01", periods=48, freq="h")
    d = _dirs(tmp_path, tower, urban, hours)
    kw = dict(utc_offset_hours=8, select_hours_local=(12, 16), wind={})
    base = selection.select(d, background={"method": "baseline"}, **kw)
    rng = np.random.default_rng(0)
    rows = []
    for _, r in base.iterrows():
        if r["site"] == tower["id"] and pd.Timestamp(r["time"]).hour == 5:
            continue  # this receptor failed: its hours fall back to the baseline
        sh = rng.dirichlet([1.0] * 4)
        rows.append({"receptor_id": f"{r['site']}_{r['time']}", "site": r["site"],
                     "time": pd.Timestamp(r["time"]).tz_localize(None) + pd.Timedelta("30min"),
                     "background": 418.0 + rng.normal(0, 1), "background_spread": 0.8, "n_particles": 16,
                     "share_left": 0.7, **{f"share_{s}": sh[j] for j, s in enumerate(bgm.SIDES)}})
    table = pd.DataFrame(rows)
    sel = selection.select(d, background={"method": "model", "model": {"sigma_ppm": 0.6}},
                           model_background=table, **kw)
    assert len(sel) == len(base) == 16
    key = table.assign(time=(table["time"] - pd.Timedelta("30min")).dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
    m = sel.merge(key, on=["site", "time"], how="left", suffixes=("", "_rec"))
    have = m["background_rec"].notna().to_numpy()
    assert have.sum() == 14
    np.testing.assert_allclose(m.loc[have, "background"], m.loc[have, "background_rec"], atol=1e-4)
    np.testing.assert_allclose(m.loc[have, "background_sigma"], np.sqrt(0.6 ** 2 + 0.8 ** 2 / 16), atol=1e-4)
    for s in bgm.SIDES:
        np.testing.assert_allclose(m.loc[have, f"bg_share_{s}"], m.loc[have, f"share_{s}"], atol=1e-4)
    # the failed receptor's hours: the baseline, its sigma, equal shares
    miss = ~have
    np.testing.assert_allclose(m.loc[miss, "background"], base.set_index(["site", "time"]).loc[
        list(zip(m.loc[miss, "site"], m.loc[miss, "time"])), "background"], atol=1e-4)
    assert (m.loc[miss, [f"bg_share_{s}" for s in bgm.SIDES]] == 0.25).all().all()
    assert np.allclose(sel[[f"bg_share_{s}" for s in bgm.SIDES]].sum(axis=1), 1.0, atol=1e-3)
    # the baseline method writes no share columns (selected.csv as before)
    assert not any(c.startswith("bg_share_") for c in base.columns)


def test_model_method_without_the_table_stops(tmp_path, tower, urban):
    hours = pd.date_range("2025-01-01", periods=24, freq="h")
    d = _dirs(tmp_path, tower, urban, hours)
    with pytest.raises(ValueError, match=r"method is model but no model boundary was given"):
        selection.select(d, utc_offset_hours=8, select_hours_local=(12, 16), background={"method": "model"}, wind={})


def test_model_site_series_takes_iso_times_with_z_as_utc():
    """A receptor table as transport.boundary.receptor_backgrounds returns it (time 'YYYY-MM-DDTHH:MM:SSZ'
    strings): the hours are naive UTC, release 05:30 -> hour 05:00 (failed before: tz-aware index)."""
    t = pd.DataFrame({"site": ["NST"], "time": ["2025-01-01T05:30:00Z"], "background": [428.0],
                      "background_spread": [0.3], "n_particles": [9], "share_N": [0.0], "share_E": [1.0],
                      "share_S": [0.0], "share_W": [0.0]})
    s = bgm.model_site_series(t, 0.4)["NST"]
    assert s.index.tz is None and s.index[0] == pd.Timestamp("2025-01-01T05:00")
    assert s.loc[pd.Timestamp("2025-01-01T05:00"), "background_sigma"] == pytest.approx(np.sqrt(0.16 + 0.09 / 9))
