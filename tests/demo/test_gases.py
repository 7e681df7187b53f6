"""The demo world's CH4 and CO (issue 20): inventory, truths with the pre-registered errors, their
signals through the truth's own Jacobian, and the analyser's wet CO."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import xarray as xr

from gzcarbon.demo.gases import (CH4_SECTORS, CH4_TOTALS_KT, KG_TO_NMOL, MOLAR_MASS, ch4_sector_hourly,
                                 make_ch4_inventory, make_ch4_truth, make_co_truth, true_co_ratios)
from gzcarbon.demo.inventory import city_fraction, make_inventory, make_truth
from gzcarbon.demo.signal import gas_truth_signal, noise_sigma, receptor_enhancements, truth_signal
from gzcarbon.demo.stations import proxy_truth, simulate_site, write_demo_raw
from gzcarbon.demo.truth_errors import GAS_TRUTH_ERRORS, TRUTH_ERRORS
from gzcarbon.districts import district_matrix
from gzcarbon.grid import Grid
from inversion.emission_ratios import read_emission_ratios
from inversion.inventory import SECONDS_PER_YEAR, write_netcdf_atomic
from stations import picarro
from stations.sites import load_sites

ROOT = Path(__file__).resolve().parents[2]
GRID = Grid(112.90, 114.10, 22.50, 24.00, 0.01)
# 72 hours across the turn of the year (local time): December and January month factors both act
T0, T1 = "2024-12-30T00:00:00", "2025-01-02T00:00:00"
TIMES = pd.date_range(T0, T1, freq="h", inclusive="left")
RATIOS = ROOT / "config" / "emission_ratios_co.csv"


@pytest.fixture(scope="module")
def world():
    names, A = district_matrix(ROOT / "config" / "districts.geojson", GRID.lon_edges, GRID.lat_edges)
    inv = make_inventory(GRID, names, A)
    ps = pd.DataFrame([(t, "P1", 113.56, 22.74, 900.0 * (1 + 0.2 * np.sin(t.hour))) for t in TIMES],
                      columns=["time", "plant_id", "lon", "lat", "co2_t_per_h"])
    co2 = make_truth(inv, ps, GRID, names, A, T0, T1, seed=20250101)
    ch4_inv = make_ch4_inventory(GRID, names, A)
    ch4 = make_ch4_truth(ch4_inv, GRID, names, A, T0, T1, seed=20250101)
    co = make_co_truth(co2, read_emission_ratios(RATIOS), GRID, A, seed=20250101)
    return dict(names=names, A=A, co2=co2, inv=ch4_inv, ch4=ch4, co=co, city=city_fraction(A, GRID))


def _t(flux_nmol, gas, weight):
    """Independent tonnes: Σ flux × area × weight × 3600 s, nmol -> t."""
    return float((np.asarray(flux_nmol, float) * (GRID.cell_area_m2() * weight)[None]).sum()
                 * 3600 * 1e-9 * MOLAR_MASS[gas] / 1e6)


def test_ch4_inventory_layout_and_city_totals(world, tmp_path):
    inv, city, area = world["inv"], world["city"], GRID.cell_area_m2()
    for s in CH4_SECTORS:
        kt = float((inv[f"emi_{s}"].values * area * city).sum()) * SECONDS_PER_YEAR / 1e6
        assert kt == pytest.approx(CH4_TOTALS_KT[s], rel=1e-9)
        assert inv[f"emi_{s}"].attrs["units"] == "kg m-2 s-1"
        assert inv[f"profile_{s}"].values.mean() == pytest.approx(1.0, abs=1e-12)
    for s in ("rice", "aquaculture"):
        mp = inv[f"month_profile_{s}"].values
        assert mp.shape == (12,) and mp.mean() == pytest.approx(1.0, abs=1e-12)
    assert sum(CH4_TOTALS_KT.values()) == 200.0
    # Xingfeng (Baiyun) carries 60 % of the landfill sector: its cell is the sector's maximum
    lf = inv["emi_landfill"].values
    i, j = np.unravel_index(np.argmax(lf), lf.shape)
    assert abs(GRID.lon[j] - 113.40) <= 0.01 and abs(GRID.lat[i] - 23.31) <= 0.01
    p = tmp_path / "inventory_ch4.nc"
    write_netcdf_atomic(inv, p)
    with xr.open_dataset(p) as back:
        for v in inv.data_vars:
            np.testing.assert_array_equal(back[v].values, inv[v].values)
        assert back.attrs["species"] == "ch4" and back.attrs["sectors"].split(",") == list(CH4_SECTORS)


def test_ch4_truth_is_the_inventory_times_the_registered_changes(world):
    inv, ch4, city = world["inv"], world["ch4"], world["city"]
    off = 8
    lh = (TIMES.hour + off) % 24
    lm = (TIMES + pd.Timedelta(hours=off)).month
    prior = {}
    for s in CH4_SECTORS:  # an explicit hour-by-hour prior, independent of ch4_sector_hourly
        mp = inv[f"month_profile_{s}"].values if f"month_profile_{s}" in inv else np.ones(12)
        fac = np.array([inv[f"profile_{s}"].values[h] * mp[m - 1] for h, m in zip(lh, lm)])
        prior[s] = _t(fac[:, None, None] * inv[f"emi_{s}"].values[None] * KG_TO_NMOL["ch4"], "ch4", city)
    tot = dict(zip(ch4["sector"].values, ch4["city_total_t"].values))
    assert tot["landfill"] == pytest.approx(1.3 * prior["landfill"], rel=1e-9)
    assert tot["wastewater"] == pytest.approx(0.8 * prior["wastewater"], rel=1e-9)
    for s in ("gas_distribution", "combustion"):
        assert tot[s] == pytest.approx(prior[s], rel=1e-9)
    # the season one month late: in January the truth's rice is the prior's December factor
    rice = ch4["flux_rice"].values.astype(float)
    prior_rice = ch4_sector_hourly(inv["emi_rice"].values, inv["profile_rice"].values,
                                   inv["month_profile_rice"].values, TIMES, off)
    jan, dec = np.asarray(lm == 1), np.asarray(lm == 12)
    mp = inv["month_profile_rice"].values
    assert jan.any() and dec.any()
    np.testing.assert_allclose(rice[jan].sum() / prior_rice[jan].sum(), mp[11] / mp[0], rtol=1e-6)
    np.testing.assert_allclose(rice[dec].sum() / prior_rice[dec].sum(), mp[10] / mp[11], rtol=1e-6)
    assert mp[11] / mp[0] == pytest.approx(0.35 / 0.15)
    aqua_mp = inv["month_profile_aquaculture"].values
    assert tot["aquaculture"] != pytest.approx(prior["aquaculture"], rel=1e-3)
    assert aqua_mp[11] / aqua_mp[0] == pytest.approx(0.70 / 0.55)
    # the unreported landfill is 10 % of the true city CH4, and lies in Baiyun
    assert tot["unreported_landfill"] / sum(tot.values()) == pytest.approx(0.10, rel=1e-9)
    u = ch4["flux_unreported_landfill"].values[0].astype(float).ravel() * GRID.cell_area_m2().ravel()
    by = world["A"][world["names"].index("Baiyun")] @ u
    assert by / u.sum() > 0.999
    # the city total: prior sectors x changes, then / 0.9
    expect = (1.3 * prior["landfill"] + 0.8 * prior["wastewater"] + prior["gas_distribution"]
              + prior["combustion"] + tot["rice"] + tot["aquaculture"]) / 0.9
    assert sum(tot.values()) == pytest.approx(expect, rel=1e-9)
    assert json.loads(ch4.attrs["truth_changes"])["ch4_sector_factor"] == {"landfill": 1.3, "wastewater": 0.8}
    bg = ch4["background"].values
    assert 1960 < bg.min() and bg.max() < 2060 and ch4["background"].attrs["units"] == "ppb"


def test_co_truth_is_co2_combustion_times_true_ratios(world):
    co2, co = world["co2"], world["co"]
    prior = pd.read_csv(RATIOS, comment="#").set_index("sector")["ratio_mol_per_mol"]
    true = {"industry": prior["industry"] * 1.3, "road": prior["road"] * 0.7,
            "residential": prior["residential"] * 1.3, "power": prior["power"] * 0.7}
    assert true_co_ratios(read_emission_ratios(RATIOS)) == pytest.approx(true, rel=1e-15)
    expect = sum(co2[f"flux_{s}"].values.astype(float) * r * 1000 for s, r in true.items())
    expect = expect + co2["flux_unreported"].values.astype(float) * true["industry"] * 1000
    got = co["flux"].values
    assert np.abs(got - expect).max() <= 1e-6 * np.abs(expect).max()
    assert "flux_bio" not in co and co["flux"].attrs["units"] == "nmol m-2 s-1"
    # tonnes CO = tonnes CO2 x ratio x M_CO / M_CO2, sector by sector (the CO2 truth's own totals)
    t_co2 = dict(zip(co2["sector"].values, co2["city_total_t"].values))
    t_co = dict(zip(co["sector"].values, co["city_total_t"].values))
    for s, r in true.items():
        assert t_co[s] == pytest.approx(t_co2[s] * r * MOLAR_MASS["co"] / 44.01, rel=1e-6)
    # background: base + daily variation + secondary production (daytime, mixed out at night)
    sec = co["background_secondary"].values
    local = (TIMES.hour + 8) % 24
    assert sec.min() >= 0 and 5.0 < sec.max() < 20.0
    assert set(local[np.argsort(sec)[-3:]]) <= {14, 15, 16, 17}
    assert sec[np.asarray(local == 7)].max() < 0.2 * sec.max()
    with pytest.raises(ValueError, match=r"no row for \['power'\]"):
        make_co_truth(co2, {"industry": 0.01, "road": 0.01, "residential": 0.01}, GRID, world["A"], 1)


def _jacobian(world, n_rec=30, seed=4):
    """A sparse H over the truth's state (time x cells): 25 nonzeros per receptor, 5 rows empty."""
    rng = np.random.default_rng(seed)
    ncol = len(TIMES) * GRID.ny * GRID.nx
    rows, cols, vals = [], [], []
    for r in range(n_rec - 5):
        c = rng.choice(ncol, 25, replace=False)
        rows += [r] * 25
        cols += list(c)
        vals += list(rng.uniform(0, 0.02, 25))
    H = sp.csr_matrix((vals, (rows, cols)), shape=(n_rec, ncol))
    t = TIMES[24:24 + n_rec]
    rec = pd.DataFrame({"receptor_id": [f"R{i}" for i in range(n_rec)], "site": "YXU", "time": t})
    return H, rec, np.diff(H.indptr) > 0


