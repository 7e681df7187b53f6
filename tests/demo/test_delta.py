"""The demo world's delta (issue 19): the neighbours' geometry, the EDGAR-format coarse inventory of
the outer box, the outer truth and its pre-registered errors, the nested truth signal and its budget."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyproj
import pytest
import scipy.sparse as sp
import shapely
import xarray as xr

from gzcarbon.config import load_config
from gzcarbon.demo import delta
from gzcarbon.demo.inventory import make_inventory
from gzcarbon.demo.signal import signal_budget_table, split_enhancement, truth_state
from gzcarbon.demo.truth_errors import DELTA_TRUTH_ERRORS, DeltaTruthErrors
from gzcarbon.districts import district_matrix
from gzcarbon.grid import Grid, NestedGrid
from gzcarbon.neighbours import NeighbourFileError, neighbour_matrix, read_neighbours
from inversion.inventories import read_netcdf_inventory
from inversion.inventory import SECONDS_PER_YEAR

ROOT = Path(__file__).resolve().parents[2]
NEIGHBOURS = ROOT / "config" / "prd_cities.geojson"
HOURS = ("2024-12-31T00", "2025-01-03T00")  # 72 h = three whole days


@pytest.fixture(scope="module")
def nested():
    return NestedGrid.from_config(load_config({}))


@pytest.fixture(scope="module")
def neighbours():
    return read_neighbours(NEIGHBOURS)


@pytest.fixture(scope="module")
def inner_inventory(nested):
    names, dmat = district_matrix(ROOT / "config" / "districts.geojson", nested.inner.lon_edges,
                                  nested.inner.lat_edges)
    return make_inventory(nested.inner, names, dmat)


GEOD = pyproj.Geod(ellps="WGS84")


def test_neighbour_areas_on_the_nested_grid_equal_the_polygons(nested, neighbours):
    """Every feature's area from the nested state's fractions (inner 1 km cells + outer 0.3° cells)
    equals its polygon's geodesic area (pyproj, independent of the rasterisation) within 0.6 %; no
    state cell is more than fully covered; the hole is not counted twice."""
    names, m = neighbour_matrix(NEIGHBOURS, nested)
    assert m.shape == (len(neighbours), nested.n_cells)
    area = nested.cell_area_m2()
    got = m @ area / 1e6
    assert np.asarray(m.sum(axis=0)).max() <= 1.0 + 1e-9
    kinds = {n.kind for n in names}
    assert kinds == {"city", "region"}
    for n, a in zip(names, got):
        ref = abs(GEOD.geometry_area_perimeter(n.geometry)[0]) / 1e6
        assert a == pytest.approx(ref, rel=6e-3), n.name_en
    # Shenzhen straddles the inner box's east edge: part on 1 km cells, part on outer cells
    i = [n.name_en for n in names].index("Shenzhen")
    row = m[i].toarray().ravel()
    assert row[: nested.n_inner] @ area[: nested.n_inner] > 1e8
    assert row[nested.n_inner:] @ area[nested.n_inner:] > 1e8


def test_bad_neighbour_file_names_file_feature_and_field(tmp_path):
    data = json.loads(NEIGHBOURS.read_text())
    data["features"] = data["features"][:2]
    data["features"][1]["properties"]["kind"] = "province"
    bad = tmp_path / "nb.geojson"
    bad.write_text(json.dumps(data))
    with pytest.raises(NeighbourFileError, match=r"nb.geojson: feature 1 \(Shenzhen\): property `kind`"):
        read_neighbours(bad)
    del data["features"][0]["properties"]["name_en"]
    bad.write_text(json.dumps(data))
    with pytest.raises(NeighbourFileError, match="neighbour file .*nb.geojson: feature 0 lacks"):
        read_neighbours(bad)


@pytest.fixture(scope="module")
def plants():
    t = pd.date_range("2024-12-31", periods=72, freq="h")
    return pd.DataFrame({"time": np.tile(t, 2), "plant_id": np.repeat(["A", "B"], 72),
                         "lon": np.repeat([113.49, 113.60], 72), "lat": np.repeat([23.07, 22.75], 72),
                         "co2_t_per_h": np.r_[np.linspace(200, 400, 72), np.full(72, 150.0)]})


@pytest.fixture(scope="module")
def coarse_file(nested, neighbours, inner_inventory, plants, tmp_path_factory):
    ds = delta.make_outer_inventory(nested, neighbours, NEIGHBOURS, inner_inventory, plants, HOURS)
    path = tmp_path_factory.mktemp("delta") / "inventory_outer.nc"
    ds.to_netcdf(path)
    return path


def test_coarse_inventory_is_read_by_the_edgar_reader_and_agrees_with_the_city_inside(
        coarse_file, nested, inner_inventory):
    """The pipeline's EDGAR reader takes the file (kind edgar, one `total` sector, kg m-2 s-1 on
    0.1° cells over the outer box); inside the inner box its mass is the city's 1 km inventory (its
    three gridded sectors) plus the plants' mean (200..400 and 150 t/h: 450 t/h) to float32 precision."""
    inv = read_netcdf_inventory(coarse_file)
    assert inv.kind == "edgar" and list(inv.sectors) == ["total"]
    o = nested.outer
    assert inv.lon_edges[0] == pytest.approx(o.lon_min) and inv.lon_edges[-1] == pytest.approx(o.lon_max)
    assert inv.lat_edges[0] == pytest.approx(o.lat_min) and inv.lat_edges[-1] == pytest.approx(o.lat_max)
    g = Grid(o.lon_min, o.lon_max, o.lat_min, o.lat_max, 0.1)
    mass = inv.sectors["total"] * g.cell_area_m2()  # kg/s
    i = nested.inner
    ys = slice(int(round((i.lat_min - o.lat_min) / 0.1)), int(round((i.lat_max - o.lat_min) / 0.1)))
    xs = slice(int(round((i.lon_min - o.lon_min) / 0.1)), int(round((i.lon_max - o.lon_min) / 0.1)))
    city = sum(inner_inventory[f"emi_{s}"].values.astype(float) for s in ("industry", "road", "residential"))
    expected = (city * i.cell_area_m2()).sum() + 450.0 * 1e3 / 3600.0
    assert mass[ys, xs].sum() == pytest.approx(expected, rel=1e-6)
    assert (inv.sectors["total"] >= 0).all()


