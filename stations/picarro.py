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
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import fields
from .errors import SpeciesMismatchError, StationFileError
from .settings import DEFAULT

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
#: G2201-i (isotopic analyser): no total column; the total is the sum of the dry isotopologues as
#: the analyser reports them (12CO2_dry + 13CO2, HP_12CH4_dry + HP_13CH4: the high-precision
#: mode, the one for ambient air). The tank calibration takes out the scale difference.
ISOTOPOLOGUE_SUMS = {"co2": ("12CO2_dry", "13CO2"), "ch4": ("HP_12CH4_dry", "HP_13CH4")}
FIELD_WIDTH = 26
FILE_PATTERN = re.compile(r"^(?P<serial>[A-Za-z0-9]+)-(?P<date>\d{8})-(?P<time>\d{6})Z?-DataLog_User.*\.(?:dat|h5)$")

_FORMATS = {
    "FRAC_DAYS_SINCE_JAN1": "%.8f", "FRAC_HRS_SINCE_JAN1": "%.8f", "JULIAN_DAYS": "%.8f",
    "EPOCH_TIME": "%.3f", "ALARM_STATUS": "%d", "INST_STATUS": "%d", "species": "%d",
    "MPVPosition": "%.8f", "OutletValve": "%.8f", "solenoid_valves": "%.8f",
}


class PicarroFormatError(StationFileError):
    """A raw file cannot be read; the message names the file, the line or column, and the fix."""


class SpeciesColumnError(PicarroFormatError, SpeciesMismatchError):
    """A raw file lacks the column(s) of the species asked for (or the H2O column its wet value
    needs): :func:`stations.hourly.ingest` adds the site and the config fix."""


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
    file_columns: list = field(default_factory=list)   # per file: the numeric columns it holds (of those kept)
    skipped: list = field(default_factory=list)        # (zip member, reason) not read


#: suffixes of the files the raw-file search reads (gzip-compressed files and zip archives too)
RAW_SUFFIXES = (".dat", ".dat.gz", ".zip")


class ZipMember:
    """A ``.dat`` file inside a zip archive (Picarro's daily archives): ``archive.zip!member``."""

    def __init__(self, archive: Path, member: str):
        self.archive, self.member = Path(archive), member
        self.name = f"{self.archive.name}!{member}"
        self.parent = self.archive.parent
        self.suffix = ".dat"

    def read_bytes(self) -> bytes:
        with zipfile.ZipFile(self.archive) as z:
            return z.read(self.member)

    def __str__(self):
        return f"{self.archive}!{self.member}"

    __fspath__ = __str__

    def __repr__(self):
        return f"ZipMember({str(self)!r})"

    def __eq__(self, other):
        return isinstance(other, ZipMember) and (self.archive, self.member) == (other.archive, other.member)

    def __hash__(self):
        return hash((self.archive, self.member))


def dat_name(src) -> str:
    """Base name of the ``.dat`` file ``src`` holds (``.gz`` removed, zip member's own name)."""
    name = Path(src.member).name if isinstance(src, ZipMember) else Path(src).name
    return name[:-3] if name.endswith(".gz") else name


def file_serial(src) -> str | None:
    """Analyser serial in the file name (``{serial}-{YYYYMMDD}-{HHMMSS}Z-DataLog_User.dat``)."""
    m = FILE_PATTERN.match(dat_name(src))
    return m.group("serial") if m else None


def _skip_reason(p: Path) -> str | None:
    """Why ``p`` is not read as a raw file (``None``: it is read)."""
    n = p.name
    if n.endswith(RAW_SUFFIXES):
        if n.endswith(".zip") and not zipfile.is_zipfile(p):
            return "not a zip archive (damaged or incomplete copy?); re-copy it or remove it"
        return None
    if n.endswith(".part"):
        return "incomplete file (.part: a copy or the analyser's write was interrupted)"
    if n.endswith(".h5"):
        return None if "DataLog_User" in n else "Picarro private HDF5 file, not a DataLog_User file"
    if n.startswith("."):
        return "hidden file"
    return f"not a raw data file (read are {', '.join(RAW_SUFFIXES)})"


