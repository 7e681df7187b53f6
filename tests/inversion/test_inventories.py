"""Real inventories in (issue 16.2): EDGAR NetCDF (a real file), CF fields by unit meaning, ODIAC
GeoTIFF (our own TIFF reader against Pillow/libtiff as the independent writer), conservative
regridding (each sector's mass to 1e-9, sources straddling the domain edge), proxy downscaling,
removal of metered point sources, temporal profiles."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from gzcarbon.grid import Grid, cell_area_m2
from inversion.inventories import (MOLAR_MASS, SECONDS_PER_YEAR, downscale, parse_flux_units, read_inventory,
                                   read_odiac, read_tiff, regrid_conservative, remove_point_sources,
                                   temporal_factors)
from inversion.inventory import InventoryError

DATA = Path(__file__).resolve().parents[1] / "data" / "inventory"
EDGAR = DATA / "v6.0_CO2_excl_short-cycle_org_C_2015_TOTALS.5.3x5.1.nc"


def test_real_edgar_file_is_read_and_equals_an_independent_xarray_read():
    inv = read_inventory(EDGAR)
    assert inv.kind == "edgar" and list(inv.sectors) == ["total"] and inv.period == "year"
    with xr.open_dataset(EDGAR) as ds:
        ref = ds["emi_co2"].values.astype(float)
        assert ds["emi_co2"].attrs["units"] == "kg m-2 s-1"
    np.testing.assert_allclose(inv.sectors["total"], ref, rtol=1e-12)
    assert inv.lat_edges[0] == -90.0 and inv.lat_edges[-1] == 90.0 and np.all(np.diff(inv.lon_edges) > 0)


def test_edgar_in_tonnes_per_cell_per_year_equals_the_flux_file(tmp_path):
    """The EDGAR 2024 `_emi` layout (`emissions` in Tonnes per cell and year) gives the same flux as
    the `_flx` layout (`fluxes` in kg m-2 s-1) of the same numbers."""
    inv = read_inventory(EDGAR)
    area = cell_area_m2(inv.lat_edges, inv.lon_edges)
    with xr.open_dataset(EDGAR) as ds:
        lat, lon = ds["lat"].values, ds["lon"].values
    flx = inv.sectors["total"]
    t = flx * area * SECONDS_PER_YEAR / 1e3
    for name, var, vals, units in (("flx.nc", "fluxes", flx, "kg m-2 s-1"), ("emi.nc", "emissions", t, "Tonnes")):
        xr.Dataset({var: (("lat", "lon"), vals, {"units": units})}, coords={"lat": lat, "lon": lon},
                   attrs={"institution": "European Commission, Joint Research Centre"}).to_netcdf(tmp_path / name)
    a, b = read_inventory(tmp_path / "flx.nc"), read_inventory(tmp_path / "emi.nc")
    np.testing.assert_allclose(b.sectors["total"], a.sectors["total"], rtol=1e-12)


def test_cf_field_one_variable_per_sector_units_by_meaning(tmp_path):
    lat = np.arange(22.55, 23.0, 0.1)
    lon = np.arange(113.05, 113.5, 0.1)
    rng = np.random.default_rng(0)
    kg = rng.random((lat.size, lon.size)) * 1e-8
    umol = kg * 1e9 / MOLAR_MASS["co2"]
    ds = xr.Dataset({"road": (("latitude", "longitude"), kg[::-1], {"units": "kg/m2/s"}),
                     "industry": (("latitude", "longitude"), umol[::-1], {"units": "micromol m-2 s-1"}),
                     "shipping": (("latitude", "longitude"), kg[::-1] * SECONDS_PER_YEAR * 1e3,
                                  {"units": "g m-2 yr-1"})},
                    coords={"latitude": lat[::-1], "longitude": lon})
    ds.to_netcdf(tmp_path / "cf.nc")  # latitudes north to south, as many producers write them
    inv = read_inventory(tmp_path / "cf.nc")
    assert inv.kind == "cf" and sorted(inv.sectors) == ["industry", "road", "shipping"]
    for k in inv.sectors:
        np.testing.assert_allclose(inv.sectors[k], kg, rtol=1e-12)
    bad = ds.assign(road=ds["road"].assign_attrs(units="furlongs"))
    bad.to_netcdf(tmp_path / "bad.nc")
    with pytest.raises(InventoryError, match=r"bad.nc: `road` units 'furlongs'"):
        read_inventory(tmp_path / "bad.nc")


@pytest.mark.parametrize("text,factor,moles,per_cell,per_period", [
    ("kg m-2 s-1", 1.0, False, False, False), ("kg m**-2 s**-1", 1.0, False, False, False),
    ("kg/m2/s", 1.0, False, False, False), ("umol m-2 s-1", 1e-6, True, False, False),
    ("mol m-2 s-1", 1.0, True, False, False), ("Tonnes", 1e3, False, True, True),
    ("g m-2 yr-1", 1e-3 / SECONDS_PER_YEAR, False, False, False), ("t/year", 1e3 / SECONDS_PER_YEAR, False, True, False),
])
def test_flux_units_by_meaning(text, factor, moles, per_cell, per_period):
    u = parse_flux_units(text)
    assert u.factor == pytest.approx(factor, rel=1e-12)
    assert (u.moles, u.per_cell, u.per_period) == (moles, per_cell, per_period)


def _domain_mass_reference(f, lon_e, lat_e, grid):
    """Σ flux × area of (source cell ∩ domain), cell by cell (independent of the overlap matrices)."""
    tot = 0.0
    for j in range(lat_e.size - 1):
        y0, y1 = max(lat_e[j], grid.lat_min), min(lat_e[j + 1], grid.lat_max)
        if y1 <= y0:
            continue
        for i in range(lon_e.size - 1):
            x0, x1 = max(lon_e[i], grid.lon_min), min(lon_e[i + 1], grid.lon_max)
            if x1 > x0:
                tot += f[j, i] * cell_area_m2([y0, y1], [x0, x1])[0, 0]
    return tot


def test_conservative_regridding_keeps_each_sector_mass_with_sources_straddling_the_domain_edge():
    inv = read_inventory(EDGAR)
    # a domain whose edges cut through the 5-degree EDGAR cells on every side
    grid = Grid(101.3, 131.7, 8.4, 41.6, 0.1)
    for f in (inv.sectors["total"], np.random.default_rng(1).random(inv.sectors["total"].shape)):
        out = regrid_conservative(f, inv.lon_edges, inv.lat_edges, grid)
        got = float((out * grid.cell_area_m2()).sum())
        ref = _domain_mass_reference(f, inv.lon_edges, inv.lat_edges, grid)
        assert got == pytest.approx(ref, rel=1e-9)
    # a fine grid that covers the source grid keeps the whole total
    lon_e, lat_e = np.arange(100.0, 110.01, 0.5), np.arange(20.0, 25.01, 0.5)
    f = np.random.default_rng(2).random((lat_e.size - 1, lon_e.size - 1))
    g = Grid(100.0, 110.0, 20.0, 25.0, 0.1)
    out = regrid_conservative(f, lon_e, lat_e, g)
    assert (out * g.cell_area_m2()).sum() == pytest.approx((f * cell_area_m2(lat_e, lon_e)).sum(), rel=1e-12)
    np.testing.assert_allclose(out[:5, :5], f[0, 0], rtol=1e-12)  # flat density inside a source cell


def test_downscaling_with_a_proxy_conserves_every_coarse_cell():
    lon_e, lat_e = np.arange(113.0, 113.51, 0.1), np.arange(23.0, 23.31, 0.1)
    rng = np.random.default_rng(3)
    coarse = rng.random((lat_e.size - 1, lon_e.size - 1))
    g = Grid(113.0, 113.5, 23.0, 23.3, 0.01)
    flat = regrid_conservative(coarse, lon_e, lat_e, g)
    proxy = rng.random(g.shape) ** 4
    proxy[:10, :10] = 0.0  # one coarse cell without proxy keeps its flat field
    fine = downscale(flat, proxy, lon_e, lat_e, g)
    area = g.cell_area_m2()
    for j in range(3):
        for i in range(5):
            s = np.s_[10 * j:10 * (j + 1), 10 * i:10 * (i + 1)]
            assert (fine[s] * area[s]).sum() == pytest.approx((flat[s] * area[s]).sum(), rel=1e-12)
            if (j, i) != (0, 0):  # mass shared in proportion to proxy x area
                share = fine[s] * area[s] / (fine[s] * area[s]).sum()
                np.testing.assert_allclose(share, proxy[s] * area[s] / (proxy[s] * area[s]).sum(), rtol=1e-10)
    np.testing.assert_allclose(fine[:10, :10], flat[:10, :10], rtol=1e-12)


def _odiac_like_tiff(path, values, lon0, lat0, res, compression):
    """A GeoTIFF written by Pillow (libtiff), float32 strips, geographic tags as ODIAC's files have them."""
    from PIL import Image, TiffImagePlugin

    info = TiffImagePlugin.ImageFileDirectory_v2()
    info[33550] = (res, res, 0.0)
    info.tagtype[33550] = 12
    info[33922] = (0.0, 0.0, 0.0, lon0, lat0, 0.0)
    info.tagtype[33922] = 12
    Image.fromarray(values.astype(np.float32), mode="F").save(path, tiffinfo=info, compression=compression)


