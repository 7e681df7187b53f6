"""One entry point for station data: :func:`read`.

Formats (``format=None`` detects them):

``picarro``  Picarro G2401/G2301 ``DataLog_User`` ``.dat`` files (a directory, a file or a list).
             Returns one row per record: ``value`` calibrated when the site's metadata (tanks) is
             given, else the raw reading (attr ``calibrated = 0``); ``raw``, ``valve``,
             ``intake_height`` (NaN on tank valves), ``qcflag`` = record QC bits of
             :mod:`stations.qc`, ``nvalue`` = 1, ``value_std_dev`` = NaN.
``hourly``   NetCDF: our ObsPack-like hourly files (``{site}_{height}m.nc``), NOAA ObsPack files
             (time convention from the ``time`` comment, several inlets per file) and ICOS ATC
             NetCDF (see :mod:`stations.netcdf`), or a directory of them (then the inlet
             ``intake_height``, default the top one). Values are converted from the unit their
             attribute names to ppm (CO2) / ppb (CH4, CO).
``icos``     ICOS ATC L2 text: ``#`` header lines (``# LATITUDE: ...``), the last one holding the
             ``;``-separated column names (``Site;SamplingHeight;Year;Month;Day;Hour;Minute;...;
             co2;Stdev;NbPoints;Flag;...``), -999.99 (any negative) = missing, hourly UTC;
             ``Flag`` ``O`` = valid (qcflag 0), others qcflag 1. Several heights: the top one
             unless ``intake_height`` is passed.
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
from . import netcdf as ncm
from . import picarro
from .picarro import find_raw_files  # noqa: F401  (raw-file listing, also for the Snakefile)
from . import qc as qcm
from .hourly import UNITS, _RAW_TO_UNITS
from .sites import get_site, inlet_valves, tank_table

FORMATS = ("picarro", "hourly", "icos", "csv")


def detect_format(path) -> str:
    """Format name of ``path`` (see module doc)."""
    if isinstance(path, (list, tuple)):
        return detect_format(path[0])
    p = Path(path)
    if p.is_dir():
        if picarro.find_raw_files(p)[0]:
            return "picarro"
        if any(p.glob("*.nc")):
            return "hourly"
        raise ValueError(f"{p}: neither Picarro .dat files nor hourly .nc files in this directory")
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such file or directory")
    if p.name.endswith(picarro.RAW_SUFFIXES):
        return "picarro"
    if p.suffix in (".nc", ".nc4", ".cdf"):
        return "hourly"
    if p.suffix in (".csv", ".txt"):
        with open(p, errors="replace") as fh:
            head = [fh.readline() for _ in range(200)]
        hdr = [ln for ln in head if ln.startswith("#")]
        if hdr and any(";" in ln for ln in hdr + head[len(hdr):len(hdr) + 1]):
            return "icos"
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
    if fmt == "icos":
        return _read_icos(path, species, intake_height)
    if fmt == "csv":
        return _read_csv(path, species)
    raise ValueError(f"format must be one of {FORMATS}, not {fmt!r}")


def _read_picarro(path, species, site, flush_seconds, on_bad_lines) -> xr.Dataset:
    rr = picarro.read_raw(path, on_bad_lines=on_bad_lines, species=species)
    rec = rr.records
    dry, corrected, _ = picarro.dry_mole_fraction(rr, species)
    raw = dry * _RAW_TO_UNITS[species]
    qc = qcm.flag_instrument(rec, raw, flush_seconds=flush_seconds)
    valve = np.rint(rec["MPVPosition"].to_numpy()).astype(np.int64)
    attrs = {"species": species, "units": UNITS[species], "calibrated": 0, "format": "picarro",
             "records_wet_corrected": int(corrected.sum())}
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


def _read_one_netcdf(path, species, intake_height) -> xr.Dataset:
    ds = ncm.read_netcdf_file(path, species, intake_height)
    if ds is not None:          # ObsPack or ICOS ATC NetCDF
        return ds
    with xr.open_dataset(path) as d:   # our hourly files (one inlet per file)
        ds = d.load()
    fsp = str(ds.attrs.get("species", ds.attrs.get("dataset_parameter", species))).lower()
    if fsp in UNITS and fsp != species:
        raise ncm.StationFileError(f"{path}: the file holds {fsp}, not {species}; pass species={fsp!r}")
    fh = ds.attrs.get("intake_height")
    if intake_height is not None and fh is not None and not np.isclose(float(fh), intake_height):
        raise ncm.StationFileError(f"{path}: intake_height {float(fh):g} m, not {intake_height:g}")
    units = ds["value"].attrs.get("units", ds.attrs.get("units", UNITS[species]))
    fac = ncm.unit_factor(units, species, str(path))
    if fac != 1.0:
        ds["value"] = ds["value"] * fac
        if "value_std_dev" in ds:
            ds["value_std_dev"] = ds["value_std_dev"] * fac
    ds["value"].attrs["units"] = UNITS[species]
    for v in ("value_std_dev", "nvalue", "qcflag"):
        if v not in ds:
            ds[v] = ("time", np.full(ds.sizes["time"], np.nan if v == "value_std_dev" else 0))
    ds.attrs.setdefault("format", "hourly")
    return ds


def _read_netcdf(path, species, intake_height) -> xr.Dataset:
    """A NetCDF file (ours, ObsPack, ICOS ATC) or a directory of them (one inlet returned)."""
    p = Path(path)
    if not p.is_dir():
        return _read_one_netcdf(p, species, intake_height)
    found = []
    for f in sorted(p.glob("*.nc")):
        try:
            found.append(_read_one_netcdf(f, species, intake_height))
        except ncm.StationFileError as exc:
            if "intake_height" not in str(exc):
                raise
    if not found:
        raise ValueError(f"{p}: no file with intake_height {intake_height}")
    return max(found, key=lambda d: float(d.attrs.get("intake_height", -1)))


def _text_lines(path) -> list[str]:
    with open(path, errors="replace") as fh:
        return fh.read().split("\n")


def _check_fields(path, lines: list[str], first: int, sep: str, n_fields: int) -> None:
    """Every non-empty line from index ``first`` must have ``n_fields`` fields (``sep``)."""
    for i in range(first, len(lines)):
        ln = lines[i]
        if not ln.strip() or ln.startswith("#"):
            continue
        nf = ln.count(sep) + 1
        if nf != n_fields:
            what = "is truncated" if nf < n_fields else "has more fields than the header"
            end = "" if i < len(lines) - 1 else " (last line, no newline: the file was cut)"
            raise ncm.StationFileError(
                f"{path}: line {i + 1} {what}: {nf} fields, the header {n_fields}{end}. Repair or "
                "remove that line.")


def _check_times(path, t: pd.DatetimeIndex, lines: np.ndarray, key=None) -> np.ndarray:
    """Order that sorts ``t``; a repeated time (per ``key``) stops with both line numbers."""
    df = pd.DataFrame({"t": t, "k": 0 if key is None else key, "line": lines})
    dup = df.duplicated(["t", "k"], keep=False).to_numpy()
    if dup.any():
        d = df[dup].sort_values(["t", "k", "line"])
        first = d.iloc[0]
        other = d[(d["t"] == first["t"]) & (d["k"] == first["k"])]["line"].tolist()
        raise ncm.StationFileError(
            f"{path}: line {other[1]} repeats the time {first['t']} of line {other[0]} "
            f"({int(dup.sum())} lines with repeated times); remove the duplicates (keep the valid copy).")
    return np.argsort(t.to_numpy(), kind="stable")


def _read_csv(path, species) -> xr.Dataset:
    attrs = {}
    lines = _text_lines(path)
    n_hdr = 0
    for line in lines:
        if not line.startswith("#"):
            break
        n_hdr += 1
        if ":" in line:
            k, v = line[1:].split(":", 1)
            attrs[k.strip()] = v.strip()
    fsp = attrs.get("species", species).lower()
    if fsp != species:
        raise ncm.StationFileError(f"{path}: line 1-{n_hdr} (# species: {fsp}) the file holds {fsp}, "
                                   f"not {species}; pass species={fsp!r} or give the {species} file")
    if n_hdr >= len(lines) or not lines[n_hdr].strip():
        raise ncm.StationFileError(f"{path}: line {n_hdr + 1}: no column header (time,value,...)")
    header = [c.strip() for c in lines[n_hdr].split(",")]
    for c in ("time", "value"):
        if c not in header:
            raise ValueError(f"{path}: column {c!r} missing in the header (line {n_hdr + 1}); a station "
                             f"CSV needs time (UTC ISO) and value, has {header}")
    _check_fields(path, lines, n_hdr + 1, ",", len(header))
    df = pd.read_csv(path, comment="#", skip_blank_lines=True)
    line_no = np.array([i + 1 for i in range(n_hdr + 1, len(lines))
                        if lines[i].strip() and not lines[i].startswith("#")])[:len(df)]
    t = pd.to_datetime(df["time"], utc=True, errors="coerce", format="ISO8601")
    if t.isna().any():
        bad = int(np.flatnonzero(t.isna().to_numpy())[0])
        raise ValueError(f"{path}: row {bad + 1} (line {line_no[bad]}): time {df['time'].iloc[bad]!r} "
                         "is not an ISO date")
    v = pd.to_numeric(df["value"], errors="coerce")
    if (v.isna() & df["value"].notna()).any():
        bad = int(np.flatnonzero((v.isna() & df["value"].notna()).to_numpy())[0])
        raise ncm.StationFileError(f"{path}: line {line_no[bad]}: value {df['value'].iloc[bad]!r} is not a number")
    ti = pd.DatetimeIndex(t.dt.tz_convert(None))
    order = _check_times(path, ti, line_no)
    df, ti = df.iloc[order].reset_index(drop=True), ti[order]
    for k in ("lon", "lat", "intake_height", "elevation"):
        if k in attrs:
            attrs[k] = float(attrs[k])
    attrs.update({"species": species, "units": UNITS[species], "format": "csv"})
    ds = xr.Dataset({"value": ("time", pd.to_numeric(df["value"]).to_numpy(float))},
                    coords={"time": ti.to_numpy()}, attrs=attrs)
    for v, fill in (("value_std_dev", np.nan), ("nvalue", 1), ("qcflag", 0)):
        ds[v] = ("time", df[v].to_numpy() if v in df else np.full(len(df), fill))
    return ds


def _read_icos(path, species, intake_height) -> xr.Dataset:
    meta, header = {}, None
    n_hdr = 0
    with open(path, errors="replace") as fh:
        for line in fh:
            if not line.startswith("#"):
                break
            n_hdr += 1
            body = line[1:].strip()
            if ";" in body:
                header = [c.strip() for c in body.split(";")]
            elif ":" in body:
                k, v = body.split(":", 1)
                meta[k.strip().upper()] = v.strip()
    if header is None:
        raise ValueError(f"{path}: no '#'-line with ';'-separated column names; not an ICOS ATC L2 file")
    _check_fields(path, _text_lines(path), n_hdr, ";", len(header))
    df = pd.read_csv(path, sep=";", skiprows=n_hdr, header=None, names=header, comment=None,
                     skipinitialspace=True)
    cols = {c.lower(): c for c in header}
    need = ["year", "month", "day", "hour", "minute", species]
    miss = [c for c in need if c not in cols]
    if miss:
        raise ValueError(f"{path}: line {n_hdr} (column header) lacks column(s) {miss}; "
                         f"has {header}. Is this a file of another species?")
    t = pd.to_datetime(pd.DataFrame({k: df[cols[k]] for k in ("year", "month", "day", "hour", "minute")}),
                       errors="coerce")
    if t.isna().any():
        i = int(np.flatnonzero(t.isna().to_numpy())[0])
        raise ValueError(f"{path}: line {n_hdr + i + 1}: invalid date fields")
    line_no = n_hdr + 1 + np.arange(len(df))
    order = _check_times(path, pd.DatetimeIndex(t), line_no,
                         df[cols["samplingheight"]].to_numpy(float) if "samplingheight" in cols else None)
    df, t = df.iloc[order].reset_index(drop=True), t.iloc[order].reset_index(drop=True)
    if "samplingheight" in cols:
        hts = df[cols["samplingheight"]].astype(float)
        h = float(hts.max()) if intake_height is None else float(intake_height)
        keep = np.isclose(hts, h)
        if not keep.any():
            raise ValueError(f"{path}: no rows at sampling height {h}; have {sorted(hts.unique())}")
        df, t = df[keep], t[keep]
    else:
        h = float(meta.get("SAMPLING HEIGHTS", "nan").split(",")[0] or "nan")

    def col(name, fill):
        c = cols.get(name)
        if c is None:
            return np.full(len(df), fill)
        v = pd.to_numeric(df[c], errors="coerce").to_numpy(float)
        return np.where(v < 0, np.nan, v)

    value = col(species, np.nan)
    flag = df[cols["flag"]].astype(str).str.strip().to_numpy() if "flag" in cols else np.full(len(df), "O")
    qcflag = np.where((flag == "O") & np.isfinite(value), 0, 1).astype(np.int64)
    nval = col("nbpoints", np.nan)
    attrs = {"site": meta.get("STATION CODE", df[cols["site"]].iloc[0] if "site" in cols else ""),
             "intake_height": h, "species": species, "units": UNITS[species], "format": "icos",
             "scale": meta.get("CALIBRATION SCALE", meta.get("SCALE", "unknown"))}
    for key, name in (("lat", "LATITUDE"), ("lon", "LONGITUDE"), ("elevation", "ALTITUDE")):
        if name in meta:
            try:
                attrs[key] = float(meta[name].split()[0])
            except ValueError:
                pass
    ds = xr.Dataset({"value": ("time", value), "value_std_dev": ("time", col("stdev", np.nan)),
                     "nvalue": ("time", np.nan_to_num(nval, nan=0).astype(np.int64)),
                     "qcflag": ("time", qcflag)},
                    coords={"time": t.to_numpy()}, attrs=attrs)
    return ds.sortby("time")
