"""ARL grids in every projection HYSPLIT reads: our writer/index round trip, an independent read
by arlmet, our cone maths against pyproj, and HYSPLIT-STILT moving particles on a converted
Lambert WRF file (slow)."""

import shutil

import numpy as np
import pandas as pd
import pyproj
import pytest

from transport.arl import (HYSPLIT_EARTH_KM, PROJECTION_FIELDS, VERTICAL_SIGMA, grid_lonlat,
                           grid_xy, read_arl_field, read_arl_index, write_arl_grid)

arlmet = pytest.importorskip("arlmet")

NX, NY = 40, 30
# POLE_LAT, POLE_LON, REF_LAT, REF_LON, SIZE, ORIENT, TANG_LAT, SYNC_XP, SYNC_YP, SYNC_LAT, SYNC_LON
HEADERS = {
    "lambert": [90.0, 113.5, 20.0, 113.5, 3.0, 0.0, 30.1705, 10.0, 12.0, 23.0, 113.0, 0.0],
    "polar": [90.0, 113.5, 60.0, 113.5, 3.0, 0.0, 90.0, 10.0, 12.0, 23.0, 113.0, 0.0],
    "mercator": [90.0, 113.5, 10.0, 113.5, 3.0, 0.0, 0.0, 10.0, 12.0, 23.0, 113.0, 0.0],
    "lambert_south": [-90.0, 150.0, -20.0, 150.0, 3.0, 0.0, -30.171, 10.0, 12.0, -33.0, 151.0, 0.0],
}


def _k0(cone, ref):
    """pyproj's k_0 for a cone tangent at ``cone`` that is true to scale at ``ref`` (Snyder
    15-4 scale factor inverted)."""
    c, r = np.deg2rad(abs(cone)), np.deg2rad(abs(ref))
    n = np.sin(c)
    t = lambda x: np.tan(np.pi / 4 - x / 2)  # noqa: E731
    return 1.0 / (np.cos(c) / np.cos(r) * (t(r) / t(c)) ** n)


PYPROJ = {"lambert": dict(proj="lcc", lat_1=30.1705, lat_0=20.0, lon_0=113.5,
                          k_0=_k0(30.1705, 20.0)),
          "polar": dict(proj="stere", lat_0=90.0, lat_ts=60.0, lon_0=113.5),
          "mercator": dict(proj="merc", lat_ts=10.0, lon_0=113.5),
          "lambert_south": dict(proj="lcc", lat_1=-30.171, lat_0=-20.0, lon_0=150.0,
                                k_0=_k0(30.171, 20.0))}


def _write(path, head, times):
    j, i = np.mgrid[0:NY, 0:NX]
    data = {t: {(0, "PRSS"): 1000 + 3 * np.sin(i / 5 + k) + np.cos(j / 4),
                (1, "UWND"): 4 * np.cos(j / 7 - k) + 0.1 * i,
                (1, "PRES"): 990 + 2 * np.sin((i + j) / 6)} for k, t in enumerate(times)}
    table = [(1.0, ("PRSS",)), (0.995, ("UWND", "PRES"))]
    write_arl_grid(path, NX, NY, head, VERTICAL_SIGMA, table, ((t, data[t]) for t in times))
    return data


