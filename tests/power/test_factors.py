"""emission_factors / point_sources on the demo world and edge cases; products round trips."""

import os

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import power
from power import products
from gzcarbon.demo.power import make_demo

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PLANTS = os.path.join(REPO, "config", "power_plants.csv")
START, END = "2024-12-31T00:00:00", "2025-01-03T00:00:00"


@pytest.fixture(scope="module")
def demo_tables():
    return make_demo(PLANTS, START, END, seed=20250101)


@pytest.fixture(scope="module")
def demo_ds(demo_tables):
    g, l, e, _ = demo_tables
    return power.emission_factors(PLANTS, g, l, e)


def _check_conservation(ds):
    C = ds["consumption_emissions_t"]
    rhs = ds["production_emissions_t"] + ds["imported_emissions_t"] - ds["exported_emissions_t"]
    scale = (ds["production_emissions_t"].sum("district") + ds["imported_emissions_t"].sum("district"))
    assert float((abs(C - rhs) / scale).max()) < 1e-9
    city_lhs = C.sum("district") + ds["city_exported_emissions_t"]
    city_rhs = ds["production_emissions_t"].sum("district") + (
        ds["external_import_mwh"].sum("district") * ds["external_intensity"])
    assert float((abs(city_lhs - city_rhs) / scale).max()) < 1e-9
    assert ds.attrs["max_conservation_residual_relative"] < 1e-9


def test_demo_world_is_plausible(demo_tables, demo_ds):
    g, l, e, info = demo_tables
    assert 80 < info["city_load_twh_per_year_equiv"] < 140          # > 100 TWh/yr, winter lower
    assert 0.2 < info["local_generation_share"] < 0.45                 # most electricity imported
    assert e["intensity_kg_per_kwh"].mean() == pytest.approx(0.3869, abs=5e-5)
    ext = demo_ds["external_intensity"].to_numpy()
    assert 0.01 < np.ptp(ext) / ext.mean() < 0.3                        # a diurnal variation
    # generation follows load: correlated with city load hour by hour
    G = demo_ds["generation_mwh"].sum("district").to_numpy()
    L = demo_ds["load_mwh"].sum("district").to_numpy()
    assert np.corrcoef(G, L)[0, 1] > 0.3
    cf = demo_ds["plant_generation_mwh"] / xr.DataArray(
        power.read_plants(PLANTS).loc[demo_ds["plant"].to_numpy(), "capacity_mw"].to_numpy(), dims="plant")
    assert float(cf.max()) <= 1.0 and 0.4 < float(cf.mean()) < 0.85
    _check_conservation(demo_ds)


def test_demo_is_deterministic_and_seeded(demo_tables):
    g1, l1, e1, _ = make_demo(PLANTS, START, END, seed=20250101)
    pd.testing.assert_frame_equal(g1, demo_tables[0])
    pd.testing.assert_frame_equal(l1, demo_tables[1])
    g2, _, _, _ = make_demo(PLANTS, START, END, seed=1)
    assert not np.allclose(g1["generation_mwh"], g2["generation_mwh"])


def test_demo_outage(demo_tables, demo_ds):
    info = demo_tables[3]
    pid, t0, n = info["outage_plant"], pd.Timestamp(info["outage_start"]), info["outage_hours"]
    gen = demo_ds["plant_generation_mwh"].sel(plant=pid).to_series()
    off = gen[(gen.index >= t0) & (gen.index < t0 + pd.Timedelta(hours=n))]
    assert len(off) == n and (off == 0).all() and (gen.drop(off.index) > 0).all()


def test_outage_district_factor_is_remaining_plant(demo_tables):
    # Huangpu has Hengyun East (gas, 0.37) and the Hengyun coal units (0.92): with the gas plant
    # out, Huangpu's production factor is exactly the coal units' intensity.
    g, l, e, _ = demo_tables
    g = g.copy()
    g.loc[g["plant_id"] == "HY_EAST", "generation_mwh"] = 0.0
    ds = power.emission_factors(PLANTS, g, l, e)
    np.testing.assert_allclose(ds["production_factor"].sel(district="Huangpu"), 0.92, rtol=1e-12)
    _check_conservation(ds)


def test_district_without_plants(demo_ds):
    for d in ("Liwan", "Yuexiu", "Haizhu", "Tianhe", "Conghua"):
        s = demo_ds.sel(district=d)
        assert (s["generation_mwh"] == 0).all() and s["production_factor"].isnull().all()
        np.testing.assert_allclose(s["import_share"], 1.0)
        assert s["consumption_factor"].notnull().all()
    # all deficit districts without plants get the same mix (pool + external) each hour
    cf = demo_ds["consumption_factor"].sel(district=["Liwan", "Tianhe", "Conghua"]).to_numpy()
    np.testing.assert_allclose(cf, cf[:, :1].repeat(3, 1), rtol=1e-12)


def test_day_of_all_zero_generation(demo_tables):
    g, l, e, _ = demo_tables
    g = g.copy()
    day = g["time"].str.startswith("2025-01-01")
    g.loc[day, "generation_mwh"] = 0.0
    ds = power.emission_factors(PLANTS, g, l, e)
    sub = ds.sel(time="2025-01-01")
    assert sub.sizes["time"] == 24
    np.testing.assert_allclose(sub["consumption_factor"],
                               np.repeat(sub["external_intensity"].to_numpy()[:, None], 11, 1), rtol=1e-12)
    assert sub["production_factor"].isnull().all()
    np.testing.assert_allclose(sub["external_share"], 1.0)
    np.testing.assert_allclose(sub["consumption_emissions_t"], sub["load_mwh"] * sub["external_intensity"])
    _check_conservation(ds)


