"""Issue 20, the per-gas pipeline: CH4 and CO priors, inversions and products beside CO2.

Numbers: the CH4 prior conserves the inventory (tonnes in = tonnes out), the CO prior is the CO2
prior's combustion sectors × the emission ratios, a CH4 inversion on a synthetic problem recovers a
known truth within its σ with district totals in tonnes of CH4, and bad input (a CH4 inventory in
the wrong units, a ratio table without a sector) stops with one message naming the file, the field
and the fix.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import xarray as xr

from gzcarbon.grid import Grid
from gzcarbon.names import CITY, GASES, tonnes_per_flux_unit
from inversion.emission_ratios import EmissionRatioError
from inversion.inventory import InventoryError
from inversion.prior import build_ch4_prior, build_co_prior, flux_dataset, flux_encoding, gas_tonnes, hourly_times
from inversion.run import InversionInputs, invert

GRID = Grid.from_config({"lon_min": 113.0, "lon_max": 113.12, "lat_min": 23.0, "lat_max": 23.1, "res": 0.01})


def ch4_inventory(path, units="kg m-2 s-1", month_profile=True):
    """A CH4 inventory in the layout of the demo's inventory_ch4.nc (docs/formats.md)."""
    rng = np.random.default_rng(3)
    ny, nx = GRID.ny, GRID.nx
    hours = np.arange(24)
    ds = xr.Dataset(coords={"lat": GRID.lat, "lon": GRID.lon, "hour": hours, "month": np.arange(1, 13)})
    prof = 1.0 + 0.4 * np.sin(2 * np.pi * (hours - 6) / 24)
    for s, scale in (("landfill", 3e-9), ("wastewater", 1e-9), ("rice", 5e-10)):
        ds[f"emi_{s}"] = (("lat", "lon"), rng.uniform(0, scale, (ny, nx)), {"units": units})
        ds[f"profile_{s}"] = (("hour",), prof / prof.mean() if s != "rice" else np.ones(24))
    if month_profile:  # rice: January twice the annual mean, nothing in the other winter months
        mp = np.zeros(12)
        mp[0] = 2.0
        mp[5:9] = 10.0 / 4
        ds["month_profile_rice"] = (("month",), mp)
    ds.attrs.update(title="test CH4 inventory", utc_offset_hours=8)
    ds.to_netcdf(path)
    return ds


def test_ch4_prior_conserves_the_inventory(tmp_path):
    """Over whole local days the diurnal profiles (mean 1) conserve each sector's mass; the monthly
    factor scales it: t CH4 of the prior = Σ emi (kg m-2 s-1) × cell area × seconds × month factor,
    computed here independently in kg."""
    inv = ch4_inventory(tmp_path / "inventory_ch4.nc")
    # two whole local days (UTC+8): 2025-01-01 16 UTC .. 2025-01-03 16 UTC
    prior = build_ch4_prior(tmp_path / "inventory_ch4.nc", GRID, "2025-01-01T16:00", "2025-01-03T16:00", 8)
    assert prior["flux"].attrs["units"] == "nmol m-2 s-1"
    assert prior.attrs["gas"] == "ch4"
    area = GRID.cell_area_m2()
    seconds = 2 * 86400.0
    month_factor = {"landfill": 1.0, "wastewater": 1.0, "rice": 2.0}
    for s, f in month_factor.items():
        want_t = float((inv[f"emi_{s}"].values * area).sum()) * seconds * f / 1e3
        got_t = gas_tonnes(prior[f"flux_{s}"].values.astype(float), area, "ch4")
        assert got_t == pytest.approx(want_t, rel=1e-6)  # float32 storage of the sector fields
    total_t = sum(float((inv[f"emi_{s}"].values * area).sum()) * seconds * f / 1e3 for s, f in month_factor.items())
    assert gas_tonnes(prior["flux"].values, area, "ch4") == pytest.approx(total_t, rel=1e-12)
    # the diurnal profile is applied at local time: landfill's peak at local noon = 04 UTC
    city = prior["flux_landfill"].sum(("lat", "lon")).values
    assert pd.DatetimeIndex(prior["time"].values)[int(np.argmax(city))].hour == 4