def find_raw_files(path: str | os.PathLike | list) -> tuple[list[Path], list[tuple[Path, str]]]:
    """The raw files of a site folder, and every other file found with the reason it is not read.

    ``path``: a directory (searched recursively), a file, or a list of those. Returns
    ``(files, skipped)``: ``files`` the ``.dat``, ``.dat.gz`` and ``.zip`` files sorted by their
    ``.dat`` name, ``skipped`` a list of ``(path, reason)`` for every other file. Raises
    ``FileNotFoundError`` for a path that does not exist. Cheap enough for the Snakefile's parse
    time (directory listing only; zip archives are only checked for their end record).
    """
    items = list(path) if isinstance(path, (list, tuple)) else [path]
    found: list = []
    for it in items:
        if isinstance(it, ZipMember):     # already expanded by expand_archives
            found.append(it)
            continue
        p = Path(it)
        if p.is_dir():
            found.extend(q for q in p.rglob("*") if q.is_file())
        elif p.is_file():
            found.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such file or directory (expected Picarro raw files "
                                    f"{', '.join(RAW_SUFFIXES)})")
    files, skipped = [], []
    for f in sorted(set(found), key=lambda q: (dat_name(q), str(q))):
        why = None if isinstance(f, ZipMember) else _skip_reason(f)
        if why is None:
            files.append(f)
        else:
            skipped.append((f, why))
    return files, skipped


def expand_archives(files: list) -> tuple[list, list[tuple[object, str]]]:
    """Zip archives replaced by their ``.dat`` / ``.dat.gz`` members; other members are skipped."""
    out, skipped = [], []
    for f in files:
        if isinstance(f, ZipMember) or not str(f).endswith(".zip"):
            out.append(f)
            continue
        with zipfile.ZipFile(f) as z:
            for info in z.infolist():
                if info.is_dir():
                    continue
                m = ZipMember(Path(f), info.filename)
                if info.filename.endswith((".dat", ".dat.gz")) or (
                        info.filename.endswith(".h5") and "DataLog_User" in info.filename):
                    out.append(m)
                else:
                    skipped.append((m, "zip member that is not a .dat file (nor a DataLog_User .h5 file)"))
    return sorted(out, key=lambda q: (dat_name(q), str(q))), skipped


def list_raw_files(path: str | os.PathLike | list) -> list[Path]:
    """The raw files (``.dat``, ``.dat.gz``, ``.zip``) of a directory (recursively), a file or a list.

    Other files are left out here; :func:`find_raw_files` names them with the reason.
    """
    files, _ = find_raw_files(path)
    if not files:
        raise PicarroFormatError(f"{path}: no Picarro raw files ({', '.join(RAW_SUFFIXES)}) found; "
                                 "point at the directory holding the analyser's DataLog_User files")
    return files


def looks_like_picarro_h5(path) -> bool:
    """An HDF5 file of the analyser's DataLog_User archive (its name says so; with h5py: a
    ``results`` table)."""
    try:
        import h5py
    except ImportError:
        return "DataLog_User" in Path(path).name
    try:
        with h5py.File(path, "r") as f:
            return "results" in f
    except OSError:
        return False


def h5_as_text(data: bytes, src) -> bytes:
    """The ``results`` table of a Picarro ``DataLog_User`` ``.h5`` file as ``DataLog_User`` text.

    Needs h5py (not a dependency of this package): without it, :class:`PicarroFormatError`
    names the file and what to install."""
    try:
        import h5py
    except ImportError:
        raise PicarroFormatError(
            f"{src}: a Picarro HDF5 (.h5) DataLog_User file; reading it needs the h5py package "
            "(pip install h5py), or export the analyser's DataLog_User .dat files instead") from None
    import io
    with h5py.File(io.BytesIO(data), "r") as f:
        if "results" not in f:
            raise PicarroFormatError(f"{src}: HDF5 file without a 'results' table; not a Picarro "
                                     "DataLog_User archive file")
        table = f["results"][()]
    df = pd.DataFrame({n: table[n] for n in table.dtype.names})
    if "EPOCH_TIME" not in df and "time" in df:
        df = df.rename(columns={"time": "EPOCH_TIME"})
    for c in ("DATE", "TIME"):
        df.pop(c, None)
    epoch = df["EPOCH_TIME"].to_numpy(float)
    t = pd.to_datetime(np.round(epoch * 1000).astype("int64"), unit="ms")
    cols = {"DATE": list(t.strftime("%Y-%m-%d")), "TIME": list(t.strftime("%H:%M:%S.%f").str[:-3])}
    cols.update({c: list(np.char.mod("%.10g", df[c].to_numpy(float))) for c in df.columns})
    w = FIELD_WIDTH - 1
    lines = [" ".join(c.ljust(w) for c in cols)] + [" ".join(v.ljust(w) for v in row) for row in zip(*cols.values())]
    return ("\n".join(lines) + "\n").encode("ascii")


