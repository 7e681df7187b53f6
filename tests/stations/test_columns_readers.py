"""Column readers: OCO Lite (layout-exact file) and real PROFFAST comb_invparms files (EM27/SUN)."""
import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from netCDF4 import Dataset

from stations.columns import ColumnFileError, read_columns, read_oco_lite, read_proffast
from gzcarbon.demo.columns import proffast_text

DATA = Path(__file__).resolve().parents[1] / "data" / "columns"
OCO = DATA / "oco2_LtCO2_250101_B11100Ar_gzcarbon.nc4"
PROFFAST_24 = DATA / "comb_invparms_so_SN039_170609-170609.csv"
PROFFAST_22 = DATA / "comb_invparms_so_SN039_170609-170609_proffast22.csv"


def test_oco_lite_equals_an_independent_read():
    s = read_oco_lite(OCO)
    with Dataset(OCO) as ds:
        ds.set_auto_mask(False)
        xco2 = ds["xco2"][:].astype(float)
        ak = ds["xco2_averaging_kernel"][:].astype(float)
        pw = ds["pressure_weight"][:].astype(float)
        pres = ds["pressure_levels"][:].astype(float)
        prior = ds["co2_profile_apriori"][:].astype(float)
        psurf = ds["Retrieval"]["psurf"][:].astype(float)
        flag = ds["xco2_quality_flag"][:]
        secs = ds["time"][:]
        ids = ds["sounding_id"][:]
    assert len(s) == 8 and s.kind == "satellite" and s.units == "ppm"
    ok = xco2 > -999998
    np.testing.assert_array_equal(s.table["value"].to_numpy()[ok], xco2[ok])
    assert np.isnan(s.table["value"].to_numpy()[~ok]).all()
    # surface first: the product's level 20 (last) is the reader's level 0
    np.testing.assert_array_equal(s.ak, ak[:, ::-1])
    np.testing.assert_array_equal(s.pressure_weight, pw[:, ::-1])
    np.testing.assert_array_equal(s.pressure, pres[:, ::-1])
    np.testing.assert_array_equal(s.prior, prior[:, ::-1])
    np.testing.assert_array_equal(s.table["surface_pressure"].to_numpy(), psurf)
    assert (s.pressure[:, 0] > s.pressure[:, -1]).all()
    np.testing.assert_allclose(s.pressure_weight.sum(axis=1), 1.0, atol=1e-6)
    expected_t = pd.Timestamp("1970-01-01") + pd.to_timedelta(np.round(secs * 1e3), unit="ms")
    assert (pd.DatetimeIndex(s.table["time"]) == expected_t).all()
    assert list(s.table["sounding_id"]) == [str(i) for i in ids]
    # good = flag 0 and no fill: sounding 3 (fill) and 5 (flag 1) are not
    assert list(np.flatnonzero(~s.table["good"].to_numpy())) == [3, 5]
    assert list(flag) == [0, 0, 0, 0, 0, 1, 0, 0]
    # by content, and a box selection
    assert len(read_columns(OCO)) == 8
    box = read_oco_lite(OCO, lon_range=(113.0, 114.0), lat_range=(23.0, 23.1))
    assert list(box.table["lat"].round(3)) == [23.05, 23.07, 23.09]
    assert box.has_kernels


def _copy_without(src: Path, dst: Path, drop: str) -> None:
    with Dataset(src) as s, Dataset(dst, "w", format="NETCDF4") as d:
        for name, dim in s.dimensions.items():
            d.createDimension(name, len(dim))
        for name, v in s.variables.items():
            if name == drop:
                continue
            out = d.createVariable(name, v.dtype, v.dimensions)
            out[:] = v[:]


def test_oco_file_without_averaging_kernel_is_a_clear_error(tmp_path):
    bad = tmp_path / "oco2_LtCO2_250101_noak.nc4"
    _copy_without(OCO, bad, "xco2_averaging_kernel")
    with pytest.raises(ColumnFileError) as e:
        read_oco_lite(bad)
    msg = str(e.value)
    assert str(bad) in msg and "xco2_averaging_kernel" in msg and "averaging kernel" in msg


