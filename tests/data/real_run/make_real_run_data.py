"""Make the input files of config/examples/real_run_tac.yaml (tests/data/real_run/) from openghg's
public test data: how every file here was made, so that it can be checked and re-made.

    git clone https://github.com/openghg/openghg && git -C openghg checkout 24520f5a7
    python tests/data/real_run/make_real_run_data.py openghg/tests/data

Sources (openghg commit 24520f5a7, Apache-2.0 repository; data of the UK DECC network):
- ``footprints/TAC-100magl_UKV_co2_TEST_201407.nc``: NAME (UKV met) footprints of the Tacolneston
  100 m inlet, hourly releases 2014-07-01 00:00 .. 2014-07-04 00:00, ``fp(lat, lon, time)``
  integrated over the back period and ``fp_HiTRes`` (all zero at odd release hours in this test
  file). Cut to the releases 2014-07-01 12:00 .. 15:00 UTC, ``fp_HiTRes``/``H_back`` and the
  ``mean_age_particles_*`` variables dropped (``fp`` is complete at every hour); every kept
  variable, value and attribute unchanged; written with xarray (zlib 4).
- ``proc_test_data/CRDS/tac.picarro.1minute.100m.201407.dat``: the DECC network's processed
  1-minute CRDS file of Tacolneston 100 m, July 2014 (date, time, type, port, then C, stdev, N per
  gas). The CO2 minutes of 2014-06-30 and 2014-07-01 (``air`` lines with a value) are averaged to
  hours and written in the layout of a NOAA ObsPack tower-insitu file (as
  tests/data/obs/ch4_bao_tower-insitu_1_ccgg_all_first600.nc, a real one, is laid out):
  ``value``/``value_std_dev`` in ``mol mol-1``, ``nvalue`` (minutes in the hour), ``time`` at the
  start of the hour (the ObsPack comment says so), ``intake_height``, ``qcflag`` ``...``, site
  attributes. Values: the mean of the hour's minute values; ``value_std_dev`` their standard
  deviation (ddof=1). The source does not state the calibration scale: ``unknown``.

Written here, not from a public source (the example's other inputs; docs/real_data.md):
- ``regions.geojson``: two rectangles splitting the example's grid at 1.5° E, ``West`` and
  ``East`` (not administrative boundaries; the pipeline's districts file format).
- ``plants.csv``: one plant, Great Yarmouth CCGT (420 MW, gas, at its published site 52.584 N,
  1.731 E, typical CCGT intensity 0.37 t/MWh), in the registry format of docs/power.md.
- ``generation.csv``/``load.csv``: assumed hourly values (no public hourly plant generation and
  regional load for these hours were found): the plant at 300 MWh every hour, 350 MWh load per
  region, for every hour of 2014-06-30 and 2014-07-01.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd
import xarray as xr

HERE = Path(__file__).resolve().parent
SITE = {"code": "TAC", "name": "Tacolneston, Norfolk", "lat": 52.518, "lon": 1.139, "elev": 64.0,
        "inlet": 100.0}
DAYS = ("2014-06-30", "2014-07-01")
RELEASES = ("2014-07-01T12:00", "2014-07-01T15:00")
TIME_COMMENT = ("POSIX time.  Number of seconds since January 1, 1970 in UTC. Time-averaged "
                "values are reported at the beginning of the averaging interval.")


def cut_footprints(src: Path, out: Path) -> None:
    with xr.open_dataset(src) as ds:
        one = ds.sel(time=slice(*RELEASES)).drop_vars(
            ["fp_HiTRes", *[v for v in ds.data_vars if v.startswith("mean_age_particles")]])
        one = one.drop_dims("H_back").load()
    enc = {v: {"zlib": True, "complevel": 4} for v in one.data_vars if one[v].dtype.kind == "f"}
    one.to_netcdf(out, encoding=enc)


def crds_minutes(src: Path) -> pd.DataFrame:
    """The CO2 columns of a DECC CRDS 1-minute file (three header lines)."""
    cols = ["date", "time", "type", "port", "ch4", "ch4_sd", "ch4_n", "co2", "co2_sd", "co2_n"]
    df = pd.read_csv(src, sep=r"\s+", skiprows=3, names=cols, dtype={"date": str, "time": str})
    df["t"] = pd.to_datetime(df["date"] + df["time"], format="%y%m%d%H%M%S")
    return df[(df["type"] == "air") & df["co2"].notna()]


def hourly(minutes: pd.DataFrame) -> pd.DataFrame:
    m = minutes[(minutes["t"] >= DAYS[0]) & (minutes["t"] < pd.Timestamp(DAYS[1]) + pd.Timedelta("1D"))]
    g = m.groupby(m["t"].dt.floor("h"))["co2"]
    return pd.DataFrame({"value": g.mean(), "std": g.std(ddof=1), "n": g.count()})


def write_obspack(h: pd.DataFrame, out: Path) -> None:
    n = len(h)
    secs = ((h.index - pd.Timestamp("1970-01-01")) // pd.Timedelta("1s")).to_numpy()
    with netCDF4.Dataset(out, "w", format="NETCDF4") as nc:
        nc.createDimension("obs", n)
        nc.createDimension("calendar_components", 6)
        nc.createDimension("string_of_10chars", 10)
        nc.setncatts({
            "site_code": SITE["code"], "site_name": SITE["name"], "site_country": "United Kingdom",
            "site_latitude": SITE["lat"], "site_longitude": SITE["lon"],
            "site_elevation": SITE["elev"], "site_elevation_unit": "masl", "site_utc2lst": 0.0,
            "dataset_name": "co2_tac_tower-insitu_100magl", "dataset_parameter": "co2",
            "dataset_project": "tower-insitu", "dataset_platform": "fixed",
            "dataset_calibration_scale": "unknown",
            "dataset_data_frequency": "1", "dataset_data_frequency_unit": "hour",
            "dataset_start_date": f"{DAYS[0]}T00:00:00Z", "Conventions": "CF-1.6",
            "source": "tower-insitu", "title": "co2_tac_tower-insitu_100magl",
            "history": "hourly means of openghg tests/data/proc_test_data/CRDS/"
                       "tac.picarro.1minute.100m.201407.dat (commit 24520f5a7) by "
                       "tests/data/real_run/make_real_run_data.py",
        })
        t = nc.createVariable("time", "i4", ("obs",))
        t.setncatts({"long_name": "sample_time_in_seconds_since_january_1_1970",
                     "units": "seconds since 1970-01-01T00:00:00Z", "comment": TIME_COMMENT})
        t[:] = secs
        tc = nc.createVariable("time_components", "i4", ("obs", "calendar_components"), fill_value=-9)
        tc.setncatts({"long_name": "integer_components_of_UTC_date/time",
                      "order": "year, month, day, hour, minute, second"})
        tc[:] = np.array([[x.year, x.month, x.day, x.hour, 0, 0] for x in h.index], np.int32)
        for name, data, long in (
                ("value", h["value"].to_numpy() * 1e-6, "measured_mole_fraction_of_trace_gas_in_dry_air"),
                ("value_std_dev", h["std"].to_numpy() * 1e-6, "standard_deviation_in_reported_value")):
            v = nc.createVariable(name, "f4", ("obs",), fill_value=np.float32(-999.999))
            v.setncatts({"long_name": long, "units": "mol mol-1"})
            v[:] = np.where(np.isfinite(data), data, -999.999)
        nv = nc.createVariable("nvalue", "i4", ("obs",), fill_value=np.int32(-9))
        nv.setncatts({"long_name": "number_of_measurements_contributing_to_reported_value"})
        nv[:] = h["n"].to_numpy()
        for name, val, units, long in (
                ("latitude", SITE["lat"], "degrees_north", "sample_latitude_in_decimal_degrees"),
                ("longitude", SITE["lon"], "degrees_east", "sample_longitude_in_decimal_degrees"),
                ("altitude", SITE["elev"] + SITE["inlet"], "m", "sample_altitude_in_meters_above_sea_level"),
                ("elevation", SITE["elev"], "m", "surface_elevation_in_meters_above_sea_level"),
                ("intake_height", SITE["inlet"], "m", "sample_intake_height_in_meters_above_ground_level")):
            v = nc.createVariable(name, "f4", ("obs",), fill_value=np.float32(-999.999))
            v.setncatts({"long_name": long, "units": units})
            v[:] = np.full(n, val, np.float32)
        q = nc.createVariable("qcflag", "S1", ("obs", "string_of_10chars"), fill_value=b"N")
        q.setncatts({"long_name": "quality_control_flag",
                     "comment": "NOAA 3-character quality control flag; '...' = valid"})
        flags = np.full((n, 10), b"", dtype="S1")
        flags[:, :3] = b"."
        q[:] = flags
        on = nc.createVariable("obs_num", "i4", ("obs",))
        on[:] = np.arange(1, n + 1)


def write_power(out: Path) -> None:
    hours = pd.date_range(DAYS[0], periods=48, freq="h")
    iso = [t.strftime("%Y-%m-%dT%H:%M:%S") for t in hours]
    pd.DataFrame({"time": iso, "plant_id": "GYA", "generation_mwh": 300.0}).to_csv(
        out / "generation.csv", index=False)
    pd.DataFrame([(t, r, 350.0) for t in iso for r in ("West", "East")],
                 columns=["time", "district", "load_mwh"]).to_csv(out / "load.csv", index=False)
    (out / "plants.csv").write_text(
        "# One plant of the example's domain (docs/real_data.md): Great Yarmouth CCGT, 420 MW, gas;\n"
        "# published site (approx. coordinates of the South Denes plant), typical CCGT intensity.\n"
        "plant_id,name,name_zh,district,lon,lat,location_quality,fuel,units,capacity_mw,"
        "intensity_t_per_mwh,heat_rate_gj_per_mwh,fuel_ef_t_per_gj,status,confidence,source,note\n"
        "GYA,Great Yarmouth,,East,1.731,52.584,approximate,gas,1x420,420,0.37,,,operating,"
        "approximate,public plant lists,example input\n")
    regions = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"adcode": k + 1, "name": name, "name_en": name},
         "geometry": {"type": "Polygon", "coordinates": [[[x0, 51.0], [x1, 51.0], [x1, 54.0],
                                                          [x0, 54.0], [x0, 51.0]]]}}
        for k, (name, x0, x1) in enumerate((("West", -0.5, 1.5), ("East", 1.5, 3.5)))]}
    (out / "regions.geojson").write_text(json.dumps(regions, indent=1) + "\n")


def main(openghg_data: Path) -> None:
    (HERE / "footprints").mkdir(exist_ok=True)
    (HERE / "obs" / "TAC").mkdir(parents=True, exist_ok=True)
    cut_footprints(openghg_data / "footprints" / "TAC-100magl_UKV_co2_TEST_201407.nc",
                   HERE / "footprints" / "TAC-100magl_UKV_co2_TEST_20140701_12-15h.nc")
    h = hourly(crds_minutes(openghg_data / "proc_test_data" / "CRDS" / "tac.picarro.1minute.100m.201407.dat"))
    write_obspack(h, HERE / "obs" / "TAC" / "co2_tac_tower-insitu_100magl_20140630-20140701.nc")
    write_power(HERE)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
