"""The `prior` with real inventories (issue 16.2 wiring): EDGAR (the real file), EDGAR 2024 and CF
layouts, ODIAC GeoTIFF (Pillow/libtiff as the independent writer); metered plants removed on the
inventory's own cells (nothing counted twice), conservative regridding, proxy downscaling, temporal
profiles from a CSV at local time, a CarbonTracker-layout biogenic prior."""

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from gzcarbon.grid import Grid, cell_area_m2
from inversion.inventories import (
    MOLAR_MASS,
    SECONDS_PER_YEAR,
    check_inventory_format,
    nee_hourly,
    plant_mass_rates,
    read_inventory,
    read_temporal_profiles,
)
from inversion.inventory import KG_TO_UMOL, InventoryError
from inversion.prior import InventoryOptions, build_prior, tonnes

DATA = Path(__file__).resolve().parents[1] / "data" / "inventory"
EDGAR = DATA / "v6.0_CO2_excl_short-cycle_org_C_2015_TOTALS.5.3x5.1.nc"
GRID = Grid(113.00, 113.12, 23.00, 23.08, 0.01)  # 12 x 8 cells
T0, T1 = "2024-12-31T00:00:00", "2025-01-03T00:00:00"  # 72 hours, the first in December
TIMES = pd.date_range(T0, T1, freq="h", inclusive="left")


def point_csv(tmp_path, plants, times=TIMES, name="ps.csv"):
    """``point_sources.csv`` with a constant t/h per plant: [(id, lon, lat, t_per_h)]."""
    rows = [(t.strftime("%Y-%m-%dT%H:%M:%SZ"), pid, lon, lat, rate) for pid, lon, lat, rate in plants for t in times]
    path = tmp_path / name
    pd.DataFrame(rows, columns=["time", "plant_id", "lon", "lat", "co2_t_per_h"]).to_csv(path, index=False)
    return path


def _domain_mass(f, lon_e, lat_e, grid):
    """Σ flux × area of (source cell ∩ domain), kg/s, cell by cell (independent of the regridder)."""
    tot = 0.0
    for j in range(lat_e.size - 1):
        y0, y1 = max(lat_e[j], grid.lat_min), min(lat_e[j + 1], grid.lat_max)
        for i in range(lon_e.size - 1):
            x0, x1 = max(lon_e[i], grid.lon_min), min(lon_e[i + 1], grid.lon_max)
            if y1 > y0 and x1 > x0:
                tot += f[j, i] * cell_area_m2([y0, y1], [x0, x1])[0, 0]
    return tot


def test_real_edgar_prior_keeps_the_domain_mass_minus_the_metered_plant(tmp_path, caplog):
    """EDGAR TOTALS include power: the plant's mean t/h leaves the EDGAR cell holding it, then the
    coarse (5 deg) cell is regridded conservatively; flat profiles (warned)."""
    inv = read_inventory(EDGAR)
    plant_t_h = 50.0
    ps = point_csv(tmp_path, [("P1", 113.035, 23.045, plant_t_h)])
    with caplog.at_level(logging.WARNING):
        ds = build_prior(EDGAR, ps, GRID, T0, T1, options=InventoryOptions(inventory_format="edgar"))
    assert "FLAT in time" in caplog.text and "FLAT block" in caplog.text
    assert ds.attrs["inventory_format"] == "edgar" and "kept flat" in ds.attrs["downscaling"]
    # the independent reference: the plant's rate out of its EDGAR cell, Σ over the domain overlap
    f = inv.sectors["total"].copy()
    iy = np.searchsorted(inv.lat_edges, 23.045) - 1
    ix = np.searchsorted(inv.lon_edges, 113.035) - 1
    f[iy, ix] -= plant_t_h * 1e3 / 3600 / cell_area_m2(inv.lat_edges[iy:iy + 2], inv.lon_edges[ix:ix + 2])[0, 0]
    expect_t = _domain_mass(f, inv.lon_edges, inv.lat_edges, GRID) * 72 * 3600 / 1e3
    area = ds["cell_area"].values
    assert tonnes(ds["flux_total"].values.astype(float), area) == pytest.approx(expect_t, rel=1e-6)
    assert ds.attrs["point_sources_removed_t_per_h"] == pytest.approx(plant_t_h, rel=1e-12)
    assert tonnes(ds["flux_power"].values.astype(float), area) == pytest.approx(plant_t_h * 72, rel=1e-6)
    assert np.all(ds["flux_bio"].values == 0) and ds.attrs["bio_prior"].startswith("none")


