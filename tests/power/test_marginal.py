"""Marginal emission factors from hourly changes: known marginal units are recovered, with honest errors."""

import os

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import power
from power import products
from power.marginal import district_marginal, hourly_marginal, marginal_factors, supply_response
from gzcarbon.demo.power import make_demo

PLANTS = os.path.join(os.path.dirname(__file__), "..", "..", "config", "power_plants.csv")

DISTRICTS = ["East", "West", "Port"]
W_COAL, W_GAS, W_WASTE = 0.92, 0.37, 0.45


def _registry(gas_capacity=3000.0):
    return pd.DataFrame({
        "plant_id": ["COAL", "GAS", "WASTE"], "name": ["coal", "gas", "waste"],
        "district": ["Port", "East", "West"], "lon": [113.6, 113.5, 113.3], "lat": [22.8, 23.1, 23.2],
        "fuel": ["coal", "gas", "waste"], "capacity_mw": [1000.0, gas_capacity, 100.0],
        "intensity_t_per_mwh": [W_COAL, W_GAS, W_WASTE], "status": "operating",
    })


def _tables(times, gen: dict, load: np.ndarray, ext: np.ndarray):
    tstr = times.strftime("%Y-%m-%dT%H:%M:%S").to_numpy()
    T = len(times)
    g = pd.DataFrame({"time": np.repeat(tstr, len(gen)), "plant_id": np.tile(list(gen), T),
                      "generation_mwh": np.column_stack(list(gen.values())).reshape(-1)})
    l = pd.DataFrame({"time": np.repeat(tstr, len(DISTRICTS)), "district": np.tile(DISTRICTS, T),
                      "load_mwh": load.reshape(-1)})
    e = pd.DataFrame({"time": tstr, "intensity_kg_per_kwh": ext})
    return g, l, e


def _world(rng, days=31):
    times = pd.date_range("2025-01-01", periods=24 * days, freq="h")
    T = len(times)
    hod = (times.hour.to_numpy() + 8) % 24
    shape = 1 + 0.25 * np.sin(2 * np.pi * (hod - 9) / 24)
    load = np.column_stack([
        800 * shape + rng.normal(0, 40, T),          # East: urban, independent noise
        500 * (0.5 + 0.5 * shape) + rng.normal(0, 30, T),
        300 + rng.normal(0, 25, T),                   # Port: flat industry + noise
    ])
    ext = 0.3869 * (1 + 0.05 * np.sin(2 * np.pi * hod / 24))   # the external factor drifts
    return times, hod, load, ext


def test_only_gas_follows_load_gives_gas_intensity_everywhere():
    rng = np.random.default_rng(7)
    times, _, load, ext = _world(rng)
    Lc = load.sum(1)
    gas = 1200 + (Lc - Lc.mean())                    # the gas unit takes every change of the city load
    gen = {"COAL": np.full(len(times), 700.0), "GAS": gas, "WASTE": np.full(len(times), 80.0)}
    g, l, e = _tables(times, gen, load, ext)
    ds = power.emission_factors(_registry(), g, l, e, districts=DISTRICTS)
    # the city's import from the external grid is constant: the marginal unit is the gas plant
    net = (ds["external_import_mwh"] - ds["external_export_mwh"]).sum("district")
    assert float(net.max() - net.min()) < 1e-9
    np.testing.assert_allclose(ds["marginal_factor"], W_GAS, rtol=1e-9)
    assert float(ds["city_marginal_factor"]) == pytest.approx(W_GAS, rel=1e-12)
    assert float(ds["marginal_factor_se"].max()) < 1e-9 and float(ds["city_marginal_r2"]) == pytest.approx(1.0)
    assert int(ds["marginal_hours"]) == len(times) - 1
    mix = ds["marginal_mix"].to_series()
    assert mix["gas"] == pytest.approx(1.0, abs=1e-12) and abs(mix["external"]) < 1e-12
    # the average factors are something else entirely: the external grid's mix sets them
    assert float(ds["consumption_factor"].sel(district="West").mean()) > W_GAS + 0.05
    s = products.monthly_summary(ds, "2025-01").set_index("district")
    np.testing.assert_allclose(s["marginal_factor"], W_GAS, rtol=1e-9)
    assert (s["marginal_hours"] == len(times) - 1).all()


