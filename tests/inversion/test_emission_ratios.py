"""CO/CO2 emission-ratio table: the shipped table, CO from CO2 sector fluxes, and bad tables."""

from pathlib import Path

import numpy as np
import pytest

from inversion.emission_ratios import (EmissionRatioError, co_flux_from_co2, co_sector_fluxes,
                                       read_emission_ratios)

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "config" / "emission_ratios_co.csv"
COMBUSTION = ["industry", "road", "residential", "power"]
GOOD = "sector,ratio_mol_per_mol,sigma_rel,source\nroad,0.015,0.4,\"a, b\"\npower,0.001,0.7,x\n"


def test_shipped_table_covers_the_combustion_sectors_with_plausible_ratios():
    df = read_emission_ratios(SHIPPED, COMBUSTION)
    assert list(df.index) == COMBUSTION
    assert "bio" not in df.index
    # road 10-20 ppb/ppm, power well below road; every row names its source
    assert 0.010 <= df.loc["road", "ratio_mol_per_mol"] <= 0.020
    assert df.loc["power", "ratio_mol_per_mol"] < 0.2 * df.loc["road", "ratio_mol_per_mol"]
    assert (df["sigma_rel"] > 0).all() and df["source"].str.contains("approx").all()


def test_co_from_co2_is_flux_times_ratio_times_1000(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text(GOOD)
    df = read_emission_ratios(p)
    assert df.loc["road", "source"] == "a, b"
    rng = np.random.default_rng(3)
    road, power = rng.uniform(0, 5, (4, 3, 2)), rng.uniform(0, 50, (4, 3, 2))
    total = co_flux_from_co2({"road": road, "power": power}, df)
    # independent: 1 µmol CO2 x 0.015 mol/mol = 15 nmol CO
    np.testing.assert_allclose(total, 15.0 * road + 1.0 * power, rtol=1e-14)
    parts = co_sector_fluxes({"road": road}, {"road": 0.015})
    np.testing.assert_allclose(parts["road"], 15.0 * road, rtol=1e-14)
    with pytest.raises(EmissionRatioError, match=r"no emission ratio for sector\(s\) \['bio'\].*biosphere emits no CO"):
        co_flux_from_co2({"road": road, "bio": road}, df)


@pytest.mark.parametrize("text, match", [
    ("sector,ratio_mol_per_mol,source\nroad,0.01,x\n",
     r"r.csv: line 1 \(header\): column\(s\) \['sigma_rel'\] missing"),
    ("sector,ratio_mol_per_mol,sigma_rel,source\nroad,abc,0.4,x\n",
     r"r.csv: line 2 \(sector 'road'\): field 'ratio_mol_per_mol' is 'abc', not a number; give mol CO per mol CO2"),
    ("# comment\nsector,ratio_mol_per_mol,sigma_rel,source\nroad,-0.01,0.4,x\n",
     r"r.csv: line 3 \(sector 'road'\): field 'ratio_mol_per_mol' is -0.01, negative"),
    ("sector,ratio_mol_per_mol,sigma_rel,source\nroad,0.01,nan,x\n",
     r"field 'sigma_rel' is 'nan'; give a finite number"),
    ("sector,ratio_mol_per_mol,sigma_rel,source\nroad,0.01,0.4,x\nroad,0.02,0.4,y\n",
     r"line 3: sector 'road' appears twice"),
    ("sector,ratio_mol_per_mol,sigma_rel,source\nroad,0.01\n",
     r"line 2: 2 fields, the header has 4"),
])
def test_bad_tables_name_file_line_and_field(tmp_path, text, match):
    p = tmp_path / "r.csv"
    p.write_text(text)
    with pytest.raises(EmissionRatioError, match=match):
        read_emission_ratios(p)


def test_missing_sector_and_missing_file_are_named(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text(GOOD)
    with pytest.raises(EmissionRatioError, match=r"r.csv: column 'sector' has no row for \['industry', 'residential'\]"):
        read_emission_ratios(p, COMBUSTION)
    with pytest.raises(EmissionRatioError, match=r"nothere.csv: not found.*inputs.emission_ratios_co"):
        read_emission_ratios(tmp_path / "nothere.csv")
