"""Plausibility of observations (issue 13, item 7 and 2): range, ppm->ppb switch, stuck analyser,
hourly steps, dry mole fraction, target tank. Each test changes the demo's clean raw files the way
a fault would and checks what reaches the hourly files and the selection."""
import logging
import shutil

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from stations import calibration, hourly, picarro, plausibility, qc, selection
from gzcarbon.demo.stations import write_demo_raw

from station_truth import make_truth

PERIOD = ("2025-01-01", "2025-01-02")
HOUR = "2025-01-01 05:00"                # 13 h local: inside the selection window [12, 16)


@pytest.fixture(scope="module")
def clean(tmp_path_factory, urban):
    d = tmp_path_factory.mktemp("yxu")
    truth = make_truth([urban], days=1, seed=3, noise_ppm=3.0)
    write_demo_raw(truth, urban, d / "raw", seed=11, record_seconds=10.0)
    ing = hourly.process_site(d / "raw", urban, period=PERIOD)
    return d, ing


def _copy(clean, tmp_path):
    d, _ = clean
    raw = tmp_path / "raw"
    shutil.copytree(d / "raw", raw)
    return raw


def _hour_file(raw, hour=HOUR):
    return next(raw.glob(f"*-{pd.Timestamp(hour):%Y%m%d-%H%M%S}Z-DataLog_User.dat"))


def _rewrite(path, fn):
    rec = picarro.read_raw(path).records
    rec = fn(rec.copy())
    picarro.write_dat(path, rec)


def _hourly_dir(path, site, values, hours, species="co2"):
    path.mkdir(parents=True)
    n = len(hours)
    xr.Dataset({"value": ("time", values), "value_std_dev": ("time", np.full(n, 0.2)),
                "nvalue": ("time", np.full(n, 600)), "qcflag": ("time", np.zeros(n, np.int64))},
               coords={"time": hours.values},
               attrs={"site": site, "lon": 113.2, "lat": 23.1, "intake_height": 50.0, "species": species,
                      "elevation": 10.0, "scale": "WMO CO2 X2019"}).to_netcdf(path / f"{site}_50m.nc")
    return path


def test_demo_raw_files_lose_no_hour(clean):
    """False-positive rate on the demo's clean raw files: no record flagged range/unit/stuck/target,
    no hour flagged by a plausibility test; every hour usable before is usable now."""
    _, ing = clean
    s = ing.summary
    for name in ("range", "unit", "stuck", "target"):
        assert s[f"flag_{name}"].sum() == 0, name
    q = ing.hourly[50.0]["qcflag"].to_numpy()
    for b in (hourly.HOUR_IMPLAUSIBLE_RECORDS, hourly.HOUR_OUT_OF_RANGE, hourly.HOUR_STEP, hourly.HOUR_TARGET):
        assert ((q & b) == 0).all(), b
    assert ((q & hourly.HOUR_EXCLUDE) == 0).sum() == ((q & hourly.LOW_COVERAGE) == 0).sum() == 24
    assert (s["status"] == "read").all() and (s["serial"] == "CFKADS2002").all()


