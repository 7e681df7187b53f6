"""Footprints the user already has (transport.footprints_from: files) on openghg's public NAME and
FLEXPART/PARIS files: receptors matched by site/time/position/height, clear errors, hourly bins,
conservative regridding onto the state grid, and the Jacobian built from the result."""

from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from transport.from_files import (FootprintMatchError, find_footprint_files, footprint_catalogue,
                                  match_receptors, read_matches, site_day_from_files,
                                  write_matches)
from transport.jacobian import assemble
from transport.receptors import receptor_id

DATA = Path(__file__).resolve().parents[1] / "data" / "footprints"
NAME_HIRES = DATA / "TAC-100magl_UKV_co2_TEST_201407_4releases.nc"
NAME = DATA / "TAC-100magl_UKV_TEST_201607.nc"
PARIS = DATA / "MHD-10magl_FLEXPART_ECMWFHRES_TEST_inert_201809.nc"
# state grid over the files' domain (-0.57..3.65 E, 51.1..53.9 N), coarser than their cells
GRID = dict(lon_min=-0.5, lon_max=3.5, lat_min=51.0, lat_max=54.0, res=0.25)
TAC = dict(site="TAC", lon=1.139, lat=52.518, agl=100.0)  # Tacolneston, 100 m inlet


def _receptors(times, site=TAC):
    rows = [dict(receptor_id=receptor_id(site["site"], t, site["agl"]), time=t, **site)
            for t in pd.to_datetime(times)]
    return pd.DataFrame(rows, columns=["receptor_id", "site", "time", "lon", "lat", "agl"])


def _raw(path, var):
    """Independent read (netCDF4): the variable with dims moved to (time, ..., lat, lon)."""
    with netCDF4.Dataset(path) as nc:
        v = nc.variables[var]
        a = np.asarray(v[:].filled(np.nan), np.float64)
        return a, v.dimensions


def test_catalogue_and_match_by_site_hour_position_height(tmp_path):
    cat = footprint_catalogue(find_footprint_files(DATA))
    assert sorted(cat.groupby("file").size().tolist()) == [3, 4, 49]
    assert set(cat["site"]) == {"TAC", "MHD"}
    # receptors released mid-hour (our convention) match NAME's on-the-hour releases
    rec = _receptors(pd.date_range("2014-07-01 00:30", periods=4, freq="2h"))
    m = match_receptors(rec, cat)
    assert list(m["receptor_id"]) == list(rec["receptor_id"])
    assert set(m["file"]) == {str(NAME_HIRES)}
    assert list(m["release_time"]) == list(pd.date_range("2014-07-01", periods=4, freq="2h"))
    write_matches(tmp_path / "matches.csv", m)
    back = read_matches(tmp_path / "matches.csv")
    pd.testing.assert_frame_equal(back[["receptor_id", "file", "release"]],
                                  m[["receptor_id", "file", "release"]].reset_index(drop=True))


def test_receptors_without_footprint_and_unmatched_files_are_named():
    cat = footprint_catalogue([NAME_HIRES, PARIS])
    # 01:30 has no release (the file is 2-hourly): named with the reason
    rec = _receptors(["2014-07-01 00:30", "2014-07-01 01:30"])
    with pytest.raises(FootprintMatchError, match=r"1 receptor\(s\) have no footprint.*"
                                                  r"TAC_201407010130_100 \(no release in its hour"):
        match_receptors(rec, cat)
    # the 50 m inlet of the same tower does not take the 100 m footprint; the file then matches
    # no receptor of the period either
    low = _receptors(["2014-07-01 00:30"], dict(TAC, agl=50.0))
    with pytest.raises(FootprintMatchError) as err:
        match_receptors(low, cat)
    msg = str(err.value)
    assert "height 100 m vs inlet 50 m" in msg and NAME_HIRES.name in msg
    assert "match no receptor" in msg
    # another site code at the same hour: not matched to TAC's file
    other = _receptors(["2014-07-01 00:30"], dict(TAC, site="NST"))
    with pytest.raises(FootprintMatchError, match="site TAC"):
        match_receptors(other, cat)


