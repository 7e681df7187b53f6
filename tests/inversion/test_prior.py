"""Prior: unit conversion, local-time profiles, point-source gridding, conservation, grid checks."""

import numpy as np
import pandas as pd
import pytest

from gzcarbon.grid import Grid
from inversion.inventory import (
    KG_TO_UMOL,
    SECONDS_PER_YEAR,
    InventoryError,
    inventory_dataset,
    kg_m2_s_to_umol_m2_s,
    read_inventory,
    umol_m2_s_to_kg_m2_s,
    write_inventory,
)
from inversion.prior import PointSourceError, build_prior, read_point_sources, tonnes

GRID = Grid(113.00, 113.12, 23.00, 23.08, 0.01)  # 12 x 8 cells
T0, T1 = "2024-12-31T00:00:00", "2025-01-03T00:00:00"  # 72 hours
ATTRS = {"title": "t", "institution": "i", "source": "s", "utc_offset_hours": 8}


def small_inventory(tmp_path, grid=GRID, seed=0):
    rng = np.random.default_rng(seed)
    emi = {s: rng.uniform(0, 1e-6, grid.shape) for s in ("industry", "road", "residential")}
    prof = {s: (p := rng.uniform(0.2, 2.0, 24)) / p.mean() for s in ("industry", "road", "residential")}
    bio = rng.normal(0, 1e-7, (24,) + grid.shape)
    path = tmp_path / "inventory.nc"
    write_inventory(inventory_dataset(grid, emi, prof, bio, ATTRS), path)
    return path, emi, prof, bio


def point_csv(tmp_path, plants, times, name="ps.csv"):
    rows = []
    for k, (pid, lon, lat) in enumerate(plants):
        for i, t in enumerate(times):
            rows.append((t.strftime("%Y-%m-%dT%H:%M:%SZ"), pid, lon, lat, 100.0 * (k + 1) + i % 7))
    path = tmp_path / name
    pd.DataFrame(rows, columns=["time", "plant_id", "lon", "lat", "co2_t_per_h"]).to_csv(path, index=False)
    return path


TIMES = pd.date_range(T0, T1, freq="h", inclusive="left")


def test_unit_factor():
    # 1 µmol CO2 = 44.01e-6 g = 44.01e-9 kg
    assert KG_TO_UMOL == pytest.approx(1 / 44.01e-9, rel=1e-15)
    assert kg_m2_s_to_umol_m2_s(44.01e-9) == pytest.approx(1.0, rel=1e-14)
    assert umol_m2_s_to_kg_m2_s(kg_m2_s_to_umol_m2_s(3.7e-8)) == pytest.approx(3.7e-8, rel=1e-14)
    # scale check: 1 Mt/yr over 1 km2 = 3.17e-5 kg m-2 s-1 = 720 µmol m-2 s-1
    assert 1e9 / SECONDS_PER_YEAR / 1e6 == pytest.approx(3.169e-5, rel=1e-3)
    assert kg_m2_s_to_umol_m2_s(1e9 / SECONDS_PER_YEAR / 1e6) == pytest.approx(720.0, rel=1e-3)


def test_prior_matches_dense_reference_and_local_time(tmp_path):
    inv, emi, prof, bio = small_inventory(tmp_path)
    ps = point_csv(tmp_path, [("P1", 113.035, 23.045)], TIMES)
    ds = build_prior(inv, ps, GRID, T0, T1, utc_offset=8)
    assert ds.flux.dims == ("time", "lat", "lon") and ds.flux.shape == (72, 8, 12)
    assert ds.flux.attrs["units"] == "umol m-2 s-1"
    for it in (0, 5, 16, 40, 71):
        h_local = (TIMES[it].hour + 8) % 24
        for s in ("industry", "road", "residential"):
            expect = emi[s] * prof[s][h_local] / 44.01e-9
            np.testing.assert_allclose(ds[f"flux_{s}"].values[it], expect, rtol=1e-6)
        np.testing.assert_allclose(ds["flux_bio"].values[it], bio[h_local] / 44.01e-9, rtol=1e-6)
    parts = sum(ds[f"flux_{s}"].values.astype(float) for s in ("industry", "road", "residential", "power", "bio"))
    np.testing.assert_allclose(ds.flux.values, parts, rtol=1e-6, atol=1e-6)


