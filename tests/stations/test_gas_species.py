"""CH4 and CO from the same raw files (issue 20): CO corrected for water vapour before calibration,
and a species the site's files do not carry stopped with one message naming the site, the file,
the column and the fix."""
import numpy as np
import pandas as pd
import pytest

from stations import picarro
from stations.chain import run_chain
from stations.errors import SpeciesMismatchError
from stations.hourly import ingest

from test_picarro import records


def g2401_file(path, n=200, h2o=2.5, drop=(), water_columns=False):
    """A G2401 DataLog_User file as the analyser writes it (CO wet, in ppm), optionally without some
    columns; ``water_columns``: also ``h2o_reported`` and ``b_h2o_pct``, which the G2401 writes beside
    ``H2O`` (different numbers: the real CFADS2502 file of tests/data/obs has H2O 0.122, h2o_reported
    0.158)."""
    df = records(n)
    rng = np.random.default_rng(7)
    df["CO"] = rng.normal(0.20, 0.01, n)       # ppm, wet
    df["H2O"] = np.linspace(0.5, h2o, n)        # %
    if water_columns:
        df["h2o_reported"] = 1.29 * df["H2O"]
        df["b_h2o_pct"] = 1.05 * df["H2O"]
    else:
        drop = tuple(drop) + ("h2o_reported", "b_h2o_pct")
    text = picarro.format_records(df)
    if drop:
        rows = [ln.split() for ln in text.strip().split("\n")]
        cut = [rows[0].index(c) for c in drop]
        text = "\n".join(" ".join(f for k, f in enumerate(r) if k not in cut) for r in rows) + "\n"
    path.write_text(text)
    return df


def test_co_water_correction_equals_a_hand_computation():
    """RINGO 2018 / Chen et al. 2013 (JJDHooghiem/JJDH_PhD_code src_analysis/lts_pic_config.py):
    CO_wet 200 ppb, h2o_reported 2.0 %, b_h2o_pct 1.6 %: dCO = 2.306·1.6 + 4.405·1.6² − 2.093·1.6³
    + 0.315·1.6⁴ = 8.457856 ppb; CO_dry = (200 − 8.457856) / (1 − 0.0124·2 − 0.0006·4) =
    191.542144 / 0.9728 = 196.8977632 ppb (by hand)."""
    assert picarro.WATER_CORRECTION["co"] == ("CO", -0.0124, -0.0006)
    assert float(picarro.co_water_offset_ppb(1.6)) == pytest.approx(8.457856, abs=1e-9)
    assert float(picarro.co_wet_to_dry(0.200, 2.0, 1.6)) * 1000 == pytest.approx(196.8977632, abs=1e-6)
    # no water: no correction; the inverse (what the demo writes) round-trips
    assert float(picarro.co_wet_to_dry(0.150, 0.0, 0.0)) == 0.150
    h = np.linspace(0, 4, 9)
    np.testing.assert_allclose(picarro.co_wet_to_dry(picarro.co_dry_to_wet(0.12, h, 0.9 * h), h, 0.9 * h), 0.12,
                               rtol=1e-13)


