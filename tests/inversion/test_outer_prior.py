"""The outer cells' prior (issue 19): a coarse EDGAR inventory regridded conservatively onto the outer
grid, zero under the inner box, written as flux_outer(time, olat, olon) into prior.nc; no outer
inventory = zeros with a warning; an inventory that does not cover the outer cells stops."""

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from gzcarbon.grid import Grid, NestedGrid, cell_area_m2
from inversion.inventories import read_inventory
from inversion.inventory import KG_TO_UMOL, InventoryError
from inversion.outer import (OUTER_BIO_VAR, OUTER_VAR, outer_prior_flux, outer_sigma, read_outer_flux,
                             with_outer_prior)
from inversion.prior import InventoryOptions, flux_dataset, flux_encoding

DATA = Path(__file__).resolve().parents[1] / "data" / "inventory"
EDGAR = DATA / "v6.0_CO2_excl_short-cycle_org_C_2015_TOTALS.5.3x5.1.nc"
TIMES = pd.date_range("2025-01-01", periods=30, freq="h")
# the default demo layout: 0.01-degree inner box on 0.3-degree outer edges
NESTED = NestedGrid(Grid(112.9, 114.1, 22.5, 24.0, 0.01), Grid(108.7, 119.5, 19.5, 27.9, 0.3))


def overlap_mass(f, lon_e, lat_e, box):
    """Σ f × area(source cell ∩ box) (kg/s), cell by cell, for a box (lon0, lon1, lat0, lat1)."""
    tot = 0.0
    for j in range(lat_e.size - 1):
        y0, y1 = max(lat_e[j], box[2]), min(lat_e[j + 1], box[3])
        for i in range(lon_e.size - 1):
            x0, x1 = max(lon_e[i], box[0]), min(lon_e[i + 1], box[1])
            if y1 > y0 and x1 > x0:
                tot += f[j, i] * cell_area_m2([y0, y1], [x0, x1])[0, 0]
    return tot


def test_real_edgar_on_the_outer_cells_keeps_the_mass_of_the_ring(caplog):
    """The real EDGAR v6.0 file (5 deg cut-down of the 0.1-degree grid): the outer cells' mass
    equals Σ EDGAR flux × area of (EDGAR cell ∩ outer box) − the same over the inner box, to 1e-9;
    an outer cell inside one EDGAR cell has that cell's flux; the hole is zero; flat in time."""
    with caplog.at_level(logging.WARNING):
        flux, bio, attrs = outer_prior_flux(EDGAR, NESTED, TIMES, 8, InventoryOptions())
    assert "FLAT in time" in caplog.text and "NO biosphere" in caplog.text and not bio.any()
    assert flux.shape == (30, 28, 36) and attrs["outer_inventory_format"] == "edgar"
    np.testing.assert_array_equal(flux[0], flux[-1])
    assert np.all(flux[:, ~NESTED.outer_mask] == 0)
    inv = read_inventory(EDGAR)
    f = inv.sectors["total"]
    o, i = NESTED.outer, NESTED.inner
    ring = (overlap_mass(f, inv.lon_edges, inv.lat_edges, (o.lon_min, o.lon_max, o.lat_min, o.lat_max))
            - overlap_mass(f, inv.lon_edges, inv.lat_edges, (i.lon_min, i.lon_max, i.lat_min, i.lat_max)))
    got = float((flux[0] * o.cell_area_m2()).sum()) / KG_TO_UMOL  # kg/s
    assert ring > 0
    assert abs(got - ring) < 1e-9 * ring
    # cells inside one EDGAR cell carry its flux density
    ix = np.searchsorted(inv.lon_edges, o.lon_edges) - 1
    iy = np.searchsorted(inv.lat_edges, o.lat_edges) - 1
    inside = (iy[:-1, None] == iy[1:, None] - (np.isin(o.lat_edges[1:], inv.lat_edges))[:, None]) & \
             (ix[None, :-1] == ix[None, 1:] - np.isin(o.lon_edges[1:], inv.lon_edges)[None, :])
    inside &= NESTED.outer_mask
    assert inside.sum() > 500
    src = f[np.clip(iy[:-1], 0, None)[:, None], np.clip(ix[:-1], 0, None)[None, :]] * KG_TO_UMOL
    np.testing.assert_allclose(flux[0][inside], src[inside], rtol=1e-9)