def test_marginal_unit_by_hour_of_day_separates_districts():
    # East's load moves only in the local morning (6-11 h), West's only in the evening (17-22 h),
    # Port's never. The gas plant follows East; the external grid takes West's changes.
    rng = np.random.default_rng(11)
    days = 20
    times = pd.date_range("2025-01-01", periods=24 * days, freq="h")
    T = len(times)
    hod = (times.hour.to_numpy() + 8) % 24

    def moves_only(hours, base, sd):
        x = np.empty(T)
        x[0] = base
        for t in range(1, T):
            x[t] = base + rng.normal(0, sd) if hod[t] in hours else x[t - 1]
        return x

    east = moves_only(range(6, 12), 900, 60)
    west = moves_only(range(17, 23), 600, 50)
    port = np.full(T, 300.0)
    gas = 1200 + (east - 900)
    gen = {"COAL": np.full(T, 500.0), "GAS": gas, "WASTE": np.full(T, 90.0)}
    g, l, e = _tables(times, gen, np.column_stack([east, west, port]), np.full(T, 0.3869))
    ds = power.emission_factors(_registry(), g, l, e, districts=DISTRICTS)
    mef = ds["marginal_factor"].to_series()
    assert mef["East"] == pytest.approx(W_GAS, rel=1e-9)
    assert mef["West"] == pytest.approx(0.3869, rel=1e-9)
    assert np.isnan(mef["Port"]) and np.isnan(float(ds["marginal_factor_se"].sel(district="Port")))
    by_hour = ds["marginal_factor_by_hour"].to_series()
    np.testing.assert_allclose(by_hour.loc[6:11], W_GAS, rtol=1e-9)
    np.testing.assert_allclose(by_hour.loc[17:22], 0.3869, rtol=1e-9)
    pairs = ds["marginal_pairs_by_hour"].to_series()
    assert pairs.sum() == T - 1 and pairs[hod[0]] == days - 1 and (pairs.drop(hod[0]) == days).all()
    city = float(ds["city_marginal_factor"])
    assert W_GAS < city < 0.3869


def _mc_estimate(seed, T=24 * 31, sigma=15.0):
    """One noisy world: gas follows the city load, plus dispatch noise that the imports absorb."""
    rng = np.random.default_rng(seed)
    times = pd.date_range("2025-01-01", periods=T, freq="h")
    hod = (times.hour.to_numpy() + 8) % 24
    L = np.column_stack([600 * (1 + 0.3 * np.sin(2 * np.pi * (hod - 9) / 24)) + rng.normal(0, 30, T),
                         400 + rng.normal(0, 30, T)])
    noise = rng.normal(0, sigma, T)
    gas = 1000 + (L.sum(1) - L.sum(1).mean()) + noise
    net = L.sum(1) - gas
    w_ext = np.full(T, 0.55)
    dM, dG, dN, keep = supply_response(gas[:, None], np.array([W_GAS]), net, w_ext, times)
    dL = np.diff(L, axis=0)
    hour = hod[1:]
    m_h, se_h, _, fitted, m_all, se_all = hourly_marginal(dM, dL.sum(1), hour)
    assert fitted.all()
    mef, se = district_marginal(dL, hour, m_h, se_h, fitted, se_all)
    return mef, se, m_all, se_all


def test_standard_errors_match_the_scatter_of_the_estimates():
    # dM = w_gas dL + (w_gas - w_ext) d(noise): truth w_gas in every district; the regression
    # standard error must describe the spread over independent worlds.
    est = [_mc_estimate(s) for s in range(40)]
    mef = np.array([e[0] for e in est])
    se = np.array([e[1] for e in est])
    city = np.array([e[2] for e in est])
    city_se = np.array([e[3] for e in est])
    z = (mef - W_GAS) / se
    assert np.mean(np.abs(z) < 3) >= 0.95
    for k in range(2):
        ratio = mef[:, k].std(ddof=1) / se[:, k].mean()
        assert 0.7 < ratio < 1.4, ratio
    assert 0.7 < city.std(ddof=1) / city_se.mean() < 1.4
    assert abs(mef.mean() - W_GAS) < 3 * se.mean() / np.sqrt(len(est))
    # more noise, larger error; no noise, exact
    assert _mc_estimate(0, sigma=60.0)[1].mean() > 3 * _mc_estimate(0, sigma=15.0)[1].mean()
    np.testing.assert_allclose(_mc_estimate(0, sigma=0.0)[0], W_GAS, rtol=1e-12)


