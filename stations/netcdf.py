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
    ``value_unc`` (NOAA: the standard deviation of the reported mean) is carried as ``value_unc``
    and, when the file has no ``value_std_dev``, also as ``value_std_dev`` (attr
    ``value_std_dev_source``). A ``time`` comment that does not say where the stamp lies: the
    caller's ``time_reference`` (``start``/``middle``/``end``) or, without it, ``start`` is
    assumed (logged; attr ``time_convention_source``).
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

OpenGHG standardised NetCDF (ICOS Carbon Portal objects as OpenGHG stores them)
    variables ``{species}``, ``{species}_variability``, ``{species}_number_of_observations``,
    ``flag`` (``O`` = valid) on dim ``time`` (start of the sampling period, its ``comment`` says
    so); the unit in the variable's ``units`` or, when that is ``unknown``, the global ``units``;
    global ``site``, ``inlet``/``sampling_height``, ``station_latitude``, ``station_longitude``,
    ``station_height_masl``, ``calibration_scale``.
"""
from __future__ import annotations

import logging
import re

import numpy as np
import pandas as pd
import xarray as xr

from .errors import HeightNotFoundError, SpeciesMismatchError, StationFileError  # noqa: F401
from .units import UNITS, unit_factor  # noqa: F401  (re-exported: stations.netcdf.unit_factor)

log = logging.getLogger(__name__)

#: where in its averaging interval a time stamp lies, from the words of a ``time`` comment
_CONVENTION_WORDS = {"beginning": "start", "start": "start", "middle": "middle", "center": "middle",
                     "centre": "middle", "midpoint": "middle", "mid-point": "middle", "end": "end"}


def time_convention(comment: str) -> str | None:
    """``start``, ``middle`` or ``end`` from an ObsPack ``time`` comment; ``None`` when it does not say."""
    c = (comment or "").lower()
    m = re.search(r"(?:reported|stamp\w*|corresponds?)\s+(?:at|to)\s+the\s+"
                  r"(beginning|start|middle|center|centre|mid-?point|end)", c)
    if m:
        return _CONVENTION_WORDS[m.group(1)]
    for word in ("midpoint", "middle", "centre", "center"):
        if word in c:
            return "middle"
    return None


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


def _start_times(ds, where: str, time_reference: str | None) -> tuple[np.ndarray, str]:
    """Start of every averaging interval and how the convention was found."""
    if "start_time" in ds:
        return ds["start_time"].values.astype("datetime64[ns]"), "start_time variable"
    if "midpoint_time" in ds:
        conv, how, base = "middle", "midpoint_time variable", ds["midpoint_time"]
    else:
        base = ds["time"]
        conv = time_convention(base.attrs.get("comment", ""))
        how = f"time comment ({conv})"
        if conv is None:
            conv = time_reference or "start"
            how = (f"assumed {conv}: the time comment does not say where in the averaging interval "
                   f"the stamp lies" + ("" if time_reference else " (pass time_reference= to change)"))
            log.warning("%s: %s", where, how)
    t = base.values.astype("datetime64[ns]")
    if conv == "start":
        return t, how
    dt = _interval_seconds(ds, t, where)
    shift = dt / 2 if conv == "middle" else dt
    return t - np.round(shift * 1e9).astype("timedelta64[ns]"), how


def _inlet_rows(ds, where: str, intake_height: float | None) -> tuple[float, np.ndarray]:
    """(height, rows of that inlet) of an ObsPack file (one or several inlets)."""
    n = ds.sizes["obs"]
    if "intake_height" in ds and ds["intake_height"].ndim == 1:
        hts = np.asarray(ds["intake_height"].values, float)
        have = sorted(set(np.round(hts[np.isfinite(hts)], 3)))
        h = max(have) if intake_height is None else float(intake_height)
        keep = np.isclose(hts, h)
        if not keep.any():
            raise HeightNotFoundError(f"{where}: no records with intake_height {h:g} m; the file has "
                                      f"{[float(x) for x in have]} (variable intake_height)", have)
        return h, keep
    fh = ds.attrs.get("dataset_intake_ht", ds.attrs.get("intake_height"))
    if intake_height is not None and fh is not None and not np.isclose(float(fh), intake_height):
        raise HeightNotFoundError(f"{where}: intake_height {float(fh):g} m, not {intake_height:g}", [fh])
    h = float(fh if intake_height is None and fh is not None else
              intake_height if intake_height is not None else np.nan)
    return h, np.ones(n, bool)


def _obspack_values(ds, where: str, species: str) -> dict:
    """value, value_std_dev, value_unc (species units), nvalue, validity of every obs."""
    n = ds.sizes["obs"]
    vunits = ds["value"].attrs.get("units", "mol mol-1")
    out = {"value": np.asarray(ds["value"].values, float) * unit_factor(vunits, species, where, "variable 'value'")}
    for name in ("value_std_dev", "value_unc"):
        out[name] = np.asarray(ds[name].values, float) * unit_factor(
            ds[name].attrs.get("units", vunits), species, where, f"variable {name!r}") \
            if name in ds else np.full(n, np.nan)
    out["std_dev_source"] = "value_std_dev" if "value_std_dev" in ds else \
        "value_unc" if "value_unc" in ds else "none"
    if "value_std_dev" not in ds:
        out["value_std_dev"] = out["value_unc"]
    out["nvalue"] = np.asarray(ds["nvalue"].values, float) if "nvalue" in ds else np.full(n, np.nan)
    if "obs_flag" in ds:
        valid = np.asarray(ds["obs_flag"].values) == 1
    elif "qcflag" in ds:
        valid = np.array([s[:1] in (".", "") for s in _decode_chars(ds["qcflag"].values)])
    else:
        valid = np.ones(n, bool)
    out["value"] = np.where(out["value"] < 0, np.nan, out["value"])
    out["qcflag"] = np.where(valid & np.isfinite(out["value"]), 0, 1).astype(np.int64)
    return out


def _site_attrs(a: dict) -> dict:
    attrs = {}
    for k, names in (("lat", ("site_latitude", "lat")), ("lon", ("site_longitude", "lon")),
                     ("elevation", ("site_elevation", "elevation"))):
        for nm in names:
            if nm in a:
                attrs[k] = float(a[nm])
                break
    return attrs


def read_obspack(path, species: str = "co2", intake_height: float | None = None,
                 time_reference: str | None = None) -> xr.Dataset:
    """One inlet of a NOAA ObsPack file (see module doc)."""
    where = str(path)
    with xr.open_dataset(path, decode_times=True) as d:
        ds = d.load()
    fsp = str(ds.attrs.get("dataset_parameter", species)).lower()
    if fsp in UNITS and fsp != species:
        raise SpeciesMismatchError(f"{where}: global attr dataset_parameter = {fsp!r}: the file holds "
                                   f"{fsp}, not {species}; pass species={fsp!r} or give the {species} file")
    if "time" not in ds:
        raise StationFileError(f"{where}: no variable 'time'; not an ObsPack file")
    if time_reference not in (None, "start", "middle", "end"):
        raise ValueError(f"time_reference must be 'start', 'middle' or 'end', not {time_reference!r}")
    start, conv = _start_times(ds, where, time_reference)
    h, keep = _inlet_rows(ds, where, intake_height)
    v = _obspack_values(ds, where, species)
    a = ds.attrs
    attrs = {"site": str(a.get("site_code", a.get("site", ""))).upper(), "intake_height": float(h),
             "species": species, "units": UNITS[species], "format": "obspack",
             "scale": str(a.get("dataset_calibration_scale", a.get("scale", "unknown"))),
             "time_convention_source": conv, "value_std_dev_source": v["std_dev_source"],
             **_site_attrs(a)}
    if "site_utc2lst" in a:
        attrs["utc_offset_hours"] = float(a["site_utc2lst"])
    out = xr.Dataset({"value": ("time", v["value"][keep], {"units": UNITS[species]}),
                      "value_std_dev": ("time", v["value_std_dev"][keep], {"units": UNITS[species]}),
                      "value_unc": ("time", v["value_unc"][keep], {"units": UNITS[species]}),
                      "nvalue": ("time", np.nan_to_num(v["nvalue"][keep], nan=0).astype(np.int64)),
                      "qcflag": ("time", v["qcflag"][keep])},
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
        raise SpeciesMismatchError(f"{where}: no variable {species!r} (the file holds {have}); "
                               f"pass species={have[0]!r} or give the {species} file" if have else
                               f"{where}: no variable {species!r}; not an ICOS ATC file")
    tname = "time" if "time" in ds.coords or "time" in ds else "TIMESTAMP"
    if tname not in ds:
        raise StationFileError(f"{where}: no time variable (time or TIMESTAMP)")
    t = np.asarray(ds[tname].values).astype("datetime64[ns]")
    units = ds[species].attrs.get("units", "umol mol-1" if species == "co2" else "nmol mol-1")
    value = np.asarray(ds[species].values, float)
    value = np.where(value < 0, np.nan, value) * unit_factor(units, species, where, f"variable {species!r}")
    n = len(value)

    def var(name, fill):
        if name not in ds:
            return np.full(n, fill)
        v = np.asarray(ds[name].values, float)
        return np.where(v < 0, np.nan, v)

    sd = var("Stdev", np.nan) * unit_factor(ds["Stdev"].attrs.get("units", units), species, where, "variable 'Stdev'") \
        if "Stdev" in ds else np.full(n, np.nan)
    flag = _decode_chars(ds["Flag"].values) if "Flag" in ds else np.full(n, "O")
    a = {k.lower().replace(" ", "_"): v for k, v in ds.attrs.items()}
    if "SamplingHeight" in ds:
        hts = var("SamplingHeight", np.nan)
        h = float(np.nanmax(hts)) if intake_height is None else float(intake_height)
        keep = np.isclose(hts, h)
        if not keep.any():
            have = sorted(set(hts[np.isfinite(hts)]))
            raise HeightNotFoundError(f"{where}: no rows at sampling height (SamplingHeight) {h:g}; the file "
                                      f"has {have}", have)
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


def is_openghg(ds: xr.Dataset) -> bool:
    """OpenGHG's standardised observation file: ``{species}`` with ``{species}_variability``."""
    return any(sp in ds and f"{sp}_variability" in ds for sp in UNITS)