def _independent(path: Path) -> dict:
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh, skipinitialspace=True))
    head = [h.strip() for h in rows[0]]
    return {h: [r[i] for r in rows[1:]] for i, h in enumerate(head)}


@pytest.mark.parametrize("path", [PROFFAST_24, PROFFAST_22], ids=["proffast2.4.1", "proffast2.2"])
def test_proffast_equals_an_independent_read(path):
    ref = _independent(path)
    for gas, col, factor in (("co2", "XCO2", 1.0), ("ch4", "XCH4", 1000.0), ("co", "XCO", 1000.0)):
        s = read_proffast(path, gas)
        assert len(s) == len(ref["UTC"]) == 12 and s.kind == "ground" and not s.has_kernels
        np.testing.assert_allclose(s.table["value"], [float(v) * factor for v in ref[col]],
                                   rtol=1e-12)
    assert s.units == "ppb"
    np.testing.assert_array_equal(s.table["lat"], [float(v) for v in ref["latdeg"]])
    np.testing.assert_array_equal(s.table["surface_pressure"], [float(v) for v in ref["gndP"]])
    assert (s.table["time"] == pd.to_datetime(ref["UTC"])).all()
    # the Sodankylä site of the real file: 67.366 N, 26.63 E, 181 m; XCO2 about 405 ppm
    assert s.table["lat"].iloc[0] == 67.366 and s.table["surface_altitude"].iloc[0] == 181.0
    co2 = read_proffast(path, "co2").table["value"]
    assert 404 < co2.min() and co2.max() < 407


def test_proffast_has_no_kernels_and_says_so():
    s = read_proffast(PROFFAST_22, "co2")
    with pytest.raises(ColumnFileError) as e:
        s.require_kernels()
    assert str(PROFFAST_22) in str(e.value) and "averaging kernel" in str(e.value)


def test_proffast_missing_field_and_unretrieved_gas(tmp_path):
    text = PROFFAST_22.read_text().splitlines()
    bad = tmp_path / "comb_invparms_xx_SN001_250101-250101.csv"
    bad.write_text("\n".join([text[0].replace("gndP", "pressure")] + text[1:]) + "\n")
    with pytest.raises(ColumnFileError, match=r"field 'gndP'"):
        read_proffast(bad)
    # PROFFAST writes 0 for a gas it did not retrieve: not good
    head = [h.strip() for h in text[0].split(",")]
    k = head.index("XCO")
    rows = [r.split(",") for r in text[1:]]
    rows[0][k] = " 0.00000e+00"
    zero = tmp_path / "comb_invparms_xx_SN001_250102-250102.csv"
    zero.write_text("\n".join([text[0]] + [",".join(r) for r in rows]) + "\n")
    s = read_proffast(zero, "co")
    assert list(s.table["good"]) == [False] + [True] * 11


def test_demo_proffast_writer_round_trips(tmp_path):
    rows = pd.DataFrame(dict(time=pd.to_datetime(["2025-01-01 04:10:00", "2025-01-01 04:20:00"]),
                             lon=113.3245, lat=23.1291, altitude=35.0, pressure=[1011.2, 1011.0],
                             sza=[52.31, 50.9], xco2=[421.23456, 422.5], xch4=[1985.4321, 1990.1],
                             xco=[123.4567, 130.2]))
    path = tmp_path / "comb_invparms_gz_SN001_250101-250101.csv"
    path.write_text(proffast_text(rows))
    for gas, col in (("co2", "xco2"), ("ch4", "xch4"), ("co", "xco")):
        s = read_proffast(path, gas)
        np.testing.assert_allclose(s.table["value"], rows[col], rtol=1e-5)
    assert (s.table["time"] == rows["time"]).all()
    np.testing.assert_allclose(s.table["surface_pressure"], rows["pressure"])