def read_bytes(src, problems: list[str] | None = None) -> tuple[bytes, bool]:
    """Content of a raw file (gzip and zip members decompressed, ``.h5`` tables as text) and
    whether it was complete.

    A gzip stream that ends early (a copy cut off) gives the bytes up to the cut, ``False`` and a
    message in ``problems``; the last line is then counted as truncated by the reader.
    """
    data = src.read_bytes() if isinstance(src, ZipMember) else Path(src).read_bytes()
    if dat_name(src).endswith(".h5") or data[:8] == b"\x89HDF\r\n\x1a\n":
        return h5_as_text(data, src), True
    if data[:2] != b"\x1f\x8b":
        return data, True
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = d.decompress(data)
    except zlib.error as exc:
        raise PicarroFormatError(f"{src}: not a valid gzip file ({exc}); re-copy it from the "
                                 "analyser or remove it") from None
    if not d.eof:
        if problems is not None:
            problems.append(f"{src}: gzip stream ends early (the compressed file was cut); "
                            f"{len(out)} bytes read, the last line counted as truncated")
        return out, False
    return out, True


def last_line_complete(raw: bytes, line_start: np.ndarray, nfields: np.ndarray, n_header: int) -> bool:
    """Whether the last line of a file that does not end with a newline is a complete record.

    The analyser pads every field to its 26-character slot, the last one too, so a complete
    record ends with padding; a file cut inside the last field does not. Without padding (files
    written by other tools) the record is complete when it has every field and is as long as
    the longest other record."""
    if raw.endswith(b"\n") or not len(nfields):
        return True
    if nfields[-1] != n_header:
        return False
    if raw[-1:] in (b" ", b"\t", b"\r"):
        return True
    last = len(raw) - int(line_start[-1])
    if len(line_start) < 2:
        return False
    lens = np.diff(np.r_[line_start, len(raw) + 1])[:-1] - 1
    return last >= int(lens[nfields[:-1] == n_header].max(initial=10 ** 9))


def _line_text(raw: bytes, start: int) -> str:
    end = raw.find(b"\n", start)
    return raw[start:end if end >= 0 else len(raw)].decode("ascii", errors="replace")


def _note_bad_lines(path, line, truncated, unparsable, problems: list) -> None:
    """Up to 20 messages per kind of dropped line into ``problems``."""
    for kind, mask in (("truncated line (fewer fields than the header)", truncated),
                       ("a field is not a number, or more fields than the header", unparsable)):
        for ln in line[mask][:20]:
            problems.append(f"{path}:{ln}: {kind}")
        if mask.sum() > 20:
            problems.append(f"{path}: ... {mask.sum() - 20} more lines: {kind}")


def _holds(columns, species: str) -> bool:
    """Whether a file with ``columns`` holds ``species`` (its column, or the isotopologue sum)."""
    iso = ISOTOPOLOGUE_SUMS.get(species)
    return any(c in columns for c in SPECIES_COLUMNS[species]) or (iso is not None and iso[0] in columns)


