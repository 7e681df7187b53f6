"""Station files as networks publish them (tests/data/obs, sources in tests/data/README.md):
read by content, values equal to an independent read, units by meaning, uncertainties carried."""
import logging
import shutil
import zipfile
from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import stations
from stations import hourly_files, picarro
from stations.errors import HeightNotFoundError, SpeciesMismatchError, UnitError
from stations.localtime import check_utc
from stations.read import detect_format
from stations.units import mole_fraction_factor

DATA = Path(__file__).resolve().parents[1] / "data" / "obs"
OBSPACK = DATA / "ch4_bao_tower-insitu_1_ccgg_all_first600.nc"
ICOS = DATA / "ICOS_ATC_L2_L2-2024.1_RGL_90.0_CTS.CH4"
OPENGHG = DATA / "openghg_icos_toh_co2_147m.nc"
G2301 = DATA / "CFADS2502-20210101-235440Z-DataLog_User.dat"


def _obspack_independent(path, height):
    with netCDF4.Dataset(path) as d:
        v = d["value"][:].filled(np.nan).astype(float)
        h = d["intake_height"][:].filled(np.nan)
        q = ["".join(c.decode() for c in row) for row in d["qcflag"][:].filled(b" ")]
        unc = d["value_unc"][:].filled(np.nan).astype(float)
    keep = np.isclose(h, height) & np.array([s[:1] == "." for s in q]) & (v >= 0)
    return v[keep], unc[keep]


def test_obspack_nanomol_and_value_unc():
    ds = stations.read(OBSPACK, species="ch4")
    assert detect_format(OBSPACK) == "hourly" and ds.attrs["format"] == "obspack"
    assert ds.attrs["intake_height"] == 300.0 and ds.attrs["scale"] == "NOAA 2004A CH4"
    ok = ds["qcflag"].values == 0
    ref, unc = _obspack_independent(OBSPACK, 300.0)
    assert ok.sum() == len(ref) > 100
    assert abs(ds["value"].values[ok].mean() - ref.mean()) < 1e-9          # nanomol mol-1 = ppb
    np.testing.assert_allclose(ds["value_unc"].values[ok], unc, rtol=0, atol=1e-9)
    np.testing.assert_allclose(ds["value_std_dev"].values[ok], unc, rtol=0, atol=1e-9)
    assert ds.attrs["value_std_dev_source"] == "value_unc"
    low = stations.read(OBSPACK, species="ch4", intake_height=22.0)
    assert abs(low["value"].values[low["qcflag"].values == 0].mean() - _obspack_independent(OBSPACK, 22.0)[0].mean()) < 1e-9
    with pytest.raises(HeightNotFoundError, match=r"no records with intake_height 50 m; the file has \[22.0, 100.0, 300.0\]"):
        stations.read(OBSPACK, species="ch4", intake_height=50)
    with pytest.raises(SpeciesMismatchError, match="dataset_parameter = 'ch4'"):
        stations.read(OBSPACK)


@pytest.mark.parametrize("units, factor", [("micromol mol-1", 1e3), ("ppm", 1e3), ("mol mol-1", 1e9),
                                            ("1e-9", 1.0), ("nmol mol-1", 1.0), ("ppb", 1.0)])
def test_obspack_units_by_meaning(tmp_path, units, factor):
    p = tmp_path / OBSPACK.name
    shutil.copy(OBSPACK, p)
    with netCDF4.Dataset(p, "a") as d:
        d["value"].units = units
        d["value_unc"].units = units
    ds = stations.read(p, species="ch4")
    ok = ds["qcflag"].values == 0
    ref, unc = _obspack_independent(OBSPACK, 300.0)
    np.testing.assert_allclose(ds["value"].values[ok], ref * factor, rtol=1e-12)
    np.testing.assert_allclose(ds["value_unc"].values[ok], unc * factor, rtol=1e-12)


def test_obspack_time_comment_silent_start_or_middle(tmp_path, caplog):
    p = tmp_path / OBSPACK.name
    shutil.copy(OBSPACK, p)
    with netCDF4.Dataset(p, "a") as d:
        raw = pd.to_datetime(d["time"][:].astype("int64"), unit="s")
        d["time"].comment = "POSIX time."
    ref = stations.read(OBSPACK, species="ch4")          # the real comment: beginning
    assert ref.attrs["time_convention_source"] == "time comment (start)"
    with caplog.at_level(logging.WARNING):
        start = stations.read(p, species="ch4")
    assert "assumed start" in start.attrs["time_convention_source"]
    assert "does not say" in caplog.text
    np.testing.assert_array_equal(start["time"].values, ref["time"].values)
    middle = stations.read(p, species="ch4", time_reference="middle")
    shift = ref["time"].values - middle["time"].values
    assert (shift == np.timedelta64(30, "m")).all()     # hourly data: half an hour earlier
    assert pd.Timestamp(ref["time"].values[0]) == raw.min()