def test_demo_marginal_factors(tmp_path):
    g, l, e, _ = make_demo(PLANTS, "2024-12-31", "2025-01-08", seed=3)
    ds = power.emission_factors(PLANTS, g, l, e)
    assert float(ds["marginal_mix"].sum()) == pytest.approx(1.0, abs=1e-12)
    lo = min(float(ds["plant_intensity"].min()), float(ds["external_intensity"].min()))
    hi = max(float(ds["plant_intensity"].max()), float(ds["external_intensity"].max()))
    mef = ds["marginal_factor"].to_numpy()
    assert np.all((mef > lo) & (mef < hi)) and np.all(ds["marginal_factor_se"].to_numpy() < 0.02)
    assert int(ds["marginal_hours"]) == ds.sizes["time"] - 1
    # the city value is the energy-balance-consistent mix of the responding sources
    mix = ds["marginal_mix"].to_series()
    assert mix["external"] > 0.3 and mix["waste"] == pytest.approx(0.0, abs=0.05)
    # recomputing from the Dataset alone gives the same numbers; the month subset uses its own hours
    again = marginal_factors(ds)
    np.testing.assert_allclose(again["marginal_factor"], ds["marginal_factor"], rtol=1e-14)
    s = products.monthly_summary(ds, "2025-01")
    assert list(s.columns[-3:]) == ["marginal_factor", "marginal_factor_se", "marginal_hours"]
    assert (s["marginal_hours"] == 7 * 24 - 1).all()
    nc = str(tmp_path / "ef.nc")
    products.write_netcdf(ds, nc)
    with xr.open_dataset(nc) as back:
        np.testing.assert_allclose(back["marginal_factor"], ds["marginal_factor"])
        assert list(back["source"].values) == list(ds["source"].values)


def test_too_few_hours_gives_nan_not_error():
    times = pd.date_range("2025-01-01", periods=1, freq="h")
    gen = {"COAL": np.array([500.0]), "GAS": np.array([1000.0]), "WASTE": np.array([80.0])}
    g, l, e = _tables(times, gen, np.array([[900.0, 600.0, 300.0]]), np.array([0.3869]))
    ds = power.emission_factors(_registry(), g, l, e, districts=DISTRICTS)
    assert int(ds["marginal_hours"]) == 0
    assert ds["marginal_factor"].isnull().all() and np.isnan(float(ds["city_marginal_factor"]))


def test_gap_in_the_axis_is_not_a_change():
    # supply_response drops pairs that are not 1 h apart
    times = pd.DatetimeIndex(["2025-01-01T00", "2025-01-01T01", "2025-01-01T05", "2025-01-01T06"])
    dM, _, _, keep = supply_response(np.array([[1.0], [2.0], [10.0], [11.0]]), np.array([0.5]),
                                     np.zeros(4), np.full(4, 0.4), times)
    assert keep.tolist() == [True, False, True] and dM.tolist() == [0.5, 0.5]


def test_short_period_falls_back_on_the_all_hours_fit():
    # two days: fewer than MIN_PAIRS_PER_HOUR changes per hour of day -> every district gets the
    # city's all-hours estimate and its full standard error (one shared estimate, not averaged down)
    g, l, e, _ = make_demo(PLANTS, "2025-01-01", "2025-01-03", seed=9)
    ds = power.emission_factors(PLANTS, g, l, e)
    np.testing.assert_allclose(ds["marginal_factor"], float(ds["city_marginal_factor"]), rtol=1e-12)
    np.testing.assert_allclose(ds["marginal_factor_se"], float(ds["city_marginal_factor_se"]), rtol=1e-12)
    np.testing.assert_allclose(ds["marginal_factor_by_hour"], float(ds["city_marginal_factor"]), rtol=1e-12)
    assert int(ds["marginal_hours"]) == 47 and float(ds["city_marginal_factor_se"]) > 0