def _read_one(path: Path, on_bad_lines: str, problems: list[str], columns=None, species=None):
    """Parse one file: (stored column names, values of kept lines, their line numbers, stats).

    ``columns``: numeric columns to return (``None``: every numeric column of the header). Every
    field of every line is still checked (count of fields, numbers), so the accounting does not
    depend on ``columns``.
    """
    raw, complete = read_bytes(path, problems)
    if not complete and on_bad_lines == "error":
        raise PicarroFormatError(f"{path}: the gzip file is cut off (incomplete copy); re-copy it, or "
                                 "pass on_bad_lines='skip' to read it up to the cut")
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
    if not any(c in header for cols in (*SPECIES_COLUMNS.values(), *ISOTOPOLOGUE_SUMS.values()) for c in cols):
        raise PicarroFormatError(f"{path}: line 1 (header) has no mole-fraction column "
                                 f"(one of {sorted(c for v in SPECIES_COLUMNS.values() for c in v)}); "
                                 "the file holds another species or is not a DataLog_User file")
    if species is not None and not _holds(header, species):
        held = [sp for sp in SPECIES_COLUMNS if _holds(header, sp)]
        raise SpeciesColumnError(
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
    if n and nf[-1] > 0 and not long[-1] and not last_line_complete(raw, lstart, nf, n_hdr):
        short[-1] = True      # the last line was cut before its newline: its last field may be cut
    truncated = short
    unparsable = ~blank & ~truncated & (long | badnum)
    if long.any() and on_bad_lines == "error":
        i = int(np.flatnonzero(long)[0])
        raise PicarroFormatError(f"{path}: line {line[i]} has {nf[i]} fields, the header {n_hdr}; the "
                                 "file is corrupted (two lines merged?). Repair or remove that line, or "
                                 "pass on_bad_lines='skip' to drop and count such lines.")
    _note_bad_lines(path, line, truncated, unparsable, problems)
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
    files, zskipped = expand_archives(list_raw_files(path))
    if not files:
        raise PicarroFormatError(f"{path}: the zip archive(s) hold no .dat files "
                                 f"({len(zskipped)} other members)")
    problems: list[str] = []
    groups: dict[tuple, list] = {}        # column layout -> [(file index, values, lines)]
    stats = []
    file_columns = []
    for k, f in enumerate(files):
        cols, num, line, st = _read_one(f, on_bad_lines, problems, columns, species)
        stats.append(st)
        file_columns.append(cols or ())
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
                 len(files), Path(str(files[0])).parent, n_dup, n_ooo)
    for p in problems:
        log.warning(p)
    return RawRead(rec, summary.reset_index(), problems, file_columns, zskipped)


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


#: Water-vapour correction of a wet mole fraction, ``X_wet / X_dry = 1 + a H2O + b H2O^2`` with
#: ``H2O`` the analyser's reported water vapour in % (column ``H2O``): Chen et al. (2010), Atmos.
#: Meas. Tech. 3, 375-386, eq. 2 and Table 2 (the coefficients the G2301/G2401 firmware uses for
#: ``CO2_dry`` and ``CH4_dry``; Rella et al. 2013, AMT 6, 837-860, confirm them to ~0.1 ppm
#: below 3 % H2O). Species -> (wet column, a, b).
WATER_CORRECTION = {"co2": ("CO2", -0.012, -2.674e-4), "ch4": ("CH4", -0.00982, -2.393e-4),
                    # CO (the G2401 reports CO wet only, no CO_dry): dilution and broadening with
                    # a = -0.0124, b = -0.0006 on h2o_reported, plus the additive water-vapour
                    # offset CO_WATER_OFFSET_PPB on b_h2o_pct (co_wet_to_dry). Coefficients: the
                    # RINGO 2018 (Sodankyla) droplet-test fit of a G2401 after Chen et al. (2013,
                    # AMT 6, 1031-1040), as coded in github.com/JJDHooghiem/JJDH_PhD_code
                    # src_analysis/lts_pic_config.py (co_water_a/b, Dco_water_a..d; function
                    # covcor). The demo writes its wet CO with exactly these (co_dry_to_wet).
                    "co": ("CO", -0.0124, -0.0006)}
#: CO's additive water-vapour offset, ppb: dCO = c1 hb + c2 hb^2 + c3 hb^3 + c4 hb^4 with hb the
#: analyser's ``b_h2o_pct`` (same source as ``WATER_CORRECTION["co"]``); 4.9 ppb at 1 % H2O,
#: 10.5 ppb at 2 %, 12.9 ppb at 2.5 %.
CO_WATER_OFFSET_PPB = (2.306, 4.405, -2.093, 0.315)
WATER_CORRECTION_REF = "Chen et al. 2010, AMT 3, 375-386: X_dry = X_wet / (1 + a H2O + b H2O^2)"
CO_WATER_CORRECTION_REF = ("RINGO 2018 G2401 fit after Chen et al. 2013, AMT 6, 1031-1040: CO_dry = "
                           "(CO_wet - dCO(b_h2o_pct)) / (1 - 0.0124 h2o_reported - 0.0006 h2o_reported^2), "
                           "dCO = 2.306 h + 4.405 h^2 - 2.093 h^3 + 0.315 h^4 ppb")


