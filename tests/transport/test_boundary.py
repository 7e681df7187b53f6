"""Boundary fields (transport.boundary): readers of CarbonTracker, CAMS and CF layouts, sampling at
particle exit points, receptor backgrounds and inflow sides; the demo's CT-layout field."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from transport import boundary as bd

DATA = Path(__file__).resolve().parents[1] / "data" / "boundary"
CT_FILE = DATA / "CT2022.molefrac_glb3x2_2025-01-02.nc"
CAMS_FILE = DATA / "cams_egg4_model_levels_2025-01-02.nc"


def _maker():
    spec = importlib.util.spec_from_file_location("make_boundary_files", DATA / "make_boundary_files.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


MK = _maker()


def _points(rng, n, lon, lat, t0, t1, zmax, zmin=20.0):
    lo = rng.uniform(lon[0], lon[1], n)
    la = rng.uniform(lat[0], lat[1], n)
    t = pd.Timestamp(t0) + (pd.Timestamp(t1) - pd.Timestamp(t0)) * rng.uniform(0, 1, n)
    z = rng.uniform(zmin, zmax, n)
    return pd.DatetimeIndex(t), lo, la, z


def test_carbontracker_file_linear_field_reproduced():
    """CT layout (micromol mol-1, gph on 26 boundaries over varying ground): heights above ground
    are the boundary midpoints minus the ground; a field linear in lon, lat, height and time is
    sampled to float32 precision (the file's) at 500 random points between the cell centres."""
    f = bd.read_field([CT_FILE], "carbontracker")
    assert f.sizes == {"time": 8, "level": 25, "lat": 3, "lon": 4}
    assert f["value"].attrs["units"] == "ppm"
    # the lowest level centre: half the first layer (25 m x stretch) above ground
    assert np.allclose(f["height"].values[0, 0], 12.5, atol=1e-3)
    rng = np.random.default_rng(1)
    t, lo, la, z = _points(rng, 500, (109.5, 118.5), (21.0, 25.0), "2025-01-02T01:30", "2025-01-02T22:30", 8000.0)
    got = bd.sample_field(f, t, lo, la, z)
    want = MK.linear_co2_ppm(lo, la, z, MK.hours_since_t0(t))
    assert np.max(np.abs(got - want)) < 2e-4  # float32 storage of ~420 ppm


def test_sampling_is_exact_for_a_linear_field_in_memory():
    """The same with float64 values in the internal form: exact to 1e-9 ppm, including points
    on the field's edges and columns whose heights differ in space and time."""
    f = bd.read_field([CT_FILE], "carbontracker")
    hours = MK.hours_since_t0(f["time"].values)[:, None, None, None]
    f["value"] = (f["value"].dims, MK.linear_co2_ppm(f["lon"].values[None, None, None], f["lat"].values[None, None, :, None],
                                                     f["height"].values, hours))
    rng = np.random.default_rng(2)
    t, lo, la, z = _points(rng, 1000, (109.5, 118.5), (21.0, 25.0), "2025-01-02T01:30", "2025-01-02T22:30", 9000.0)
    lo[:3], la[:3] = [109.5, 118.5, 112.5], [21.0, 25.0, 23.0]
    got = bd.sample_field(f, t, lo, la, z)
    assert np.max(np.abs(got - MK.linear_co2_ppm(lo, la, z, MK.hours_since_t0(t)))) < 1e-9


def test_cams_mass_mixing_ratio_to_mole_fraction():
    """CAMS layout (kg kg**-1, levelist from the top, latitude descending, hours since 1900, z in
    m**2 s**-2 with a surface geopotential): x = w · 28.9647 / 44.0095 · 1e6 ppm; read back on
    ascending axes, levels from the ground up, and the analytic field at random points to 1e-9."""
    f = bd.read_field(CAMS_FILE, "cams")
    assert np.all(np.diff(f["lat"].values) > 0) and np.all(np.diff(f["height"].values[0, :, 0, 0]) > 0)
    assert f.attrs["ground"] == "`z_sfc`"
    with xr.open_dataset(CAMS_FILE) as raw:
        w = float(raw["co2"].isel(time=0, levelist=-1, latitude=0, longitude=0))
    assert f["value"].values[0, 0, -1, 0] == pytest.approx(w * 28.9647 / 44.0095 * 1e6, rel=1e-12)
    rng = np.random.default_rng(3)
    t, lo, la, z = _points(rng, 500, (108.0, 120.0), (19.0, 27.0), "2025-01-02T00:00", "2025-01-02T21:00", 9000.0, 40.0)
    got = bd.sample_field(f, t, lo, la, z)
    assert np.max(np.abs(got - MK.linear_co2_ppm(lo, la, z, MK.hours_since_t0(t)))) < 1e-9


def test_cams_new_layout_valid_time_and_pressure_level(tmp_path):
    """The ADS's newer netCDF layout (valid_time, pressure_level) reads to the same field."""
    with xr.open_dataset(CAMS_FILE) as raw:
        new = raw.rename({"time": "valid_time", "levelist": "pressure_level"}).load()
    p = tmp_path / "cams_new.nc"
    new.to_netcdf(p)
    a, b = bd.read_field(CAMS_FILE, "cams"), bd.read_field(p, "cams")
    assert np.array_equal(a["value"].values, b["value"].values)
    assert np.array_equal(a["time"].values, b["time"].values)


def _cf_dataset(units="mol mol-1", sn="mole_fraction_of_carbon_dioxide_in_air", factor=1e-6):
    lat, lon = np.array([20.0, 24.0, 28.0]), np.array([110.0, 114.0, 118.0])
    h_km = np.array([0.05, 0.5, 2.0, 6.0])
    times = pd.date_range("2025-01-02", periods=5, freq="6h")
    ppm = MK.linear_co2_ppm(lon[None, None, None], lat[None, None, :, None], 1000 * h_km[None, :, None, None],
                            MK.hours_since_t0(times)[:, None, None, None])
    return xr.Dataset(
        {"xco2": (("t", "z", "y", "x"), ppm * factor, {"standard_name": sn, "units": units})},
        coords={"t": ("t", times, {"standard_name": "time"}), "z": ("z", h_km, {"standard_name": "height", "units": "km"}),
                "y": ("y", lat, {"units": "degrees_north"}), "x": ("x", lon, {"standard_name": "longitude"})})


@pytest.mark.parametrize("units,sn,factor", [
    ("mol mol-1", "mole_fraction_of_carbon_dioxide_in_air", 1e-6),
    ("1e-6", "mole_fraction_of_carbon_dioxide_in_air", 1.0),
    ("umol/mol", "mole_fraction_of_carbon_dioxide_in_air", 1.0),
    ("kg kg-1", "mass_fraction_of_carbon_dioxide_in_air", 1e-6 * 44.0095 / 28.9647),
    ("g/kg", "mass_fraction_of_carbon_dioxide_in_air", 1e-3 * 44.0095 / 28.9647),
])
def test_cf_field_units_by_meaning(tmp_path, units, sn, factor):
    """A CF field found by standard_name, axes by standard_name/units, heights in km: every
    spelling of a mole or mass fraction gives the same ppm (1e-9) at random points."""
    p = tmp_path / "cf.nc"
    _cf_dataset(units, sn, factor).to_netcdf(p)
    f = bd.read_field(p, "cf")
    rng = np.random.default_rng(4)
    t, lo, la, z = _points(rng, 200, (110.0, 118.0), (20.0, 28.0), "2025-01-02T00:00", "2025-01-03T00:00", 5000.0, 50.0)
    got = bd.sample_field(f, t, lo, la, z)
    assert np.max(np.abs(got - MK.linear_co2_ppm(lo, la, z, MK.hours_since_t0(t)))) < 1e-9


def test_units_neither_mole_nor_mass_fraction(tmp_path):
    p = tmp_path / "bad.nc"
    _cf_dataset("K", "mole_fraction_of_carbon_dioxide_in_air").to_netcdf(p)
    with pytest.raises(bd.BoundaryFieldError, match=r"bad\.nc: field `xco2`.*neither a mole fraction|bad\.nc: field `xco2`.*unknown unit"):
        bd.read_field(p, "cf")
    _cf_dataset("mol m-2", "mole_fraction_of_carbon_dioxide_in_air").to_netcdf(p)
    with pytest.raises(bd.BoundaryFieldError, match=r"bad\.nc: field `xco2`.*not a fraction"):
        bd.read_field(p, "cf")


def test_exit_point_outside_the_field_names_file_and_field():
    f = bd.read_field([CT_FILE], "carbontracker")
    t = pd.DatetimeIndex(["2025-01-02T12:00", "2025-01-01T23:00"])
    with pytest.raises(bd.BoundaryFieldError, match=r"CT2022\.molefrac_glb3x2_2025-01-02\.nc: field `co2` does not "
                       r"cover 1 exit point\(s\) in time \(e\.g\. 2025-01-01 23:00:00"):
        bd.sample_field(f, t, np.array([113.0, 113.0]), np.array([23.0, 23.0]), np.array([100.0, 100.0]))
    with pytest.raises(bd.BoundaryFieldError, match=r"field `co2` does not cover 1 exit point\(s\) in longitude \(e\.g\. 120"):
        bd.sample_field(f, t[:1].append(t[:1]), np.array([113.0, 120.0]), np.array([23.0, 23.0]), np.array([1.0, 1.0]))


def test_missing_gph_and_wrong_format(tmp_path):
    with xr.open_dataset(CT_FILE) as raw:
        raw.drop_vars("gph").to_netcdf(tmp_path / "ct.nc")
    with pytest.raises(bd.BoundaryFieldError, match=r"ct\.nc: no field `gph`"):
        bd.read_field(tmp_path / "ct.nc", "carbontracker")
    with pytest.raises(bd.BoundaryFieldError, match=r"CT2022\.molefrac_glb3x2_2025-01-02\.nc: no field `z`"):
        bd.read_field(CT_FILE, "cams")
    with pytest.raises(bd.BoundaryFieldError, match=r"nope\.nc: boundary field file not found"):
        bd.read_field(tmp_path / "nope.nc", "cams")
    with pytest.raises(bd.BoundaryFieldError, match="format = 'tm5'"):
        bd.read_field(CT_FILE, "tm5")


def test_inflow_side_by_the_box_diagonals():
    box = (108.7, 119.5, 19.5, 27.9)
    lon = np.array([119.5, 108.7, 114.0, 114.0, 119.0, 113.0, 114.0])
    lat = np.array([23.7, 23.7, 27.9, 19.5, 27.5, 23.8, 25.0])
    # centre (114.1, 23.7), half sizes 5.4 x 4.2: (113.0, 23.8) is -0.20 x, +0.02 y: west
    assert list(bd.inflow_side(lon, lat, box)) == ["E", "W", "N", "S", "E", "W", "N"]


def _exits(n_per, sides_lon_lat, left=True, zagl=300.0, t="2025-01-02T10:00"):
    rows = []
    for rid, pts in sides_lon_lat.items():
        for k, (lo, la) in enumerate(pts):
            for j in range(n_per):
                rows.append({"receptor_id": rid, "particle": k * n_per + j, "time": pd.Timestamp(t),
                             "lon": lo, "lat": la, "zagl": zagl, "left": left, "site": rid[:3],
                             "release_time": pd.Timestamp("2025-01-02T14:30")})
    return pd.DataFrame(rows)


def test_receptor_backgrounds_mean_spread_and_side_shares():
    """Particles leaving N (1 of 4) and E (3 of 4): shares 0.25/0.75, the background their mean
    and the spread their standard deviation of the sampled field."""
    f = bd.read_field([CT_FILE], "carbontracker")
    box = (110.0, 118.0, 21.5, 24.5)
    ex = _exits(5, {"NSTa": [(114.0, 24.5), (118.0, 23.0), (118.0, 22.5), (118.0, 23.5)]})
    out = bd.receptor_backgrounds(f, ex, box, inside_min_agl_m=1500.0)
    r = out.iloc[0]
    assert (r.share_N, r.share_E, r.share_S, r.share_W, r.share_left) == (0.25, 0.75, 0.0, 0.0, 1.0)
    v = bd.sample_field(f, ex["time"], ex["lon"].to_numpy(), ex["lat"].to_numpy(), ex["zagl"].to_numpy())
    assert r.background == pytest.approx(v.mean(), abs=1e-12)
    assert r.background_spread == pytest.approx(v.std(), abs=1e-12)
    assert r.n_particles == 20 and r.time == "2025-01-02T14:30:00Z"


def test_particles_ending_inside_are_sampled_above_the_boundary_layer():
    """End points inside the domain (left False) at 50 m are sampled at inside_min_agl_m: the
    linear field's height term (-0.0008 ppm/m) shows exactly the 1450 m lift."""
    f = bd.read_field([CT_FILE], "carbontracker")
    box = (110.0, 118.0, 21.5, 24.5)
    a = bd.receptor_backgrounds(f, _exits(3, {"R1": [(113.0, 23.0)]}, left=False, zagl=50.0), box, 1500.0)
    b = bd.receptor_backgrounds(f, _exits(3, {"R1": [(113.0, 23.0)]}, left=True, zagl=50.0), box, 1500.0)
    assert a.background[0] - b.background[0] == pytest.approx(-0.0008 * 1450.0, abs=2e-4)
    assert a.share_left[0] == 0.0


def test_receptor_table_round_trip(tmp_path):
    f = bd.read_field([CT_FILE], "carbontracker")
    out = bd.receptor_backgrounds(f, _exits(2, {"NSTa": [(114.0, 24.5)], "YXUb": [(110.0, 23.0)]}),
                                  (110.0, 118.0, 21.5, 24.5), 1500.0)
    p = bd.write_receptor_backgrounds(out, tmp_path / "background.csv")
    back = bd.read_receptor_backgrounds(p)
    assert np.allclose(back["background"], out["background"], rtol=1e-6)
    assert list(back["share_W"]) == [0.0, 1.0]


def test_demo_field_is_the_truth_plus_its_documented_errors(tmp_path):
    """The demo's CT-layout files read back, at CT's cell centres and times, to the true
    background b(t + d/U) (travel-time lag from the city) plus the bias, the north-south and the
    vertical gradients, to float32 precision; the synoptic error is one number per time, the same
    at every cell and level."""
    from gzcarbon.demo.boundary import CITY_LAT, BoundaryErrors, distance_km, write_demo_boundary

    hours = pd.date_range("2025-01-01", "2025-01-10", freq="h")  # covers t + the longest lag
    slope = 0.01  # ppm per hour: linear in time, so the time interpolation is exact
    bg = pd.Series(428.0 + slope * np.arange(len(hours)), index=hours)
    box = (108.5, 119.5, 19.5, 28.0)
    errs = BoundaryErrors(day_sigma_ppm=0.0)
    f = bd.read_field(write_demo_boundary(bg, ["20250101", "20250102"], tmp_path / "a", box, 1, errs), "carbontracker")
    t = pd.DatetimeIndex(f["time"].values)
    th = ((t - hours[0]) / pd.Timedelta(hours=1)).to_numpy()[:, None, None, None]
    lon2d, lat2d = np.meshgrid(f["lon"].values, f["lat"].values)
    lag_h = distance_km(lon2d, lat2d) * 1000.0 / errs.speed_ms / 3600.0
    h_km = np.minimum(f["height"].values / 1000.0, 12.0)
    want = (428.0 + slope * (th + lag_h[None, None]) + errs.bias_ppm
            + errs.north_gradient_ppm_per_1000km * (lat2d - CITY_LAT)[None, None] * 111.2 / 1000.0
            + errs.vertical_gradient_ppm_per_km * h_km)
    assert np.max(np.abs(f["value"].values - want)) < 1e-4
    g = bd.read_field(write_demo_boundary(bg, ["20250101", "20250102"], tmp_path / "b", box, 1,
                                          BoundaryErrors()), "carbontracker")
    d = g["value"].values - f["value"].values
    assert np.std(d[:, 0, 0, 0]) > 0.1
    assert np.max(np.abs(d - d[:, :1, :1, :1])) < 1e-4


def _site_day(path, exits_by_receptor):
    """A site-day footprint file's exit variables as transport.stilt_driver writes them:
    exit_*(receptor, particle), padded with exit_particle -1 / exit_reason -1 / NaN."""
    ids = list(exits_by_receptor)
    n_p = max(len(v) for v in exits_by_receptor.values())
    shape = (len(ids), n_p)
    lon, lat, agl = (np.full(shape, np.nan) for _ in range(3))
    tim = np.full(shape, np.datetime64("NaT"), "datetime64[ns]")
    reason = np.full(shape, -1, np.int8)
    part = np.full(shape, -1, np.int32)
    for r, rid in enumerate(ids):
        for k, (lo, la, z, t, why) in enumerate(exits_by_receptor[rid]):
            lon[r, k], lat[r, k], agl[r, k], tim[r, k], reason[r, k], part[r, k] = lo, la, z, np.datetime64(t), why, k + 1
    ds = xr.Dataset({"exit_particle": (("receptor", "particle"), part), "exit_lon": (("receptor", "particle"), lon),
                     "exit_lat": (("receptor", "particle"), lat), "exit_agl": (("receptor", "particle"), agl),
                     "exit_time": (("receptor", "particle"), tim), "exit_reason": (("receptor", "particle"), reason),
                     "release_time": (("receptor",), pd.to_datetime(["2025-01-02T06:30"] * len(ids)).values)},
                    coords={"receptor": np.array(ids, dtype=str)})
    ds.to_netcdf(path)
    return path


def test_exit_points_from_site_day_files(tmp_path):
    """Padding dropped; reason 1 (left the outer box) and 2 (stopped by HYSPLIT) count as left,
    0 (ended inside) does not and is sampled higher; sites from receptors.csv."""
    p = _site_day(tmp_path / "20250102.nc", {
        "NST_202501020630_140": [(110.0, 22.0, 400.0, "2025-01-02T01:00", 1), (114.0, 23.0, 80.0, "2025-01-01T07:00", 0)],
        "NST_202501020730_140": [(118.0, 24.0, 900.0, "2025-01-02T02:00", 2)]})
    rec = pd.DataFrame({"receptor_id": ["NST_202501020630_140", "NST_202501020730_140"], "site": ["NST", "NST"]})
    e = bd.exits_from_footprints([p], rec)
    assert len(e) == 3 and list(e["left"]) == [True, False, True] and set(e["site"]) == {"NST"}
    f = bd.read_field([CT_FILE], "carbontracker")
    out = bd.receptor_backgrounds(f, e[e["time"] >= pd.Timestamp("2025-01-02T01:30")].reset_index(drop=True),
                                  (110.0, 118.0, 21.5, 24.5), 1500.0)
    assert list(out["n_particles"]) == [1]
    xr.Dataset(coords={"receptor": np.array(["X_1"], dtype=str)}).to_netcdf(tmp_path / "old.nc")
    with pytest.raises(ValueError, match=r"old\.nc: no exit points.*outer_grid\.enabled: true"):
        bd.exits_from_footprints([tmp_path / "old.nc"])