@pytest.mark.parametrize("name", list(HEADERS))
def test_projected_arl_round_trip_and_coordinates(tmp_path, name):
    times = pd.date_range("2025-01-01", periods=2, freq="3h")
    path = tmp_path / f"{name}.arl"
    data = _write(path, HEADERS[name], times)
    ix = read_arl_index(path)
    assert [ix.projection[k] for k in PROJECTION_FIELDS] == HEADERS[name]
    assert (ix.nx, ix.ny, ix.vertical, ix.levels) == (NX, NY, 1, (1.0, 0.995))
    assert list(ix.times) == list(times)
    for t in times:
        for (k, v), arr in data[t].items():
            np.testing.assert_allclose(read_arl_field(path, t, v, k), arr, atol=0.02)
    # grid coordinates: our inverse and forward maths agree (1e-9 cells) ...
    lon, lat = ix.lonlat()
    x, y = grid_xy(ix.projection, lat, lon)
    i, j = np.meshgrid(np.arange(1.0, NX + 1), np.arange(1.0, NY + 1))
    assert np.abs(x - i).max() < 1e-9 and np.abs(y - j).max() < 1e-9
    # ... and with pyproj's spherical projection on HYSPLIT's earth (1e-9 cells)
    crs = pyproj.CRS.from_dict(dict(PYPROJ[name], R=HYSPLIT_EARTH_KM * 1e3, units="m"))
    fwd = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    px, py = fwd.transform(lon, lat)
    sx, sy = fwd.transform(HEADERS[name][10], HEADERS[name][9])
    size = HEADERS[name][4] * 1e3
    np.testing.assert_allclose((px - sx) / size + HEADERS[name][7], i, atol=1e-9)
    np.testing.assert_allclose((py - sy) / size + HEADERS[name][8], j, atol=1e-9)


@pytest.mark.parametrize("name", ["lambert", "polar", "mercator"])
def test_arlmet_reads_our_projected_files(tmp_path, name):
    """Independent read: arlmet opens the file, returns the same fields, and places the grid
    points where we do up to its earth radius (6371.2 km against HYSPLIT's 6367.47: positions
    relative to the sync point differ by 5.9e-4 of their distance; we allow 6.5e-4 of it)."""
    times = pd.date_range("2025-01-01", periods=2, freq="3h")
    path = tmp_path / f"{name}.arl"
    data = _write(path, HEADERS[name], times)
    with arlmet.File(path) as f:
        assert f.grid.nx == NX and f.grid.ny == NY
        np.testing.assert_allclose(np.asarray(f.variables["UWND"])[1, 0],
                                   read_arl_field(path, times[1], "UWND", 1), atol=1e-6)
        coords = f.grid.calculate_coords()
    alon, alat = np.asarray(coords["lon"][1]), np.asarray(coords["lat"][1])
    ix = read_arl_index(path)
    ax, ay = grid_xy(ix.projection, alat, alon)  # arlmet's points in our grid coordinates
    i, j = np.meshgrid(np.arange(1.0, NX + 1), np.arange(1.0, NY + 1))
    dist = np.hypot(i - HEADERS[name][7], j - HEADERS[name][8])
    assert np.all(np.hypot(ax - i, ay - j) <= 6.5e-4 * dist + 1e-6)
    assert np.hypot(ax - i, ay - j).max() > 1e-3  # the radius difference is real, not ignored
    assert data  # fields written


@pytest.mark.slow
@pytest.mark.parametrize("map_proj, kw", [(1, dict(truelat1=20.0, truelat2=40.0)),
                                          (2, dict(truelat1=60.0, truelat2=60.0)),
                                          (3, dict(truelat1=22.0, truelat2=0.0))])