def water_correction_ref(species: str) -> str:
    """The published source of the water-vapour correction of ``species``."""
    return CO_WATER_CORRECTION_REF if species == "co" else WATER_CORRECTION_REF


def co_water_offset_ppb(b_h2o_pct) -> np.ndarray:
    """CO's additive water-vapour offset (ppb) at ``b_h2o_pct`` (%), :data:`CO_WATER_OFFSET_PPB`."""
    h = np.asarray(b_h2o_pct, float)
    c1, c2, c3, c4 = CO_WATER_OFFSET_PPB
    return h * (c1 + h * (c2 + h * (c3 + h * c4)))


def co_wet_to_dry(co_wet_ppm, h2o_reported, b_h2o_pct) -> np.ndarray:
    """Dry CO (ppm, the analyser's unit) from the G2401's wet ``CO`` (ppm):
    ``(CO_wet - dCO/1000) / (1 + a h + b h^2)`` (:data:`CO_WATER_CORRECTION_REF`)."""
    _, a, b = WATER_CORRECTION["co"]
    h = np.asarray(h2o_reported, float)
    return (np.asarray(co_wet_ppm, float) - co_water_offset_ppb(b_h2o_pct) / 1000.0) / (1.0 + a * h + b * h * h)


def co_dry_to_wet(co_dry_ppm, h2o_reported, b_h2o_pct) -> np.ndarray:
    """The inverse of :func:`co_wet_to_dry`: what the analyser writes as ``CO`` (ppm)."""
    _, a, b = WATER_CORRECTION["co"]
    h = np.asarray(h2o_reported, float)
    return np.asarray(co_dry_ppm, float) * (1.0 + a * h + b * h * h) + co_water_offset_ppb(b_h2o_pct) / 1000.0


def wet_to_dry(wet: np.ndarray, h2o_percent: np.ndarray, species: str, b_h2o_pct=None) -> np.ndarray:
    """Dry mole fraction from the wet one and the reported H2O (%), :data:`WATER_CORRECTION`; CO
    also takes off its water-vapour offset (:func:`co_wet_to_dry`; ``b_h2o_pct`` defaults to
    ``h2o_percent``)."""
    if species == "co":
        return co_wet_to_dry(wet, h2o_percent, h2o_percent if b_h2o_pct is None else b_h2o_pct)
    _, a, b = WATER_CORRECTION[species]
    h = np.asarray(h2o_percent, float)
    return np.asarray(wet, float) / (1.0 + a * h + b * h * h)