def test_gas_signal_is_h_truth_times_flux_plus_background_plus_noise(world):
    sites = [s for s in load_sites(ROOT / "config" / "stations.yaml") if s["id"] == "YXU"]
    H, rec, has = _jacobian(world)
    hours = TIMES[24:]
    bg_co2 = world["co2"]["background"].to_series()
    co2 = truth_signal(rec, receptor_enhancements(H, world["co2"]["flux"].values), has, sites, hours,
                       bg_co2, 8, seed=5)
    for gas in ("ch4", "co"):
        truth = world[gas]
        x = truth["flux"].values.ravel()
        enh = receptor_enhancements(H, truth["flux"].values)
        dense = np.array([sum(H.data[k] * x[H.indices[k]] for k in range(H.indptr[i], H.indptr[i + 1]))
                          for i in range(H.shape[0])])
        np.testing.assert_allclose(enh, dense, rtol=1e-12)
        bg = truth["background"].to_series()
        out = gas_truth_signal(rec, enh, has, sites, hours, bg, 8, 5, gas, co2, GAS_TRUTH_ERRORS.noise(gas))
        out["t"] = pd.to_datetime(out["time"]).dt.tz_localize(None)
        fp = out[out["source"] == "footprint"].set_index("t")
        want = pd.Series(dense[has], index=pd.DatetimeIndex(rec["time"][has]))
        np.testing.assert_allclose(fp.loc[want.index, "enhancement"], want, rtol=1e-12)
        np.testing.assert_allclose(out["background"], np.tile(bg.reindex(hours).values, 1), rtol=1e-12)
        assert len(fp) == int(has.sum())
        # noise size as documented (σ by row) and seeded
        a, r, rho = GAS_TRUTH_ERRORS.noise(gas)
        z = out["noise"] / noise_sigma(out["enhancement"], a, r)
        assert np.all(np.isfinite(z))
        again = gas_truth_signal(rec, enh, has, sites, hours, bg, 8, 5, gas, co2, GAS_TRUTH_ERRORS.noise(gas))
        np.testing.assert_array_equal(again["noise"], out["noise"])