def test_regions_get_their_rate_times_area_and_cities_their_totals(coarse_file, nested, neighbours):
    """A region (Guangxi's part of the box) holds 1050 t/km²/yr × its geodesic polygon area, a city
    wholly outside the inner box (Zhanjiang) its 35 Mt/yr, independent of the rasterisation (1 %)."""
    with xr.open_dataset(coarse_file) as ds:
        totals = json.loads(ds.attrs["neighbour_totals_outside_inner_box_mt_per_year"])
    by = {n.name_en: n for n in neighbours}
    gx = abs(GEOD.geometry_area_perimeter(by["Guangxi"].geometry)[0]) / 1e6
    assert totals["Guangxi"] == pytest.approx(1050.0 * gx / 1e6, rel=1e-2)
    assert totals["Zhanjiang"] == pytest.approx(35.0, rel=1e-6)
    assert totals["Hong Kong"] == pytest.approx(35.0, rel=0.02)  # a sliver north of 22.5 N is inside


def _outer_mass_t(nested, flux):
    """t over the axis of an hourly (time, olat, olon) µmol m-2 s-1 field."""
    return float((flux.sum(axis=0) * nested.outer.cell_area_m2()).sum() * 3600.0 * 44.01e-12)


def test_outer_truth_differs_from_the_inventory_by_exactly_the_registered_errors(
        coarse_file, nested, neighbours):
    """Conservation over whole days (diurnal factors average to 1): the true anthropogenic mass of the
    outer cells minus the coarse inventory's there = bias × the biased city's total + the unreported
    source, with the texture off; the hole is zero; the biosphere is absent at sea."""
    err = DeltaTruthErrors(city_bias={"Zhanjiang": 0.30}, texture_sigma=0.0,
                           missing_source={"name": "x", "lon": 110.9, "lat": 22.0, "sigma_km": 3.0,
                                           "mt_per_year": 2.0, "profile": "industry"})
    tr = delta.make_outer_truth(nested, neighbours, NEIGHBOURS, HOURS, seed=3, errors=err)
    anth = tr["flux_outer"].values - tr["flux_outer_bio"].values.astype(float)
    hole = ~nested.outer_mask
    assert np.all(tr["flux_outer"].values[:, hole] == 0.0)
    inv = read_netcdf_inventory(coarse_file).sectors["total"]  # kg m-2 s-1 on 0.1°
    g = Grid(nested.outer.lon_min, nested.outer.lon_max, nested.outer.lat_min, nested.outer.lat_max, 0.1)
    prior_mass = delta.block_sum(inv * g.cell_area_m2(), 3)  # kg/s per outer cell
    prior_t = float(prior_mass[nested.outer_mask].sum()) * 72 * 3600 / 1e3
    expected = (0.30 * 35.0 + 2.0) * 1e6 * 72 / (SECONDS_PER_YEAR / 3600)
    assert _outer_mass_t(nested, anth) - prior_t == pytest.approx(expected, rel=2e-3)
    assert tr.attrs["n_outer"] == nested.n_outer
    # no biosphere where no feature has land (the open sea south-east of Hong Kong)
    iy, ix = int((20.5 - nested.outer.lat_min) / 0.3), int((117.5 - nested.outer.lon_min) / 0.3)
    assert np.all(tr["flux_outer_bio"].values[:, iy, ix] == 0.0)