def dry_mole_fraction(rr: RawRead, species: str, allow_wet_correction: bool = DEFAULT.allow_wet_correction):
    """Dry mole fraction of ``species`` (analyser units) of every record of ``rr``, per file.

    A file holding the dry column (``CO2_dry``, ``CH4_dry``) gives it; a file with only the wet
    column and ``H2O`` gives the wet value corrected with :func:`wet_to_dry` (when
    ``allow_wet_correction``); a file with neither stops with :class:`PicarroFormatError` naming
    it. CO has a single, wet column (``CO``): with ``WATER_CORRECTION["co"]`` it is always
    corrected with ``H2O`` (a file without ``H2O`` stops), whatever ``allow_wet_correction``
    says, since the G2401 writes no dry CO. Returns ``(values, corrected,
    sources)``: ``corrected`` marks records whose value was corrected, ``sources`` the source of
    each file of ``rr.summary`` (``"CO2_dry"``, ``"CO2+H2O"``, ...).
    """
    species = species.lower()
    rec = rr.records
    names = list(rr.summary["file"])
    code = rec["file"].cat.codes.to_numpy() if len(rec) else np.zeros(0, int)
    cols = SPECIES_COLUMNS[species]
    dry = cols[0]
    values = np.full(len(rec), np.nan)
    corrected = np.zeros(len(rec), bool)
    sources = []
    wet_only = WATER_CORRECTION.get(species, (None,))[0] == dry  # CO: the G2401 writes no dry CO
    for k, fc in enumerate(rr.file_columns or [tuple(rec.columns)] * len(names)):
        sel = code == k
        if wet_only and dry in fc:
            hcol = next((c for c in ("h2o_reported", "H2O") if c in fc), None)
            if hcol is None:
                raise SpeciesColumnError(
                    f"{names[k]}: line 1 (header) has the {dry} column, which the analyser writes wet "
                    f"(no dry {species.upper()} column), but no H2O (or h2o_reported) column to correct "
                    f"it for water vapour; export the DataLog_User files with H2O "
                    f"({CO_WATER_CORRECTION_REF}), or leave {species} out of config species.")
            bcol = "b_h2o_pct" if "b_h2o_pct" in fc else hcol
            values[sel] = wet_to_dry(rec[dry].to_numpy(float)[sel], rec[hcol].to_numpy(float)[sel], species,
                                     rec[bcol].to_numpy(float)[sel])
            corrected[sel] = True
            sources.append(f"{dry}+H2O" + ("" if (hcol, bcol) == ("H2O", "H2O") else f" ({hcol}, {bcol})"))
            continue
        if dry in fc:
            values[sel] = rec[dry].to_numpy(float)[sel]
            sources.append(dry)
            continue
        iso = ISOTOPOLOGUE_SUMS.get(species)
        if iso is not None and all(c in fc for c in iso):
            values[sel] = rec[iso[0]].to_numpy(float)[sel] + rec[iso[1]].to_numpy(float)[sel]
            sources.append("+".join(iso))
            continue
        wet = WATER_CORRECTION.get(species, (None,))[0]
        if wet is not None and wet in fc and "H2O" in fc and allow_wet_correction:
            values[sel] = wet_to_dry(rec[wet].to_numpy(float)[sel], rec["H2O"].to_numpy(float)[sel], species)
            corrected[sel] = True
            sources.append(f"{wet}+H2O")
            continue
        if not fc:                       # empty file: no records
            sources.append("")
            continue
        if wet is not None and wet in fc:
            why = ("and no H2O column to correct it" if "H2O" not in fc else
                   "and stations.allow_wet_correction is false")
            raise PicarroFormatError(
                f"{names[k]}: line 1 (header) has the wet {wet} column but no {dry} {why}; the wet "
                f"value reads about 1.2 % low per % of water vapour (-12 ppm at 2.5 % H2O). Export "
                f"the DataLog_User files with {dry}, or with H2O so that the wet value is corrected "
                f"({WATER_CORRECTION_REF}; allowed by stations.allow_wet_correction).")
        raise SpeciesColumnError(f"{names[k]}: line 1 (header) has no column {' or '.join(cols)} for "
                                 f"species {species!r}; the file holds another species")
    return values, corrected, sources


class SerialMismatchError(PicarroFormatError):
    """A raw file was written by another analyser than the site's (``analyser.serial``)."""


def expected_serials(site: dict) -> list[str]:
    """``analyser.serial`` of a site entry as a list (a string, or a list after an exchange)."""
    ser = (site.get("analyser") or {}).get("serial")
    if ser is None:
        return []
    return [str(x) for x in (ser if isinstance(ser, (list, tuple)) else [ser])]


def check_serials(files: list, site: dict, sites: list[dict] | None = None,
                  stations_file: str = "config/stations.yaml") -> tuple[dict, list]:
    """Check the analyser serial in every raw file's name against the site's ``analyser.serial``.

    Picarro names each file ``{serial}-{YYYYMMDD}-{HHMMSS}Z-DataLog_User.dat``. A file of another
    serial stops with :class:`SerialMismatchError` naming the file, the serial found, the one
    expected and, when ``sites`` is given, the site that analyser belongs to. Returns
    ``(counts, unnamed)``: files per serial, and the files whose name carries no serial (not
    checked; the caller logs them). A site without ``analyser.serial`` is not checked.
    """
    want = expected_serials(site)
    counts: dict[str, int] = {}
    unnamed = []
    for f in files:
        ser = file_serial(f)
        if ser is None:
            unnamed.append(f)
            continue
        counts[ser] = counts.get(ser, 0) + 1
        if want and ser not in want:
            owner = [s["id"] for s in (sites or []) if ser in expected_serials(s)]
            where = (f"that is the analyser of site {owner[0]}: move the file to {owner[0]}'s raw folder"
                     if owner else "no site of the stations file has that analyser: move the file "
                     "out of this folder")
            raise SerialMismatchError(
                f"{f}: analyser serial {ser} (from the file name), but site {site['id']} expects "
                f"{' or '.join(want)} (analyser.serial in {stations_file}); {where}. If {site['id']}'s "
                f"analyser was exchanged, set its analyser.serial to [{', '.join(want + [ser])}].")
    return counts, unnamed
