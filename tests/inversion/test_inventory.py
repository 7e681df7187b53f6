"""Demo inventory and truth: format round trip, sector totals, and each documented truth difference."""

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from gzcarbon.districts import district_matrix
from gzcarbon.grid import Grid
from inversion.inventory import KG_TO_UMOL, SECONDS_PER_YEAR, SECTORS, read_inventory, write_inventory
from inversion.prior import build_prior, tonnes
from gzcarbon.demo.inventory import (
    SECTOR_TOTALS_MT,
    TRUTH_CHANGES,
    city_fraction,
    make_inventory,
    make_truth,
)

from test_districts import REAL, TEST_DISTRICTS, write_geojson

GRID = Grid(112.90, 114.10, 22.50, 24.00, 0.01)
T0, T1 = "2024-12-31T00:00:00", "2025-01-03T00:00:00"
TIMES = pd.date_range(T0, T1, freq="h", inclusive="left")
PLANTS = [("ZJ", 113.56, 22.74, 900.0), ("HY", 113.498, 23.066, 450.0), ("HD", 113.20, 23.42, 350.0)]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("world")
    dfile = write_geojson(tmp / "d.geojson", TEST_DISTRICTS)
    names, A = district_matrix(dfile, GRID.lon_edges, GRID.lat_edges)
    inv = make_inventory(GRID, names, A)
    rows = [(t, pid, lon, lat, r * (1 + 0.2 * np.sin(2 * np.pi * t.hour / 24))) for pid, lon, lat, r in PLANTS for t in TIMES]
    ps = pd.DataFrame(rows, columns=["time", "plant_id", "lon", "lat", "co2_t_per_h"])
    ps_path = tmp / "point_sources.csv"
    ps.assign(time=ps.time.dt.strftime("%Y-%m-%dT%H:%M:%SZ")).to_csv(ps_path, index=False)
    truth = make_truth(inv, ps, GRID, names, A, T0, T1, seed=20250101)
    return dict(tmp=tmp, names=names, A=A, inv=inv, ps=ps, ps_path=ps_path, truth=truth)


def test_inventory_round_trip(world, tmp_path):
    path = tmp_path / "inventory.nc"
    write_inventory(world["inv"], path)
    back = read_inventory(path, GRID)
    for v in world["inv"].data_vars:
        np.testing.assert_array_equal(back[v].values, world["inv"][v].values)
    assert back.attrs["utc_offset_hours"] == 8
    assert back["emi_road"].attrs["units"] == "kg m-2 s-1"
    assert not list(tmp_path.glob(".*tmp"))  # atomic write leaves no temporary file


def test_sector_totals_and_plausible_magnitudes(world):
    inv, A = world["inv"], world["A"]
    area = GRID.cell_area_m2()
    frac = city_fraction(A, GRID)
    total = 0.0
    for s in SECTORS:
        mt = (inv[f"emi_{s}"].values * frac * area).sum() * SECONDS_PER_YEAR / 1e9
        assert mt == pytest.approx(SECTOR_TOTALS_MT[s], rel=1e-9)
        total += mt
    assert 50 <= total <= 60
    for s in SECTORS:
        p = inv[f"profile_{s}"].values
        assert p.mean() == pytest.approx(1.0, abs=1e-12)
    road = inv["profile_road"].values
    assert road[8] > 1.4 and road[18] > 1.4 and road[3] < 0.3  # rush hours, quiet night (local)
    # industry is concentrated in the zones: Huangpu ETDZ cell >> Conghua forest cell
    e = inv["emi_industry"].values
    iy, ix, _ = GRID.locate([113.49, 113.55], [23.10, 23.70])
    assert e[iy[0], ix[0]] > 50 * e[iy[1], ix[1]]
    # biosphere (µmol): daytime uptake, night respiration, more vegetation in Conghua than Yuexiu
    nee = inv["bio_nee"].values * KG_TO_UMOL
    iy, ix, _ = GRID.locate([113.55, 113.27], [23.70, 23.13])
    assert nee[12, iy[0], ix[0]] < -3 and nee[2, iy[0], ix[0]] > 1.5
    assert abs(nee[12, iy[1], ix[1]]) < 0.2 * abs(nee[12, iy[0], ix[0]])


def test_truth_structure_and_sector_sum(world):
    tr = world["truth"]
    assert tr.flux.shape == (72, GRID.ny, GRID.nx)
    parts = sum(tr[f"flux_{s}"].values.astype(float) for s in tr.attrs["sectors"].split(","))
    np.testing.assert_allclose(tr.flux.values, parts, rtol=1e-5, atol=1e-4)
    assert json.loads(tr.attrs["truth_changes"])["power_factor"] == TRUTH_CHANGES["power_factor"]
    bg = tr.background.values
    assert np.all(np.abs(bg - 428) < 6) and np.abs(np.diff(bg)).max() < 0.5