def test_truth_uses_the_inner_gpp_day_factors(nested, neighbours):
    """Given the inner truth's day factors, the outer biosphere uses them: a factor of 0 removes GPP,
    leaving respiration only (≥ 0 everywhere), a factor 1 has daytime uptake."""
    days = pd.DatetimeIndex(["2024-12-31", "2025-01-01", "2025-01-02", "2025-01-03"])
    zero = delta.make_outer_truth(nested, neighbours, NEIGHBOURS, HOURS, 1, pd.Series(0.0, index=days))
    one = delta.make_outer_truth(nested, neighbours, NEIGHBOURS, HOURS, 1, pd.Series(1.0, index=days))
    assert zero["flux_outer_bio"].values.min() >= 0.0
    assert one["flux_outer_bio"].values.min() < -0.5
    with pytest.raises(ValueError, match="GPP day factors do not cover"):
        delta.make_outer_truth(nested, neighbours, NEIGHBOURS, HOURS, 1, pd.Series(1.0, index=days[:1]))


def test_nested_truth_signal_parts_add_up_and_the_budget_shares():
    """truth_state orders the cells as the NestedGrid; split_enhancement's parts add up to H x
    exactly; the budget's shares are the parts' means over the receptors with a footprint."""
    inner = Grid(0.0, 0.4, 0.0, 0.4, 0.1)
    ng = NestedGrid(inner, Grid(-0.4, 0.8, -0.4, 0.8, 0.4))
    nt = 3
    rng = np.random.default_rng(0)
    fi = rng.random((nt, 4, 4))
    fo = rng.random((nt, 3, 3))
    x = truth_state(fi, fo, ng)
    assert x.shape == (nt, 16 + 8)
    assert np.allclose(x[:, 16:], fo[:, ng.outer_mask])
    H = sp.random(5, nt * ng.n_cells, density=0.3, random_state=1, format="csr")
    H = sp.csr_matrix(H.multiply(np.r_[1, 1, 1, 1, 0][:, None]))
    H.eliminate_zeros()
    city = np.r_[np.full(8, 1.0), np.full(8, 0.25), np.zeros(8)]
    parts = split_enhancement(H, x, {"city": city, "inner_not_city": np.r_[1 - city[:16], np.zeros(8)],
                                     "outer_x": np.r_[np.zeros(16), np.ones(8)]})
    assert np.allclose(sum(parts.values()), H @ x.ravel(), rtol=1e-12)
    rec = pd.DataFrame({"site": ["A", "A", "B", "B", "B"]})
    ok = np.diff(H.indptr) > 0
    b = signal_budget_table(rec, parts, ok, np.array([0.1, 0.3, 0.0, 0.2, np.nan]))
    tot_a = np.mean(sum(parts.values())[:2])
    assert b.loc["A", "total_ppm"] == pytest.approx(tot_a)
    assert b.loc["A", "outer_share"] == pytest.approx(np.mean(parts["outer_x"][:2]) / tot_a)
    assert b.loc["A", "outside_city_share"] == pytest.approx(1 - np.mean(parts["city"][:2]) / tot_a)
    assert b.loc["A", "left_domain"] == pytest.approx(0.2)
    assert b.loc["B", "n_receptors"] == 2 and b.loc["all", "n_receptors"] == 4
    with pytest.raises(ValueError, match="must share the hourly axis and the nested grid"):
        split_enhancement(H, x[:2], {"city": city})