def test_gas_noise_is_correlated_with_the_co2_noise_as_registered():
    """Over 60 days x 2 sites: corr(z_gas, z_CO2) = ρ and std(z_gas) = 1 within sampling error."""
    sites = [s for s in load_sites(ROOT / "config" / "stations.yaml") if s["id"] in ("NST", "YXU")]
    hours = pd.date_range("2025-01-01", periods=24 * 60, freq="h")
    rec = pd.DataFrame({"receptor_id": ["a"], "site": ["YXU"], "time": [hours[6]]})
    bg = pd.Series(420.0, index=hours)
    co2 = truth_signal(rec, np.array([8.0]), np.array([True]), sites, hours, bg, 8, seed=9)
    z_co2 = co2["noise"] / noise_sigma(co2["enhancement"], TRUTH_ERRORS.noise_ppm, TRUTH_ERRORS.noise_rel)
    assert len(co2) == 3 * 24 * 60
    for gas, rho in (("ch4", 0.5), ("co", 0.7)):
        a, r, rho_reg = GAS_TRUTH_ERRORS.noise(gas)
        assert rho_reg == rho
        out = gas_truth_signal(rec, np.array([80.0]), np.array([True]), sites, hours, bg * 5, 8, 9, gas, co2,
                               (a, r, rho))
        z = out["noise"] / noise_sigma(out["enhancement"], a, r)
        assert np.corrcoef(z, z_co2)[0, 1] == pytest.approx(rho, abs=0.04)
        assert z.std() == pytest.approx(1.0, abs=0.04)
    with pytest.raises(ValueError, match="has no row for site NST"):
        gas_truth_signal(rec, np.array([80.0]), np.array([True]), sites, hours, bg, 8, 9, "co",
                         co2[co2["site"] != "NST"], (4.0, 0.15, 0.7))