def test_ch4_inventory_in_wrong_units_names_file_variable_and_fix(tmp_path):
    ch4_inventory(tmp_path / "bad.nc", units="mol m-2 s-1")
    with pytest.raises(InventoryError) as err:
        build_ch4_prior(tmp_path / "bad.nc", GRID, "2025-01-01", "2025-01-02", 8)
    msg = str(err.value)
    assert "bad.nc" in msg and "emi_landfill" in msg and "'mol m-2 s-1'" in msg and "kg m-2 s-1" in msg
    assert "convert" in msg


def co2_prior(path):
    """A CO2 prior.nc (µmol m-2 s-1) with combustion sectors and a biosphere."""
    rng = np.random.default_rng(5)
    times = hourly_times("2025-01-01", "2025-01-02")
    shape = (len(times), GRID.ny, GRID.nx)
    sectors = {s: rng.uniform(0, m, shape) for s, m in (("industry", 20.0), ("road", 8.0), ("residential", 3.0),
                                                         ("power", 50.0))}
    sectors["bio"] = rng.normal(-2.0, 1.0, shape)
    ds = flux_dataset(GRID, times, sectors, {"title": "test"})
    ds.to_netcdf(path, encoding=flux_encoding(ds))
    return ds


def ratio_table(path, skip=()):
    rows = {"industry": 0.012, "road": 0.015, "residential": 0.008, "power": 0.001}
    lines = ["sector,ratio_mol_per_mol,sigma_rel,source"]
    lines += [f"{s},{r},0.5,test" for s, r in rows.items() if s not in skip]
    path.write_text("\n".join(lines) + "\n")
    return rows


def test_co_prior_is_co2_combustion_times_ratios(tmp_path):
    """F_CO (nmol) = Σ_s F_CO2,s (µmol) × R_s × 1000 over the combustion sectors, the biosphere
    excluded; in mass: t CO = Σ_s t CO2,s × R_s × 28.010/44.01."""
    co2 = co2_prior(tmp_path / "prior.nc")
    ratios = ratio_table(tmp_path / "ratios.csv")
    co = build_co_prior(tmp_path / "prior.nc", tmp_path / "ratios.csv")
    want = sum(co2[f"flux_{s}"].values.astype(np.float64) * r * 1000.0 for s, r in ratios.items())
    np.testing.assert_allclose(co["flux"].values, want, rtol=1e-13)
    assert "flux_bio" not in co and co["flux"].attrs["units"] == "nmol m-2 s-1"
    area = GRID.cell_area_m2()
    t_co2 = {s: gas_tonnes(co2[f"flux_{s}"].values.astype(float), area, "co2") for s in ratios}
    want_t = sum(t_co2[s] * r * GASES["co"]["molar_mass"] / GASES["co2"]["molar_mass"] for s, r in ratios.items())
    assert gas_tonnes(co["flux"].values, area, "co") == pytest.approx(want_t, rel=1e-12)


def test_ratio_table_missing_a_sector_names_table_sector_and_fix(tmp_path):
    co2_prior(tmp_path / "prior.nc")
    ratio_table(tmp_path / "ratios.csv", skip=("power",))
    with pytest.raises(EmissionRatioError) as err:
        build_co_prior(tmp_path / "prior.nc", tmp_path / "ratios.csv")
    msg = str(err.value)
    assert "ratios.csv" in msg and "'power'" in msg and "sector" in msg and "add a row" in msg