def test_truth_differs_from_prior_as_documented(world, tmp_path):
    tr, names, A = world["truth"], world["names"], world["A"]
    write_inventory(world["inv"], tmp_path / "inventory.nc")
    prior = build_prior(tmp_path / "inventory.nc", world["ps_path"], GRID, T0, T1)
    area = GRID.cell_area_m2()
    # district biases: anthropogenic gridded totals over whole days (profiles have mean 1)
    anthro = ("industry", "road", "residential")
    for d, b in TRUTH_CHANGES["district_bias"].items():
        w = A[names.index(d)].toarray().reshape(GRID.shape)
        t = sum(tonnes(tr[f"flux_{s}"].values * w, area) for s in anthro)
        p = sum(tonnes(prior[f"flux_{s}"].values * w, area) for s in anthro)
        assert t / p == pytest.approx(1 + b, abs=0.005), d
    # unbiased district stays near 1
    w = A[names.index("Conghua")].toarray().reshape(GRID.shape)
    t = sum(tonnes(tr[f"flux_{s}"].values * w, area) for s in anthro)
    assert t / sum(tonnes(prior[f"flux_{s}"].values * w, area) for s in anthro) == pytest.approx(1, abs=0.005)
    # ... while the cell-scale texture makes single cells differ from the prior by ~15 %
    ratio = tr.flux_residential.values[0] / prior.flux_residential.values[0]
    inside = (w > 0.999) & np.isfinite(ratio)
    assert 0.08 < np.std(np.log(ratio[inside])) < 0.3
    # power = point sources x factor
    t_ps = world["ps"]["co2_t_per_h"].sum()
    assert tonnes(tr.flux_power.values, area) == pytest.approx(TRUTH_CHANGES["power_factor"] * t_ps, rel=1e-5)
    assert tonnes(prior.flux_power.values, area) == pytest.approx(t_ps, rel=1e-5)
    # missing source: 2 Mt/yr over 72 h, absent from the prior
    ms = TRUTH_CHANGES["missing_source"]
    assert tonnes(tr.flux_unreported.values, area) == pytest.approx(ms["mt_per_year"] * 1e6 * 72 * 3600 / SECONDS_PER_YEAR, rel=1e-6)
    assert "flux_unreported" not in prior
    # road traffic: truth's hourly city-road curve follows the truth profile, not the prior's
    road_t = (tr.flux_road.values * area).sum(axis=(1, 2))
    lh = (TIMES.hour + 8) % 24
    prof_t = np.asarray(TRUTH_CHANGES["road_profile"]) / np.mean(TRUTH_CHANGES["road_profile"])
    np.testing.assert_allclose(road_t / road_t.mean(), prof_t[lh] / prof_t[lh].mean(), rtol=1e-5)
    night = (lh >= 1) & (lh <= 4)
    pr = (prior.flux_road.values * area).sum(axis=(1, 2))
    assert (road_t[night] / road_t.mean()).mean() > 2 * (pr[night] / pr.mean()).mean()
    # stored city totals agree with the fields
    city = city_fraction(A, GRID)
    assert float(tr.city_total_t.sel(sector="road")) == pytest.approx(tonnes(tr.flux_road.values * city, area), rel=1e-6)


def test_truth_is_seeded(world):
    a = world["truth"]
    b = make_truth(world["inv"], world["ps"], GRID, world["names"], world["A"], T0, T1, seed=20250101)
    c = make_truth(world["inv"], world["ps"], GRID, world["names"], world["A"], T0, T1, seed=1)
    np.testing.assert_array_equal(a.flux.values, b.flux.values)
    np.testing.assert_array_equal(a.background.values, b.background.values)
    assert not np.allclose(a.background.values, c.background.values)


def test_background_day_to_day_variation():
    from gzcarbon.demo.inventory import background_series

    times = pd.date_range("2025-01-01", "2025-04-01", freq="h", inclusive="left")
    bg = background_series(times, np.random.default_rng(3), 428.0, 1.5)
    daily = pd.Series(bg, index=times).resample("D").mean()
    assert daily.mean() == pytest.approx(428, abs=0.6)
    assert 0.8 < daily.diff().std() < 2.5


@pytest.mark.skipif(not REAL.is_file(), reason="config/districts.geojson not present")
def test_real_districts_city_totals():
    names, A = district_matrix(REAL, GRID.lon_edges, GRID.lat_edges)
    inv = make_inventory(GRID, names, A)
    area = GRID.cell_area_m2()
    by_d = {n: sum((A[i] @ (inv[f"emi_{s}"].values * area).ravel())[0] for s in SECTORS) * SECONDS_PER_YEAR / 1e9
            for i, n in enumerate(names)}
    assert sum(by_d.values()) == pytest.approx(sum(SECTOR_TOTALS_MT.values()), rel=1e-9)
    # industrial districts carry industry, the old core is dense but small
    assert by_d["Huangpu"] > by_d["Conghua"] and by_d["Zengcheng"] > by_d["Conghua"]
    ms = TRUTH_CHANGES["missing_source"]
    iy, ix, _ = GRID.locate(ms["lon"], ms["lat"])
    assert A[names.index("Huangpu"), int(iy) * GRID.nx + int(ix)] == pytest.approx(1.0)