def test_conservation_gridded_and_points(tmp_path):
    inv, emi, prof, bio = small_inventory(tmp_path)
    # two plants share a cell, a third elsewhere
    plants = [("A", 113.031, 23.041), ("B", 113.039, 23.049), ("C", 113.105, 23.005)]
    ps = point_csv(tmp_path, plants, TIMES)
    ds = build_prior(inv, ps, GRID, T0, T1)
    area = ds.cell_area.values
    t_in = read_point_sources(ps)["co2_t_per_h"].sum()
    assert tonnes(ds.flux_power.values.astype(float), area) == pytest.approx(t_in, rel=1e-6)
    assert np.count_nonzero(ds.flux_power.values[0]) == 2
    # whole days: each gridded sector's tonnes = annual-mean rate x 72 h
    for s in ("industry", "road", "residential"):
        expect_t = (emi[s] * area).sum() * 72 * 3600 / 1e3
        assert tonnes(ds[f"flux_{s}"].values.astype(float), area) == pytest.approx(expect_t, rel=1e-6)


def test_missing_plant_hours_filled_by_hour_of_day(tmp_path):
    inv, *_ = small_inventory(tmp_path)
    ps = point_csv(tmp_path, [("A", 113.031, 23.041)], TIMES)
    df = pd.read_csv(ps)
    full = df["co2_t_per_h"].to_numpy()
    df = df.drop(index=[3, 30])  # hour 03 of day 1 and 06 of day 2
    df.to_csv(ps, index=False)
    ds = build_prior(inv, ps, GRID, T0, T1)
    area = ds.cell_area.values
    got = ds.flux_power.values[:, 4, 3].astype(float) * area[4, 3] * 3600 / KG_TO_UMOL / 1e3
    np.testing.assert_allclose(got[3], np.mean(full[[27, 51]]), rtol=1e-6)
    np.testing.assert_allclose(got[30], np.mean(full[[6, 54]]), rtol=1e-6)
    np.testing.assert_allclose(np.delete(got, [3, 30]), np.delete(full, [3, 30]), rtol=1e-6)


def test_inventory_on_other_grid_is_a_clear_error(tmp_path):
    other = Grid(113.00, 113.12, 23.00, 23.10, 0.01)
    inv, *_ = small_inventory(tmp_path, grid=other)
    ps = point_csv(tmp_path, [("A", 113.031, 23.041)], TIMES)
    with pytest.raises(InventoryError) as err:
        build_prior(inv, ps, GRID, T0, T1)
    msg = str(err.value)
    assert str(inv) in msg and GRID.describe() in msg and "12 x 10 cells" in msg and "Regrid" in msg


def test_bad_point_sources(tmp_path):
    inv, *_ = small_inventory(tmp_path)
    outside = point_csv(tmp_path, [("FAR", 114.5, 23.0)], TIMES, "far.csv")
    with pytest.raises(PointSourceError, match="FAR.*outside the state grid"):
        build_prior(inv, outside, GRID, T0, T1)
    other_month = point_csv(tmp_path, [("A", 113.031, 23.041)], TIMES + pd.Timedelta(days=40), "late.csv")
    with pytest.raises(PointSourceError, match="no row inside"):
        build_prior(inv, other_month, GRID, T0, T1)
    empty = tmp_path / "empty.csv"
    empty.write_text("time,plant_id,lon,lat,co2_t_per_h\n")
    ds = build_prior(inv, empty, GRID, T0, T1)
    assert float(abs(ds.flux_power).max()) == 0.0 and ds.attrs["power_t_total"] == 0.0
    bad = tmp_path / "bad.csv"
    bad.write_text("time,plant,lon,lat,co2_t_per_h\n2025-01-01T00:00Z,A,113.03,23.04,1\n")
    with pytest.raises(PointSourceError, match=r"bad.csv.*plant_id"):
        read_point_sources(bad)


def test_inventory_reader_rejects_bad_fields(tmp_path):
    inv, *_ = small_inventory(tmp_path)
    ds = read_inventory(inv)
    bad = ds.copy()
    bad["profile_road"] = bad["profile_road"] * 2
    with pytest.raises(InventoryError, match="profile_road.*mean 1"):
        write_inventory(bad, tmp_path / "bad.nc")
    bad = ds.drop_vars("emi_industry")
    bad.to_netcdf(tmp_path / "bad2.nc")
    with pytest.raises(InventoryError, match=r"bad2.nc.*emi_industry"):
        read_inventory(tmp_path / "bad2.nc")
    bad = ds.copy()
    bad["emi_road"].attrs["units"] = "t/yr"
    bad.to_netcdf(tmp_path / "bad3.nc")
    with pytest.raises(InventoryError, match="units"):
        read_inventory(tmp_path / "bad3.nc")