# ---------------------------------------------------------------------------------------- inversion
def synthetic_ch4(seed=1):
    """A small CH4 problem: Gaussian plumes as footprints (ppb per nmol m-2 s-1), a prior, a truth
    = prior × (1 + 0.3 west / −0.2 east), noisy observations (ppb)."""
    rng = np.random.default_rng(seed)
    hours = pd.date_range("2025-01-01", periods=72, freq="h")
    ny, nx = GRID.ny, GRID.nx
    yy, xx = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
    sites = {"AAA": (2.5, 2.5), "BBB": (9.5, 7.5), "CCC": (5.5, 8.0)}
    rec, rows, cols, vals = [], [], [], []
    for day in (1, 2):
        for hh in range(2, 10):
            for site, (sx, sy) in sites.items():
                t = hours[0] + pd.Timedelta(days=day, hours=hh)
                i = len(rec)
                rec.append(dict(receptor_id=f"{site}_{t:%Y%m%d%H%M}", site=site, time=t + pd.Timedelta("30min"),
                                lon=GRID.lon[int(sx)], lat=GRID.lat[int(sy)], agl=100.0))
                hi = hours.get_loc(t)
                ang = 0.9 * day + 0.4 * hh
                for back in range(12):
                    cx, cy = sx + 0.6 * back * np.cos(ang), sy + 0.6 * back * np.sin(ang)
                    w = 0.08 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * (1 + 0.3 * back) ** 2))
                    nz = np.flatnonzero(w > 1e-4)
                    rows += [i] * nz.size
                    cols += list((hi - back) * nx * ny + nz)
                    vals += list(w.ravel()[nz])
    H = sp.csr_matrix((vals, (rows, cols)), shape=(len(rec), len(hours) * nx * ny))
    rec = pd.DataFrame(rec)
    base = 40.0 + 150.0 * np.exp(-((xx - 6) ** 2 + (yy - 5) ** 2) / 6.0)  # nmol m-2 s-1 (a landfill)
    prior = np.repeat(base[None], len(hours), axis=0)
    west = (xx < nx // 2)
    truth = prior * np.where(west, 1.3, 0.8)[None]
    noise = rng.normal(0, 2.0, len(rec))
    sel = pd.DataFrame({"site": rec["site"], "time": rec["time"] - pd.Timedelta("30min"), "intake_height": 100.0, "lon": rec["lon"], "lat": rec["lat"],
        "value": 1990.0 + H @ truth.ravel() + noise, "value_std_dev": 1.0, "nvalue": 10,
        "background": 1990.0, "background_sigma": 2.0})
    F = sp.csr_matrix(np.vstack([west.ravel(), ~west.ravel()]).astype(float))
    return dict(H=H, rec=rec, hours=hours, sel=sel, prior=prior, truth=truth, F=F)


def test_ch4_inversion_recovers_a_known_truth_within_its_sigma():
    """Synthetic CH4 world (ppb, nmol m-2 s-1): the district and city totals are tonnes of CH4
    (Σ flux × area × 3600 s × 16.043e-15 t/nmol, checked independently), the posterior moves both
    districts towards the truth and ends within 2 σ of it, closer than the prior."""
    w = synthetic_ch4()
    inputs = InversionInputs(w["H"], w["rec"], w["hours"], w["sel"], w["prior"], GRID.lat, GRID.lon,
                             ["West", "East"], w["F"], GRID.cell_area_m2(), truth_flux=w["truth"], gas="ch4")
    cfg = dict(time_step_hours=24, prior_rel_sigma=0.5, prior_floor_sigma=2.0, corr_length_km=3.0,
               corr_time_hours=720.0, obs_sigma_ppm=2.0, bg_sigma_ppm=5.0, diurnal_corr=1.0,
               district_scale_sigma=0.3, profile_scale_sigma=0.0, cross_validation=False)
    out = invert(inputs, cfg, "2025-01-02", "2025-01-04")
    d = out.districts.set_index("district")
    area = GRID.cell_area_m2().ravel()
    mask = (w["hours"] >= "2025-01-02") & (w["hours"] < "2025-01-04")
    for k, name in enumerate(["West", "East"]):
        frac = w["F"].toarray()[k]
        for col, field in (("prior_t", w["prior"]), ("truth_t", w["truth"])):
            want = float((field[mask].reshape(mask.sum(), -1) * frac * area).sum()) * 3600.0 * 16.043e-15
            assert d.loc[name, col] == pytest.approx(want, rel=1e-12)
    for name in ("West", "East", CITY):
        r = d.loc[name]
        err_post, err_prior = abs(r.posterior_t - r.truth_t), abs(r.prior_t - r.truth_t)
        assert err_post < err_prior
        assert err_post < 2.0 * r.posterior_sigma_t
        assert r.posterior_sigma_t < r.prior_sigma_t
    assert out.posterior["prior_flux"].attrs["units"] == "nmol m-2 s-1"
    assert out.posterior["background_offset"].attrs["units"] == "ppb"
    assert out.posterior.attrs["gas"] == "ch4"
    assert tonnes_per_flux_unit("ch4") == pytest.approx(16.043e-15, rel=1e-15)


# ------------------------------------------------------------------------------ the tiny pipeline run
def test_tiny_run_writes_ch4_and_co_products_like_co2s(tiny_reference_run):
    """The tiny run (species: all three, tests/test_end_to_end.py) writes results/<month>/<gas>/ with the
    CO2 file names and columns; the city row is the sum of the districts (t of the gas); the CF
    product holds the same flux in kg m-2 s-1 (nmol × molar mass × 1e-12) under the gas's standard
    name; the report has a section per gas."""
    from pipeline_conftest import MONTH

    res = tiny_reference_run / "results" / MONTH
    co2 = pd.read_csv(res / "districts.csv")
    for gas, std in (("ch4", "tendency_of_atmosphere_mass_content_of_methane_due_to_emission"),
                     ("co", "tendency_of_atmosphere_mass_content_of_carbon_monoxide_due_to_emission")):
        d = pd.read_csv(res / gas / "districts.csv")
        assert list(d.columns) == list(co2.columns) and list(d["district"]) == list(co2["district"])
        city, rest = d.iloc[-1], d.iloc[:-1]
        assert city["district"] == CITY
        for col in ("prior_t", "posterior_t", "truth_t"):
            assert city[col] == pytest.approx(rest[col].sum(), rel=1e-5)  # 6 significant digits
        assert (d["posterior_sigma_t"] <= d["prior_sigma_t"] * (1 + 1e-9)).all() and city["truth_t"] > 0
        with xr.open_dataset(res / gas / f"flux_{MONTH}.nc") as ds, xr.open_dataset(res / gas / "posterior.nc") as post:
            assert ds["posterior_flux"].attrs["standard_name"] == std
            assert ds["posterior_flux"].attrs["units"] == "kg m-2 s-1"
            assert post.attrs["gas"] == gas and post["prior_flux"].attrs["units"] == "nmol m-2 s-1"
            t = pd.DatetimeIndex(post["time"].values)
            inside = (t >= pd.Timestamp(post.attrs["period_start"])) & (t < pd.Timestamp(post.attrs["period_end"]))
            nmol = post["prior_flux"].values[inside].astype(float)
            kg = ds["prior_flux"].values.astype(float)
            want = nmol * GASES[gas]["molar_mass"] * 1e-12
            np.testing.assert_allclose(kg, want, rtol=1e-6, atol=1e-7 * np.abs(want).max())  # float32
            assert float(ds["prior_city_total"]) == pytest.approx(city["prior_t"], rel=1e-5)
        assert {p.name for p in (res / gas / "maps").iterdir()} >= {"posterior_flux.png", "district_totals.png"}
    html = (res / "report.html").read_text()
    assert "CH₄ emissions" in html and "CO emissions" in html


def test_tiny_run_ch4_product_passes_the_cf_checker(tiny_reference_run, tmp_path):
    """The CH4 flux product (mass-flux standard name, kg m-2 s-1) passes compliance-checker's cf:1.8
    suite without errors or warnings, as the CO2 product does (tests/products/test_cf_check.py)."""
    import json

    from pipeline_conftest import MONTH

    runner = pytest.importorskip("compliance_checker.runner", reason="pip install -e '.[test]'")
    runner.CheckSuite.load_all_available_checkers()
    out = tmp_path / "cf.json"
    runner.ComplianceChecker.run_checker(str(tiny_reference_run / "results" / MONTH / "ch4" / f"flux_{MONTH}.nc"),
                                         ["cf:1.8"], 0, "normal", output_filename=str(out), output_format="json")
    report = json.loads(out.read_text())["cf:1.8"]
    assert [m for k in ("high_priorities", "medium_priorities") for r in report[k] for m in r["msgs"]] == []
    assert report["scored_points"] == report["possible_points"] > 50