def test_10000_ppm_hour_flagged_and_never_selected(clean, urban, tmp_path):
    """A 10,000 ppm hour in the raw files: flagged 'range', the hour not usable, absent from the
    selection; the other hours' values are unchanged."""
    _, base = clean
    raw = _copy(clean, tmp_path)
    f = _hour_file(raw)

    def spike(rec):
        amb = rec["MPVPosition"].round() == 1
        rec.loc[amb, "CO2_dry"] = 10000.0
        return rec
    _rewrite(f, spike)
    ing = hourly.process_site(raw, urban, period=PERIOD)
    row = ing.summary.set_index("file").loc[f.name]
    assert row["flag_range"] == row["records_ambient"] > 300
    assert row["ambient_used"] == 0
    hr, hb = ing.hourly[50.0], base.hourly[50.0]
    q = hr.loc[HOUR, "qcflag"]
    assert q & hourly.LOW_COVERAGE and q & hourly.HOUR_IMPLAUSIBLE_RECORDS
    assert np.isnan(hr.loc[HOUR, "value"])
    # hours not adjacent: bit for bit; the adjacent ones within 0.05 ppm (the spike filter's
    # running windows no longer see the flagged records across the hour boundary)
    far = np.abs((hr.index - pd.Timestamp(HOUR)) / pd.Timedelta(hours=1)) > 1
    np.testing.assert_array_equal(hr["value"][far], hb["value"][far])
    near = pd.DatetimeIndex([pd.Timestamp(HOUR) - pd.Timedelta(hours=1), pd.Timestamp(HOUR) + pd.Timedelta(hours=1)])
    np.testing.assert_allclose(hr["value"][near], hb["value"][near], atol=0.05)
    assert ((hr["qcflag"][near] & hourly.HOUR_EXCLUDE) == 0).all()
    assert (hr["value"].dropna() < 1500).all()
    out = tmp_path / "hourly"
    hourly.write_hourly_dir(ing, urban, out)
    with xr.open_dataset(out / "YXU_50m.nc") as ds:
        assert ds.attrs["hours_implausible_records"] == 1 and ds.attrs["hours_low_coverage"] == 1
        assert ds.attrs["hours_usable"] == 23
    sel = selection.select([out], background={"method": "baseline"})
    t = pd.to_datetime(sel["time"]).dt.tz_localize(None)
    assert pd.Timestamp(HOUR) not in set(t)
    assert len(sel) == 3 and (sel["value"] < 1500).all()
    assert sel.attrs["dropped"]["YXU"]["low_coverage"] == 1


def test_selection_refuses_unflagged_implausible_hour(tmp_path):
    """An hourly file from elsewhere with a 10,000 ppm hour and qcflag 0: not selected, not in the
    background; the neighbouring hours are selected with the same values."""
    hours = pd.date_range("2025-01-01", periods=24, freq="h")
    v = 420 + np.arange(24) * 0.1
    v[5] = 10000.0
    d = _hourly_dir(tmp_path / "A", "AAA", v, hours)
    sel = selection.select([d], background={"method": "baseline"})
    t = pd.to_datetime(sel["time"]).dt.tz_localize(None)
    assert list(t) == [hours[4], hours[6], hours[7]]
    np.testing.assert_allclose(sel["value"], v[[4, 6, 7]], atol=1e-4)
    assert sel["background"].max() < 425
    assert sel.attrs["dropped"]["AAA"]["implausible_unflagged"] == 1


def test_hourly_files_range_and_step(tmp_path, urban):
    """Already-hourly inputs: a 10,000 ppm hour is flagged out_of_range; a 1200 ppm hour between
    430 ppm hours (inside the range) is flagged as an isolated step; 100 ppm rises are not."""
    hours = pd.date_range("2025-01-01", periods=24, freq="h")
    v = 430 + np.zeros(24)
    v[3] = 10000.0
    v[10] = 1200.0
    v[15:18] = [530.0, 600.0, 520.0]        # a real urban evening build-up: kept
    d = _hourly_dir(tmp_path / "YXU", "YXU", v, hours)
    ing = hourly.process_site_hourly_files(d, urban, period=PERIOD)
    q = ing.hourly[50.0]["qcflag"].to_numpy()
    assert np.flatnonzero(q & hourly.HOUR_OUT_OF_RANGE).tolist() == [3]
    assert np.flatnonzero(q & hourly.HOUR_STEP).tolist() == [10]
    assert ing.summary["hours_usable"].tolist() == [22]


