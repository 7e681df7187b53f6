"""Writer and reader of Picarro G2401/G2301 raw ``DataLog_User`` ``.dat`` files.

The analyser writes one whitespace-separated text file per period (usually one per hour), named
``{serial}-{YYYYMMDD}-{HHMMSS}Z-DataLog_User.dat``. The first line holds the column names; each
field is left-justified in a 26-character slot. ``EPOCH_TIME`` (seconds since 1970-01-01 UTC) is
the time stamp this reader uses; ``DATE``/``TIME`` are checked against it so that files written in
local time are reported instead of silently shifted.

Reading many files (:func:`read_raw`) concatenates them in file-name order, then

- counts lines that could not be parsed (fewer fields than the header, a field that is not a number:
  usually a file truncated by a power cut) and either raises :class:`PicarroFormatError` naming the
  file and line (``on_bad_lines="error"``) or drops them and counts them (``"skip"``);
- removes duplicated records (same ``EPOCH_TIME``; the first copy in file-name order is kept) and
  counts them per file;
- counts records that are earlier than a record before them (out of order) and sorts by time.

Every line read is accounted for in the per-file summary returned with the records.
"""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import fields

log = logging.getLogger(__name__)

#: Columns of a G2401 ``DataLog_User`` file in the order the analyser writes them.
G2401_COLUMNS = [
    "DATE", "TIME", "FRAC_DAYS_SINCE_JAN1", "FRAC_HRS_SINCE_JAN1", "JULIAN_DAYS", "EPOCH_TIME",
    "ALARM_STATUS", "INST_STATUS", "CavityPressure", "CavityTemp", "DasTemp", "EtalonTemp",
    "WarmBoxTemp", "species", "MPVPosition", "OutletValve", "solenoid_valves",
    "CO", "CO2", "CO2_dry", "CH4", "CH4_dry", "H2O", "h2o_reported", "b_h2o_pct",
]
#: Columns this package needs (the rest are carried through when present).
REQUIRED_COLUMNS = ["DATE", "TIME", "EPOCH_TIME", "ALARM_STATUS", "CavityPressure", "CavityTemp",
                    "MPVPosition"]
#: Mole-fraction column used for each species (dry mole fraction when the analyser reports it).
SPECIES_COLUMNS = {"co2": ("CO2_dry", "CO2"), "ch4": ("CH4_dry", "CH4"), "co": ("CO",)}
FIELD_WIDTH = 26
FILE_PATTERN = re.compile(r"^(?P<serial>[A-Za-z0-9]+)-(?P<date>\d{8})-(?P<time>\d{6})Z?-DataLog_User.*\.dat$")

_FORMATS = {
    "FRAC_DAYS_SINCE_JAN1": "%.8f", "FRAC_HRS_SINCE_JAN1": "%.8f", "JULIAN_DAYS": "%.8f",
    "EPOCH_TIME": "%.3f", "ALARM_STATUS": "%d", "INST_STATUS": "%d", "species": "%d",
    "MPVPosition": "%.8f", "OutletValve": "%.8f", "solenoid_valves": "%.8f",
}


class PicarroFormatError(ValueError):
    """A raw file cannot be read; the message names the file, the line or column, and the fix."""


def file_name(serial: str, start: pd.Timestamp) -> str:
    """Name the analyser gives the file starting at ``start`` (UTC)."""
    return f"{serial}-{start:%Y%m%d-%H%M%S}Z-DataLog_User.dat"


def _fmt_column(name: str, values: np.ndarray) -> list[str]:
    fmt = _FORMATS.get(name, "%.8f")
    if fmt == "%d":
        return [str(int(v)) for v in values]
    return list(np.char.mod(fmt, np.asarray(values, dtype=float)))


