"""Conservative regridding of footprints onto the state grid, and its use in the Jacobian."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from gzcarbon.grid import Grid
from transport.jacobian import assemble, load_jacobian, save_jacobian
from gzcarbon.grid import GridError, edges_from_centres
from transport.regrid import (apply_weights, is_aligned, overlap_weights, regrid_footprint,
                              regrid_weights)
from transport.stilt_driver import combine

GRID = dict(lon_min=113.0, lon_max=113.3, lat_min=23.0, lat_max=23.2, res=0.01)  # 30 x 20


def _foot(lons, lats, nt=3, seed=0, density=0.3):
    rng = np.random.default_rng(seed)
    shape = (nt, len(lats), len(lons))
    f = rng.random(shape) * (rng.random(shape) < density)
    return xr.DataArray(f, dims=("time", "lat", "lon"),
                        coords={"time": pd.date_range("2025-01-01 03:00", periods=nt, freq="h"),
                                "lat": lats, "lon": lons}, name="foot")


def _centres(lo, hi, res):
    n = int(round((hi - lo) / res))
    return np.round(lo + res * (np.arange(n) + 0.5), 10)


@pytest.mark.parametrize("res,off,pad", [(0.02, 0.0, 0.0), (0.05, 0.0, 0.1), (0.005, 0.0, 0.0),
                                         (0.01, 0.003, 0.05), (0.0137, 0.0021, 0.2)])
def test_conservation_per_hour(res, off, pad):
    """Σ foot on the state grid + outside = Σ foot of the source, every hour, to 1e-12."""
    lons = _centres(GRID["lon_min"] - pad + off, GRID["lon_max"] + pad + off, res)
    lats = _centres(GRID["lat_min"] - pad + off, GRID["lat_max"] + pad + off, res)
    foot = _foot(lons, lats, seed=int(res * 1e4))
    out, outside = regrid_footprint(foot, GRID)
    src = foot.values.sum(axis=(1, 2))
    np.testing.assert_allclose(out.values.sum(axis=(1, 2)) + outside, src, rtol=1e-12, atol=0)
    assert out.shape == (3, 20, 30) and (out.values >= 0).all() and (outside >= 0).all()
    if pad > 0:  # a domain larger than the state: some mass must be outside
        assert outside.sum() > 0.01 * src.sum()


def test_identity_when_grids_match():
    g = Grid.from_config(GRID)
    foot = _foot(g.lon, g.lat, seed=3)
    out, outside = regrid_footprint(foot, GRID)
    np.testing.assert_array_equal(out.values, foot.values)
    np.testing.assert_array_equal(outside, 0.0)
    assert is_aligned(g.lon, g.lat, g)
    assert not is_aligned(g.lon + 0.003, g.lat, g)
    assert not is_aligned(_centres(113.0, 113.3, 0.02), g.lat, g)


def test_two_by_two_aggregates_to_the_sum_by_hand():
    # four 0.005° cells in the state cell 113.00-113.01 E x 23.00-23.01 N
    grid = dict(lon_min=113.0, lon_max=113.01, lat_min=23.0, lat_max=23.01, res=0.01)
    foot = _foot(np.array([113.0025, 113.0075]), np.array([23.0025, 23.0075]), nt=1, density=1)
    out, outside = regrid_footprint(foot, grid)
    a = foot.values[0]
    assert out.values[0, 0, 0] == pytest.approx(a[0, 0] + a[0, 1] + a[1, 0] + a[1, 1], rel=1e-14)
    assert outside[0] == pytest.approx(0.0, abs=1e-15)


def test_half_cell_offset_splits_by_sphere_area():
    """A 0.01° source cell straddling two state cells in latitude splits by Δ sin(lat)."""
    grid = dict(lon_min=113.0, lon_max=113.01, lat_min=23.0, lat_max=23.02, res=0.01)
    foot = xr.DataArray(np.array([[[2.0, 0.0], [0.0, 0.0]]]), dims=("time", "lat", "lon"),
                        coords={"time": [pd.Timestamp("2025-01-01")], "lat": [23.01, 23.02],
                                "lon": [113.005, 113.015]})
    out, outside = regrid_footprint(foot, grid)
    s = lambda d: np.sin(np.deg2rad(d))  # noqa: E731
    lower = (s(23.01) - s(23.005)) / (s(23.015) - s(23.005))
    np.testing.assert_allclose(out.values[0, :, 0], [2 * lower, 2 * (1 - lower)], rtol=1e-12)
    assert 0.5 < lower < 0.50002  # nearer the equator, the southern half has more area
    assert outside[0] == pytest.approx(0.0, abs=1e-14)


def test_coarse_to_fine_divides_by_area():
    # one 0.02° cell over 2 x 2 state cells: each gets its area share, total preserved
    src_lon, src_lat = np.array([113.01, 113.03]), np.array([23.01, 23.03])
    foot = _foot(src_lon, src_lat, nt=1, density=1)
    out, outside = regrid_footprint(foot, GRID)
    v = foot.values[0, 0, 0]
    block = out.values[0, :2, :2]
    assert block.sum() == pytest.approx(v, rel=1e-12)
    np.testing.assert_allclose(block[:, 0], block[:, 1], rtol=1e-9)  # lon: equal halves
    assert block[0, 0] > block[1, 0]  # lat: the southern row has more area


def test_weights_sum_and_edges():
    e = edges_from_centres(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(e, [0.5, 1.5, 2.5, 3.5])
    w = overlap_weights(np.array([0.0, 1.0, 2.0, 3.0]), np.array([0.5, 2.5]))
    np.testing.assert_allclose(w, [[0.5, 1.0, 0.5]])
    with pytest.raises(ValueError, match="ascending"):
        regrid_weights(np.array([113.02, 113.01]), np.array([23.005, 23.015]), Grid.from_config(GRID))
    with pytest.raises(GridError, match="not regularly spaced"):
        regrid_weights(np.array([113.0, 113.01, 113.03]), np.array([23.005, 23.015]),
                       Grid.from_config(GRID))


def test_jacobian_regrids_other_resolution_and_keeps_mass(tmp_path):
    """A site-day file on a 0.02° grid larger than the state: H row sum + outside = total."""
    g = Grid.from_config(GRID)
    lons, lats = _centres(112.96, 113.36, 0.02), _centres(22.96, 23.24, 0.02)
    hours = pd.date_range("2025-01-01 01:00", periods=3, freq="h")
    src = Grid(112.96, 113.36, 22.96, 23.24, 0.02)
    dss = []
    for rid, seed in (("R1", 1), ("R2", 2)):
        f = _foot(lons, lats, nt=3, seed=seed)
        f = f.assign_coords(time=hours)
        total = f.sum(("lat", "lon")).values + 0.25
        dss.append(xr.Dataset({"foot": f, "foot_total": (("time",), total)},
                              attrs={"receptor_id": rid, "release_time": str(hours[-1]),
                                     "left_domain_fraction": 0.05 * seed}))
    ds = combine(dss, src)
    ds.to_netcdf(tmp_path / "S.nc")
    rec = pd.DataFrame(dict(receptor_id=["R1", "R2"], site="S", time=hours[-1], lon=113.1,
                            lat=23.1, agl=50.0))
    res = assemble([tmp_path / "S.nc"], rec, GRID, "2025-01-01T00:00", "2025-01-01T06:00")
    for i, rid in enumerate(["R1", "R2"]):
        total = float(ds.foot_total.sel(receptor=rid).sum())
        assert res.H[i].sum() + res.outside[i] == pytest.approx(total, rel=1e-6)
        # dense reference: regrid every hour with the same weights
        wy, wx = regrid_weights(lons, lats, g)
        dense, _ = apply_weights(ds.foot.sel(receptor=rid).values.astype(float), wy, wx)
        np.testing.assert_allclose(res.H[i].toarray().reshape(-1, g.ny, g.nx)[1:4], dense,
                                   rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(res.left_domain_fraction, [0.05, 0.10])
    assert not res.missing.any()
    # the left-domain share travels with the Jacobian
    hours_axis = pd.date_range("2025-01-01", "2025-01-01 05:00", freq="h")
    save_jacobian(tmp_path / "H.npz", res.H, rec, hours_axis, GRID, res.outside, res.missing,
                  res.left_domain_fraction)
    np.testing.assert_allclose(load_jacobian(tmp_path / "H.npz").left_domain_fraction, [0.05, 0.10])