def test_stuck_analyser_flagged(clean, urban, tmp_path):
    """The analyser repeats one reading for 20 minutes: those records are flagged 'stuck' and left
    out; 4 minutes of repeats (below stuck_minutes = 5) are not."""
    raw = _copy(clean, tmp_path)
    f = _hour_file(raw)
    f2 = _hour_file(raw, "2025-01-01 09:00")
    state = {}

    def freeze(minutes):
        def fn(rec):
            t = rec["time"]
            sel = (t >= t.iloc[0] + pd.Timedelta(minutes=30)) & (t < t.iloc[0] + pd.Timedelta(minutes=30 + minutes))
            rec.loc[sel, "CO2_dry"] = rec.loc[sel, "CO2_dry"].iloc[0]
            state[minutes] = int(sel.sum())
            return rec
        return fn
    _rewrite(f, freeze(20))
    _rewrite(f2, freeze(4))
    ing = hourly.process_site(raw, urban, period=PERIOD)
    s = ing.summary.set_index("file")
    assert s.loc[f.name, "flag_stuck"] == state[20] >= 110
    assert s.loc[f2.name, "flag_stuck"] == 0
    assert s["flag_stuck"].sum() == state[20]
    q = ing.hourly[50.0]["qcflag"]
    assert q[HOUR] & hourly.HOUR_IMPLAUSIBLE_RECORDS
    assert (q & hourly.HOUR_IMPLAUSIBLE_RECORDS).sum() == hourly.HOUR_IMPLAUSIBLE_RECORDS


def test_ppm_to_ppb_switch_flagged_and_named(clean, urban, tmp_path, caplog):
    """From 12 UTC on the logger writes ppb: every such record is flagged 'unit' (tanks included),
    no hourly value is computed from them (no 953 ppm hours), and the log names the first file."""
    raw = _copy(clean, tmp_path)
    switched = sorted(raw.glob("*-20250101-1[2-9]0000Z-*.dat")) + sorted(raw.glob("*-20250101-2[0-3]0000Z-*.dat"))
    assert len(switched) == 12
    for f in switched:
        _rewrite(f, lambda rec: rec.assign(CO2_dry=rec["CO2_dry"] * 1000.0))
    with caplog.at_level(logging.WARNING, logger="stations.hourly"):
        ing = hourly.process_site(raw, urban, period=PERIOD)
    s = ing.summary.set_index("file")
    names = [f.name for f in switched]
    assert (s.loc[names, "flag_unit"] == s.loc[names, "records"]).all()
    assert s.drop(index=names)["flag_unit"].sum() == 0
    hr = ing.hourly[50.0]
    assert hr["value"].max() < 460
    assert hr["value"].iloc[12:].isna().all() and (hr["qcflag"].iloc[12:] & hourly.LOW_COVERAGE).all()
    assert any("ppm <-> ppb" in r.message and names[0] in r.message for r in caplog.records)


def test_wet_column_only_is_corrected_or_refused(clean, urban, tmp_path, caplog):
    """Files without CO2_dry: the wet CO2 corrected with H2O (Chen et al. 2010) gives the dry
    hourly values within 0.01 ppm (it was 12 ppm low); without H2O the job stops naming the file."""
    _, base = clean
    raw = _copy(clean, tmp_path)
    for f in raw.glob("*.dat"):
        text = f.read_text().split("\n")
        cols = text[0].split()
        i = cols.index("CO2_dry")
        w = picarro.FIELD_WIDTH
        f.write_text("\n".join(ln[:i * w] + ln[(i + 1) * w:] if ln else ln for ln in text))
    with caplog.at_level(logging.WARNING, logger="stations.hourly"):
        ing = hourly.process_site(raw, urban, period=PERIOD)
    assert (ing.summary["dry_source"] == "CO2+H2O").all()
    assert ing.summary["records_wet_corrected"].sum() == ing.summary["records"].sum()
    assert "Chen et al. 2010" in ing.info["dry_mole_fraction"]
    assert any("corrected with H2O" in r.message for r in caplog.records)
    d = (ing.hourly[50.0]["value"] - base.hourly[50.0]["value"]).abs()
    assert d.max() < 0.01
    with pytest.raises(picarro.PicarroFormatError, match=r"has the wet CO2 column but no CO2_dry and "
                                                          r"stations.allow_wet_correction is false"):
        hourly.process_site(raw, urban, period=PERIOD, allow_wet_correction=False)
    for f in raw.glob("*.dat"):                 # and without H2O: refused, naming the file
        text = f.read_text().split("\n")
        i = text[0].split().index("H2O")
        w = picarro.FIELD_WIDTH
        f.write_text("\n".join(ln[:i * w] + ln[(i + 1) * w:] if ln else ln for ln in text))
    with pytest.raises(picarro.PicarroFormatError, match=r"CFKADS2002-20250101-000000Z-DataLog_User.dat: "
                                                          r"line 1 \(header\) has the wet CO2 column but no "
                                                          r"CO2_dry and no H2O column"):
        hourly.process_site(raw, urban, period=PERIOD)