def format_records(df: pd.DataFrame) -> str:
    """Text of a ``DataLog_User`` file (header and lines) for records ``df``.

    ``df`` needs ``EPOCH_TIME`` and the numeric columns of :data:`G2401_COLUMNS`; ``DATE``,
    ``TIME`` and the fractional-day columns are derived from ``EPOCH_TIME`` when absent.
    """
    epoch = df["EPOCH_TIME"].to_numpy(dtype=float)
    t = pd.to_datetime(np.round(epoch * 1000).astype("int64"), unit="ms")
    jan1 = pd.to_datetime(t.year.astype(str) + "-01-01")
    frac_days = (t - jan1) / pd.Timedelta(days=1)
    derived = {
        "DATE": list(t.strftime("%Y-%m-%d")),
        "TIME": list(t.strftime("%H:%M:%S.%f").str[:-3]),
        "FRAC_DAYS_SINCE_JAN1": np.asarray(frac_days),
        "FRAC_HRS_SINCE_JAN1": np.asarray(frac_days) * 24.0,
        "JULIAN_DAYS": np.asarray(frac_days) + 1.0,
    }
    cols = []
    for name in G2401_COLUMNS:
        if name in ("DATE", "TIME"):
            cols.append(df[name].tolist() if name in df else derived[name])
        elif name in df:
            cols.append(_fmt_column(name, df[name].to_numpy()))
        elif name in derived:
            cols.append(_fmt_column(name, derived[name]))
        else:
            raise KeyError(f"format_records: column {name!r} missing from the records")
    w = FIELD_WIDTH - 1
    header = " ".join(c.ljust(w) for c in G2401_COLUMNS)
    lines = [" ".join(f.ljust(w) for f in row) for row in zip(*cols)]
    return header + "\n" + "\n".join(lines) + ("\n" if lines else "")


