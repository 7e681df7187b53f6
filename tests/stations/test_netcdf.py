"""NOAA ObsPack and ICOS ATC NetCDF files written in their real layouts, read back exactly."""
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import stations
from stations import hourly, netcdf


def obspack_file(path, comment, times, heights, values_molmol, interval=None, species="co2",
                 units="mol mol-1", flags=None):
    """A NOAA ObsPack tower-insitu file: dim obs, time as int seconds, char qcflag, obs_flag."""
    n = len(times)
    t = pd.DatetimeIndex(times)
    secs = ((t - pd.Timestamp("1970-01-01")) // pd.Timedelta(seconds=1)).to_numpy().astype("int32")
    ds = xr.Dataset({
        "time": ("obs", secs, {"units": "seconds since 1970-01-01T00:00:00Z", "comment": comment,
                               "long_name": "sample_time_in_seconds_since_january_1_1970"}),
        "time_components": (("obs", "calendar_components"),
                            np.column_stack([t.year, t.month, t.day, t.hour, t.minute, t.second]).astype("int32")),
        "value": ("obs", np.asarray(values_molmol, "float32"), {"units": units, "_FillValue": np.float32(-1e34)}),
        "value_std_dev": ("obs", np.full(n, 0.1e-6 if units == "mol mol-1" else 0.1, "float32"), {"units": units}),
        "nvalue": ("obs", np.full(n, 20, "int32")),
        "intake_height": ("obs", np.asarray(heights, "float32"), {"units": "m"}),
        "obs_flag": ("obs", np.asarray(flags if flags is not None else np.ones(n), "int8")),
        "qcflag": ("obs", np.array([b"..." if (flags is None or f) else b"A.." for f in
                                    (flags if flags is not None else [1] * n)], "S3")),
        "latitude": ("obs", np.full(n, 22.76, "float32")),
        "longitude": ("obs", np.full(n, 113.56, "float32")),
    }, attrs={"site_code": "NST", "site_latitude": 22.76, "site_longitude": 113.56, "site_elevation": 4.0,
              "dataset_parameter": species, "dataset_calibration_scale": "WMO CO2 X2019",
              "dataset_project": "tower-insitu"})
    if interval is not None:
        ds["time_interval"] = ("obs", np.full(n, interval, "int32"), {"units": "seconds"})
    ds.to_netcdf(path, encoding={"qcflag": {"dtype": "S1"}})
    return path


HOURS = pd.date_range("2025-01-01", periods=6, freq="h")


def test_obspack_two_inlets_time_at_start(tmp_path):
    v220 = 420e-6 + np.arange(6) * 1e-6
    v50 = 430e-6 + np.arange(6) * 1e-6
    times = list(HOURS) + list(HOURS)
    p = obspack_file(tmp_path / "co2_nst_tower-insitu_1_allvalid.nc",
                     "Seconds since 1970-01-01 00:00:00 UTC. Time-averaged values are reported at the "
                     "beginning of the averaging interval.", times, [220.0] * 6 + [50.0] * 6,
                     np.r_[v220, v50], flags=[1, 1, 0, 1, 1, 1] * 2)
    ds = stations.read(p)
    assert ds.attrs["site"] == "NST" and ds.attrs["intake_height"] == 220.0
    assert ds.attrs["format"] == "obspack" and ds.attrs["scale"] == "WMO CO2 X2019"
    assert list(pd.DatetimeIndex(ds["time"].values)) == list(HOURS)
    np.testing.assert_allclose(ds["value"].values, v220 * 1e6, atol=1e-4)       # float32 in the file
    np.testing.assert_allclose(ds["value_std_dev"].values, 0.1, atol=1e-6)
    assert ds["qcflag"].values.tolist() == [0, 0, 1, 0, 0, 0]
    low = stations.read(p, intake_height=50)
    np.testing.assert_allclose(low["value"].values, v50 * 1e6, atol=1e-4)
    with pytest.raises(ValueError, match=r"allvalid.nc: no records with intake_height 100 m; the file has \[50.0, 220.0\]"):
        stations.read(p, intake_height=100)
    with pytest.raises(ValueError, match=r"dataset_parameter = 'co2'.*pass species='co2'"):
        stations.read(p, species="ch4")


@pytest.mark.parametrize("comment, interval, shift_min", [
    ("Time-averaged values are reported at the middle of the averaging interval.", None, 30),
    ("Time-averaged values are reported at the middle of the averaging interval.", 1800, 15),
    ("Time-averaged values are reported at the end of the averaging interval.", 3600, 60),
])
def test_obspack_time_convention_from_comment(tmp_path, comment, interval, shift_min):
    stamps = HOURS + pd.Timedelta(minutes=shift_min)
    p = obspack_file(tmp_path / "co2_nst.nc", comment, stamps, [220.0] * 6, 420e-6 + np.zeros(6),
                     interval=interval)
    ds = stations.read(p)
    assert list(pd.DatetimeIndex(ds["time"].values)) == list(HOURS)


def test_obspack_units_and_other_species(tmp_path):
    p = obspack_file(tmp_path / "ch4_nst.nc", "reported at the beginning", HOURS, [220.0] * 6,
                     1950.0 + np.arange(6), species="ch4", units="nmol mol-1")
    ds = stations.read(p, species="ch4")
    np.testing.assert_allclose(ds["value"].values, 1950.0 + np.arange(6))
    assert ds["value"].attrs["units"] == "ppb"
    with pytest.raises(ValueError, match=r"ch4_nst.nc: global attr dataset_parameter = 'ch4'"):
        stations.read(p)
    q = obspack_file(tmp_path / "co2_ppm.nc", "beginning", HOURS, [220.0] * 6, 420.0 + np.zeros(6), units="ppm")
    np.testing.assert_allclose(stations.read(q)["value"].values, 420.0)
    r = obspack_file(tmp_path / "co2_odd.nc", "beginning", HOURS, [220.0] * 6, np.zeros(6), units="furlongs")
    with pytest.raises(ValueError, match=r"co2_odd.nc: variable 'value' has units 'furlongs'"):
        stations.read(r)
    assert netcdf.unit_factor("umol mol-1", "co2") == pytest.approx(1.0)
    assert netcdf.unit_factor("mol mol-1", "co") == pytest.approx(1e9)


def icos_netcdf(path, heights=(100.0, 30.0)):
    t = np.repeat(HOURS.to_numpy(), len(heights))
    h = np.tile(heights, len(HOURS))
    co2 = 415.0 + np.arange(len(t)) * 0.5
    co2[3] = -999.99
    flag = np.array(["O"] * len(t))
    flag[4] = "N"
    ds = xr.Dataset({"co2": ("time", co2, {"units": "µmol mol-1"}),
                     "Stdev": ("time", np.full(len(t), 0.2)),
                     "NbPoints": ("time", np.full(len(t), 55)),
                     "Flag": ("time", flag.astype("S1")),
                     "SamplingHeight": ("time", h)},
                    coords={"time": t},
                    attrs={"STATION CODE": "TST", "LATITUDE": "53.0657", "LONGITUDE": "11.4429",
                           "ALTITUDE": "70.0 m", "CALIBRATION SCALE": "WMO CO2 X2019"})
    ds.to_netcdf(path)
    return co2


def test_icos_netcdf(tmp_path):
    p = tmp_path / "ICOS_ATC_L2_TST_CO2.nc"
    co2 = icos_netcdf(p)
    ds = stations.read(p)
    assert ds.attrs["format"] == "icos-netcdf" and ds.attrs["site"] == "TST"
    assert ds.attrs["intake_height"] == 100.0 and ds.attrs["elevation"] == 70.0
    exp = co2[0::2].copy()
    exp[exp < 0] = np.nan
    np.testing.assert_allclose(ds["value"].values, exp)
    assert ds["qcflag"].values.tolist() == [0, 0, 1, 0, 0, 0]         # row 4 = 100 m hour 2: N
    low = stations.read(p, intake_height=30)
    assert np.isnan(low["value"].values[1]) and low["qcflag"].values[1] == 1   # -999.99
    with pytest.raises(ValueError, match=r"ICOS_ATC_L2_TST_CO2.nc: no variable 'ch4' \(the file holds \['co2'\]\)"):
        stations.read(p, species="ch4")


def test_site_delivering_one_obspack_file_for_two_inlets(tmp_path, tower):
    d = tmp_path / "NST"
    d.mkdir()
    hours = pd.date_range("2025-01-01", periods=24, freq="h")
    v = np.r_[420 + np.arange(24) * 0.1, 430 + np.arange(24) * 0.1]
    obspack_file(d / "co2_nst_tower-insitu.nc", "reported at the middle of the averaging interval",
                 list(hours + pd.Timedelta(minutes=30)) * 2, [220.0] * 24 + [50.0] * 24, v * 1e-6)
    ing = hourly.process_site_hourly_files(d, tower, period=("2025-01-01", "2025-01-02"))
    np.testing.assert_allclose(ing.hourly[220.0]["value"], v[:24], atol=1e-4)
    np.testing.assert_allclose(ing.hourly[50.0]["value"], v[24:], atol=1e-4)
    assert ing.summary["rows_used"].tolist() == [24, 24]