def test_factors_between_source_intensities(demo_ds):
    inten = demo_ds["plant_intensity"].where(demo_ds["plant_generation_mwh"] > 0)
    ext = demo_ds["external_intensity"].where(demo_ds["external_import_mwh"].sum("district") > 0)
    lo = np.fmin(inten.min("plant"), ext)
    hi = np.fmax(inten.max("plant"), ext)
    for v in ("consumption_factor", "production_factor"):
        f = demo_ds[v]
        assert bool(((f >= lo - 1e-12) & (f <= hi + 1e-12) | f.isnull()).all()), v


def test_files_equal_tables_and_point_sources(demo_files, demo_tables, demo_ds):
    files, _ = demo_files
    ds = power.emission_factors(PLANTS, files["generation"], files["load"], files["external"],
                                start=START, end=END)
    # the CSV round trip rounds nothing: demo values are written with fixed decimals
    np.testing.assert_allclose(ds["consumption_factor"], demo_ds["consumption_factor"], rtol=1e-12)
    ps = power.point_sources(ds)
    assert list(ps.columns) == ["time", "plant_id", "lon", "lat", "co2_t_per_h"]
    assert len(ps) == ds.sizes["time"] * 10 and "WANGLONG" not in set(ps["plant_id"])
    hourly = ps.groupby("time")["co2_t_per_h"].sum().to_numpy()
    np.testing.assert_allclose(hourly, ds["production_emissions_t"].sum("district"), rtol=1e-12)
    ps2 = power.point_sources(PLANTS, files["generation"], start=START, end=END)
    pd.testing.assert_frame_equal(ps, ps2)
    hy = ps[ps["plant_id"] == "HY_EAST"].iloc[0]
    assert (hy["lon"], hy["lat"]) == (113.498, 23.066)


def test_scalar_external_default(demo_tables):
    g, l, _, _ = demo_tables
    ds = power.emission_factors(PLANTS, g, l)
    np.testing.assert_allclose(ds["external_intensity"], 0.3869)
    _check_conservation(ds)


def test_given_flows_change_the_result_and_conserve(demo_tables, tmp_path):
    g, l, e, _ = demo_tables
    times = sorted(set(l["time"]))
    flows = pd.DataFrame({"time": times, "from_district": "Nansha", "to_district": "Panyu", "flow_mwh": 500.0})
    p = tmp_path / "flows.csv"
    flows.to_csv(p, index=False)
    ds = power.emission_factors(PLANTS, g, l, e, str(p))
    assert "given" in ds.attrs["flows"]
    _check_conservation(ds)
    # Panyu now gets Nansha's coal-heavy mix: its factor rises above the pooled case
    pooled = power.emission_factors(PLANTS, g, l, e)
    assert float(ds["consumption_factor"].sel(district="Panyu").mean()) > \
        float(pooled["consumption_factor"].sel(district="Panyu").mean()) + 0.05


def test_products(demo_ds, tmp_path):
    nc = str(tmp_path / "ef.nc")
    products.write_netcdf(demo_ds, nc, {"config_sha256": "abc"})
    back = xr.open_dataset(nc)
    np.testing.assert_allclose(back["consumption_factor"], demo_ds["consumption_factor"])
    assert back["consumption_factor"].attrs["units"] == "kg CO2/kWh"
    assert list(back["district"].values) == power.DISTRICTS and back.attrs["config_sha256"] == "abc"
    back.close()
    tab = products.to_long_table(demo_ds)
    assert len(tab) == demo_ds.sizes["time"] * 11
    csv = str(tmp_path / "ef.csv")
    products.write_csv(tab, csv)
    rd = pd.read_csv(csv)
    row = rd[(rd["time"] == "2025-01-01T12:00:00") & (rd["district"] == "Nansha")].iloc[0]
    assert row["consumption_factor"] == pytest.approx(
        float(demo_ds["consumption_factor"].sel(time="2025-01-01T12:00", district="Nansha")), rel=1e-7)
    png = str(tmp_path / "h.png")
    products.plot_heatmap(demo_ds, png)
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n" and os.path.getsize(png) > 10_000
    hod = products.hour_of_day_table(demo_ds)
    assert hod.shape == (11, 24) and hod.notna().all().all()
    assert not [f for f in os.listdir(tmp_path) if ".tmp" in f]


def test_monthly_summary(demo_ds):
    s = products.monthly_summary(demo_ds, "2025-01")
    assert list(s["district"]) == power.DISTRICTS + ["Guangzhou"]
    assert (s["hours"] == 48).all()
    jan = products.select_month(demo_ds, "2025-01")
    city = s.set_index("district").loc["Guangzhou"]
    dist = s[s["district"] != "Guangzhou"]
    assert city["load_mwh"] == pytest.approx(dist["load_mwh"].sum(), rel=1e-12)
    assert city["consumption_emissions_t"] == pytest.approx(float(jan["consumption_emissions_t"].sum()), rel=1e-12)
    assert city["consumption_factor"] == pytest.approx(city["consumption_emissions_t"] / city["load_mwh"], rel=1e-12)
    assert 0.55 < city["import_share"] < 0.85
    tianhe = s.set_index("district").loc["Tianhe"]
    assert tianhe["consumption_factor_min"] <= tianhe["consumption_factor"] <= tianhe["consumption_factor_max"]
    with pytest.raises(ValueError, match="no hour"):
        products.monthly_summary(demo_ds, "2025-06")