@pytest.mark.parametrize("compression", [None, "tiff_adobe_deflate"])
def test_tiff_reader_against_libtiff(tmp_path, compression):
    pytest.importorskip("PIL")
    rng = np.random.default_rng(4)
    vals = (rng.random((37, 53)) * 100).astype(np.float32)
    p = tmp_path / "odiac2022_1km_excl_intl_2501.tif"
    _odiac_like_tiff(p, vals, 113.0, 23.5, 1 / 120, compression)
    got, tags = read_tiff(p)
    np.testing.assert_array_equal(got, vals)
    assert tags["pixel_scale"][0] == pytest.approx(1 / 120) and tags["tiepoint"][3:5] == (113.0, 23.5)


def test_odiac_tonnes_carbon_per_month_become_co2_flux_and_plants_are_removed(tmp_path):
    pytest.importorskip("PIL")
    rng = np.random.default_rng(5)
    tc = (rng.random((60, 60)) * 50).astype(np.float32)  # tonne C per cell per month, north row first
    p = tmp_path / "odiac2022_1km_excl_intl_2501.tif"
    _odiac_like_tiff(p, tc, 113.0, 23.5, 0.01, None)
    inv = read_odiac(p)
    assert (inv.attrs["year"], inv.attrs["month"]) == (2025, 1) and "shipping" in inv.attrs["lacks"]
    secs = 31 * 86400.0
    kg_co2 = float((inv.sectors["total"] * inv.cell_area).sum()) * secs
    assert kg_co2 == pytest.approx(float(tc.astype(float).sum()) * 1e3 * 44.0095 / 12.011, rel=1e-12)
    # row 0 of the file is the northern edge: it lands at the top latitude
    np.testing.assert_allclose(inv.sectors["total"][-1] * inv.cell_area[-1] * secs,
                               tc[0].astype(float) * 1e3 * 44.0095 / 12.011, rtol=1e-12)
    grid = Grid(113.0, 113.6, 22.9, 23.5, 0.01)
    flux = inv.on_grid(grid)["total"]
    area = grid.cell_area_m2()
    iy, ix, _ = grid.locate(113.105, 23.205)
    half = 0.5 * float(flux[iy, ix] * area[iy, ix]) * 3600 / 1e3  # t/h: half of what the cell holds
    plant_t_per_h = np.array([half, 1e6])  # the second plant is larger than its cell: shortfall reported
    out, short = remove_point_sources(flux, plant_t_per_h, [113.105, 113.405], [23.205, 23.305], grid, 744.0)
    removed_t = float(((flux - out) * area).sum()) * 744 * 3600 / 1e3
    assert removed_t + short.sum() == pytest.approx(plant_t_per_h.sum() * 744, rel=1e-9)
    assert short[0] == 0.0 and short[1] > 0 and np.all(out >= 0)


def test_temporal_profiles_keep_the_annual_mean_and_are_in_local_time():
    hours = pd.date_range("2025-01-01", "2026-01-01", freq="h", inclusive="left")
    monthly = np.linspace(0.8, 1.2, 12)
    weekday = [1.1, 1.1, 1.1, 1.1, 1.1, 0.8, 0.7]
    hourly = 1 + 0.5 * np.sin(2 * np.pi * (np.arange(24) - 6) / 24)
    f = temporal_factors(hours, 8, monthly, weekday, hourly)
    assert f.mean() == pytest.approx(1.0, abs=3e-3)  # 2025 starts on a Wednesday: weekdays not balanced
    h_only = temporal_factors(hours, 8, hourly=hourly)
    assert h_only.mean() == pytest.approx(1.0, rel=1e-12)
    # 04 UTC is 12 local time in UTC+8
    assert h_only[4] == pytest.approx(hourly[12] / hourly.mean(), rel=1e-12)