def write_dat(path: str | os.PathLike, df: pd.DataFrame) -> None:
    """Write records ``df`` as one ``DataLog_User`` file (atomically)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(format_records(df))
    os.replace(tmp, path)


@dataclass
class RawRead:
    """Result of :func:`read_raw`: records sorted by time and the per-file account of lines."""

    records: pd.DataFrame   # column ``time`` (UTC, naive), ``file``, ``line`` + analyser columns
    summary: pd.DataFrame   # one row per file, see :func:`read_raw`
    problems: list[str]     # one message per dropped line ("file:line: reason")


def list_raw_files(path: str | os.PathLike | list) -> list[Path]:
    """The ``.dat`` files of a directory (recursively), a single file or a list of those."""
    if isinstance(path, (list, tuple)):
        out: list[Path] = []
        for p in path:
            out.extend(list_raw_files(p))
        return sorted(set(out), key=lambda p: (p.name, str(p)))
    p = Path(path)
    if p.is_dir():
        files = sorted(p.rglob("*.dat"), key=lambda q: (q.name, str(q)))
        if not files:
            raise PicarroFormatError(f"{p}: no Picarro .dat files found in this directory; "
                                     "point at the directory holding the analyser's DataLog_User files")
        return files
    if p.is_file():
        return [p]
    raise FileNotFoundError(f"{p}: no such file or directory (expected Picarro .dat files)")


def _line_text(raw: bytes, start: int) -> str:
    end = raw.find(b"\n", start)
    return raw[start:end if end >= 0 else len(raw)].decode("ascii", errors="replace")


def _read_one(path: Path, on_bad_lines: str, problems: list[str], columns=None, species=None):
    """Parse one file: (stored column names, values of kept lines, their line numbers, stats).

    ``columns``: numeric columns to return (``None``: every numeric column of the header). Every
    field of every line is still checked (count of fields, numbers), so the accounting does not
    depend on ``columns``.
    """
    raw = Path(path).read_bytes()
    stats = {"file": path.name, "lines_read": 0, "lines_truncated": 0,
             "lines_unparsable": 0, "lines_blank": 0}
    if re.search(rb"\S", raw) is None:      # empty or whitespace only (no copy of the file)
        return None, np.empty((0, 0)), np.empty(0, np.int64), stats
    nl = raw.find(b"\n")
    header = raw[:nl if nl >= 0 else len(raw)].decode("ascii", errors="replace").split()
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise PicarroFormatError(
            f"{path}: line 1 (header) lacks column(s) {', '.join(missing)}; a Picarro "
            f"DataLog_User file needs {', '.join(REQUIRED_COLUMNS)}. Is this a {path.suffix} file of "
            "another instrument or a private/synchronised log? Export the DataLog_User files.")
    if not any(c in header for cols in SPECIES_COLUMNS.values() for c in cols):
        raise PicarroFormatError(f"{path}: line 1 (header) has no mole-fraction column "
                                 f"(one of {sorted(c for v in SPECIES_COLUMNS.values() for c in v)}); "
                                 "the file holds another species or is not a DataLog_User file")
    if species is not None and not any(c in header for c in SPECIES_COLUMNS[species]):
        held = [sp for sp, cols in SPECIES_COLUMNS.items() if any(c in header for c in cols)]
        raise PicarroFormatError(
            f"{path}: line 1 (header) has no {species.upper()} column ({' or '.join(SPECIES_COLUMNS[species])}); "
            f"the file holds {', '.join(held)}: a file of another analyser or species. Remove it from "
            f"the site's directory or read it with species={held[0]!r}.")
    numeric = [c for c in header if c not in ("DATE", "TIME")]
    keep_cols = numeric if columns is None else [c for c in numeric if c in set(columns) | {"EPOCH_TIME"}]
    out_index = {c: k for k, c in enumerate(keep_cols)}
    col_out = np.array([fields.SKIP_VALIDATE if c in ("DATE", "TIME") else out_index.get(c, fields.SKIP_NUMERIC)
                        for c in header], np.int64)
    buf = np.frombuffer(raw, np.uint8)
    start = nl + 1 if nl >= 0 else len(raw)
    values, nf, badnum, lstart = fields.scan_fields(buf, start, col_out, len(keep_cols))
    n = len(nf)
    n_hdr = len(header)
    line = np.arange(2, n + 2)
    stats["lines_read"] = n
    blank = nf == 0
    long = nf > n_hdr
    short = (nf > 0) & (nf < n_hdr)
    if n and not raw.endswith(b"\n") and nf[-1] > 0 and not long[-1]:
        short[-1] = True      # the last line was cut before its newline: its last field may be cut
    truncated = short
    unparsable = ~blank & ~truncated & (long | badnum)
    if long.any() and on_bad_lines == "error":
        i = int(np.flatnonzero(long)[0])
        raise PicarroFormatError(f"{path}: line {line[i]} has {nf[i]} fields, the header {n_hdr}; the "
                                 "file is corrupted (two lines merged?). Repair or remove that line, or "
                                 "pass on_bad_lines='skip' to drop and count such lines.")
    for kind, mask in (("truncated line (fewer fields than the header)", truncated),
                       ("a field is not a number, or more fields than the header", unparsable)):
        for ln in line[mask][:20]:
            problems.append(f"{path}:{ln}: {kind}")
        if mask.sum() > 20:
            problems.append(f"{path}: ... {mask.sum() - 20} more lines: {kind}")
    if (truncated.any() or unparsable.any()) and on_bad_lines == "error":
        i = int(np.flatnonzero(truncated | unparsable)[0])
        kind = "is truncated" if truncated[i] else "has a field that is not a number"
        raise PicarroFormatError(
            f"{path}: line {line[i]} {kind} ({int(truncated.sum())} truncated, {int(unparsable.sum())} "
            "unparsable lines in this file). Pass on_bad_lines='skip' to drop and count such lines.")
    keep = ~(truncated | unparsable | blank)
    stats.update(lines_truncated=int(truncated.sum()), lines_unparsable=int(unparsable.sum()),
                 lines_blank=int(blank.sum()))
    ki = np.flatnonzero(keep)
    if len(ki):   # EPOCH_TIME is UTC; DATE/TIME of the first kept line must agree with it
        first = _line_text(raw, int(lstart[ki[0]])).split()
        d0, t0 = (first + ["", ""])[header.index("DATE")], (first + ["", ""])[header.index("TIME")]
        try:
            stamp = pd.Timestamp(np.datetime64(f"{d0}T{t0}", "ms"))
        except ValueError:
            stamp = pd.to_datetime(f"{d0} {t0}", format="ISO8601", errors="coerce")
        if pd.isna(stamp):
            raise PicarroFormatError(f"{path}: line {line[ki[0]]}: DATE/TIME {d0!r} {t0!r} is not a date")
        e0 = values[ki[0], out_index["EPOCH_TIME"]]
        t_epoch = pd.Timestamp(int(round(e0 * 1000)), unit="ms")
        shift = (stamp - t_epoch) / pd.Timedelta(hours=1)
        if abs(shift) > 1.0 / 3600 * 2:
            raise PicarroFormatError(
                f"{path}: line {line[ki[0]]}: DATE/TIME {stamp} differs from EPOCH_TIME "
                f"({t_epoch} UTC) by {shift:+.2f} h: the analyser clock logs local time. Set the "
                "analyser to UTC or convert DATE/TIME before ingest (EPOCH_TIME is used as UTC).")
    return tuple(keep_cols), values[ki], line[ki], stats


def read_raw(path, on_bad_lines: str = "error", columns=None, species: str | None = None) -> RawRead:
    """Read Picarro ``DataLog_User`` files (a directory, a file or a list of them).

    Returns :class:`RawRead`: ``records`` sorted by ``time`` with duplicates removed, and a
    ``summary`` with, per file, ``lines_read`` (data lines, header excluded), ``lines_truncated``,
    ``lines_unparsable`` (a field that is not a number, or more fields than the header),
    ``lines_blank``, ``lines_parsed``, ``lines_duplicate`` (records whose ``EPOCH_TIME`` was
    already read from an earlier line or file), ``lines_out_of_order`` and ``records`` (unique
    records kept). ``lines_read = truncated + unparsable + blank + parsed`` and
    ``parsed = duplicate + records`` hold for every file. ``columns``: the numeric columns to keep
    (default all; ``EPOCH_TIME`` always); every field is checked either way. ``species``: every
    file must hold that species (else :class:`PicarroFormatError` naming the file).
    """
    if on_bad_lines not in ("error", "skip"):
        raise ValueError("on_bad_lines must be 'error' or 'skip'")
    files = list_raw_files(path)
    problems: list[str] = []
    groups: dict[tuple, list] = {}        # column layout -> [(file index, values, lines)]
    stats = []
    for k, f in enumerate(files):
        cols, num, line, st = _read_one(f, on_bad_lines, problems, columns, species)
        stats.append(st)
        if cols is not None and len(num):
            groups.setdefault(cols, []).append((k, num, line))
    names = [f.name for f in files]
    if len(set(names)) < len(names):
        names = [str(f) for f in files]
        for st, nm in zip(stats, names):
            st["file"] = nm
    summary = pd.DataFrame(stats).set_index("file")
    if not groups:
        raise PicarroFormatError(f"{path}: no readable records in {len(files)} file(s)")
    frames = []
    for cols, parts in groups.items():
        part = pd.DataFrame(np.concatenate([p[1] for p in parts]), columns=list(cols))
        part.insert(0, "_file", np.concatenate([np.full(len(p[1]), p[0], np.int32) for p in parts]))
        part.insert(1, "line", np.concatenate([p[2] for p in parts]))
        frames.append(part)
    rec = frames[0] if len(frames) == 1 else \
        pd.concat(frames, ignore_index=True).sort_values(["_file", "line"], kind="stable")
    fidx = rec["_file"].to_numpy()
    epoch = rec["EPOCH_TIME"].to_numpy()
    counts = np.bincount(fidx, minlength=len(files))
    summary["lines_parsed"] = counts
    # out of order: earlier than the latest record before it (in file-name, line order)
    ooo = np.zeros(len(rec), bool)
    ooo[1:] = epoch[1:] < np.maximum.accumulate(epoch)[:-1]
    dup = pd.Series(epoch).duplicated(keep="first").to_numpy()
    summary["lines_duplicate"] = np.bincount(fidx[dup], minlength=len(files))
    summary["lines_out_of_order"] = np.bincount(fidx[ooo & ~dup], minlength=len(files))
    order = np.flatnonzero(~dup)
    if ooo.any():
        order = order[np.argsort(epoch[order], kind="stable")]
    if len(order) < len(rec) or ooo.any():
        rec = rec.iloc[order]
    rec = rec.reset_index(drop=True)
    rec.insert(0, "time", pd.to_datetime(np.round(rec["EPOCH_TIME"].to_numpy() * 1000).astype("int64"),
                                         unit="ms"))
    rec.insert(1, "file", pd.Categorical.from_codes(rec.pop("_file").to_numpy(), categories=names))
    summary["records"] = summary["lines_parsed"] - summary["lines_duplicate"]
    n_dup, n_ooo = int(summary["lines_duplicate"].sum()), int(summary["lines_out_of_order"].sum())
    if n_dup or n_ooo:
        log.info("%d files from %s: %d duplicated and %d out-of-order records (removed / sorted)",
                 len(files), files[0].parent, n_dup, n_ooo)
    for p in problems:
        log.warning(p)
    return RawRead(rec, summary.reset_index(), problems)


def species_column(records: pd.DataFrame, species: str, where: str = "") -> str:
    """Name of the column holding ``species`` (dry mole fraction preferred)."""
    species = species.lower()
    if species not in SPECIES_COLUMNS:
        raise ValueError(f"species must be one of {sorted(SPECIES_COLUMNS)}, not {species!r}")
    for c in SPECIES_COLUMNS[species]:
        if c in records:
            return c
    raise PicarroFormatError(f"{where}: no column {' or '.join(SPECIES_COLUMNS[species])} for "
                             f"species {species!r}; the files hold another species")
