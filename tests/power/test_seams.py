"""Issue 5 items 4 and 6: the point sources reach the prior unchanged; a year of hours from files
(its speed is measured by benchmarks/power.py, not asserted here)."""

import importlib.util
import os

import numpy as np
import pandas as pd
import pytest

import power
from power import products
from gzcarbon.atomic import write_csv
from gzcarbon.demo.power import make_demo

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PLANTS = os.path.join(REPO, "config", "power_plants.csv")


def test_point_sources_feed_the_prior_tonne_for_tonne(tmp_path):
    prior = pytest.importorskip("inversion.prior")
    from gzcarbon.grid import Grid

    g, l, e, _ = make_demo(PLANTS, "2024-12-31", "2025-01-02", seed=5)
    ds = power.emission_factors(PLANTS, g, l, e)
    path = str(tmp_path / "point_sources.csv")
    products.write_point_sources(power.point_sources(ds), path)
    grid = Grid(lon_min=112.9, lon_max=114.1, lat_min=22.5, lat_max=24.0, res=0.01)  # the default state grid
    times = pd.DatetimeIndex(ds["time"].to_numpy())
    flux, table = prior.grid_point_sources(prior.read_point_sources(path), grid, times, path)
    area = grid.cell_area_m2()
    # every hour, the gridded power sector holds exactly the plants' CO2 (CSV keeps 1e-6 t/h)
    hourly_t = (flux * area[None]).sum(axis=(1, 2)) * 3600.0 / prior.KG_TO_UMOL / 1e3
    np.testing.assert_allclose(hourly_t, ds["production_emissions_t"].sum("district"), rtol=1e-8)
    assert prior.tonnes(flux, area) == pytest.approx(float(ds["plant_co2_t"].sum()), rel=1e-8)
    # and each plant sits in the cell of its registry coordinates
    iy, ix, inside = grid.locate(np.array([113.498]), np.array([23.066]))
    assert inside.all()
    hy = float(ds["plant_co2_t"].sel(plant="HY_EAST").sum())
    in_cell = float(flux[:, iy[0], ix[0]].sum() * area[iy[0], ix[0]] * 3600.0 / prior.KG_TO_UMOL / 1e3)
    assert in_cell == pytest.approx(hy, rel=1e-8)


def _benchmark_registry(n, seed):
    spec = importlib.util.spec_from_file_location("bench_power", os.path.join(REPO, "benchmarks", "power.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.registry(n, np.random.default_rng(seed))


def test_a_year_of_hours_from_files(tmp_path):
    reg = _benchmark_registry(20, 0)
    g, l, e, _ = make_demo(reg, "2024-01-01", "2025-01-01", seed=0)
    paths = {}
    for k, df in (("plants", reg), ("generation", g), ("load", l), ("external", e)):
        paths[k] = str(tmp_path / f"{k}.csv")
        write_csv(df, paths[k])
    ds = power.emission_factors(paths["plants"], paths["generation"], paths["load"], paths["external"])
    assert (ds.sizes["time"], ds.sizes["district"], ds.sizes["plant"]) == (8784, 11, 20)   # 2024: leap year
    assert ds.attrs["max_conservation_residual_relative"] < 1e-9
    assert int(ds["marginal_hours"]) == 8783