def test_outer_prior_in_the_prior_file_round_trip(tmp_path):
    """flux_outer written into prior.nc and read back in state order equals outer_to_state of the field."""
    inner = NESTED.inner
    prior = flux_dataset(inner, TIMES, {"industry": np.ones((30,) + inner.shape)}, {"title": "t"})
    ds = with_outer_prior(prior, NESTED, EDGAR, 8, InventoryOptions())
    path = tmp_path / "prior.nc"
    ds.to_netcdf(path, encoding=flux_encoding(ds))
    back = read_outer_flux(path, "prior", pd.DatetimeIndex(TIMES[3:10]), NESTED)
    assert back.shape == (7, NESTED.n_outer)
    np.testing.assert_array_equal(back, NESTED.outer_to_state(ds[OUTER_VAR].values[3:10]))
    with xr.open_dataset(path) as f:
        assert (f.attrs["n_inner"], f.attrs["n_outer"], f.attrs["outer_res"]) == (18000, 36 * 28 - 4 * 5, 0.3)
        assert f[OUTER_VAR].dims == ("time", "olat", "olon")
        np.testing.assert_array_equal(f["flux"].values, prior["flux"].values)


def test_no_outer_inventory_is_zero_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING):
        flux, _, attrs = outer_prior_flux("", NESTED, TIMES, 8, InventoryOptions())
    assert "outer_inventory" in caplog.text and "ZERO" in caplog.text
    assert not flux.any() and attrs["outer_inventory"] == "none (zeros)"
    sig = outer_sigma(NESTED.outer_to_state(flux), 6, 0.5, 0.2)
    assert sig.shape == (5, NESTED.n_outer) and np.all(sig == 0.2)


def test_outer_sigma_is_rel_times_step_mean_plus_floor():
    f = np.arange(14.0)[:, None] * np.array([1.0, -2.0])[None, :]  # 14 hours, 2 cells
    sig = outer_sigma(f, 6, 0.5, 0.1)
    expect = np.array([[2.5, 5.0], [8.5, 17.0], [12.5, 25.0]]) * 0.5 + 0.1  # last step: hours 12, 13
    np.testing.assert_allclose(sig, expect, rtol=1e-15)


def test_an_inventory_not_covering_the_outer_cells_stops(tmp_path):
    """An EDGAR-layout 0.1-degree file over the delta only: the outer grid reaches 108.7-119.5 E."""
    lon = np.round(np.arange(111.05, 116.0, 0.1), 2)
    lat = np.round(np.arange(21.05, 25.0, 0.1), 2)
    ds = xr.Dataset({"emi_co2": (("lat", "lon"), np.full((lat.size, lon.size), 1e-9, np.float32),
                                 {"units": "kg m-2 s-1"})}, coords={"lat": lat, "lon": lon},
                    attrs={"institution": "European Commission, Joint Research Centre"})
    path = tmp_path / "edgar_delta.nc"
    ds.to_netcdf(path)
    with pytest.raises(InventoryError, match=r"outer inventory .*edgar_delta.nc.*uncovered.*inputs.outer_inventory"):
        outer_prior_flux(path, NESTED, TIMES, 8, InventoryOptions())


def ct_flux1x1(path, lon_edges, lat_edges, start="2024-12-31", days=3, seed=0):
    """A CarbonTracker flux1x1-layout NEE file (as tests/inversion/test_prior_inventories.py writes
    it): 1-degree cells, 3-hourly `bio_flux_opt` mol m-2 s-1 stamped at the interval centres."""
    rng = np.random.default_rng(seed)
    lon = 0.5 * (lon_edges[1:] + lon_edges[:-1])
    lat = 0.5 * (lat_edges[1:] + lat_edges[:-1])
    t = pd.date_range(start, periods=8 * days, freq="3h") + pd.Timedelta("90min")
    vals = rng.normal(0.5e-6, 2e-6, (t.size, lat.size, lon.size))
    xr.Dataset({"bio_flux_opt": (("time", "latitude", "longitude"), vals, {"units": "mol m-2 s-1"})},
               coords={"time": t, "latitude": lat, "longitude": lon}).to_netcdf(path)
    return t, vals


