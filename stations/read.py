"""One entry point for station data: :func:`read`. The format is detected from the content.

Formats (``format=None`` detects them from the first bytes, whatever the file is called):

``picarro``  Picarro ``DataLog_User`` files of G2301, G2401, G2311-f and G2201-i analysers
             (first line: the column names with ``EPOCH_TIME``), also gzip-compressed, Picarro's
             daily zip archives of ``.dat`` or ``.h5`` files, a directory or a list of them.
             Every record goes through :func:`stations.chain.run_chain`: ``value`` calibrated when
             the site's metadata (tanks) is given, else the dry reading (attr ``calibrated = 0``);
             ``raw``, ``valve``, ``intake_height`` (NaN on tank valves), ``qcflag`` = record QC
             bits of :mod:`stations.qc`, ``nvalue`` = 1, ``value_std_dev`` = NaN.
``hourly``   NetCDF (or NetCDF-4/HDF5): our ObsPack-like hourly files (``{site}_{height}m.nc``),
             NOAA ObsPack files, ICOS ATC NetCDF and OpenGHG standardised files (see
             :mod:`stations.netcdf`), or a directory of them (then the inlet ``intake_height``,
             default the top one). Values converted by the meaning of their unit to ppm (CO2) /
             ppb (CH4, CO).
``icos``     ICOS ATC L2 text (:mod:`stations.text`), e.g. ``ICOS_ATC_L2_L2-2024.1_RGL_90.0_CTS.CH4``.
``csv``      plain CSV: ``#`` comment lines ``# key: value`` give attrs (site, lon, lat,
             intake_height, elevation, scale); columns ``time`` (UTC ISO) and ``value`` required,
             ``value_std_dev``, ``nvalue``, ``qcflag`` optional.

After reading, :func:`stations.localtime.check_utc` warns when the diurnal cycle looks shifted by
the site's UTC offset (times written in local time).
"""
from __future__ import annotations

import os
import re
import zlib
from pathlib import Path

import numpy as np
import xarray as xr

from . import netcdf as ncm
from . import picarro
from .chain import run_chain
from .errors import FormatNotRecognisedError, HeightNotFoundError, SpeciesMismatchError
from .localtime import check_utc
from .settings import DEFAULT
from .picarro import find_raw_files  # noqa: F401  (raw-file listing, also for the Snakefile)
from .sites import calibration_scale, get_site, inlet_valves
from .text import read_csv, read_icos_text
from .units import UNITS, unit_factor

FORMATS = ("picarro", "hourly", "icos", "csv")
_HDF5 = b"\x89HDF\r\n\x1a\n"
_ICOS_COLUMNS = re.compile(rb"^#\s*Site;SamplingHeight;", re.I | re.M)


def _head(path: Path, n: int = 65536) -> bytes:
    """The first ``n`` bytes of a file, gzip decompressed."""
    with open(path, "rb") as fh:
        b = fh.read(n)
    if b[:2] == b"\x1f\x8b":
        try:
            b = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(b, n)
        except zlib.error:
            return b""
    return b


def sniff(path) -> str | None:
    """Format of one file from its content (``None``: not a station file)."""
    p = Path(path)
    with open(p, "rb") as fh:
        magic = fh.read(8)
    if magic[:4] == b"PK\x03\x04":
        return "picarro"                     # Picarro daily archive (members checked when read)
    if magic[:8] == _HDF5 or magic[:3] == b"CDF":
        try:
            kind = ncm.netcdf_kind(p)
        except (OSError, ValueError):
            kind = None
        if kind is not None:
            return "hourly"
        return "picarro" if magic[:8] == _HDF5 and picarro.looks_like_picarro_h5(p) else None
    head = _head(p)
    first = head.split(b"\n", 1)[0].split()
    if b"EPOCH_TIME" in first and b"ALARM_STATUS" in first:
        return "picarro"
    if _ICOS_COLUMNS.search(head):
        return "icos"
    body = [ln for ln in head.split(b"\n") if ln.strip() and not ln.startswith(b"#")]
    if body and b"time" in {c.strip().lower() for c in body[0].split(b",")}:
        return "csv"             # the CSV reader names a missing 'value' column
    return None


def detect_format(path) -> str:
    """Format name of ``path`` (see module doc), from the content of the file(s)."""
    if isinstance(path, (list, tuple)):
        return detect_format(path[0])
    if isinstance(path, picarro.ZipMember):
        return "picarro"
    p = Path(path)
    if p.is_dir():
        if picarro.find_raw_files(p)[0]:
            return "picarro"
        for f in sorted(q for q in p.rglob("*") if q.is_file() and not q.name.startswith(".")):
            fmt = sniff(f)
            if fmt is not None:
                return fmt
        raise FormatNotRecognisedError(
            f"{p}: no station file in this directory (Picarro raw files, ObsPack/ICOS/OpenGHG NetCDF, "
            "ICOS ATC L2 text, CSV with time,value); point at the site's data directory")
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such file or directory")
    fmt = sniff(p)
    if fmt is None:
        raise FormatNotRecognisedError(
            f"{p}: the content is none of the station formats (Picarro DataLog_User, ObsPack/ICOS/"
            f"OpenGHG NetCDF, ICOS ATC L2 text, CSV with time,value); pass format= one of {FORMATS} "
            "if it is one of them")
    return fmt