def test_icos_l2_text_named_by_the_carbon_portal(tmp_path):
    assert detect_format(ICOS) == "icos"                 # suffix .CH4: detected from the content
    ds = stations.read(ICOS, species="ch4")
    df = pd.read_csv(ICOS, sep=";", comment=None, skiprows=45, header=None)
    hdr = open(ICOS).read().split("\n")[44].lstrip("#").split(";")
    df.columns = hdr
    ok = (df["Flag"] == "O") & (df["ch4"] >= 0)
    assert (ds["qcflag"].values == 0).sum() == ok.sum() > 10
    assert abs(ds["value"].values[ds["qcflag"].values == 0].mean() - df.loc[ok, "ch4"].mean()) < 1e-9
    assert ds.attrs["scale"] == "530: Unknown; 115: WMO X2004A"     # MEASUREMENT SCALE
    assert ds.attrs["intake_height"] == 90.0 and ds.attrs["site"] == "RGL"
    with pytest.raises(SpeciesMismatchError, match=r"has 'ch4', not 'co2'"):
        stations.read(ICOS)


def test_site_directory_of_icos_files_in_the_pipeline(tmp_path):
    d = tmp_path / "RGL"
    d.mkdir()
    shutil.copy(ICOS, d / ICOS.name)
    (d / "README.txt").write_text("downloaded from the Carbon Portal")
    site = {"id": "RGL", "name": "Ridge Hill", "lon": -2.5399, "lat": 51.9975, "elevation": 207.0,
            "inlets": [{"height": 90.0, "valve": 1}]}
    assert detect_format(d) == "icos"
    ing = hourly_files.process_site_hourly_files(d, site, species="ch4",
                                                 period=("2021-02-26", "2021-02-27"))
    hr = ing.hourly[90.0]
    ref = stations.read(ICOS, species="ch4")
    day = ref.sel(time=slice("2021-02-26", "2021-02-26T23:59"))
    np.testing.assert_allclose(hr["value"].to_numpy(), day["value"].values, rtol=1e-12)
    s = ing.summary.set_index("file")
    assert s.loc["README.txt", "status"] == "not_read"
    from stations.hourly import to_dataset
    out = to_dataset(hr, site, 90.0, "ch4", "site-config scale", info=ing.info)
    assert out.attrs["scale"] == "530: Unknown; 115: WMO X2004A"


def test_openghg_standardised_icos_netcdf():
    ds = stations.read(OPENGHG)
    assert ds.attrs["format"] == "openghg" and ds.attrs["intake_height"] == 147.0
    with netCDF4.Dataset(OPENGHG) as d:
        ref = d["co2"][:].filled(np.nan)
        assert d["co2"].units == "unknown" and d.units == "µmol mol-1"
    assert abs(float(ds["value"].mean()) - np.nanmean(ref)) < 1e-9


def test_picarro_g2301_real_file_and_last_record_without_newline(tmp_path):
    assert detect_format(G2301) == "picarro"
    ds = stations.read(G2301)
    ref = pd.read_csv(G2301, sep=r"\s+")
    assert ds.sizes["time"] == len(ref) == 120
    assert abs(float(ds["value"].mean()) - ref["CO2_dry"].mean()) < 1e-9
    ch4 = stations.read(G2301, species="ch4")
    assert abs(float(ch4["value"].mean()) - 1000 * ref["CH4_dry"].mean()) < 1e-9
    # the analyser's last, complete record written without its newline: read, not "truncated"
    cut = tmp_path / G2301.name
    text = G2301.read_bytes()
    cut.write_bytes(text.rstrip(b"\r\n"))
    assert stations.read(cut).sizes["time"] == 120
    # cut inside the last field: refused, or counted as truncated with on_bad_lines='skip'
    cut.write_bytes(text.rstrip(b"\r\n").rstrip(b" ")[:-4])
    with pytest.raises(picarro.PicarroFormatError, match=r"line 121 is truncated"):
        stations.read(cut)
    rr = picarro.read_raw(cut, on_bad_lines="skip")
    assert int(rr.summary["lines_truncated"].sum()) == 1 and len(rr.records) == 119