def test_docs_delta_table_matches_the_error_model():
    text = (ROOT / "docs" / "demo.md").read_text()
    for name, value in DELTA_TRUTH_ERRORS.table():
        assert f"| {name} | {value} |" in text, (name, value)
    inv = (ROOT / "docs" / "inventory.md").read_text()
    for name, (total, _, big) in delta.DELTA_SOURCES.items():
        assert f"| {name} |" in inv, name
        for b in big:
            assert b[0] in inv, b[0]


def test_every_neighbour_has_sources_and_the_unreported_source_is_outside_the_inner_box(neighbours, nested):
    assert {n.name_en for n in neighbours} == set(delta.DELTA_SOURCES)
    ms = DELTA_TRUTH_ERRORS.missing_source
    i = nested.inner
    assert not (i.lon_min <= ms["lon"] <= i.lon_max and i.lat_min <= ms["lat"] <= i.lat_max)
    assert all(c in delta.DELTA_SOURCES for c in DELTA_TRUTH_ERRORS.city_bias)
    hk = next(n for n in neighbours if n.name_en == "Hong Kong")
    assert shapely.contains_xy(hk.geometry, 114.17, 22.32)  # Kowloon


def test_outer_biosphere_prior_is_carbontracker_layout_and_not_the_truth(nested, neighbours, tmp_path):
    """The demo's outer biosphere prior (bio_outer.nc): CarbonTracker flux1x1 layout that the NEE
    reader takes over every outer cell; its 1° cell over open sea has no flux, a 1° cell that is all
    land has the inner prior's NEE curve × 0.5 averaged over each 3-hour step (night: respiration
    2.6 µmol m-2 s-1 × warmth × 0.5); its mass over the outer ring differs from the truth's biosphere
    (vegetation 0.55 × (1 − urban), GPP day factors) — the prior is not the truth."""
    from gzcarbon.demo.inventory import bio_nee_umol
    from inversion.outer import outer_bio_flux
    from inversion.prior import hourly_times

    ds = delta.make_outer_bio_prior(nested, neighbours, NEIGHBOURS, HOURS)
    v = ds["bio_flux_opt"]
    assert v.dims == ("time", "latitude", "longitude") and v.attrs["units"] == "mol m-2 s-1"
    assert ds.time.size == 24 and str(ds.time.values[0])[:19] == "2024-12-31T01:30:00"
    np.testing.assert_allclose(np.diff(ds.longitude.values), 1.0)
    land = np.abs(v.values).max(axis=0) > 0
    assert 0.3 < land.mean() < 0.95  # sea in the south-east
    curve = bio_nee_umol(np.ones((1, 1)))[:, 0, 0]
    # Hunan (north-west corner, 112.5 E 26.5 N) is all land: CT step 0 = 00-03 UTC = 08-11 local
    cell = v.sel(latitude=26.5, longitude=112.5).values * 1e6
    np.testing.assert_allclose(cell[0], 0.5 * curve[8:11].mean(), rtol=1e-6)
    np.testing.assert_allclose(cell[5], 0.5 * curve[[23, 0, 1]].mean(), rtol=1e-6)  # 15-18 UTC = 23-02 local
    path = tmp_path / "bio_outer.nc"
    ds.to_netcdf(path)
    times = hourly_times(*HOURS)
    bio = outer_bio_flux(path, nested, times)
    truth = delta.make_outer_truth(nested, neighbours, NEIGHBOURS, HOURS, seed=1)
    area = nested.outer.cell_area_m2()
    prior_t, truth_t = (float((f.sum(axis=0) * area).sum()) for f in (bio, truth["flux_outer_bio"].values))
    assert prior_t > 0 and truth_t > 0 and abs(prior_t / truth_t - 1) > 0.2