def _edgar_2024_flx(path, lon_e, lat_e, kg, monthly=False):
    lon, lat = 0.5 * (lon_e[1:] + lon_e[:-1]), 0.5 * (lat_e[1:] + lat_e[:-1])
    dims = ("time", "lat", "lon") if monthly else ("lat", "lon")
    xr.Dataset({"fluxes": (dims, kg, {"units": "kg m-2 s-1"})},
               coords={"lat": lat, "lon": lon},
               attrs={"institution": "European Commission, Joint Research Centre"}).to_netcdf(path)


def _geotiff(path, values_north_first, lon0, lat0, res):
    """A geographic GeoTIFF written by Pillow (libtiff): float32, ModelPixelScale + ModelTiepoint."""
    from PIL import Image, TiffImagePlugin

    info = TiffImagePlugin.ImageFileDirectory_v2()
    info[33550] = (res, res, 0.0)
    info.tagtype[33550] = 12
    info[33922] = (0.0, 0.0, 0.0, lon0, lat0, 0.0)
    info.tagtype[33922] = 12
    Image.fromarray(values_north_first.astype(np.float32), mode="F").save(path, tiffinfo=info)


def test_coarse_edgar_downscaled_with_a_proxy_geotiff_keeps_every_coarse_cell(tmp_path, caplog):
    pytest.importorskip("PIL")
    lon_e, lat_e = np.round(np.arange(113.0, 113.201, 0.1), 10), np.round(np.arange(23.0, 23.201, 0.1), 10)
    rng = np.random.default_rng(7)
    kg = rng.uniform(1e-9, 1e-8, (2, 2))
    _edgar_2024_flx(tmp_path / "edgar_flx.nc", lon_e, lat_e, kg)
    pop = (rng.random((20, 20)) ** 3 * 1000).astype(np.float32)  # people per 0.01-deg pixel, north row first
    pop[10:, :10] = 0.0  # the south-west coarse cell has no proxy: it stays flat
    _geotiff(tmp_path / "pop.tif", pop, 113.0, 23.2, 0.01)
    grid = Grid(113.0, 113.2, 23.0, 23.2, 0.01)
    ps = point_csv(tmp_path, [("P1", 113.15, 23.15, 0.0)])
    opts = InventoryOptions(downscale_proxy=str(tmp_path / "pop.tif"))
    with caplog.at_level(logging.WARNING):
        ds = build_prior(tmp_path / "edgar_flx.nc", ps, grid, T0, T1, options=opts)
    assert ds.attrs["downscaling"].startswith("proxy") and "FLAT block" not in caplog.text
    mass = ds["flux_total"].values[0].astype(float) * ds["cell_area"].values / KG_TO_UMOL  # kg/s
    people = np.asarray(pop[::-1], float)  # south row first, as the grid
    area = ds["cell_area"].values
    for j in range(2):
        for i in range(2):
            s = np.s_[10 * j:10 * j + 10, 10 * i:10 * i + 10]
            ref = kg[j, i] * cell_area_m2(lat_e[j:j + 2], lon_e[i:i + 2])[0, 0]
            assert mass[s].sum() == pytest.approx(ref, rel=1e-6)  # float32 storage of flux_total
            share = mass[s] / mass[s].sum()
            expect = people[s] / people[s].sum() if people[s].sum() > 0 else area[s] / area[s].sum()
            np.testing.assert_allclose(share, expect, rtol=1e-5, atol=1e-9)


