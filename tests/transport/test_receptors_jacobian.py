"""Receptor schedule, footprint readers and Jacobian assembly (synthetic footprints, no HYSPLIT)."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from transport.footprints import read_footprint, read_site_day, write_footprint_netcdf
from gzcarbon.grid import Grid
from transport.jacobian import assemble, hour_axis, load_jacobian, save_jacobian
from transport.receptors import read_receptors, schedule, site_day, write_receptors
from transport.stilt_driver import combine

SITES = [dict(id="NST", lon=113.56, lat=22.76, inlets=[{"height": 220}, {"height": 50}]),
         dict(id="YXU", lon=113.28, lat=23.13, inlets=[{"height": 50}])]
GRID = dict(lon_min=113.0, lon_max=113.3, lat_min=23.0, lat_max=23.2, res=0.01)  # 30 x 20


def test_schedule_top_inlet_mid_hour(tmp_path):
    rec = schedule(SITES, ["20250101", "20250102"], hours_local=(12, 16), utc_offset=8)
    assert len(rec) == 2 * 2 * 4
    nst = rec[rec.site == "NST"]
    assert (nst.agl == 220).all()
    assert list(nst.time[:4].dt.strftime("%H:%M")) == ["04:30", "05:30", "06:30", "07:30"]
    assert nst.receptor_id.iloc[0] == "NST_202501010430_220"
    write_receptors(tmp_path / "r.csv", rec)
    back = read_receptors(tmp_path / "r.csv")
    pd.testing.assert_frame_equal(back, rec)
    assert len(site_day(back, "YXU", "20250102")) == 4


def _foot(seed, hours, grid=GRID):
    g = Grid.from_config(grid)
    rng = np.random.default_rng(seed)
    f = rng.random((len(hours), g.ny, g.nx)) * (rng.random((len(hours), g.ny, g.nx)) < 0.2)
    return xr.DataArray(f.astype(np.float32), dims=("time", "lat", "lon"),
                        coords={"time": hours, "lat": g.lat, "lon": g.lon}, name="foot",
                        attrs={"units": "ppm m2 s umol-1"})


def test_reader_round_trips(tmp_path):
    hours = pd.date_range("2025-01-01 00:00", periods=3, freq="h")
    foot = _foot(1, hours)
    write_footprint_netcdf(tmp_path / "a.nc", foot)
    np.testing.assert_array_equal(read_footprint(tmp_path / "a.nc").values, foot.values)
    # legacy STILT-R: variable Footprint, dims (lon, lat, time)
    write_footprint_netcdf(tmp_path / "b.nc", foot.transpose("lon", "lat", "time"), legacy=True)
    b = read_footprint(tmp_path / "b.nc")
    assert b.dims == ("time", "lat", "lon")
    np.testing.assert_array_equal(b.values, foot.values)
    # NAME / openghg: fp(lat, lon, time) in (mol/mol)/(mol/m2/s), south-to-north reversed
    fp = foot.transpose("lat", "lon", "time").isel(lat=slice(None, None, -1)).rename("fp")
    fp.attrs = {"units": "(mol/mol)/(mol/m2/s)"}
    fp.to_dataset().to_netcdf(tmp_path / "c.nc")
    # its `time` is the release time (issue 15): 3 releases, not 3 hourly layers of one receptor
    with pytest.raises(ValueError, match="3 releases.*read_footprints"):
        read_footprint(tmp_path / "c.nc")
    from transport import read_footprints

    many = read_footprints(tmp_path / "c.nc")
    np.testing.assert_array_equal(many["foot"].values, foot.values)
    assert many.sizes["receptor"] == 3
    # unknown units -> clear error
    fp.attrs = {"units": "furlongs"}
    fp.isel(time=[0]).to_dataset().to_netcdf(tmp_path / "d.nc")
    with pytest.raises(ValueError, match="unknown unit 'furlongs'"):
        read_footprint(tmp_path / "d.nc")


def _site_day(path, ids, seeds, hours, grid=GRID, totals_extra=0.5):
    dss = []
    for rid, s in zip(ids, seeds):
        f = _foot(s, hours, grid)
        total = f.sum(("lat", "lon")).values.astype(float) + totals_extra
        dss.append(xr.Dataset({"foot": f, "foot_total": (("time",), total)},
                              attrs={"receptor_id": rid, "release_time": str(hours[-1])}))
    ds = combine(dss, Grid.from_config(grid))
    ds.to_netcdf(path)
    return ds


def test_jacobian_matches_dense_reference_and_conserves_mass(tmp_path):
    g = Grid.from_config(GRID)
    h1 = pd.date_range("2024-12-31 22:00", periods=5, freq="h")  # 2 hours before the axis
    h2 = pd.date_range("2025-01-01 03:00", periods=4, freq="h")
    a = _site_day(tmp_path / "A.nc", ["A1", "A2"], [1, 2], h1)
    b = _site_day(tmp_path / "B.nc", ["B1"], [3], h2)
    rec = pd.DataFrame(dict(receptor_id=["B1", "A2", "X9", "A1"], site=list("BAXA"),
                            time=pd.to_datetime(["2025-01-01 06:30"] * 4), lon=113.1, lat=23.1,
                            agl=50.0))
    start, end = "2025-01-01T00:00:00", "2025-01-01T06:00:00"  # B1's last hour is outside
    H, outside, missing, left = assemble([tmp_path / "A.nc", tmp_path / "B.nc"], rec, GRID, start, end)
    hours = hour_axis(start, end)
    assert H.shape == (4, len(hours) * g.n_cells)
    assert list(missing) == [False, False, True, False]
    assert H[2].nnz == 0 and outside[2] == 0
    # dense reference
    dense = np.zeros((4, len(hours), g.ny, g.nx))
    expect_out = np.zeros(4)
    for ds, rids in ((a, ["A1", "A2"]), (b, ["B1"])):
        for rid in rids:
            i = list(rec.receptor_id).index(rid)
            f = ds.foot.sel(receptor=rid).values.astype(float)
            for k, t in enumerate(pd.to_datetime(ds.time.values)):
                if t in hours:
                    dense[i, hours.get_loc(t)] += f[k]
                else:
                    expect_out[i] += f[k].sum()
            expect_out[i] += ds.foot_total.sel(receptor=rid).values.sum() - f.sum()
    np.testing.assert_allclose(H.toarray(), dense.reshape(4, -1), rtol=1e-6, atol=0)
    np.testing.assert_allclose(outside, expect_out, rtol=1e-6)
    # conservation: state + outside = total sensitivity of each receptor
    for rid in ["A1", "A2", "B1"]:
        i = list(rec.receptor_id).index(rid)
        ds = a if rid.startswith("A") else b
        np.testing.assert_allclose(H[i].sum() + outside[i],
                                   ds.foot_total.sel(receptor=rid).values.sum(), rtol=1e-6)
    # cell index = iy * nx + ix: a single non-zero lands where expected
    i, rid = 3, "A1"
    f = a.foot.sel(receptor=rid, time="2025-01-01 01:00").values
    iy, ix = np.argwhere(f > 0)[0]
    assert H[i, 1 * g.n_cells + iy * g.nx + ix] == pytest.approx(float(f[iy, ix]))
    # save / load round trip
    save_jacobian(tmp_path / "H.npz", H, rec, hours, GRID, outside, missing)
    J = load_jacobian(tmp_path / "H.npz")
    assert (J.H != H).nnz == 0
    assert list(J.receptors.receptor_id) == list(rec.receptor_id)
    assert J.hours.equals(hours) and J.grid == GRID
    np.testing.assert_array_equal(J.missing, missing)
    np.testing.assert_allclose(J.outside, outside)


def test_site_day_reader_selects_receptor(tmp_path):
    hours = pd.date_range("2025-01-01 03:00", periods=2, freq="h")
    ds = _site_day(tmp_path / "S.nc", ["S1", "S2"], [5, 6], hours)
    with read_site_day(tmp_path / "S.nc") as s:
        assert list(s.receptor.values) == ["S1", "S2"]
    one = read_footprint(tmp_path / "S.nc", receptor="S2")
    np.testing.assert_allclose(one.values, ds.foot.sel(receptor="S2").values)
    with pytest.raises(ValueError, match="pass receptor"):
        read_footprint(tmp_path / "S.nc")


def test_numba_kernel_matches_plain_function():
    from transport.jacobian import _sparse_row, _sparse_row_fast

    rng = np.random.default_rng(4)
    foot = (rng.random((5, 7, 9)) * (rng.random((5, 7, 9)) < 0.3)).astype(np.float32)
    kt = np.array([-1, 0, 1, 2, -1])
    iy = np.array([0, 1, 2, -1, 3, 4, 5])
    ix = np.array([-1, 0, 1, 2, 3, 4, 5, 6, 7])
    a = _sparse_row(foot, kt, iy, ix, 8, 8 * 6)
    b = _sparse_row_fast(foot, kt, iy, ix, 8, 8 * 6)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_allclose(a[1], b[1])
    assert a[2] == pytest.approx(b[2]) and a[2] > 0
    assert np.all(np.diff(a[0]) > 0)


def test_pystilt_parquet_round_trip_and_clock_hours(tmp_path):
    import json

    from stilt.footprint.io import write_footprint

    g = Grid.from_config(GRID)
    times = pd.date_range("2025-01-01 02:30", periods=2, freq="h")
    foot = _foot(7, times)
    grid = dict(crs="+proj=longlat", xmin=g.lon_min, xmax=g.lon_max, ymin=g.lat_min,
                ymax=g.lat_max, xres=g.res, yres=g.res)
    foot.attrs.update(
        stilt_name="", stilt_receptor=json.dumps(
            {"kind": "point", "time": "2025-01-01T04:30:00", "altitude_ref": "agl",
             "longitude": 113.1, "latitude": 23.1, "altitude": 50.0}),
        stilt_footprint=json.dumps(
            {"cells_per_target": 4, "geometry": None, "geometry_hash": None, "grid": grid,
             "smooth_factor": 1, "time_integrate": False, "transforms": []}))
    write_footprint(tmp_path / "f.parquet", foot)
    back = read_footprint(tmp_path / "f.parquet")
    np.testing.assert_array_equal(back.values, foot.values)
    clock = read_footprint(tmp_path / "f.parquet", clock_hours=True)
    assert list(pd.to_datetime(clock.time.values).strftime("%H:%M")) == ["02:00", "03:00", "04:00"]
    np.testing.assert_allclose(clock.values.sum(), foot.values.sum(dtype=float), rtol=1e-6)
    np.testing.assert_allclose(clock.values[1], 0.5 * foot.values[0] + 0.5 * foot.values[1],
                               rtol=1e-6)


def test_night_schedule_wraps_midnight_and_stays_in_utc_days():
    from transport.receptors import night_schedule

    site = {"id": "NST", "lon": 113.56, "lat": 22.76, "inlets": [{"height": 220}, {"height": 50}]}
    rec = night_schedule([site], ["20250101", "20250102"], (22, 6), utc_offset=8)
    # 8 night hours a day (22..5 local) = 14..21 UTC, all inside the two UTC days
    assert len(rec) == 16
    t = pd.to_datetime(rec["time"])
    assert set(((t.dt.hour + 8) % 24).unique()) == {22, 23, 0, 1, 2, 3, 4, 5}
    assert (t >= pd.Timestamp("2025-01-01")).all() and (t < pd.Timestamp("2025-01-03")).all()
    assert (rec["agl"] == 220).all() and (t.dt.minute == 30).all()