def read_openghg(path, species: str = "co2", intake_height: float | None = None) -> xr.Dataset:
    """An OpenGHG standardised file (one inlet; see module doc)."""
    where = str(path)
    with xr.open_dataset(path) as d:
        ds = d.load()
    a = ds.attrs
    if species not in ds:
        have = [s for s in UNITS if s in ds]
        raise SpeciesMismatchError(f"{where}: no variable {species!r} (the file holds {have}); pass "
                                   f"species={have[0]!r} or give the {species} file")
    h = float(a.get("inlet", a.get("sampling_height", a.get("inlet_height_magl", "nan"))).rstrip("m"))
    if intake_height is not None and not np.isclose(h, intake_height):
        raise HeightNotFoundError(f"{where}: global attr inlet = {h:g} m, not {intake_height:g}", [h])
    units = ds[species].attrs.get("units", "unknown")
    if units in ("unknown", "", None):
        units = a.get("units", "unknown")
    fac = unit_factor(units, species, where, f"variable {species!r} (or the global attr 'units')")
    value = np.asarray(ds[species].values, float) * fac
    var = f"{species}_variability"
    sd = np.asarray(ds[var].values, float) * fac if var in ds else np.full(len(value), np.nan)
    nobs = f"{species}_number_of_observations"
    nval = np.asarray(ds[nobs].values, float) if nobs in ds else np.full(len(value), np.nan)
    flag = _decode_chars(ds["flag"].values) if "flag" in ds else np.full(len(value), "O")
    qcflag = np.where((np.char.strip(flag) == "O") & np.isfinite(value), 0, 1).astype(np.int64)
    attrs = {"site": str(a.get("site", "")).upper(), "intake_height": h, "species": species,
             "units": UNITS[species], "format": "openghg",
             "scale": str(a.get("calibration_scale", "unknown")),
             "time_convention_source": str(ds["time"].attrs.get("comment", "start (OpenGHG: label left)"))}
    for k, nm in (("lat", "station_latitude"), ("lon", "station_longitude"), ("elevation", "station_height_masl")):
        if nm in a:
            attrs[k] = float(a[nm])
    out = xr.Dataset({"value": ("time", value, {"units": UNITS[species]}),
                      "value_std_dev": ("time", sd, {"units": UNITS[species]}),
                      "nvalue": ("time", np.nan_to_num(nval, nan=0).astype(np.int64)),
                      "qcflag": ("time", qcflag)},
                     coords={"time": ds["time"].values.astype("datetime64[ns]")}, attrs=attrs)
    return out.sortby("time")


