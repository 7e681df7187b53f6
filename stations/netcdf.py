"""NetCDF station files: our hourly files, NOAA ObsPack files and ICOS ATC NetCDF files.

All are returned with dim ``time`` = START of the averaging window (UTC, naive), ``value`` in ppm
(CO2) or ppb (CH4, CO), ``value_std_dev``, ``nvalue``, ``qcflag`` (0 = valid, 1 = flagged by the
source) and attrs ``site, lon, lat, intake_height, elevation, scale`` where the file has them.

NOAA ObsPack (``co2_xxx_tower-insitu_*.nc``, ``..._surface-insitu_...``)
    dim ``obs``; ``time(obs)`` seconds since 1970-01-01 UTC whose ``comment`` says where in the
    averaging window the stamp lies: "... reported at the beginning of the averaging interval"
    (older releases) or "... at the middle ..." (newer); ``start_time`` / ``midpoint_time`` are
    used directly when present. The window length: variable ``time_interval`` or
    ``averaging_interval`` (s), else global attr ``dataset_averaging_interval`` (s), else the
    median spacing of the stamps (hourly data: 3600 s). ``value`` in the unit its ``units`` attr
    names (``mol mol-1``, ``ppm``/``umol mol-1``, ``ppb``/``nmol mol-1``). Several inlets can share
    one file: ``intake_height(obs)``; one inlet is returned (``intake_height=``, default the top).
    ``obs_flag(obs)`` 1 = valid (0 -> qcflag 1); without it, the first character of the
    ``qcflag(obs, 3)`` strings ``.`` = valid. ``site_code``, ``site_latitude``,
    ``site_longitude``, ``site_elevation``, ``dataset_parameter``, ``dataset_calibration_scale``
    global attrs.

ICOS ATC NetCDF
    the ATC L2 columns as variables on dim ``time`` (or ``TIMESTAMP``): the species (``co2``,
    ``ch4``, ``co``, units attr, default µmol mol-1 / nmol mol-1), ``Stdev``, ``NbPoints``,
    ``Flag`` (``O`` = valid; characters or bytes), optional ``SamplingHeight``; time = start of the
    hour; global attrs ``station_code``/``STATION CODE``, ``latitude``, ``longitude``,
    ``altitude``, ``sampling_height``. Negative values (-999.99) = missing.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

UNITS = {"co2": "ppm", "ch4": "ppb", "co": "ppb"}
#: factor from a unit string (spaces removed, lower case) to mol mol-1
_UNIT_TO_MOLMOL = {
    "molmol-1": 1.0, "mol/mol": 1.0, "mol.mol-1": 1.0, "molmol^-1": 1.0, "1": 1.0,
    "ppm": 1e-6, "umolmol-1": 1e-6, "µmolmol-1": 1e-6, "μmolmol-1": 1e-6, "umol/mol": 1e-6,
    "µmol/mol": 1e-6, "micromol/mol": 1e-6, "micromolmol-1": 1e-6, "1e-6": 1e-6,
    "ppb": 1e-9, "nmolmol-1": 1e-9, "nmol/mol": 1e-9, "1e-9": 1e-9,
    "ppt": 1e-12, "pmolmol-1": 1e-12, "pmol/mol": 1e-12,
}
_OUT_FACTOR = {"co2": 1e6, "ch4": 1e9, "co": 1e9}


class StationFileError(ValueError):
    """A station file cannot be read; the message names the file, the field and the fix."""


def unit_factor(units: str, species: str, where: str = "", field: str = "value") -> float:
    """Factor converting values in ``units`` to ppm (CO2) / ppb (CH4, CO)."""
    key = re.sub(r"\s+", "", str(units)).lower().replace("**", "^")
    if key not in _UNIT_TO_MOLMOL:
        raise StationFileError(f"{where}: variable {field!r} has units {units!r}, which this reader "
                               f"does not know; use one of mol mol-1, ppm, umol mol-1, ppb, nmol mol-1")
    return _UNIT_TO_MOLMOL[key] * _OUT_FACTOR[species]


def time_convention(comment: str) -> str:
    """``start``, ``middle`` or ``end`` from an ObsPack ``time`` comment (default ``start``)."""
    c = (comment or "").lower()
    m = re.search(r"reported at the (beginning|start|middle|center|centre|mid-?point|end)", c)
    word = m.group(1) if m else ("middle" if "midpoint" in c or "middle" in c else "start")
    return {"beginning": "start", "start": "start", "end": "end"}.get(word, "middle")


def _decode_chars(a) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype.kind == "S" and a.ndim == 2:
        a = np.array([b"".join(r) for r in a])
    if a.dtype.kind in ("S", "O"):
        a = np.array([x.decode() if isinstance(x, bytes) else str(x) for x in a])
    return a.astype(str)


def _interval_seconds(ds, t: np.ndarray, where: str) -> np.ndarray:
    for v in ("time_interval", "averaging_interval"):
        if v in ds:
            x = ds[v].values
            if np.issubdtype(x.dtype, np.timedelta64):
                return x.astype("timedelta64[ms]").astype(float) / 1000.0
            return np.asarray(x, float)
    if "dataset_averaging_interval" in ds.attrs:
        return np.full(len(t), float(ds.attrs["dataset_averaging_interval"]))
    if len(t) < 2:
        raise StationFileError(f"{where}: one record and no averaging interval (variable "
                               "time_interval or attr dataset_averaging_interval): cannot place it")
    d = np.diff(np.sort(t)).astype("timedelta64[ms]").astype(float) / 1000.0
    d = d[d > 0]
    return np.full(len(t), float(np.median(d)) if len(d) else 3600.0)


def is_obspack(ds: xr.Dataset) -> bool:
    return "value" in ds and "obs" in ds["value"].dims


def read_obspack(path, species: str = "co2", intake_height: float | None = None) -> xr.Dataset:
    """One inlet of a NOAA ObsPack file (see module doc)."""
    where = str(path)
    with xr.open_dataset(path, decode_times=True) as d:
        ds = d.load()
    fsp = str(ds.attrs.get("dataset_parameter", species)).lower()
    if fsp in UNITS and fsp != species:
        raise StationFileError(f"{where}: global attr dataset_parameter = {fsp!r}: the file holds "
                               f"{fsp}, not {species}; pass species={fsp!r} or give the {species} file")
    if "time" not in ds:
        raise StationFileError(f"{where}: no variable 'time'; not an ObsPack file")
    n = ds.sizes["obs"]
    conv = time_convention(ds["time"].attrs.get("comment", ""))
    if "start_time" in ds:
        start = ds["start_time"].values.astype("datetime64[ns]")
        conv = "start_time variable"
    else:
        base = ds["midpoint_time"] if "midpoint_time" in ds else ds["time"]
        if "midpoint_time" in ds:
            conv = "middle"
        t = base.values.astype("datetime64[ns]")
        if conv == "start":
            start = t
        else:
            dt = _interval_seconds(ds, t, where)
            shift = dt / 2 if conv == "middle" else dt
            start = t - np.round(shift * 1e9).astype("timedelta64[ns]")
    if "intake_height" in ds and ds["intake_height"].ndim == 1:
        hts = np.asarray(ds["intake_height"].values, float)
        have = sorted(set(np.round(hts[np.isfinite(hts)], 3)))
        h = max(have) if intake_height is None else float(intake_height)
        keep = np.isclose(hts, h)
        if not keep.any():
            raise StationFileError(f"{where}: no records with intake_height {h:g} m; the file has "
                                   f"{[float(x) for x in have]} (variable intake_height)")
    else:
        h = float(ds.attrs.get("dataset_intake_ht", ds.attrs.get("intake_height", np.nan))
                  if intake_height is None else intake_height)
        fh = ds.attrs.get("dataset_intake_ht", ds.attrs.get("intake_height"))
        if intake_height is not None and fh is not None and not np.isclose(float(fh), intake_height):
            raise StationFileError(f"{where}: intake_height {float(fh):g} m, not {intake_height:g}")
        keep = np.ones(n, bool)
    fac = unit_factor(ds["value"].attrs.get("units", "mol mol-1"), species, where)
    value = np.asarray(ds["value"].values, float) * fac
    sd = np.asarray(ds["value_std_dev"].values, float) * \
        unit_factor(ds["value_std_dev"].attrs.get("units", ds["value"].attrs.get("units", "mol mol-1")),
                    species, where, "value_std_dev") if "value_std_dev" in ds else np.full(n, np.nan)
    nval = np.asarray(ds["nvalue"].values, float) if "nvalue" in ds else np.full(n, np.nan)
    if "obs_flag" in ds:
        valid = np.asarray(ds["obs_flag"].values) == 1
    elif "qcflag" in ds:
        q = _decode_chars(ds["qcflag"].values)
        valid = np.array([s[:1] in (".", "") for s in q])
    else:
        valid = np.ones(n, bool)
    value = np.where(value < 0, np.nan, value)
    qcflag = np.where(valid & np.isfinite(value), 0, 1).astype(np.int64)
    a = ds.attrs
    attrs = {"site": str(a.get("site_code", a.get("site", ""))).upper(), "intake_height": float(h),
             "species": species, "units": UNITS[species], "format": "obspack",
             "scale": str(a.get("dataset_calibration_scale", a.get("scale", "unknown"))),
             "time_convention_source": conv}
    for k, names in (("lat", ("site_latitude", "lat")), ("lon", ("site_longitude", "lon")),
                     ("elevation", ("site_elevation", "elevation"))):
        for nm in names:
            if nm in a:
                attrs[k] = float(a[nm])
                break
    out = xr.Dataset({"value": ("time", value[keep], {"units": UNITS[species]}),
                      "value_std_dev": ("time", sd[keep]),
                      "nvalue": ("time", np.nan_to_num(nval[keep], nan=0).astype(np.int64)),
                      "qcflag": ("time", qcflag[keep])},
                     coords={"time": start[keep]}, attrs=attrs)
    return out.sortby("time")


def is_icos_netcdf(ds: xr.Dataset) -> bool:
    return "value" not in ds and any(v in ds for v in ("co2", "ch4", "co")) and \
        any(v in ds for v in ("Flag", "NbPoints", "Stdev"))


def read_icos_netcdf(path, species: str = "co2", intake_height: float | None = None) -> xr.Dataset:
    """One sampling height of an ICOS ATC NetCDF file (see module doc)."""
    where = str(path)
    with xr.open_dataset(path) as d:
        ds = d.load()
    if species not in ds:
        have = [s for s in UNITS if s in ds]
        raise StationFileError(f"{where}: no variable {species!r} (the file holds {have}); "
                               f"pass species={have[0]!r} or give the {species} file" if have else
                               f"{where}: no variable {species!r}; not an ICOS ATC file")
    tname = "time" if "time" in ds.coords or "time" in ds else "TIMESTAMP"
    if tname not in ds:
        raise StationFileError(f"{where}: no time variable (time or TIMESTAMP)")
    t = np.asarray(ds[tname].values).astype("datetime64[ns]")
    units = ds[species].attrs.get("units", "umol mol-1" if species == "co2" else "nmol mol-1")
    value = np.asarray(ds[species].values, float)
    value = np.where(value < 0, np.nan, value) * unit_factor(units, species, where, species)
    n = len(value)

    def var(name, fill):
        if name not in ds:
            return np.full(n, fill)
        v = np.asarray(ds[name].values, float)
        return np.where(v < 0, np.nan, v)

    sd = var("Stdev", np.nan) * unit_factor(ds["Stdev"].attrs.get("units", units), species, where, "Stdev") \
        if "Stdev" in ds else np.full(n, np.nan)
    flag = _decode_chars(ds["Flag"].values) if "Flag" in ds else np.full(n, "O")
    a = {k.lower().replace(" ", "_"): v for k, v in ds.attrs.items()}
    if "SamplingHeight" in ds:
        hts = var("SamplingHeight", np.nan)
        h = float(np.nanmax(hts)) if intake_height is None else float(intake_height)
        keep = np.isclose(hts, h)
        if not keep.any():
            raise StationFileError(f"{where}: no rows at sampling height (SamplingHeight) {h:g}; the file has "
                                   f"{sorted(set(hts[np.isfinite(hts)]))}")
    else:
        h = float(str(a.get("sampling_height", a.get("sampling_heights", "nan"))).split(",")[0])
        keep = np.ones(n, bool)
    qcflag = np.where((np.char.strip(flag) == "O") & np.isfinite(value), 0, 1).astype(np.int64)
    attrs = {"site": str(a.get("station_code", a.get("site", ""))), "intake_height": h,
             "species": species, "units": UNITS[species], "format": "icos-netcdf",
             "scale": str(a.get("calibration_scale", a.get("scale", "unknown")))}
    for k, nm in (("lat", "latitude"), ("lon", "longitude"), ("elevation", "altitude")):
        if nm in a:
            attrs[k] = float(str(a[nm]).split()[0])
    out = xr.Dataset({"value": ("time", value[keep], {"units": UNITS[species]}),
                      "value_std_dev": ("time", sd[keep]),
                      "nvalue": ("time", np.nan_to_num(var("NbPoints", 0)[keep], nan=0).astype(np.int64)),
                      "qcflag": ("time", qcflag[keep])},
                     coords={"time": t[keep]}, attrs=attrs)
    return out.sortby("time")


def read_netcdf_file(path, species: str = "co2", intake_height: float | None = None) -> xr.Dataset:
    """Any supported NetCDF station file (ours, ObsPack, ICOS ATC)."""
    with xr.open_dataset(path, decode_times=False) as ds:
        kind = "obspack" if is_obspack(ds) else "icos" if is_icos_netcdf(ds) else \
            "ours" if "value" in ds else None
        if kind is None:
            raise StationFileError(f"{path}: no variable 'value' (our / ObsPack files) nor "
                                   "'co2'/'ch4'/'co' with Flag/NbPoints/Stdev (ICOS ATC); not a "
                                   "station NetCDF file this reader knows")
    if kind == "obspack":
        return read_obspack(path, species, intake_height)
    if kind == "icos":
        return read_icos_netcdf(path, species, intake_height)
    return None   # ours: handled by stations.read