def read(path, format: str | None = None, species: str = "co2", site: dict | str | None = None,
         stations_file: str | os.PathLike | None = None, intake_height: float | None = None,
         flush_seconds: float = DEFAULT.flush_seconds, on_bad_lines: str = "error",
         time_reference: str | None = None, utc_offset_hours: float | None = None) -> xr.Dataset:
    """Read station data in any supported format into a standard dataset (dim ``time``, UTC).

    ``time_reference``: for ObsPack files whose ``time`` comment does not say where in the
    averaging interval the stamp lies (``start``, ``middle`` or ``end``; default: ``start``,
    logged). ``utc_offset_hours``: the site's offset for the local-time check (default: the
    file's ``site_utc2lst`` or the longitude / 15)."""
    species = species.lower()
    if species not in UNITS:
        raise ValueError(f"species must be one of {sorted(UNITS)}, not {species!r}")
    fmt = format or detect_format(path)
    if isinstance(site, str):
        site = get_site(stations_file or "config/stations.yaml", site)
    if fmt == "picarro":
        return _read_picarro(path, species, site, flush_seconds, on_bad_lines)
    if fmt == "hourly":
        ds = _read_netcdf(path, species, intake_height, time_reference)
    elif fmt == "icos":
        ds = read_icos_text(path, species, intake_height)
    elif fmt == "csv":
        ds = read_csv(path, species)
    else:
        raise ValueError(f"format must be one of {FORMATS}, not {format!r}")
    check_utc(ds, species, str(path), utc_offset_hours)
    return ds


def _read_picarro(path, species, site, flush_seconds, on_bad_lines) -> xr.Dataset:
    rr = picarro.read_raw(path, on_bad_lines=on_bad_lines, species=species)
    ch = run_chain(rr, species, site, flush_seconds=flush_seconds)
    n = len(ch.records)
    attrs = {"species": species, "units": UNITS[species], "calibrated": 0, "format": "picarro",
             "records_wet_corrected": int(ch.corrected.sum()), "dry_source": ",".join(sorted(set(ch.sources)))}
    height = np.full(n, np.nan)
    if site is not None:
        inlets = inlet_valves(site)
        for v, h in inlets.items():
            height[ch.valve == v] = h
        cal = ch.calibration
        attrs.update({"site": site["id"], "lon": float(site["lon"]), "lat": float(site["lat"]),
                      "elevation": float(site["elevation"]),
                      "intake_height": max(inlets.values()),
                      "scale": calibration_scale(site, species),
                      "calibrated": int(len(cal.cycles) > 0),
                      "calibration_cycles": len(cal.cycles),
                      "target_bias": cal.target_summary["bias"]})
    ds = xr.Dataset({"value": ("time", ch.value), "raw": ("time", ch.raw),
                     "value_std_dev": ("time", np.full(n, np.nan)),
                     "nvalue": ("time", np.ones(n, np.int64)),
                     "qcflag": ("time", ch.qc), "valve": ("time", ch.valve),
                     "intake_height": ("time", height)},
                    coords={"time": ch.records["time"].to_numpy()}, attrs=attrs)
    ds["value"].attrs["units"] = UNITS[species]
    return ds


def read_our_hourly(path, species: str, intake_height: float | None) -> xr.Dataset:
    """Our hourly file (``{site}_{height}m.nc``, written by :func:`stations.hourly.to_dataset`)."""
    with xr.open_dataset(path) as d:
        ds = d.load()
    fsp = str(ds.attrs.get("species", ds.attrs.get("dataset_parameter", species))).lower()
    if fsp in UNITS and fsp != species:
        raise SpeciesMismatchError(f"{path}: the file holds {fsp}, not {species}; pass species={fsp!r}")
    fh = ds.attrs.get("intake_height")
    if intake_height is not None and fh is not None and not np.isclose(float(fh), intake_height):
        raise HeightNotFoundError(f"{path}: intake_height {float(fh):g} m, not {intake_height:g}", [fh])
    units = ds["value"].attrs.get("units", ds.attrs.get("units", UNITS[species]))
    fac = unit_factor(units, species, str(path), "variable 'value'")
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


def _read_one_netcdf(path, species, intake_height, time_reference=None) -> xr.Dataset:
    ds = ncm.read_netcdf_file(path, species, intake_height, time_reference)
    return ds if ds is not None else read_our_hourly(path, species, intake_height)


def _read_netcdf(path, species, intake_height, time_reference=None) -> xr.Dataset:
    """A NetCDF file (ours, ObsPack, ICOS ATC, OpenGHG) or a directory of them (one inlet returned)."""
    p = Path(path)
    if not p.is_dir():
        return _read_one_netcdf(p, species, intake_height, time_reference)
    found, heights = [], []
    for f in sorted(q for q in p.iterdir() if q.is_file() and sniff(q) == "hourly"):
        try:
            found.append(_read_one_netcdf(f, species, intake_height, time_reference))
        except HeightNotFoundError as exc:
            heights += exc.heights
    if not found:
        raise HeightNotFoundError(f"{p}: no file with intake_height {intake_height}; the files have "
                                  f"{sorted(set(heights))}", heights)
    return max(found, key=lambda d: float(d.attrs.get("intake_height", -1)))