def netcdf_kind(path) -> str | None:
    """``obspack``, ``icos``, ``openghg``, ``ours`` or ``None`` (not a station NetCDF file)."""
    with xr.open_dataset(path, decode_times=False) as ds:
        if is_obspack(ds):
            return "obspack"
        if is_icos_netcdf(ds):
            return "icos"
        if is_openghg(ds):
            return "openghg"
        return "ours" if "value" in ds and "time" in ds.dims else None


def read_netcdf_file(path, species: str = "co2", intake_height: float | None = None,
                     time_reference: str | None = None) -> xr.Dataset | None:
    """Any supported NetCDF station file (ObsPack, ICOS ATC, OpenGHG); ``None`` for ours."""
    kind = netcdf_kind(path)
    if kind is None:
        raise StationFileError(f"{path}: no variable 'value' (our / ObsPack files), nor "
                               "'co2'/'ch4'/'co' with Flag/NbPoints/Stdev (ICOS ATC) or with "
                               "'<species>_variability' (OpenGHG); not a station NetCDF file this "
                               "reader knows")
    if kind == "obspack":
        return read_obspack(path, species, intake_height, time_reference)
    if kind == "icos":
        return read_icos_netcdf(path, species, intake_height)
    if kind == "openghg":
        return read_openghg(path, species, intake_height)
    return None   # ours: handled by stations.read
