"""One entry point for station data: :func:`read`.

Formats (``format=None`` detects them):

``picarro``  Picarro G2401/G2301 ``DataLog_User`` ``.dat`` files (a directory, a file or a list).
             Returns one row per record: ``value`` calibrated when the site's metadata (tanks) is
             given, else the raw reading (attr ``calibrated = 0``); ``raw``, ``valve``,
             ``intake_height`` (NaN on tank valves), ``qcflag`` = record QC bits of
             :mod:`stations.qc`, ``nvalue`` = 1, ``value_std_dev`` = NaN.
``hourly``   our ObsPack-like hourly NetCDF (``{site}_{height}m.nc``) or its directory (then the
             inlet ``intake_height``, default the top one). NOAA ObsPack files work too: a
             ``value`` in mol mol-1 is converted to ppm (CO2) / ppb (CH4, CO).
``csv``      plain CSV: ``#`` comment lines ``# key: value`` give attrs (site, lon, lat,
             intake_height, elevation, scale); columns ``time`` (UTC ISO) and ``value`` required,
             ``value_std_dev``, ``nvalue``, ``qcflag`` optional.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from . import calibration as calm
from . import picarro
from . import qc as qcm
from .hourly import UNITS, _RAW_TO_UNITS
from .sites import get_site, inlet_valves, tank_table

FORMATS = ("picarro", "hourly", "csv")
_TO_UNITS = {"co2": 1e6, "ch4": 1e9, "co": 1e9}


def detect_format(path) -> str:
    """Format name of ``path`` (see module doc)."""
    if isinstance(path, (list, tuple)):
        return detect_format(path[0])
    p = Path(path)
    if p.is_dir():
        if any(p.rglob("*.dat")):
            return "picarro"
        if any(p.glob("*.nc")):
            return "hourly"
        raise ValueError(f"{p}: neither Picarro .dat files nor hourly .nc files in this directory")
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such file or directory")
    if p.suffix == ".dat":
        return "picarro"
    if p.suffix in (".nc", ".nc4", ".cdf"):
        return "hourly"
    if p.suffix in (".csv", ".txt"):
        return "csv"
    raise ValueError(f"{p}: cannot detect the format from the suffix {p.suffix!r}; pass format= one of {FORMATS}")


def read(path, format: str | None = None, species: str = "co2", site: dict | str | None = None,
         stations_file: str | os.PathLike | None = None, intake_height: float | None = None,
         flush_seconds: float = 60.0, on_bad_lines: str = "error") -> xr.Dataset:
    """Read station data in any supported format into a standard dataset (dim ``time``, UTC)."""
    species = species.lower()
    if species not in UNITS:
        raise ValueError(f"species must be one of {sorted(UNITS)}, not {species!r}")
    fmt = format or detect_format(path)
    if isinstance(site, str):
        site = get_site(stations_file or "config/stations.yaml", site)
    if fmt == "picarro":
        return _read_picarro(path, species, site, flush_seconds, on_bad_lines)
    if fmt == "hourly":
        return _read_netcdf(path, species, intake_height)
    if fmt == "csv":
        return _read_csv(path, species)
    raise ValueError(f"format must be one of {FORMATS}, not {fmt!r}")


def _read_picarro(path, species, site, flush_seconds, on_bad_lines) -> xr.Dataset:
    rr = picarro.read_raw(path, on_bad_lines=on_bad_lines)
    rec = rr.records
    col = picarro.species_column(rec, species, where=str(path))
    raw = rec[col].to_numpy(float) * _RAW_TO_UNITS[species]
    qc = qcm.flag_instrument(rec, col, flush_seconds=flush_seconds)
    valve = np.rint(rec["MPVPosition"].to_numpy()).astype(np.int64)
    attrs = {"species": species, "units": UNITS[species], "calibrated": 0, "format": "picarro"}
    height = np.full(len(rec), np.nan)
    value = raw
    if site is not None:
        inlets = inlet_valves(site)
        for v, h in inlets.items():
            height[valve == v] = h
        value, extrap, cal = calm.calibrate(rec, raw, qc, tank_table(site, species), species)
        qc[extrap] |= qcm.CAL_EXTRAPOLATED
        attrs.update({"site": site["id"], "lon": float(site["lon"]), "lat": float(site["lat"]),
                      "elevation": float(site["elevation"]),
                      "intake_height": max(inlets.values()),
                      "scale": (site.get("calibration") or {}).get("scale", "unknown"),
                      "calibrated": int(len(cal.cycles) > 0),
                      "calibration_cycles": len(cal.cycles),
                      "target_bias": cal.target_summary["bias"]})
    ds = xr.Dataset({"value": ("time", value), "raw": ("time", raw),
                     "value_std_dev": ("time", np.full(len(rec), np.nan)),
                     "nvalue": ("time", np.ones(len(rec), np.int64)),
                     "qcflag": ("time", qc), "valve": ("time", valve),
                     "intake_height": ("time", height)},
                    coords={"time": rec["time"].to_numpy()}, attrs=attrs)
    ds["value"].attrs["units"] = UNITS[species]
    return ds


def _read_netcdf(path, species, intake_height) -> xr.Dataset:
    p = Path(path)
    if p.is_dir():
        files = sorted(p.glob("*.nc"))
        dss = []
        for f in files:
            with xr.open_dataset(f) as d:
                dss.append(d.load())
        if intake_height is None:
            ds = max(dss, key=lambda d: float(d.attrs.get("intake_height", -1)))
        else:
            match = [d for d in dss if np.isclose(float(d.attrs.get("intake_height", -1)), intake_height)]
            if not match:
                raise ValueError(f"{p}: no file with intake_height {intake_height}; have "
                                 f"{[d.attrs.get('intake_height') for d in dss]}")
            ds = match[0]
    else:
        with xr.open_dataset(p) as d:
            ds = d.load()
    if "value" not in ds:
        raise ValueError(f"{path}: no variable 'value'; not an ObsPack-like file")
    fsp = str(ds.attrs.get("species", ds.attrs.get("dataset_parameter", species))).lower()
    if fsp in UNITS and fsp != species:
        raise ValueError(f"{path}: the file holds {fsp}, not {species}; pass species={fsp!r}")
    units = str(ds["value"].attrs.get("units", ds.attrs.get("units", UNITS[species])))
    if units.replace(" ", "") in ("molmol-1", "mol/mol", "mol.mol-1"):
        ds["value"] = ds["value"] * _TO_UNITS[species]
        if "value_std_dev" in ds:
            ds["value_std_dev"] = ds["value_std_dev"] * _TO_UNITS[species]
        ds["value"].attrs["units"] = UNITS[species]
    for v in ("value_std_dev", "nvalue", "qcflag"):
        if v not in ds:
            ds[v] = ("time", np.full(ds.sizes["time"], np.nan if v == "value_std_dev" else 0))
    ds.attrs.setdefault("format", "hourly")
    return ds


def _read_csv(path, species) -> xr.Dataset:
    attrs = {}
    with open(path) as fh:
        for line in fh:
            if not line.startswith("#"):
                break
            if ":" in line:
                k, v = line[1:].split(":", 1)
                attrs[k.strip()] = v.strip()
    df = pd.read_csv(path, comment="#")
    for c in ("time", "value"):
        if c not in df:
            raise ValueError(f"{path}: column {c!r} missing; a station CSV needs time (UTC ISO) and value")
    t = pd.to_datetime(df["time"], utc=True, errors="coerce")
    if t.isna().any():
        bad = int(np.flatnonzero(t.isna().to_numpy())[0])
        raise ValueError(f"{path}: row {bad + 1}: time {df['time'].iloc[bad]!r} is not an ISO date")
    for k in ("lon", "lat", "intake_height", "elevation"):
        if k in attrs:
            attrs[k] = float(attrs[k])
    attrs.update({"species": species, "units": UNITS[species], "format": "csv"})
    ds = xr.Dataset({"value": ("time", df["value"].to_numpy(float))},
                    coords={"time": t.dt.tz_convert(None).to_numpy()}, attrs=attrs)
    for v, fill in (("value_std_dev", np.nan), ("nvalue", 1), ("qcflag", 0)):
        ds[v] = ("time", df[v].to_numpy() if v in df else np.full(len(df), fill))
    return ds