def test_hires_footprint_on_clock_hours_and_state_grid_conserves_totals(tmp_path):
    """fp_HiTRes (2-hourly H_back bins + residual) on clock hours, regridded onto the state grid:
    per receptor, Σ grid + outside = Σ fp_HiTRes of an independent read (float32 storage)."""
    rec = _receptors(pd.date_range("2014-07-01 00:30", periods=4, freq="2h"))
    m = match_receptors(rec, footprint_catalogue([NAME_HIRES]))
    out = tmp_path / "TAC" / "20140701.nc"
    s = site_day_from_files(m, GRID, out, n_hours=24)
    assert s["n_done"] == 4 and s["time_resolution"] == ["hires"]
    raw, dims = _raw(NAME_HIRES, "fp_HiTRes")  # (lat, lon, time, H_back)
    assert dims == ("lat", "lon", "time", "H_back")
    per_bin = np.nansum(raw, axis=(0, 1))  # (time, H_back)
    with xr.open_dataset(out) as ds:
        assert list(ds.receptor.values) == list(rec.receptor_id)
        tot = ds.foot_total.values  # (receptor, time)
        np.testing.assert_allclose(tot.sum(axis=1), per_bin.sum(axis=1), rtol=1e-12)
        times = pd.to_datetime(ds.time.values)
        # bin H_back=0 (2 h wide) is split evenly over the release hour and the hour before
        h0 = times.get_loc(pd.Timestamp("2014-07-01 00:00"))
        np.testing.assert_allclose(tot[0, h0], per_bin[0, 0] / 2, rtol=1e-12)
        np.testing.assert_allclose(tot[0, h0 - 1], per_bin[0, 0] / 2, rtol=1e-12)
        # nothing after the release hour
        assert np.all(tot[0, h0 + 1:] == 0)
        # last resolved bin H_back=24: hours h0-25, h0-24; the residual (H_back=26) is spread
        # over the 24 h before them: h0-49 .. h0-26
        np.testing.assert_allclose(tot[0, h0 - 25], per_bin[0, -2] / 2, rtol=1e-12)
        np.testing.assert_allclose(tot[0, h0 - 26], per_bin[0, -1] / 24, rtol=1e-12)
        np.testing.assert_allclose(tot[0, h0 - 49], per_bin[0, -1] / 24, rtol=1e-12)
        assert np.all(tot[0, :h0 - 49] == 0)
        grid_sum = ds.foot.values.astype(np.float64).sum(axis=(2, 3))
        assert np.all(grid_sum <= tot * (1 + 1e-6) + 1e-12)
        # the state grid cuts the files' western/eastern edge cells: a little mass is outside
        frac_in = grid_sum.sum(axis=1) / tot.sum(axis=1)
        assert np.all((frac_in > 0.8) & (frac_in < 1.0))
    # the Jacobian: each row + its outside = the receptor's total
    hours = (pd.Timestamp("2014-06-28"), pd.Timestamp("2014-07-02"))
    res = assemble([out], rec, GRID, *hours)
    np.testing.assert_allclose(np.asarray(res.H.sum(axis=1)).ravel() + res.outside,
                               per_bin.sum(axis=1), rtol=1e-6)
    assert not res.missing.any()


def test_integrated_flexpart_footprints_spread_over_the_back_period(tmp_path):
    """PARIS srr (integrated over the back period, no timing): spread evenly over the n_hours up
    to the release hour; Σ over hours = the release's total (independent read)."""
    mhd = dict(site="MHD", lon=-9.9046, lat=53.3267, agl=10.0)
    # releases 06:00 and 11:00: the first ones whose sensitivity reaches the file's small domain
    rec = _receptors(["2018-09-02 06:30", "2018-09-02 11:30"], mhd)
    m = match_receptors(rec, footprint_catalogue([PARIS]))
    out = tmp_path / "MHD" / "20180902.nc"
    site_day_from_files(m, GRID, out, n_hours=6)
    raw, dims = _raw(PARIS, "srr")
    per_release = np.nansum(raw, axis=(1, 2))[[6, 11]]
    assert np.all(per_release > 0)
    with xr.open_dataset(out) as ds:
        assert ds.attrs["time_resolution"] == "integrated"
        tot = ds.foot_total.values
        np.testing.assert_allclose(tot.sum(axis=1), per_release, rtol=1e-12)
        nz = [pd.to_datetime(ds.time.values)[tot[k] > 0] for k in range(2)]
        assert list(nz[0]) == list(pd.date_range("2018-09-02 01:00", periods=6, freq="h"))
        np.testing.assert_allclose(tot[0][tot[0] > 0], per_release[0] / 6, rtol=1e-12)
        assert nz[1][-1] == pd.Timestamp("2018-09-02 11:00")


def test_footprint_files_setting_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="footprint_files is empty"):
        find_footprint_files("")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="directory holds no"):
        find_footprint_files(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="pattern matches no file"):
        find_footprint_files(str(tmp_path / "*.nc"))
    assert find_footprint_files(str(DATA / "TAC-*.nc")) == sorted([NAME_HIRES, NAME])


# the nested grid over the NAME file's domain: a small inner grid, 0.5-degree outer cells around it
INNER_SMALL = dict(lon_min=0.5, lon_max=2.0, lat_min=52.0, lat_max=53.0, res=0.25)
OUTER_NAME = dict(enabled=True, lon_min=-1.0, lon_max=4.0, lat_min=51.0, lat_max=54.5, res=0.5)