def test_outer_biosphere_from_a_carbontracker_file_keeps_its_mass(tmp_path):
    """inputs.outer_bio_prior in CarbonTracker's flux1x1 layout: each hour takes the 3-hour step
    holding it; the outer cells' mass of every hour equals Σ NEE × area(1° cell ∩ outer box) −
    the same over the inner box, cell by cell, to 1e-9; flux_outer = EDGAR + NEE; both land in
    prior.nc and read back in state order."""
    lon_e, lat_e = np.arange(108.0, 121.0), np.arange(19.0, 29.0)
    path = tmp_path / "CT2022.flux1x1.nc"
    t, vals = ct_flux1x1(path, lon_e, lat_e)
    times = pd.date_range("2025-01-01 04:00", periods=5, freq="h")  # steps 03-06 (04, 05) and 06-09
    flux, bio, attrs = outer_prior_flux(EDGAR, NESTED, times, 8, InventoryOptions(), str(path))
    anth, _, _ = outer_prior_flux(EDGAR, NESTED, times, 8, InventoryOptions())
    np.testing.assert_allclose(flux - bio, anth, rtol=1e-12, atol=1e-12)
    assert attrs["outer_bio_prior"] == str(path) and np.all(bio[:, ~NESTED.outer_mask] == 0)
    o, i = NESTED.outer, NESTED.inner
    area = o.cell_area_m2()
    for h, k in zip(range(5), (9, 9, 10, 10, 10)):  # 2025-01-01 03:00-06:00 is step 9 of the file
        want = (overlap_mass(vals[k], lon_e, lat_e, (o.lon_min, o.lon_max, o.lat_min, o.lat_max))
                - overlap_mass(vals[k], lon_e, lat_e, (i.lon_min, i.lon_max, i.lat_min, i.lat_max))) * 1e6
        got = float((bio[h] * area).sum())  # µmol/s
        assert abs(got - want) < 1e-9 * np.abs(vals[k]).max() * 1e6 * area.sum()
    inner = NESTED.inner
    prior = flux_dataset(inner, times, {"industry": np.ones((5,) + inner.shape)}, {"title": "t"})
    ds = with_outer_prior(prior, NESTED, EDGAR, 8, InventoryOptions(), outer_bio_prior=str(path))
    out = tmp_path / "prior.nc"
    ds.to_netcdf(out, encoding=flux_encoding(ds))
    np.testing.assert_array_equal(read_outer_flux(out, "prior", times, NESTED, var=OUTER_BIO_VAR),
                                  NESTED.outer_to_state(bio))
    np.testing.assert_array_equal(read_outer_flux(out, "prior", times, NESTED), NESTED.outer_to_state(flux))


def test_an_outer_biosphere_not_covering_the_outer_cells_stops(tmp_path):
    """A 1-degree NEE file over 110-118 E only: the outer grid reaches 108.7-119.5 E."""
    path = tmp_path / "nee_delta.nc"
    ct_flux1x1(path, np.arange(110.0, 119.0), np.arange(19.0, 29.0))
    with pytest.raises(InventoryError, match=r"outer biosphere prior .*nee_delta.nc \(config inputs.outer_bio_prior\)"
                                             r".*uncovered.*108.85"):
        outer_prior_flux(EDGAR, NESTED, TIMES, 8, InventoryOptions(), str(path))
    # inputs.bio_prior serves the outer cells when no outer_bio_prior is given: same check, its key
    with pytest.raises(InventoryError, match=r"config inputs.bio_prior"):
        outer_prior_flux(EDGAR, NESTED, TIMES, 8, InventoryOptions(bio_prior=str(path)))


def test_outer_sigma_with_a_biosphere():
    """σ = rel · |step mean(total − bio)| + bio_rel · step mean |bio| + floor: a step whose NEE
    averages to zero (uptake = respiration) keeps the biosphere's σ; uptake does not cancel the
    inventory's."""
    anth = np.array([[1.0, 4.0]] * 12)  # 12 hours, 2 cells
    bio = np.zeros((12, 2))
    bio[:6, 0] = [2, -2, 2, -2, 2, -2]  # step 0 cell 0: mean 0, mean |.| 2
    bio[6:, 1] = -4.0  # step 1 cell 1: uptake equal to the emission
    sig = outer_sigma(anth + bio, 6, 0.5, 0.2, bio_state=bio, bio_rel=0.8)
    expect = np.array([[0.5 + 1.6 + 0.2, 2.0 + 0.2], [0.5 + 0.2, 2.0 + 3.2 + 0.2]])
    np.testing.assert_allclose(sig, expect, rtol=1e-15)
    np.testing.assert_allclose(outer_sigma(anth + bio, 6, 0.5, 0.2), [[0.7, 2.2], [0.7, 0.2]], rtol=1e-15)


def test_config_neighbours_file():
    """config neighbours_file: the shipped delta file by default, empty = the ring only, a missing
    file stops naming the key."""
    from gzcarbon.config import ConfigError, validate_config

    assert validate_config({"month": "2025-01"})["neighbours_file"].endswith("config/prd_cities.geojson")
    assert validate_config({"month": "2025-01", "neighbours_file": ""})["neighbours_file"] == ""
    with pytest.raises(ConfigError, match="neighbours_file.*nope.geojson"):
        validate_config({"month": "2025-01", "neighbours_file": "nope.geojson"})


def test_empty_string_options_from_the_command_line():
    """`--config neighbours_file=` (and an empty inputs path) reach the config as YAML null: they
    mean empty (the ring only; no outer inventory), not a type error (it was "None is not of type
    'string'"); an option whose empty value means nothing (results_dir) still stops."""
    from gzcarbon.config import ConfigError, validate_config

    assert validate_config({"month": "2025-01", "neighbours_file": None})["neighbours_file"] == ""
    cfg = validate_config({"month": "2025-01", "inputs": {"outer_inventory": None}})
    assert cfg["inputs"]["outer_inventory"] == ""
    with pytest.raises(ConfigError, match="results_dir"):
        validate_config({"month": "2025-01", "results_dir": None})