def test_target_tank_flags_the_period(clean, urban, tmp_path, caplog):
    """A target run 0.5 ppm off (limit 0.2 ppm, WMO extended goal) flags the ambient records from
    the previous passing target run to the next one ('target'); action 'warn' only logs it."""
    _, base = clean
    raw = _copy(clean, tmp_path)
    runs = base.calibration.target.sort_values("time").reset_index(drop=True)
    assert len(runs) >= 3 and runs["bias"].abs().max() < 0.05
    bad = runs.iloc[1]
    for f in raw.glob("*.dat"):
        rec = picarro.read_raw(f).records
        sel = (rec["MPVPosition"].round() == 6) & (rec["time"] >= bad["start"] - pd.Timedelta(minutes=2)) \
            & (rec["time"] <= bad["end"])
        if sel.any():
            rec.loc[sel, "CO2_dry"] += 0.5
            picarro.write_dat(f, rec)
    with caplog.at_level(logging.WARNING, logger="stations.hourly"):
        ing = hourly.process_site(raw, urban, period=PERIOD)
    t = ing.calibration.target.sort_values("time").reset_index(drop=True)
    assert abs(t["bias"].iloc[1] - 0.5) < 0.05
    recs = ing.records
    flagged = (recs["qc"] & qc.TARGET) != 0
    lo, hi = runs["end"].iloc[0], runs["start"].iloc[2]
    amb = recs["kind"] == "ambient"
    inside = (recs["time"] > lo) & (recs["time"] < hi)
    assert (flagged == (amb & inside)).all() and flagged.sum() > 1000
    q = ing.hourly[50.0]["qcflag"]
    n_hours = int(((q & hourly.HOUR_TARGET) != 0).sum())
    assert n_hours == len(pd.date_range(lo.floor("h"), hi.floor("h"), freq="h"))
    assert ing.info["target_failed_periods"] == 1
    assert any("target tank bias" in r.message and "flagged 'target'" in r.message for r in caplog.records)
    warn = hourly.process_site(raw, urban, period=PERIOD, target_tank={"action": "warn"})
    assert ((warn.records["qc"] & qc.TARGET) == 0).all()
    assert ((warn.hourly[50.0]["qcflag"] & hourly.HOUR_EXCLUDE) == 0).sum() == 24
    with pytest.raises(ValueError, match="stations.target_tank.action"):
        calibration.target_settings({"action": "drop"})


def test_plausibility_functions():
    t = pd.date_range("2025-01-01", periods=200, freq="5s").to_numpy()
    v = 420 + np.random.default_rng(0).normal(0, 0.07, 200)
    v[50:110] = 421.0                          # 59 intervals x 5 s = 4.9 min: not stuck at 5 min
    assert not plausibility.stuck(t, v, 5.0).any()
    v[50:111] = 421.0                          # 5.0 min
    assert plausibility.stuck(t, v, 5.0).sum() == 61
    x = np.array([420.0, 420e3, 10000.0, 0.42, 349.0, 1499.0, np.nan])
    assert plausibility.unit_switch(x, "co2").tolist() == [False, True, False, True, False, False, False]
    assert plausibility.out_of_range(x, "co2").tolist() == [False, True, True, True, True, False, False]
    h = np.array([430, 430, 800, 430, 430, 740, 1050, 1200, 430.0])
    assert np.flatnonzero(plausibility.hourly_step(h, np.ones(9, bool), 300.0)).tolist() == [2]
    with pytest.raises(plausibility.PlausibilityConfigError, match=r"stations.plausibility.range'?: co2: \[1500.0, 350.0\] must have low < high"):
        plausibility.settings({"range": {"co2": [1500, 350]}})