def _supersampled_outer(raw2d, lats, lons, og, k=1000):
    """Independent estimate of a footprint summed onto the outer cells: along each axis every
    source cell is split into ``k`` sub-cells (latitude ones weighted by cos(latitude)), each
    given to the outer cell its centre lies in; the 2-D weights are the product of the two."""
    def weights(centres, start, res, n, lat):
        step = np.diff(centres).mean()
        sub = centres[:, None] + ((np.arange(k) + 0.5) / k - 0.5)[None, :] * step   # (n_src, k)
        w = np.cos(np.deg2rad(sub)) if lat else np.ones_like(sub)
        w = w / w.sum(axis=1, keepdims=True)
        idx = np.floor((sub - start) / res).astype(int)
        W = np.zeros((n, len(centres)))
        for j in range(len(centres)):
            ok = (idx[j] >= 0) & (idx[j] < n)
            np.add.at(W[:, j], idx[j][ok], w[j][ok])
        return W
    wy = weights(lats, og.lat_min, og.res, og.ny, True)
    wx = weights(lons, og.lon_min, og.res, og.nx, False)
    return wy @ raw2d @ wx.T


def test_user_footprints_onto_the_nested_grid(tmp_path):
    """A NAME fp_HiTRes footprint larger than the inner grid: the part outside it lands on the
    outer cells (before the nesting it went to `outside`), conservatively: per receptor and hour
    inner + outer + beyond = the file's total; the outer cells agree with an independent
    supersampled aggregation of the raw file; the inner grid is unchanged; the Jacobian has the
    outer columns and conserves each receptor's total."""
    from gzcarbon.grid import Grid, NestedGrid

    rec = _receptors(pd.date_range("2014-07-01 00:30", periods=4, freq="2h"))
    m = match_receptors(rec, footprint_catalogue([NAME_HIRES]))
    flat, nest = tmp_path / "flat" / "20140701.nc", tmp_path / "nested" / "20140701.nc"
    site_day_from_files(m, INNER_SMALL, flat, n_hours=24)
    site_day_from_files(m, INNER_SMALL, nest, n_hours=24, outer_grid=OUTER_NAME)
    ng = NestedGrid(Grid(**INNER_SMALL), Grid(**{k: v for k, v in OUTER_NAME.items() if k != "enabled"}))
    raw, dims = _raw(NAME_HIRES, "fp_HiTRes")                  # (lat, lon, time, H_back)
    per_release = np.nansum(raw, axis=(0, 1, 3))
    with xr.open_dataset(flat) as a, xr.open_dataset(nest) as b:
        np.testing.assert_array_equal(a["foot"].values, b["foot"].values)
        np.testing.assert_array_equal(a["foot_total"].values, b["foot_total"].values)
        assert "exit_lon" not in b and b.attrs["n_outer"] == ng.n_outer == 10 * 7 - 3 * 2
        inner = b["foot"].values.astype(np.float64).sum(axis=(2, 3))
        outer = b["foot_outer"].values.astype(np.float64).sum(axis=(2, 3))
        beyond = b["foot_outside"].values
        np.testing.assert_allclose(inner + outer + beyond, b["foot_total"].values, rtol=1e-6, atol=1e-12)
        np.testing.assert_allclose(b["foot_total"].values.sum(axis=1), per_release, rtol=1e-12)
        share = np.array([inner.sum(), outer.sum(), beyond.sum()]) / per_release.sum()
        # the file (-0.57..3.65 E, 51.1..53.9 N) lies inside the outer box: nothing beyond it
        assert 0.2 < share[1] < 0.3 and abs(share[2]) < 1e-12, share   # measured 0.245
        assert (b["foot_outer"].values[:, :, ~ng.outer_mask] == 0).all()
        # every receptor, summed over hours, against the supersampled raw file
        with netCDF4.Dataset(NAME_HIRES) as nc:
            lats = np.asarray(nc.variables["lat"][:], np.float64)
            lons = np.asarray(nc.variables["lon"][:], np.float64)
        for r in range(4):
            ref = _supersampled_outer(np.nansum(raw[:, :, r, :], axis=2), lats, lons, ng.outer)
            ref[~ng.outer_mask] = 0.0
            got = b["foot_outer"].values[r].astype(np.float64).sum(axis=0)
            # sub-cells fall wholly in or out of a cell: the estimate is good to ~1/(2k) of a
            # source cell's share at each edge
            assert abs(got.sum() - ref.sum()) < 1e-3 * ref.sum()
            big = ref > 0.01 * ref.max()
            np.testing.assert_allclose(got[big], ref[big], rtol=5e-3)
    hours = (pd.Timestamp("2014-06-28"), pd.Timestamp("2014-07-02"))
    res = assemble([nest], rec, INNER_SMALL, *hours, outer_grid=OUTER_NAME)
    assert res.H.shape[1] == 96 * ng.n_cells
    np.testing.assert_allclose(res.H.sum(axis=1).A1 + res.outside, per_release, rtol=1e-6)
    # before the nesting the same mass was 'outside' the state
    old = assemble([flat], rec, INNER_SMALL, *hours)
    np.testing.assert_allclose(old.outside - res.outside,
                               res.H[:, np.tile(ng.is_outer(), 96)].sum(axis=1).A1, rtol=1e-5)