def test_raw_files_carry_the_gas_signals_and_wet_co_reads_back_dry(tmp_path):
    site = [s for s in load_sites(ROOT / "config" / "stations.yaml") if s["id"] == "YXU"][0]
    co2 = proxy_truth([site], days=1, seed=2)
    hours = pd.to_datetime(co2["time"]).dt.tz_localize(None)
    gases = {}
    for gas, base, amp in (("ch4", 2010.0, 40.0), ("co", 300.0, 150.0)):
        g = co2.copy()
        g["background"] = base
        g["enhancement"] = amp * (1 + np.sin(np.arange(len(g)) / 3.0))
        g["noise"] = 0.0
        gases[gas] = g
    paths = write_demo_raw(co2, site, tmp_path / "raw", seed=3, record_seconds=10.0, gases=gases)
    rec = simulate_site(co2, site, 3, record_seconds=10.0, gases=gases)
    # CO2 does not depend on the gas signals (the golden run's CO2 bytes stay)
    rec0 = simulate_site(co2, site, 3, record_seconds=10.0)
    for c in ("CO2", "CO2_dry", "H2O", "MPVPosition", "DasTemp", "OutletValve"):
        np.testing.assert_array_equal(rec0[c].to_numpy(), rec[c].to_numpy())
    rr = picarro.read_raw(paths)
    back = rr.records.set_index("EPOCH_TIME")
    ref = rec.drop_duplicates("EPOCH_TIME").set_index("EPOCH_TIME").loc[back.index]
    assert "CO_dry" not in back.columns
    # the file's CO is wet; wet -> dry with the same coefficients recovers the dry CO written
    dry = picarro.co_wet_to_dry(back["CO"].to_numpy(), back["h2o_reported"].to_numpy(),
                                back["b_h2o_pct"].to_numpy()) * 1000
    np.testing.assert_allclose(dry, ref["co_dry_ppb"].to_numpy(), atol=2e-4)
    # ... and so does the stations stage's own reader (CO always corrected with H2O)
    values, corrected, sources = picarro.dry_mole_fraction(rr, "co")
    assert corrected.all() and set(sources) == {"CO+H2O (h2o_reported, b_h2o_pct)"}
    np.testing.assert_allclose(values * 1000, ref["co_dry_ppb"].to_numpy(), atol=2e-4)
    amb = np.isin(ref["MPVPosition"], [int(i["valve"]) for i in site["inlets"]])
    hb = back["H2O"].to_numpy()[amb]
    wet_minus_offset = back["CO"].to_numpy()[amb] * 1000 - (2.306 * hb + 4.405 * hb**2 - 2.093 * hb**3 + 0.315 * hb**4)
    np.testing.assert_allclose(wet_minus_offset / ref["co_dry_ppb"].to_numpy()[amb], 1 - 0.0124 * hb - 0.0006 * hb**2,
                               atol=2e-5)
    np.testing.assert_allclose(back["CH4_dry"].to_numpy() * 1000, ref["ch4_dry_ppb"].to_numpy(), atol=1e-4)
    # the ambient hourly mean of the dry CH4 is the signal's hour (plateau shape, 0.5 ppb noise)
    t = pd.to_datetime(ref.index.to_numpy(), unit="s").floor("h")
    ch4 = pd.Series(ref["ch4_dry_ppb"].to_numpy()[amb], index=t[amb])
    clean = ~pd.Series(ref["spike"].to_numpy()[amb], index=t[amb]).groupby(level=0).any()
    hourly = ch4.groupby(level=0).median()[clean[clean].index]
    truth = (gases["ch4"]["background"] + gases["ch4"]["enhancement"]).set_axis(hours)
    assert np.abs(hourly - truth.reindex(hourly.index)).median() < 2.0
    # tanks read their certified CH4 and CO
    tanks = {v: val for v, (_, val, _) in picarro_tanks(site, "co").items()}
    for v, val in tanks.items():
        sel = ref["MPVPosition"].to_numpy() == v
        if sel.any():
            assert np.median(ref["co_dry_ppb"].to_numpy()[sel]) == pytest.approx(val, abs=3.0)


def picarro_tanks(site, species):
    from stations.sites import tank_table

    return tank_table(site, species)


def test_docs_gas_table_matches_the_error_model():
    text = (ROOT / "docs" / "demo.md").read_text()
    for name, value in GAS_TRUTH_ERRORS.table():
        assert f"| {name} | {value} |" in text, (name, value)