@pytest.mark.parametrize("water_columns", [False, True])
def test_co_is_corrected_for_water_vapour_before_calibration(tmp_path, tower, water_columns):
    """CO_dry = (CO_wet − dCO(b_h2o_pct)) / (1 + a h + b h²), h = h2o_reported (H2O when the file
    has only H2O), for every record, and the chain calibrates the corrected value (its ``raw``, ppb)."""
    p = tmp_path / "CFKADS2001-20250101-040000Z-DataLog_User.dat"
    df = g2401_file(p, water_columns=water_columns)
    rr = picarro.read_raw(p)
    values, corrected, sources = picarro.dry_mole_fraction(rr, "co")
    col, a, b = picarro.WATER_CORRECTION["co"]
    assert col == "CO"
    h = df["h2o_reported" if water_columns else "H2O"].to_numpy()
    hb = df["b_h2o_pct" if water_columns else "H2O"].to_numpy()
    d_ppb = 2.306 * hb + 4.405 * hb ** 2 - 2.093 * hb ** 3 + 0.315 * hb ** 4
    want = (df["CO"].to_numpy() - d_ppb / 1000) / (1.0 + a * h + b * h * h)
    np.testing.assert_allclose(values, want, rtol=1e-7)          # 8 significant digits in the file
    assert corrected.all()
    assert sources == (["CO+H2O (h2o_reported, b_h2o_pct)"] if water_columns else ["CO+H2O"])
    # at 2.5 % H2O the correction exceeds the 2 ppb WMO goal (offset and dilution partly cancel)
    assert abs(want[-1] - df["CO"].iloc[-1]) * 1000 > 2.0
    ch = run_chain(rr, "co", tower)
    np.testing.assert_allclose(ch.raw, want * 1000.0, rtol=1e-7)  # what calibrate() receives, ppb
    # the allow_wet_correction switch (for CO2/CH4 files without a dry column) does not apply to CO
    values2, _, _ = picarro.dry_mole_fraction(rr, "co", allow_wet_correction=False)
    np.testing.assert_allclose(values2, values, rtol=0)


def test_co_without_h2o_stops_naming_file_and_fix(tmp_path):
    p = tmp_path / "CFKADS2001-20250101-040000Z-DataLog_User.dat"
    g2401_file(p, drop=("H2O",))
    rr = picarro.read_raw(p)
    with pytest.raises(SpeciesMismatchError) as err:
        picarro.dry_mole_fraction(rr, "co")
    msg = str(err.value)
    assert p.name in msg and "H2O" in msg and "config species" in msg


def test_species_the_site_files_lack_names_site_file_column_and_fix(tmp_path, tower):
    d = tmp_path / "NST"
    d.mkdir()
    g2401_file(d / "CFKADS2001-20250101-040000Z-DataLog_User.dat", drop=("CO",))   # a G2301: no CO
    with pytest.raises(SpeciesMismatchError) as err:
        ingest(d, tower, species="co")
    msg = str(err.value)
    assert msg.startswith("site NST: config species asks for co")
    assert "CFKADS2001-20250101-040000Z-DataLog_User.dat" in msg and "no CO column" in msg
    assert "leave co out of config species" in msg
    # CH4 from the same file works
    ing = ingest(d, tower, species="ch4")
    assert len(ing.summary) == 1 and ing.summary["records"].iloc[0] == 200


def test_each_gas_is_labelled_with_its_own_calibration_scale(tmp_path, tower):
    """The hourly files of CH4 and CO carried the CO2 scale ("WMO CO2 X2019") of stations.yaml's
    ``calibration.scale``; each gas now gets its own scale from ``calibration.scales``, and a gas
    without one is "unknown", never another gas's scale."""
    from stations.read import read as read_station
    from stations.sites import calibration_scale

    assert calibration_scale(tower, "co2") == "WMO CO2 X2019"
    assert calibration_scale(tower, "ch4") == "WMO CH4 X2004A"
    assert calibration_scale(tower, "co") == "WMO CO X2014A"
    bare = {"calibration": {"scale": "WMO CO2 X2019"}}
    assert calibration_scale(bare, "ch4") == "unknown" and calibration_scale(bare, "co") == "unknown"
    assert calibration_scale({"calibration": {"scale": "NIST"}}, "co") == "NIST"
    assert calibration_scale({}, "co2") == "unknown"
    # through the reader of raw files: the dataset says which scale it is on
    p = tmp_path / "CFKADS2001-20250101-040000Z-DataLog_User.dat"
    g2401_file(p)
    for gas, scale in (("co2", "WMO CO2 X2019"), ("ch4", "WMO CH4 X2004A"), ("co", "WMO CO X2014A")):
        ds = read_station(p, species=gas, site=tower)
        assert ds.attrs["scale"] == scale and ds.attrs["species"] == gas
