"""Station text files: ICOS ATC L2 text (as the Carbon Portal names them, e.g.
``ICOS_ATC_L2_L2-2024.1_GAT_341.0_CTS.CO2``) and plain CSV. See :mod:`stations.read`.

ICOS ATC L2: ``#`` header lines (``# STATION CODE: RGL``, ``# SAMPLING HEIGHTS: 90.0 m agl``,
``# MEASUREMENT UNIT: nmol.mol-¹``, ``# MEASUREMENT SCALE: ...``, ``# TIME ZONE: UTC +0``), the
last one the ``;``-separated column names (``#Site;SamplingHeight;Year;Month;Day;Hour;Minute;
DecimalDate;ch4;Stdev;NbPoints;Flag;...``). -999.99 (any negative) = missing; empty fields too.
Values converted from the header's unit by meaning; the scale string kept in attr ``scale``.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import xarray as xr

from .errors import HeightNotFoundError, SpeciesMismatchError, StationFileError
from .units import UNITS, unit_factor


#: a metadata header line: an upper-case key, a colon, the value
_META_LINE = re.compile(r"^([A-Z][A-Z0-9 /()._-]*):\s*(.*)$")


def _header_height(meta: dict) -> float:
    m = re.match(r"\s*([-+0-9.]+)", meta.get("SAMPLING HEIGHTS", ""))
    return float(m.group(1)) if m else float("nan")


def _utc_offset(path, meta: dict) -> float:
    """Hours to subtract to get UTC, from ``# TIME ZONE: UTC +1`` (0 when absent)."""
    tz = meta.get("TIME ZONE", "UTC")
    m = re.fullmatch(r"\s*(?:UTC|GMT)\s*(?:([+-])\s*(\d+(?:\.\d+)?))?\s*", tz, re.I)
    if m is None:
        raise StationFileError(f"{path}: header line '# TIME ZONE: {tz}' is not 'UTC' or 'UTC +N'; "
                               "correct the header (the times must be convertible to UTC)")
    return 0.0 if m.group(1) is None else float(m.group(2)) * (1 if m.group(1) == "+" else -1)


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
            raise StationFileError(
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
        raise StationFileError(
            f"{path}: line {other[1]} repeats the time {first['t']} of line {other[0]} "
            f"({int(dup.sum())} lines with repeated times); remove the duplicates (keep the valid copy).")
    return np.argsort(t.to_numpy(), kind="stable")


def read_csv(path, species: str = "co2") -> xr.Dataset:
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
        raise SpeciesMismatchError(f"{path}: line 1-{n_hdr} (# species: {fsp}) the file holds {fsp}, "
                                   f"not {species}; pass species={fsp!r} or give the {species} file")
    if n_hdr >= len(lines) or not lines[n_hdr].strip():
        raise StationFileError(f"{path}: line {n_hdr + 1}: no column header (time,value,...)")
    header = [c.strip() for c in lines[n_hdr].split(",")]
    for c in ("time", "value"):
        if c not in header:
            raise StationFileError(f"{path}: column {c!r} missing in the header (line {n_hdr + 1}); a station "
                             f"CSV needs time (UTC ISO) and value, has {header}")
    _check_fields(path, lines, n_hdr + 1, ",", len(header))
    df = pd.read_csv(path, comment="#", skip_blank_lines=True)
    line_no = np.array([i + 1 for i in range(n_hdr + 1, len(lines))
                        if lines[i].strip() and not lines[i].startswith("#")])[:len(df)]
    t = pd.to_datetime(df["time"], utc=True, errors="coerce", format="ISO8601")
    if t.isna().any():
        bad = int(np.flatnonzero(t.isna().to_numpy())[0])
        raise StationFileError(f"{path}: row {bad + 1} (line {line_no[bad]}): time {df['time'].iloc[bad]!r} "
                         "is not an ISO date")
    v = pd.to_numeric(df["value"], errors="coerce")
    if (v.isna() & df["value"].notna()).any():
        bad = int(np.flatnonzero((v.isna() & df["value"].notna()).to_numpy())[0])
        raise StationFileError(f"{path}: line {line_no[bad]}: value {df['value'].iloc[bad]!r} is not a number")
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


def read_icos_text(path, species: str = "co2", intake_height: float | None = None) -> xr.Dataset:
    meta, header = {}, None
    n_hdr = 0
    with open(path, errors="replace") as fh:
        for line in fh:
            if not line.startswith("#"):
                break
            n_hdr += 1
            body = line[1:].strip()
            key = _META_LINE.match(body)
            if key:       # '# MEASUREMENT SCALE: 530: Unknown; 115: WMO X2004A' is metadata
                meta[key.group(1).strip().upper()] = key.group(2).strip()
            elif ";" in body:
                header = [c.strip() for c in body.split(";")]
    if header is None:
        raise StationFileError(f"{path}: no '#'-line with ';'-separated column names; not an ICOS ATC L2 file")
    _check_fields(path, _text_lines(path), n_hdr, ";", len(header))
    df = pd.read_csv(path, sep=";", skiprows=n_hdr, header=None, names=header, comment=None,
                     skipinitialspace=True)
    cols = {c.lower(): c for c in header}
    need = ["year", "month", "day", "hour", "minute", species]
    miss = [c for c in need if c not in cols]
    held = [sp for sp in UNITS if sp in cols]
    if miss == [species] and held:
        raise SpeciesMismatchError(f"{path}: line {n_hdr} (column header) has {held[0]!r}, not {species!r}: "
                                   f"the file holds {held[0]}; pass species={held[0]!r}")
    if miss:
        raise StationFileError(f"{path}: line {n_hdr} (column header) lacks column(s) {miss}; "
                               f"has {header}. Is this a file of another species?")
    t = pd.to_datetime(pd.DataFrame({k: df[cols[k]] for k in ("year", "month", "day", "hour", "minute")}),
                       errors="coerce") - pd.Timedelta(hours=_utc_offset(path, meta))
    if t.isna().any():
        i = int(np.flatnonzero(t.isna().to_numpy())[0])
        raise StationFileError(f"{path}: line {n_hdr + i + 1}: invalid date fields")
    line_no = n_hdr + 1 + np.arange(len(df))
    order = _check_times(path, pd.DatetimeIndex(t), line_no,
                         df[cols["samplingheight"]].to_numpy(float) if "samplingheight" in cols else None)
    df, t = df.iloc[order].reset_index(drop=True), t.iloc[order].reset_index(drop=True)
    if "samplingheight" in cols:
        hts = df[cols["samplingheight"]].astype(float)
        h = float(hts.max()) if intake_height is None else float(intake_height)
        keep = np.isclose(hts, h)
        if not keep.any():
            raise HeightNotFoundError(f"{path}: no rows at sampling height {h:g} (column SamplingHeight); "
                                      f"the file has {sorted(hts.unique())}", sorted(hts.unique()))
        df, t = df[keep], t[keep]
    else:
        h = _header_height(meta)
        if intake_height is not None and np.isfinite(h) and not np.isclose(h, intake_height):
            raise HeightNotFoundError(f"{path}: header SAMPLING HEIGHTS {h:g} m, not {intake_height:g}", [h])

    def col(name, fill):
        c = cols.get(name)
        if c is None:
            return np.full(len(df), fill)
        v = pd.to_numeric(df[c], errors="coerce").to_numpy(float)
        return np.where(v < 0, np.nan, v)

    fac = unit_factor(meta.get("MEASUREMENT UNIT", UNITS[species]), species, str(path),
                      "header line '# MEASUREMENT UNIT'")
    value = col(species, np.nan) * fac
    flag = df[cols["flag"]].astype(str).str.strip().to_numpy() if "flag" in cols else np.full(len(df), "O")
    qcflag = np.where((flag == "O") & np.isfinite(value), 0, 1).astype(np.int64)
    nval = col("nbpoints", np.nan)
    attrs = {"site": meta.get("STATION CODE", df[cols["site"]].iloc[0] if "site" in cols else ""),
             "intake_height": h, "species": species, "units": UNITS[species], "format": "icos",
             "scale": meta.get("MEASUREMENT SCALE", meta.get("CALIBRATION SCALE", meta.get("SCALE", "unknown"))),
             "time_convention_source": "start of the hour (ICOS ATC L2)"}
    for key, name in (("lat", "LATITUDE"), ("lon", "LONGITUDE"), ("elevation", "ALTITUDE")):
        if name in meta:
            try:
                attrs[key] = float(meta[name].split()[0])
            except ValueError:
                pass
    ds = xr.Dataset({"value": ("time", value), "value_std_dev": ("time", col("stdev", np.nan) * fac),
                     "nvalue": ("time", np.nan_to_num(nval, nan=0).astype(np.int64)),
                     "qcflag": ("time", qcflag)},
                    coords={"time": t.to_numpy()}, attrs=attrs)
    return ds.sortby("time")
