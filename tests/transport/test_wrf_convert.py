"""WRF-style NetCDF -> ARL: a synthetic wrfout (eta levels, staggered winds and geopotential,
perturbation theta) built from an analytic atmosphere; the ARL pressure levels must return it."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

arlmet = pytest.importorskip("arlmet")

from transport.arl import G, RD
from transport.wrf_convert import (KAPPA, _Horizontal, destagger, interp_to_pressure,
                                   wrf_to_pressure_levels)

LAPSE = 0.0065
P0 = 101325.0
LEVELS = (1000.0, 925.0, 850.0, 700.0, 500.0, 300.0)
LONS = np.round(112.0 + 0.1 * np.arange(41), 6)  # 41 x 36 = 1476 cells (ARL needs >= 1100)
LATS = np.round(22.0 + 0.1 * np.arange(36), 6)


def t_sea(lat):
    return 292.0 - 2.0 * (lat - 23.5)


def z_of_p(p, lat):  # standard-atmosphere heights (m) for a sea-level temperature t_sea
    return t_sea(lat) / LAPSE * (1 - (p / P0) ** (RD * LAPSE / G))


def t_of_p(p, lat):
    return t_sea(lat) * (p / P0) ** (RD * LAPSE / G)


def u_of(p, lon):
    return 2.0 + 1.5e-4 * (P0 - p) + 0.5 * (lon - 114.0)


def v_of(p, lat):
    return -3.0 + 5e-5 * (P0 - p) + 0.3 * (lat - 23.5)


def _wrf(times, n_eta=40, p_top=10000.0):
    lon2, lat2 = np.meshgrid(LONS, LATS)
    hgt = 300.0 * np.exp(-((lon2 - 113.5) ** 2 + (lat2 - 23.5) ** 2) / 0.3)  # a hill
    ps = P0 * (1 - LAPSE * hgt / t_sea(lat2)) ** (G / (RD * LAPSE))
    eta_w = np.linspace(1.0, 0.0, n_eta + 1) ** 1.5
    eta_m = 0.5 * (eta_w[1:] + eta_w[:-1])
    p_w = p_top + eta_w[:, None, None] * (ps - p_top)
    p_m = p_top + eta_m[:, None, None] * (ps - p_top)
    phi_w = G * z_of_p(p_w, lat2)
    theta = t_of_p(p_m, lat2) * (1e5 / p_m) ** KAPPA
    # staggered winds: u at west/east faces (lon +- 0.05), v at south/north faces
    lon_s = np.round(112.0 - 0.05 + 0.1 * np.arange(42), 6)
    lat_s = np.round(22.0 - 0.05 + 0.1 * np.arange(37), 6)
    pad_x = np.concatenate([2 * p_m[:, :, :1] - p_m[:, :, 1:2], p_m,
                            2 * p_m[:, :, -1:] - p_m[:, :, -2:-1]], axis=2)
    pad_y = np.concatenate([2 * p_m[:, :1] - p_m[:, 1:2], p_m, 2 * p_m[:, -1:] - p_m[:, -2:-1]],
                           axis=1)
    U = u_of(destagger(pad_x, 2), lon_s[None, None, :])  # faces: pressure = mean of neighbours
    V = v_of(destagger(pad_y, 1), lat_s[None, :, None])
    q = 0.012 * (p_m / P0) ** 3
    nt = len(times)
    rep = lambda a: np.repeat(a[None], nt, axis=0)  # noqa: E731
    d3, d2 = ("Time", "bottom_top", "south_north", "west_east"), ("Time", "south_north", "west_east")
    ds = xr.Dataset({
        "Times": (("Time",), np.array([t.strftime("%Y-%m-%d_%H:%M:%S").encode() for t in times])),
        "XLAT": (d2, rep(lat2)), "XLONG": (d2, rep(lon2)),
        "U": (("Time", "bottom_top", "south_north", "west_east_stag"), rep(U)),
        "V": (("Time", "bottom_top", "south_north_stag", "west_east"), rep(V)),
        "W": (("Time", "bottom_top_stag", "south_north", "west_east"), rep(np.zeros_like(p_w))),
        "PH": (("Time", "bottom_top_stag", "south_north", "west_east"), rep(0.1 * phi_w)),
        "PHB": (("Time", "bottom_top_stag", "south_north", "west_east"), rep(0.9 * phi_w)),
        "T": (d3, rep(theta - 300.0)), "P": (d3, rep(0.05 * p_m)), "PB": (d3, rep(0.95 * p_m)),
        "QVAPOR": (d3, rep(q)), "PSFC": (d2, rep(ps)), "T2": (d2, rep(t_of_p(ps, lat2) - 0.5)),
        "Q2": (d2, rep(np.full_like(ps, 0.010))), "U10": (d2, rep(u_of(ps, lon2) * 0.6)),
        "V10": (d2, rep(np.full_like(ps, -2.0))), "PBLH": (d2, rep(800.0 + 0 * ps)),
        "HFX": (d2, rep(120.0 + 50 * (lat2 - 23.5))), "UST": (d2, rep(0.4 + 0 * ps)),
        "HGT": (d2, rep(hgt)),
        "COSALPHA": (d2, rep(np.ones_like(ps))), "SINALPHA": (d2, rep(np.zeros_like(ps)))})
    return ds, dict(ps=ps, hgt=hgt, lat2=lat2, lon2=lon2, U=U, V=V, p_m=p_m)


def test_destagger_and_log_p_interpolation():
    a = np.arange(5.0)[None, None, :] * np.ones((2, 3, 5))
    np.testing.assert_array_equal(destagger(a, 2)[0, 0], [0.5, 1.5, 2.5, 3.5])
    p = np.array([1000.0, 900.0, 800.0])[:, None, None] * 100 * np.ones((3, 2, 2))
    f = np.log(p)  # linear in ln p: interpolation is exact
    np.testing.assert_allclose(interp_to_pressure(f, p, [95000.0, 85000.0])[:, 0, 0],
                               np.log([95000.0, 85000.0]), rtol=1e-12)
    # above the top: top value; below the bottom: held (linear kind)
    got = interp_to_pressure(f, p, [70000.0, 101000.0])[:, 0, 0]
    np.testing.assert_allclose(got, [f[-1, 0, 0], f[0, 0, 0]])


def test_wrf_to_pressure_levels_recovers_analytic_atmosphere():
    times = pd.date_range("2025-01-03 05:00", periods=1, freq="h")
    ds, tr = _wrf(times)
    pl = wrf_to_pressure_levels(ds, LEVELS)
    lat2 = tr["lat2"]
    for k, lev in enumerate(LEVELS):
        p = lev * 100
        np.testing.assert_allclose(pl["z"].values[0, k] / G, z_of_p(p, lat2), atol=2.0, rtol=4e-4,
                                   err_msg=f"z {lev}")
        np.testing.assert_allclose(pl["t"].values[0, k], t_of_p(p, lat2), atol=0.3,
                                   err_msg=f"t {lev}")
    # winds: destaggered, rotated (identity here), on pressure levels
    # (below the lowest model level winds are held at its value: compare above it only)
    for k, lev in enumerate(LEVELS):
        ok = lev * 100 <= tr["p_m"][0]
        assert ok.sum() > 100 or k == 0  # 1000 hPa is under the lowest level everywhere
        np.testing.assert_allclose(pl["u"].values[0, k][ok], u_of(lev * 100, tr["lon2"])[ok],
                                   atol=0.05, err_msg=f"u {lev}")
        np.testing.assert_allclose(pl["v"].values[0, k][ok], v_of(lev * 100, lat2)[ok], atol=0.05,
                                   err_msg=f"v {lev}")
    assert pl["u"].shape == (1, len(LEVELS), 36, 41)
    np.testing.assert_allclose(pl["sshf"].values[0], -(120.0 + 50 * (lat2 - 23.5)) * 3600)
    np.testing.assert_allclose(pl["z_sfc"].values[0] / G, tr["hgt"])


def test_wrf_pressure_levels_round_trip_through_arl(tmp_path):
    times = pd.date_range("2025-01-03 05:00", periods=2, freq="h")
    ds, tr = _wrf(times)
    path = tmp_path / "wrfout_d01_2025-01-03_05:00:00"
    ds.to_netcdf(path)
    from transport.met_convert import era5_to_arl

    with xr.open_dataset(path, decode_times=False) as opened:
        paths = era5_to_arl(wrf_to_pressure_levels(opened, LEVELS), tmp_path / "arl",
                            source="WRF")
    assert [p.name for p in paths] == ["20250103_gz.arl"]
    lat2 = tr["lat2"]
    with arlmet.File(paths[0]) as f:
        assert list(f.times) == list(times)
        assert f.grid.nx == 41 and f.grid.ny == 36
        hg = np.asarray(f.variables["HGTS"])[1]
        tt = np.asarray(f.variables["TEMP"])[1]
        for k, lev in enumerate(LEVELS):
            np.testing.assert_allclose(hg[k], z_of_p(lev * 100, lat2), atol=3.0, rtol=4e-4)
            np.testing.assert_allclose(tt[k], t_of_p(lev * 100, lat2), atol=0.35)
        np.testing.assert_allclose(np.asarray(f.variables["PRSS"])[1, 0], tr["ps"] / 100, atol=0.5)
        np.testing.assert_allclose(np.asarray(f.variables["SHTF"])[1, 0],
                                   120.0 + 50 * (lat2 - 23.5), atol=0.5)
        np.testing.assert_allclose(np.asarray(f.variables["SHGT"])[1, 0], tr["hgt"], atol=1.0)
        np.testing.assert_allclose(np.asarray(f.variables["PBLH"])[1, 0], 800.0, atol=1.0)
        # 2 m humidity: dew point from Q2 and back to RH
        e = 0.010 * tr["ps"] / (0.622 + 0.010) / 100
        es = 6.112 * np.exp(17.67 * (tr["ps"] * 0 + t_of_p(tr["ps"], lat2) - 0.5 - 273.15)
                            / (t_of_p(tr["ps"], lat2) - 0.5 - 29.65))
        np.testing.assert_allclose(np.asarray(f.variables["RH2M"])[1, 0],
                                   np.clip(100 * e / es, 0, 100), atol=0.5)


def test_missing_wrf_variable_is_named():
    ds, _ = _wrf(pd.date_range("2025-01-03", periods=1, freq="h"))
    with pytest.raises(ValueError, match="PBLH"):
        wrf_to_pressure_levels(ds.drop_vars("PBLH"))


def test_curvilinear_grid_interpolated_linearly():
    """A rotated (non lat-lon) WRF grid: a field linear in lon/lat is reproduced exactly."""
    i, j = np.meshgrid(np.arange(30.0), np.arange(25.0))
    ang = np.deg2rad(10)
    xlon = 113.0 + 0.05 * (i * np.cos(ang) - j * np.sin(ang))
    xlat = 23.0 + 0.05 * (i * np.sin(ang) + j * np.cos(ang))
    hz = _Horizontal(xlat, xlon, 0.05, "test")
    assert not hz.identity
    f = 3.0 * xlon - 2.0 * xlat
    lo, la = np.meshgrid(hz.lons, hz.lats)
    np.testing.assert_allclose(hz(f), 3.0 * lo - 2.0 * la, atol=1e-9)
