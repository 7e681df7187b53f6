"""The per-receptor footprint cache is keyed by everything a footprint depends on (issue 13, item 1).

HYSPLIT is replaced by a fake ``run_receptor`` whose footprint encodes its inputs (position,
numpar, met content) and which counts its calls, so these tests need no HYSPLIT and are fast.
"""

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import transport.stilt_driver as sd
from transport.stilt_driver import StiltSettings, run_site_day

GRID = dict(lon_min=113.0, lon_max=113.1, lat_min=23.0, lat_max=23.1, res=0.05)
FMT = "%Y%m%d_gz.arl"


class FakeHysplit:
    """Counts calls; foot = (lon - 113) + agl/1000 + numpar/1e4 + first met byte/1000 (every cell
    and hour)."""

    def __init__(self):
        self.calls = []

    def __call__(self, rec, met, g, settings, work_dir):
        self.calls.append(str(rec["receptor_id"]))
        release = pd.Timestamp(rec["time"])
        hours = pd.date_range(release.floor("h") - pd.Timedelta(hours=int(settings.n_hours)),
                              release.floor("h"), freq="h")
        met_byte = (Path(met["directory"]) / release.strftime(FMT)).read_bytes()[0]
        v = float(rec["lon"]) - 113 + float(rec["agl"]) / 1000 + settings.numpar / 1e4 + met_byte / 1e3
        foot = np.full((len(hours), g.ny, g.nx), v, np.float32)
        ds = xr.Dataset(
            {"foot": (("time", "lat", "lon"), foot, {"units": sd.FOOT_UNITS}),
             "foot_total": (("time",), foot.sum(axis=(1, 2)).astype(float))},
            coords={"time": hours.values, "lat": g.lat, "lon": g.lon},
            attrs={"receptor_id": str(rec["receptor_id"]), "release_time": release.isoformat(),
                   "n_particles": int(settings.numpar), "left_domain_fraction": 0.0})
        return ds, {"trajectories_s": 0.0, "footprint_s": 0.0}


@pytest.fixture
def fake(monkeypatch):
    f = FakeHysplit()
    monkeypatch.setattr(sd, "run_receptor", f)
    return f


@pytest.fixture
def met(tmp_path):
    d = tmp_path / "met"
    d.mkdir()
    files = []
    for day, byte in (("20250101", 1), ("20250102", 2)):
        p = d / f"{day}_gz.arl"
        p.write_bytes(bytes([byte]) * 4096)
        files.append(p)
    return files


def receptors(site="YXU", lon=113.05, lat=23.05, agl=50.0, day="2025-01-02",
              hours=("04:30", "05:30", "06:30")):
    t = pd.to_datetime([f"{day} {h}" for h in hours])
    return pd.DataFrame(dict(
        receptor_id=[f"{site}_{x:%Y%m%d%H%M}_{int(agl)}" for x in t], site=site, time=t,
        lon=lon, lat=lat, agl=agl))


def run(tmp_path, rec, met, settings=None, grid=GRID, site="YXU", day="20250102"):
    out = tmp_path / "fp" / site / f"{day}.nc"
    s = run_site_day(rec, met, grid, settings or StiltSettings(n_hours=3), out,
                     tmp_path / "fp" / "work" / site, met_file_format=FMT, check_met=False)
    with xr.open_dataset(out) as ds:
        return s, ds.load()


def test_unchanged_inputs_are_reused(tmp_path, met, fake):
    s1, _ = run(tmp_path, receptors(), met)
    s2, ds = run(tmp_path, receptors(), met)
    assert len(fake.calls) == 3
    assert (s1["n_computed"], s2["n_computed"], s2["n_done"], s2["n_stale"]) == (3, 0, 3, 0)
    assert float(ds.foot[0, 0, 0, 0]) == pytest.approx(0.05 + 0.05 + 0.01 + 0.002, abs=1e-6)


def test_moved_station_recomputes_exactly_its_receptors(tmp_path, met, fake, caplog):
    run(tmp_path, receptors("YXU"), met, site="YXU")
    run(tmp_path, receptors("NST", lon=113.02), met, site="NST")
    assert len(fake.calls) == 6
    caplog.set_level(logging.INFO, logger="transport.stilt_driver")
    # YXU moves 0.03 degrees east (its receptor ids do not change): its three receptors only
    s, ds = run(tmp_path, receptors("YXU", lon=113.08), met, site="YXU")
    s_n, _ = run(tmp_path, receptors("NST", lon=113.02), met, site="NST")
    assert fake.calls[6:] == list(receptors("YXU").receptor_id)
    assert (s["n_computed"], s["n_stale"], s_n["n_computed"]) == (3, 3, 0)
    assert float(ds.foot.max()) == pytest.approx(0.08 + 0.05 + 0.01 + 0.002, abs=1e-6)
    assert "stale cache: receptor.lon 113.05 -> 113.08" in caplog.text
    # one receptor's inlet changes (same id): that receptor only
    rec = receptors("YXU", lon=113.08)
    rec.loc[1, "agl"] = 50.4
    s, _ = run(tmp_path, rec, met, site="YXU")
    assert fake.calls[9:] == [rec.receptor_id[1]] and s["n_computed"] == 1


@pytest.mark.parametrize("change", [dict(numpar=200), dict(seed=8), dict(n_hours=4),
                                    dict(kmixd=1), dict(smooth_factor=0.5),
                                    dict(extra={"veght": 0.4})])