def test_temporal_profiles_csv_at_local_time_and_monthly_edgar_by_month(tmp_path):
    lon_e, lat_e = np.round(np.arange(113.0, 113.121, 0.01), 10), np.round(np.arange(23.0, 23.081, 0.01), 10)
    base = np.random.default_rng(8).uniform(1e-9, 1e-8, (8, 12))
    monthly = np.stack([base * (1 + m / 10) for m in range(12)])  # December 2.1 x, January 1.0 x base
    _edgar_2024_flx(tmp_path / "edgar_monthly.nc", lon_e, lat_e, monthly, monthly=True)
    hourly = 1 + 0.5 * np.sin(2 * np.pi * (np.arange(24) - 9) / 24)
    weekday = [1.1, 1.1, 1.1, 1.1, 1.05, 0.8, 0.75]
    rows = [("*", "hour", h, hourly[h]) for h in range(24)] + [("*", "weekday", d, weekday[d]) for d in range(7)]
    rows += [("*", "month", m, 5.0 if m == 1 else 1.0) for m in range(1, 13)]  # ignored: the file is monthly
    pd.DataFrame(rows, columns=["sector", "profile", "index", "factor"]).to_csv(tmp_path / "prof.csv", index=False)
    ps = point_csv(tmp_path, [("P1", 113.05, 23.05, 0.0)])
    ds = build_prior(tmp_path / "edgar_monthly.nc", ps, GRID, T0, T1,
                     options=InventoryOptions(temporal_profiles=str(tmp_path / "prof.csv")))
    w = np.asarray(weekday) / np.mean(weekday)
    for it in (0, 15, 16, 30, 71):
        t = TIMES[it]
        loc = t + pd.Timedelta(hours=8)
        field = monthly[11] if t.month == 12 else monthly[0]  # the UTC month picks the field
        expect = field * hourly[loc.hour] / hourly.mean() * w[loc.dayofweek] * KG_TO_UMOL
        np.testing.assert_allclose(ds["flux_total"].values[it], expect, rtol=1e-6)
    assert ds.attrs["inventory_period"] == "month"


@pytest.mark.parametrize("rows,match", [
    ([("road", "hour", h, 1.0) for h in range(23)], r"road profile hour needs each index 0\.\.23 once"),
    ([("road", "daily", 0, 1.0)], r"profile 'daily' \(sector road\) is not one of"),
    ([("road", "weekday", d, -1.0) for d in range(7)], r"line 2: `index` and `factor` must be numbers, factor >= 0"),
])
def test_bad_profile_csv_names_the_file_and_the_fix(tmp_path, rows, match):
    p = tmp_path / "prof.csv"
    pd.DataFrame(rows, columns=["sector", "profile", "index", "factor"]).to_csv(p, index=False)
    with pytest.raises(InventoryError, match=match) as err:
        read_temporal_profiles(p)
    assert str(p) in str(err.value)


def test_odiac_prior_plus_metered_plant_equals_odiac_nothing_counted_twice(tmp_path):
    """A plant's pixel holds its emission on top of the city's; with the metered plant emitting what
    ODIAC holds for it, prior (ODIAC without the plant) + power = ODIAC, and the plant's cell keeps
    only the city part. January hours only (the ODIAC file is January's)."""
    pytest.importorskip("PIL")
    rng = np.random.default_rng(9)
    tc = rng.uniform(0.5, 2.0, (12, 18)).astype(np.float32)  # t C per 1/120-deg pixel per month, north first
    plant_tc = 5000.0
    r, c = 3, 4  # the plant's pixel (row from the north)
    tc[r, c] += plant_tc
    p = tmp_path / "odiac2023_1km_excl_intl_2501.tif"
    _geotiff(p, tc, 113.0, 23.1, 1 / 120)
    lon, lat = 113.0 + (c + 0.5) / 120, 23.1 - (r + 0.5) / 120
    hours_jan = 31 * 24
    plant_t_h = float(np.float32(tc[r, c]) - np.float32(tc[r, c] - plant_tc)) * 44.0095 / 12.011 / hours_jan
    grid = Grid(113.0, 113.15, 23.0, 23.1, 0.01)
    times = pd.date_range("2025-01-01", "2025-01-03", freq="h", inclusive="left")
    ps = point_csv(tmp_path, [("P1", lon, lat, plant_t_h)], times)
    ds = build_prior(p, ps, grid, times[0], times[-1] + pd.Timedelta(hours=1))
    assert ds.attrs["inventory_format"] == "odiac" and "shipping" in ds.attrs["inventory_lacks"]
    area = ds["cell_area"].values
    odiac_t = float(tc.astype(float).sum()) * 44.0095 / 12.011 / hours_jan * len(times)
    got = tonnes(ds["flux_total"].values.astype(float), area) + tonnes(ds["flux_power"].values.astype(float), area)
    assert got == pytest.approx(odiac_t, rel=1e-5)
    assert ds.attrs["point_sources_not_removed_t_per_h"] == pytest.approx(0.0, abs=1e-9)
    iy, ix, _ = grid.locate(lon, lat)
    city_only = ds["flux_total"].values[0, iy, ix] * area[iy, ix] * 3600 / KG_TO_UMOL / 1e3  # t/h
    assert city_only < 0.01 * plant_t_h


