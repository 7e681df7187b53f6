"""Writes the two small boundary-field files of this folder (run from the repository root:
``python tests/data/boundary/make_boundary_files.py``); tests/transport/test_boundary.py reads them
and compares with :func:`linear_co2_ppm`, the analytic field they hold.

* ``CT2022.molefrac_glb3x2_2025-01-02.nc``: CarbonTracker CT2022/CT-NRT co2_total layout (names,
  dims, units as CT's files and X-STILT's CT-NRT reader use them: ``co2(time, level, latitude,
  longitude)`` micromol mol-1 on 25 levels, ``gph``/``pressure`` on 26 ``boundary`` edges,
  ``orography``, ``time_components``, ``decimal_date``; time = centres of the 3-hour means,
  days since 2000-01-01), 4 x 3 cells of CT's 3°x2° grid over the delta.
* ``cams_egg4_model_levels_2025-01-02.nc``: CAMS (MARS/ADS netCDF) layout as in the real header of
  a GEMS/CAMS CO2 file (``co2(time, levelist, latitude, longitude)`` double ``kg kg**-1``, ``time``
  int ``hours since 1900-01-01 00:00:0.0``, ``levelist`` int model_level_number from the top,
  latitude descending, longitude 0-360) plus the geopotential ``z`` (m**2 s**-2) on the same levels
  and the surface geopotential ``z_sfc``.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
M_AIR, M_CO2, G0 = 28.9647, 44.0095, 9.80665
T0 = pd.Timestamp("2025-01-02")


def linear_co2_ppm(lon, lat, height_m, hours) -> np.ndarray:
    """The analytic field (ppm): linear in lon, lat, height above ground (m) and time (hours
    since 2025-01-02 00 UTC)."""
    return (420.0 + 0.3 * (np.asarray(lon) - 113.0) - 0.5 * (np.asarray(lat) - 23.0)
            - 0.0008 * np.asarray(height_m) + 0.05 * np.asarray(hours))


def hours_since_t0(times) -> np.ndarray:
    return ((pd.DatetimeIndex(times) - T0) / pd.Timedelta(hours=1)).to_numpy()


def terrain(lon2d, lat2d):
    """Ground height (m): varies by cell, so the columns' heights differ."""
    return 50.0 + 20.0 * (lon2d - 108) + 15.0 * (lat2d - 20)


def write_ct(path: Path) -> None:
    sys.path.insert(0, str(HERE.parents[2]))
    from gzcarbon.demo.boundary import BOUNDARIES_M, ct_dataset, ct_encoding

    lon = np.array([109.5, 112.5, 115.5, 118.5])
    lat = np.array([21.0, 23.0, 25.0])
    times = pd.DatetimeIndex([T0 + pd.Timedelta(hours=1.5 + 3 * k) for k in range(8)])
    lon2d, lat2d = np.meshgrid(lon, lat)
    ground = terrain(lon2d, lat2d)
    # edges above ground stretched a little with time, so heights differ in time too
    stretch = 1.0 + 0.01 * np.arange(8)
    gph = ground[None, None] + BOUNDARIES_M[None, :, None, None] * stretch[:, None, None, None]
    mid = 0.5 * (gph[:, 1:] + gph[:, :-1]) - ground[None, None]
    co2 = linear_co2_ppm(lon2d[None, None], lat2d[None, None], mid, hours_since_t0(times)[:, None, None, None])
    ds = ct_dataset(times, lon, lat, co2, gph, ground)
    ds.attrs["history"] = "tests/data/boundary/make_boundary_files.py: analytic field in CT2022 layout"
    ds.to_netcdf(path, encoding=ct_encoding())


def write_cams(path: Path) -> None:
    import xarray as xr

    lat = np.array([27.0, 25.0, 23.0, 21.0, 19.0], np.float32)  # descending, as MARS writes
    lon = np.array([108.0, 111.0, 114.0, 117.0, 120.0], np.float32)
    levelist = np.arange(1, 11, dtype=np.int32)  # model levels counted from the top
    times = pd.DatetimeIndex([T0 + pd.Timedelta(hours=3 * k) for k in range(8)])
    lon2d, lat2d = np.meshgrid(lon.astype(float), lat.astype(float))
    ground = terrain(lon2d, lat2d)
    above = np.linspace(9000.0, 30.0, len(levelist))  # top level first
    hgt = above[None, :, None, None] * (1 + 0.02 * np.arange(8))[:, None, None, None] + 0 * ground
    co2 = linear_co2_ppm(lon2d[None, None], lat2d[None, None], hgt, hours_since_t0(times)[:, None, None, None])
    w = co2 * 1e-6 * M_CO2 / M_AIR
    hours = ((times - pd.Timestamp("1900-01-01")) / pd.Timedelta(hours=1)).astype(np.int32)
    ds = xr.Dataset(
        {"co2": (("time", "levelist", "latitude", "longitude"), w, {"long_name": "Carbon Dioxide", "units": "kg kg**-1"}),
         "z": (("time", "levelist", "latitude", "longitude"), (hgt + ground[None, None]) * G0,
               {"long_name": "Geopotential", "units": "m**2 s**-2", "standard_name": "geopotential"}),
         "z_sfc": (("latitude", "longitude"), ground * G0, {"long_name": "Surface geopotential", "units": "m**2 s**-2"})},
        coords={"time": ("time", hours.values, {"axis": "T", "units": "hours since 1900-01-01 00:00:0.0",
                                                "standard_name": "time", "long_name": "time", "calendar": "standard"}),
                "levelist": ("levelist", levelist, {"long_name": "model_level_number"}),
                "latitude": ("latitude", lat, {"axis": "Y", "units": "degrees_north", "standard_name": "latitude",
                                               "long_name": "latitude"}),
                "longitude": ("longitude", lon, {"axis": "X", "units": "degrees_east", "standard_name": "longitude",
                                                 "long_name": "longitude"})},
        attrs={"Conventions": "CF-1.0", "history": "tests/data/boundary/make_boundary_files.py: analytic field in "
               "the MARS/ADS netCDF layout of CAMS CO2 (mars2netcdf)"})
    ds.to_netcdf(path, encoding={"time": {"dtype": "int32"}})


if __name__ == "__main__":
    write_ct(HERE / "CT2022.molefrac_glb3x2_2025-01-02.nc")
    write_cams(HERE / "cams_egg4_model_levels_2025-01-02.nc")
