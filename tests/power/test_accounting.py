"""Two accountings per district (issue 21, item 4): territorial vs consumption-based CO2.

The power side is the real power stage (``power.emission_factors`` on the demo's 72 h of inputs,
written by ``power.products.write_netcdf``); the inversion side is a districts.csv and a
diagnostics.json written as the inversion writes them.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import power
from power import products
from power.accounting import (COLUMNS, AccountingInputError, accounting_from_files, power_totals,
                              write_accounting)
from gzcarbon.names import CITY

REPO = Path(__file__).resolve().parents[2]
PLANTS = str(REPO / "config" / "power_plants.csv")
DISTRICTS_FILE = str(REPO / "config" / "districts.geojson")

PERIOD = ("2025-01-01T00:00:00", "2025-01-03T00:00:00")  # the power axis starts a day earlier


@pytest.fixture(scope="module")
def power_nc(demo_files, tmp_path_factory):
    files, _ = demo_files
    ds = power.emission_factors(PLANTS, files["generation"], files["load"], files["external"],
                                districts=power.district_names(DISTRICTS_FILE),
                                start="2024-12-31T00:00:00", end="2025-01-03T00:00:00")
    path = tmp_path_factory.mktemp("accounting") / "emission_factors.nc"
    products.write_netcdf(ds, str(path))
    return path, ds


def write_inversion_files(d, names, drop=(), extra=()):
    """districts.csv (as inversion.run writes it, %.6g) and diagnostics.json of the period."""
    rng = np.random.default_rng(3)
    post = rng.uniform(5e3, 9e4, len(names))
    rows = [(n, p * 1.02, p, p * 0.25, s) for n, p, s in zip(names, post, post * rng.uniform(0.1, 0.3, len(names)))
            if n not in drop] + [(n, 1e4, 1e4, 2e3, 1e3) for n in extra]
    df = pd.DataFrame(rows, columns=["district", "prior_t", "posterior_t", "prior_sigma_t", "posterior_sigma_t"])
    city = pd.DataFrame([(CITY, df.prior_t.sum(), df.posterior_t.sum(), 4e4, 2.5e4)], columns=df.columns)
    pd.concat([df, city]).to_csv(d / "districts.csv", index=False, float_format="%.6g")
    (d / "diagnostics.json").write_text(json.dumps({"n_obs": 47, "chi2_reduced": 1.9, "dofs": 18.0,
                                                    "period_start": PERIOD[0], "period_end": PERIOD[1]}))
    return d / "districts.csv", d / "diagnostics.json"


def test_accounting_conserves_emissions_and_keeps_the_inversion_sigma(power_nc, tmp_path):
    path, ds = power_nc
    names = [str(n) for n in ds["district"].values]
    dcsv, diag = write_inversion_files(tmp_path, names)
    tab = accounting_from_files(dcsv, diag, path)
    assert tuple(tab.columns) == COLUMNS and list(tab["district"]) == names + [CITY]
    t = tab.set_index("district")
    inv = pd.read_csv(dcsv).set_index("district")
    # territorial and sigma are the inversion's, unchanged (sigma carries over to both accountings)
    np.testing.assert_array_equal(t["territorial_t"], inv.loc[t.index, "posterior_t"])
    np.testing.assert_array_equal(t["sigma_t"], inv.loc[t.index, "posterior_sigma_t"])
    # the formula, every row
    np.testing.assert_allclose(t["consumption_based_t"],
                               t["territorial_t"] - t["own_power_plants_t"] + t["consumed_electricity_t"],
                               rtol=1e-12)
    # independent sums over the inverted period only (the spin-up day 2024-12-31 is left out)
    sub = ds.sel(time=slice(PERIOD[0], "2025-01-02T23:00:00"))
    assert sub.sizes["time"] == 48
    by_plant = sub["plant_co2_t"].sum("time").groupby(sub["plant_district"]).sum()
    for n in names:
        want = float(by_plant.sel(plant_district=n)) if n in by_plant["plant_district"] else 0.0
        assert t.loc[n, "own_power_plants_t"] == pytest.approx(want, rel=1e-12, abs=1e-9)
    np.testing.assert_allclose(t.loc[names, "consumed_electricity_t"],
                               sub["consumption_emissions_t"].sum("time").sel(district=names), rtol=1e-12)
    full = float(ds["production_emissions_t"].sum())
    assert t.loc[CITY, "own_power_plants_t"] < 0.8 * full  # 48 of 72 hours
    # the city: consumed = generated in the city + imported from the external grid - exported to it
    imported = float((sub["external_import_mwh"].sum("district") * sub["external_intensity"]).sum())
    exported = float(sub["city_exported_emissions_t"].sum())
    generated = float(sub["production_emissions_t"].sum())
    assert t.loc[CITY, "consumed_electricity_t"] == pytest.approx(generated + imported - exported, rel=1e-9)
    assert t.loc[CITY, "consumption_based_t"] == pytest.approx(
        t.loc[CITY, "territorial_t"] + imported - exported, rel=1e-9)
    assert imported > 1e4  # the demo city imports ~69 % of its electricity
    # the city row = the sum of the districts, to the rounding of districts.csv (6 digits)
    for c in ("territorial_t", "own_power_plants_t", "consumed_electricity_t", "consumption_based_t"):
        assert t.loc[CITY, c] == pytest.approx(t.loc[names, c].sum(), rel=1e-5)
    # written and read back
    out = tmp_path / "accounting.csv"
    write_accounting(tab, out)
    back = pd.read_csv(out)
    assert list(back.columns) == list(COLUMNS)
    np.testing.assert_allclose(back[list(COLUMNS[1:])], tab[list(COLUMNS[1:])], rtol=1e-8)


def test_power_totals_by_hand():
    """Two districts, three hours: A has a 10 t/h plant and 5 MWh load at 0.8 kg/kWh; B no load at
    hour 2 (no factor, NaN) and 2 MWh at 0.5 otherwise; the hour before the period is left out."""
    t = pd.date_range("2025-03-01T23:00", periods=3, freq="h")
    ds = xr.Dataset({"production_emissions_t": (("time", "district"), [[99.0, 0.0], [10.0, 0.0], [10.0, 0.0]]),
                     "consumption_factor": (("time", "district"), [[9.0, 9.0], [0.8, 0.5], [0.8, np.nan]]),
                     "load_mwh": (("time", "district"), [[99.0, 99.0], [5.0, 2.0], [5.0, 0.0]])},
                    coords={"time": t, "district": ["A", "B"]})
    tot = power_totals(ds, "2025-03-02T00:00", "2025-03-02T02:00")
    assert tot.loc["A"].tolist() == [20.0, 8.0]
    assert tot.loc["B"].tolist() == [0.0, 1.0]
    with pytest.raises(AccountingInputError, match=r"do not cover 1 hour\(s\)"):
        power_totals(ds, "2025-03-02T00:00", "2025-03-02T03:00", source="pf.nc")


@pytest.mark.parametrize("case", ["missing_in_districts_csv", "extra_in_districts_csv"])
def test_a_district_in_one_file_only_names_both_files(power_nc, tmp_path, case):
    path, ds = power_nc
    names = [str(n) for n in ds["district"].values]
    if case == "missing_in_districts_csv":
        dcsv, diag = write_inversion_files(tmp_path, names, drop=("Conghua",))
        want = r"\['Conghua'\] in .*emission_factors.nc are missing from .*districts.csv"
    else:
        dcsv, diag = write_inversion_files(tmp_path, names, extra=("Foshan",))
        want = r"\['Foshan'\] in .*districts.csv are missing from .*emission_factors.nc"
    with pytest.raises(AccountingInputError, match=want) as err:
        accounting_from_files(dcsv, diag, path)
    assert str(dcsv) in str(err.value) and str(path) in str(err.value)
    assert "districts_file" in str(err.value)


def test_period_outside_the_power_axis_and_bad_files(power_nc, tmp_path):
    path, ds = power_nc
    dcsv, diag = write_inversion_files(tmp_path, [str(n) for n in ds["district"].values])
    d = json.loads(diag.read_text())
    d["period_end"] = "2025-01-04T00:00:00"
    diag.write_text(json.dumps(d))
    with pytest.raises(AccountingInputError, match=r"emission_factors.nc: .* do not cover 24 hour"):
        accounting_from_files(dcsv, diag, path)
    del d["period_start"]
    diag.write_text(json.dumps(d))
    with pytest.raises(AccountingInputError, match=r"diagnostics.json: no readable 'period_start'"):
        accounting_from_files(dcsv, diag, path)
    dcsv, diag = write_inversion_files(tmp_path, [str(n) for n in ds["district"].values])
    bad = tmp_path / "other.nc"
    xr.Dataset({"load_mwh": (("time", "district"), np.zeros((1, 1)))}).to_netcdf(bad)
    with pytest.raises(AccountingInputError, match=r"other.nc: variables \['production_emissions_t', "
                                                   r"'consumption_factor'\] missing"):
        accounting_from_files(dcsv, diag, bad)