def test_picarro_zip_of_h5_names_the_missing_package(tmp_path):
    z = tmp_path / "CFADS2502-20210101-DataLog_User.zip"
    with zipfile.ZipFile(z, "w") as f:
        f.writestr("CFADS2502-20210101-235440Z-DataLog_User.h5", b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    try:
        import h5py  # noqa: F401
    except ImportError:
        with pytest.raises(picarro.PicarroFormatError, match=r"DataLog_User.h5: a Picarro HDF5 .*pip install h5py"):
            stations.read(z)
    else:
        with pytest.raises(OSError):
            stations.read(z)


def test_g2201i_isotopologue_sum(tmp_path):
    """A G2201-i DataLog_User layout (12CO2_dry, 13CO2, HP_12CH4_dry, HP_13CH4; no CO2_dry)."""
    ref = pd.read_csv(G2301, sep=r"\s+")
    rec = pd.DataFrame({"EPOCH_TIME": ref["EPOCH_TIME"], "ALARM_STATUS": 0, "CavityPressure": 148.0,
                        "CavityTemp": 45.0, "MPVPosition": 0.0, "12CO2": ref["CO2"] * 0.989,
                        "12CO2_dry": ref["CO2_dry"] * 0.989, "13CO2": ref["CO2_dry"] * 0.011,
                        "HP_12CH4_dry": ref["CH4_dry"] * 0.989, "HP_13CH4": ref["CH4_dry"] * 0.011,
                        "H2O": ref["H2O"]})
    t = pd.to_datetime(np.round(rec["EPOCH_TIME"] * 1000).astype("int64"), unit="ms")
    cols = {"DATE": t.dt.strftime("%Y-%m-%d"), "TIME": t.dt.strftime("%H:%M:%S.%f").str[:-3]}
    cols.update({c: rec[c].map(lambda x: f"{x:.10E}") for c in rec})
    p = tmp_path / "CFIDS2089-20210101-235440Z-DataLog_User.dat"
    lines = [" ".join(c.ljust(25) for c in cols)] + \
        [" ".join(str(v).ljust(25) for v in row) for row in zip(*cols.values())]
    p.write_text("\n".join(lines) + "\n")
    ds = stations.read(p)
    np.testing.assert_allclose(ds["value"].values, ref["CO2_dry"].to_numpy(), rtol=1e-9)
    assert ds.attrs["dry_source"] == "12CO2_dry+13CO2"
    np.testing.assert_allclose(stations.read(p, species="ch4")["value"].values,
                               1000 * ref["CH4_dry"].to_numpy(), rtol=1e-9)


@pytest.mark.parametrize("text, value", [
    ("mol mol-1", 1.0), ("micromol mol-1", 1e-6), ("nanomol mol-1", 1e-9), ("nmol mol-1", 1e-9),
    ("ppm", 1e-6), ("ppb", 1e-9), ("1e-6", 1e-6), ("1e-9", 1e-9), ("µmol.mol-¹", 1e-6),
    ("nmol.mol-¹", 1e-9), ("umol/mol", 1e-6), ("mol/mol", 1.0), ("nmol mol^-1", 1e-9),
    ("parts per billion", 1e-9), ("pmol mol-1", 1e-12)])
def test_unit_spellings(text, value):
    assert mole_fraction_factor(text) == pytest.approx(value, rel=1e-15)


@pytest.mark.parametrize("text", ["mol m-3", "kg m-2 s-1", "mol", "furlongs", ""])
def test_units_that_are_not_mole_fractions(text):
    with pytest.raises(UnitError):
        mole_fraction_factor(text)


def _diurnal(times_utc, offset=8):
    local_hour = (pd.DatetimeIndex(times_utc).hour + offset) % 24
    return 420 + 15 * np.cos(2 * np.pi * (local_hour - 3) / 24)     # maximum 03 h, minimum 15 h local


def test_times_in_local_time_warned(caplog):
    t = pd.date_range("2025-01-01", periods=24 * 10, freq="h")
    utc = xr.Dataset({"value": ("time", _diurnal(t)), "qcflag": ("time", np.zeros(len(t), int))},
                     coords={"time": t}, attrs={"lon": 113.3})
    assert check_utc(utc, "co2", "utc.csv") is None
    local = utc.assign_coords(time=t + pd.Timedelta(hours=8))     # the same air, stamped in local time
    with caplog.at_level(logging.WARNING):
        msg = check_utc(local, "co2", "local.csv")
    assert msg is not None and "look like local time" in msg and "local.csv" in caplog.text
    assert local.attrs["time_check"] == msg