def test_hysplit_moves_particles_along_the_grid_on_converted_wrf(tmp_path, map_proj, kw):
    """HYSPLIT-STILT on a WRF file converted natively (Lambert, polar stereographic, Mercator):
    a uniform grid-relative wind of 5 m/s along the grid's x axis moves the particles 4 h back by
    u t = 72 km along -x. The receptor is 3.3 deg east of STAND_LON, where the Lambert grid is
    rotated 1.66 deg and the polar one 3.3 deg against true east. Checked in WRF's own projected
    coordinates (pyproj, 6370 km sphere) with 300 particles (standard error of the mean dy/dx
    ~0.004): |dy/dx| < 0.01 (< 0.6 deg; winds misread as earth-relative would give 0.029 and
    0.058) and the great-circle distance within 3 % of u t (measured: 72.4, 71.7, 72.4 km).
    HYSPLIT's mixed layer is the file's PBLH (900 m) at the particles."""
    import stilt

    from transport import wrf_to_arl
    from transport.stilt_driver import met_config

    from wrf_synthetic import wrf_crs, write_wrfout

    src = tmp_path / "wrfout_d01_2025-01-01_00:00:00"
    write_wrfout(src, pd.date_range("2025-01-01 00:00", periods=8, freq="h"), map_proj=map_proj,
                 stand_lon=110.0, u=5.0, v=0.0, nx=81, ny=61, n_eta=20, u10_factor=1.0, **kw)
    files = wrf_to_arl(src, tmp_path / "arl")
    rec = stilt.PointReceptor(time=pd.Timestamp("2025-01-01 06:00"), longitude=113.3,
                              latitude=23.1, altitude=300.0)
    run = tmp_path / "run"
    p = stilt.run_trajectories(rec, met_config(files, "%Y%m%d_gz.arl"), n_hours=-4, numpar=300,
                               krand=2, seed=3, kmixd=0, workdir=run, timeout=300)
    shutil.rmtree(run, ignore_errors=True)
    last = p[p.age == p.age.min()]
    assert p.age.min() == -240
    np.testing.assert_allclose(p["mlht"], 900.0, atol=1.0)
    fwd = pyproj.Transformer.from_crs(
        "EPSG:4326", wrf_crs(map_proj, kw["truelat1"], kw["truelat2"], 110.0), always_xy=True)
    x0, y0 = fwd.transform(113.3, 23.1)
    x, y = fwd.transform(last.lon.to_numpy(), last.lat.to_numpy())
    dx, dy = np.mean(x - x0), np.mean(y - y0)
    assert dx < 0 and abs(dy / dx) < 0.01
    geod = pyproj.Geod(a=6370000.0, b=6370000.0)
    _, _, d = geod.inv(np.full(len(last), 113.3), np.full(len(last), 23.1),
                       last.lon.to_numpy(), last.lat.to_numpy())
    assert np.mean(d) == pytest.approx(5.0 * 4 * 3600, rel=0.03)

def test_coverage_on_a_projected_grid_is_checked_in_grid_coordinates(tmp_path):
    """A polar stereographic grid 13.5 deg west of its reference meridian is rotated against the
    lon/lat box around it: a receptor inside the box but outside the grid is refused, naming it;
    one inside the grid passes."""
    from transport.arl import MetCoverageError, _Cone, check_met_coverage

    head = [90.0, 113.5, 60.0, 113.5, 3.0, 0.0, 90.0, 20.0, 15.0, 23.0, 100.0, 0.0]
    times = pd.date_range("2025-01-01", periods=8, freq="h")
    path = tmp_path / "20250101_gz.arl"
    _write(path, head, times)
    ix = read_arl_index(path)
    lon0, lon1, lat0, lat1 = ix.extent()
    cone = _Cone(dict(zip(PROJECTION_FIELDS, head)))
    # points just outside the grid's edges; keep one that lies inside the lon/lat box
    edge = [(0.2, yy) for yy in np.linspace(1, NY, 30)] + [(NX + 0.8, yy) for yy in
                                                           np.linspace(1, NY, 30)]
    inside_box = [(lat, lon) for lat, lon in (cone.inverse(x, yv) for x, yv in edge)
                  if lon0 < lon < lon1 and lat0 < lat < lat1]
    assert inside_box
    lat_out, lon_out = inside_box[0]
    rec = pd.DataFrame(dict(receptor_id=["IN_1", "OUT_1"], time=pd.to_datetime(["2025-01-01 05:30"] * 2),
                            lon=[100.0, float(lon_out)], lat=[23.0, float(lat_out)]))
    with pytest.raises(MetCoverageError, match=r"outside the met domain of 20250101_gz\.arl.*OUT_1"):
        check_met_coverage([path], rec, 4)
    assert check_met_coverage([path], rec.iloc[:1], 4)[0].nx == NX