def test_plant_larger_than_its_cell_is_taken_from_the_neighbours_and_the_rest_reported():
    lon_e, lat_e = np.arange(113.0, 113.031, 0.01), np.arange(23.0, 23.031, 0.01)
    f = np.full((3, 3), 1e-8)
    area = cell_area_m2(lat_e, lon_e)
    cell_t_h = f[1, 1] * area[1, 1] * 3600 / 1e3
    total_t_h = float((f * area).sum()) * 3600 / 1e3
    out, short = plant_mass_rates(f, lon_e, lat_e, [3 * cell_t_h, 20 * total_t_h, 1.0],
                                  [113.015, 113.015, 120.0], [23.015, 23.015, 23.0])
    assert out[1, 1] == 0.0 and np.all(out >= 0)
    assert short[0] == 0.0 and short[2] == 1.0  # the third plant lies outside the inventory
    removed = (float((f * area).sum()) - float((out * area).sum())) * 3600 / 1e3
    assert removed + short[:2].sum() == pytest.approx(3 * cell_t_h + 20 * total_t_h, rel=1e-12)


def test_carbontracker_layout_nee_each_hour_takes_its_three_hour_step(tmp_path):
    """CarbonTracker flux1x1 files: 1 deg cells, 3-hourly `bio_flux_opt` in mol m-2 s-1 stamped at
    the centre of each 3-h interval (01:30, 04:30, ...)."""
    lat, lon = np.arange(20.5, 26.0, 1.0), np.arange(110.5, 116.0, 1.0)
    stamps = pd.date_range("2024-12-31T01:30", periods=8 * 3, freq="3h")
    vals = np.random.default_rng(10).normal(0, 5e-6, (stamps.size, lat.size, lon.size))
    xr.Dataset({"bio_flux_opt": (("time", "latitude", "longitude"), vals, {"units": "mol m-2 s-1"}),
                "ocn_flux_opt": (("time", "latitude", "longitude"), vals * 0, {"units": "mol m-2 s-1"})},
               coords={"time": stamps, "latitude": lat, "longitude": lon}).to_netcdf(tmp_path / "ct.nc")
    got = nee_hourly(tmp_path / "ct.nc", GRID, TIMES)
    assert got.shape == (72,) + GRID.shape
    for it in (0, 1, 2, 3, 40, 71):  # GRID lies inside the 1-deg cell 113-114 E x 23-24 N (index 3, 3)
        step = (TIMES[it] - pd.Timestamp("2024-12-31")) // pd.Timedelta(hours=3)
        np.testing.assert_allclose(got[it], vals[step, 3, 3] * 1e6, rtol=1e-12)
    with pytest.raises(InventoryError, match=r"ct.nc: no time step holds 24 of the run's hours"):
        nee_hourly(tmp_path / "ct.nc", GRID, TIMES.append(TIMES + pd.Timedelta(hours=72))[:96])


def test_inventory_format_from_config_must_match_the_content(tmp_path):
    assert check_inventory_format(EDGAR) == "edgar"
    with pytest.raises(InventoryError, match=r"says 'odiac' but the file is 'edgar'.*inputs.inventory_format: edgar"):
        check_inventory_format(EDGAR, "odiac")
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    with pytest.raises(InventoryError, match=r"x.csv: neither a GeoTIFF \(ODIAC\) nor a NetCDF file"):
        check_inventory_format(tmp_path / "x.csv")


def test_molar_cf_units_for_methane(tmp_path):
    """`inputs.inventory_species: ch4`: umol m-2 s-1 of CH4 read with CH4's molar mass."""
    lat, lon = np.arange(23.005, 23.08, 0.01), np.arange(113.005, 113.12, 0.01)
    umol = np.random.default_rng(11).random((lat.size, lon.size))
    xr.Dataset({"waste": (("lat", "lon"), umol, {"units": "umol m-2 s-1"})},
               coords={"lat": lat, "lon": lon}).to_netcdf(tmp_path / "ch4.nc")
    inv = read_inventory(tmp_path / "ch4.nc", species="ch4")
    np.testing.assert_allclose(inv.sectors["waste"], umol * 1e-9 * MOLAR_MASS["ch4"] * 1e-3 * 1e3, rtol=1e-12)
    assert SECONDS_PER_YEAR == 365 * 86400.0