def test_every_transport_setting_recomputes(tmp_path, met, fake, change):
    base = dict(n_hours=3, numpar=100, seed=7, kmixd=0)
    run(tmp_path, receptors(), met, StiltSettings(**base))
    s, ds = run(tmp_path, receptors(), met, StiltSettings(**{**base, **change}))
    assert len(fake.calls) == 6 and s["n_computed"] == 3 and s["n_stale"] == 3
    # the site-day file's attributes describe what is in it
    new = StiltSettings(**{**base, **change})
    assert (ds.attrs["numpar"], ds.attrs["seed"], ds.attrs["n_hours_back"], ds.attrs["kmixd"]) \
        == (new.numpar, new.seed, new.n_hours, new.kmixd)
    assert ds.sizes["time"] == new.n_hours + 3  # 3 receptors an hour apart, n_hours+1 each


def test_timeout_alone_does_not_recompute(tmp_path, met, fake):
    run(tmp_path, receptors(), met, StiltSettings(n_hours=3, timeout=1800))
    s, _ = run(tmp_path, receptors(), met, StiltSettings(n_hours=3, timeout=60))
    assert len(fake.calls) == 3 and s["n_computed"] == 0


def test_met_content_change_recomputes_the_receptors_that_read_it(tmp_path, met, fake):
    # receptors 3 h back from 2025-01-02 00:30 read 20250101 and 20250102; from 06:30 only 20250102
    rec = receptors(hours=("00:30", "06:30"))
    run(tmp_path, rec, met)
    assert len(fake.calls) == 2
    # rewrite 20250101 in place, same size, mtime put back: the content hash still sees it
    p = met[0]
    st = p.stat()
    p.write_bytes(bytes([9]) * 4096)
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    s, ds = run(tmp_path, rec, met)
    assert fake.calls[2:] == [rec.receptor_id[0]] and s["n_computed"] == 1
    assert "20250101_gz.arl:" in ds.attrs["met_files_blake2b"]
    # the 20250102 file changes: both
    met[1].write_bytes(bytes([3]) * 4096)
    s, ds = run(tmp_path, rec, met)
    assert s["n_computed"] == 2
    assert float(ds.foot.max()) == pytest.approx(0.05 + 0.05 + 0.01 + 0.003, abs=1e-6)


def test_grid_and_software_change_recompute(tmp_path, met, fake, monkeypatch):
    run(tmp_path, receptors(), met)
    s, _ = run(tmp_path, receptors(), met, grid={**GRID, "lon_max": 113.15})
    assert s["n_computed"] == 3
    ident = sd.software_identity(StiltSettings())
    monkeypatch.setattr(sd, "software_identity", lambda settings=None: {**ident, "hysplit": "v9"})
    s, ds = run(tmp_path, receptors(), met, grid={**GRID, "lon_max": 113.15})
    assert s["n_computed"] == 3 and ds.attrs["hysplit_version"] == "v9"
    assert len(fake.calls) == 9


def test_old_and_unreadable_cache_files_are_recomputed(tmp_path, met, fake, caplog):
    run(tmp_path, receptors(), met)
    work = tmp_path / "fp" / "work" / "YXU"
    rids = list(receptors().receptor_id)
    # a cache file from before the key existed (no cache_key attribute), and a truncated one
    with xr.open_dataset(work / f"{rids[0]}.nc") as ds:
        old = ds.load()
    del old.attrs["cache_key"]
    old.to_netcdf(work / f"{rids[0]}.nc")
    data = (work / f"{rids[1]}.nc").read_bytes()
    (work / f"{rids[1]}.nc").write_bytes(data[: len(data) // 3])
    caplog.set_level(logging.INFO, logger="transport.stilt_driver")
    s, _ = run(tmp_path, receptors(), met)
    assert fake.calls[3:] == rids[:2] and s["n_computed"] == 2
    assert "stale cache: no cache key" in caplog.text and "stale cache: unreadable" in caplog.text


def test_cache_key_covers_every_settings_field():
    """A new StiltSettings field is in the key unless listed in NOT_IN_KEY."""
    import dataclasses

    fields = {f.name for f in dataclasses.fields(StiltSettings)}
    # the near/far split's fields count only when the split is on (tests/transport/
    # test_near_far_split.py): without it one run of numpar particles, as before they existed
    assert set(sd.settings_identity(StiltSettings(near_field_hours=6))) == (
        fields - sd.NOT_IN_KEY) | {"split_algorithm"}
    assert set(sd.settings_identity(StiltSettings(near_field_hours=0))) == (
        fields - sd.NOT_IN_KEY - set(sd.SPLIT_FIELDS))
    assert sd.NOT_IN_KEY == {"timeout"}


def test_met_checksum_memo_is_content_not_mtime(tmp_path):
    p = tmp_path / "20250101_gz.arl"
    p.write_bytes(b"a" * 100)
    memo = tmp_path / "memo"
    a = sd.met_checksum(p, memo)
    assert len(list(memo.glob("*.json"))) == 1
    sd._MET_SUMS.clear()
    assert sd.met_checksum(p, memo) == a  # from the memo file
    st = p.stat()
    p.write_bytes(b"b" * 100)
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    sd._MET_SUMS.clear()
    assert sd.met_checksum(p, memo) != a  # ctime changed: rehashed
