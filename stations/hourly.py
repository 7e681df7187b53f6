"""Raw records -> calibrated, QC-flagged hourly means per inlet (ObsPack-like NetCDF).

:func:`process_site` chains reading (:mod:`stations.picarro`), instrument QC
(:mod:`stations.qc`), calibration (:mod:`stations.calibration`), the spike filter and
:func:`aggregate`. :func:`write_hourly_dir` writes ``{site}_{height}m.nc`` per inlet,
``ingest_summary.csv`` (every raw line accounted for, per file), ``calibration_cycles.csv`` and
``target_tank.csv``.

Hourly ``qcflag`` bits: 1 = LOW_COVERAGE (usable ambient records cover less than ``min_coverage``
of the time the inlet is normally sampled in an hour; also set for hours without data),
2 = CAL_EXTRAPOLATED (some records used a calibration held constant beyond the calibration
cycles). Coverage of inlet *i* = n_usable × median record interval / (3600 s × duty_i), where duty_i
is the inlet's share of all ambient records of the data set (1 for a single-inlet site).
"""
from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from . import calibration as calm
from . import picarro
from . import qc as qcm
from .sites import inlet_valves, site_path_name, tank_table

log = logging.getLogger(__name__)

LOW_COVERAGE, HOUR_CAL_EXTRAPOLATED = 1, 2
UNITS = {"co2": "ppm", "ch4": "ppb", "co": "ppb"}
# the analyser writes CH4 and CO in ppm; the hourly files hold them in ppb
_RAW_TO_UNITS = {"co2": 1.0, "ch4": 1000.0, "co": 1000.0}


#: raw columns the chain uses (the reader still checks every field of every line)
USED_COLUMNS = tuple(picarro.REQUIRED_COLUMNS) + tuple(
    c for cols in picarro.SPECIES_COLUMNS.values() for c in cols)


@dataclass
class SiteIngest:
    records: pd.DataFrame                 # time, file, valve, kind, raw, value, qc
    summary: pd.DataFrame                 # per file account of lines
    calibration: calm.Calibration
    hourly: dict = field(default_factory=dict)   # height -> hourly DataFrame
    problems: list = field(default_factory=list)


def aggregate(time: np.ndarray, value: np.ndarray, usable: np.ndarray, extrap: np.ndarray,
              record_seconds: float, duty: float, min_coverage: float,
              hours: pd.DatetimeIndex) -> pd.DataFrame:
    """Hourly mean, std (ddof=1), count, coverage and qcflag of usable records on ``hours``."""
    t = pd.DatetimeIndex(time[usable]).floor("h")
    df = pd.DataFrame({"h": t, "v": value[usable], "x": extrap[usable]})
    g = df.groupby("h")
    out = pd.DataFrame(index=hours)
    out["value"] = g["v"].mean().reindex(hours)
    out["value_std_dev"] = g["v"].std().reindex(hours)
    out["nvalue"] = g["v"].size().reindex(hours).fillna(0).astype(np.int64)
    out["coverage"] = out["nvalue"] * record_seconds / (3600.0 * max(duty, 1e-9))
    flag = np.where(out["coverage"] < min_coverage, LOW_COVERAGE, 0)
    flag = flag | np.where(g["x"].any().reindex(hours).fillna(False).astype(bool),
                           HOUR_CAL_EXTRAPOLATED, 0)
    out["qcflag"] = flag.astype(np.int64)
    out.index.name = "time"
    return out


def process_site(raw, site: dict, species: str = "co2", flush_seconds: float = 60.0,
                 min_coverage: float = 0.5, on_bad_lines: str = "skip",
                 qc_kw: dict | None = None, spike_kw: dict | None = None,
                 period: tuple | None = None, margin_hours: float = 12.0) -> SiteIngest:
    """Read, QC, calibrate and aggregate the raw files ``raw`` (directory/files) of ``site``.

    ``period`` = (start, end) UTC, end exclusive: the hourly axis of the output. Files whose
    name dates them (``...-YYYYMMDD-HHMMSSZ-DataLog_User.dat``) more than ``margin_hours`` outside
    the period are not read; records in the margin still serve calibration.
    """
    files = picarro.list_raw_files(raw)
    if period is not None:
        p0 = pd.Timestamp(period[0]) - pd.Timedelta(hours=margin_hours)
        p1 = pd.Timestamp(period[1]) + pd.Timedelta(hours=margin_hours)
        files = [f for f in files if _file_in(f, p0, p1)]
        if not files:
            raise FileNotFoundError(f"{raw}: no raw files dated between {p0} and {p1}")
    rr = picarro.read_raw(files, on_bad_lines=on_bad_lines, columns=USED_COLUMNS, species=species)
    rec = rr.records
    col = picarro.species_column(rec, species, where=str(raw))
    raw_v = rec[col].to_numpy(float) * _RAW_TO_UNITS[species]
    qc = qcm.flag_instrument(rec, col, flush_seconds=flush_seconds, **(qc_kw or {}))
    valve = np.rint(rec["MPVPosition"].to_numpy()).astype(np.int64)
    inlets = inlet_valves(site)
    tanks = tank_table(site, species)
    kind_code = np.where(np.isin(valve, list(inlets)), 0, np.where(np.isin(valve, list(tanks)), 1, 2))
    kind = pd.Categorical.from_codes(kind_code, categories=["ambient", "tank", "other"])
    value, extrap, cal = calm.calibrate(rec, raw_v, qc, tanks, species=species)
    if cal.cycles.empty:
        log.warning("site %s: no calibration cycle found in %s (tank valves %s of stations.yaml "
                    "never seen with usable records): every record is flagged 'missing'",
                    site["id"], raw, sorted(tanks))
    qc[extrap] |= qcm.CAL_EXTRAPOLATED
    qc[np.isnan(value)] |= qcm.MISSING
    times = rec["time"].to_numpy()
    for v in inlets:
        sel = valve == v
        ok = sel & ((qc & qcm.EXCLUDE) == 0)
        spk = qcm.flag_spikes(times, value, ok, **(spike_kw or {}))
        qc[spk] |= qcm.SPIKE
    out = pd.DataFrame({"time": rec["time"], "file": rec["file"], "line": rec["line"],
                        "valve": valve, "kind": kind, "raw": raw_v, "value": value, "qc": qc})
    dt = float(np.median(np.diff(times).astype("timedelta64[ms]").astype(float))) / 1000.0 \
        if len(times) > 1 else 1.0
    n_amb = max(int((kind == "ambient").sum()), 1)
    if period is not None:
        hours = pd.date_range(pd.Timestamp(period[0]), pd.Timestamp(period[1]), freq="h",
                              inclusive="left")
    else:
        hours = pd.date_range(pd.Timestamp(times[0]).floor("h"), pd.Timestamp(times[-1]).floor("h"),
                              freq="h")
    hourly = {}
    used = np.zeros(len(out), bool)
    for v, h in inlets.items():
        sel = valve == v
        duty = sel.sum() / n_amb
        ok = sel & ((qc & qcm.EXCLUDE) == 0)
        hr = aggregate(times, value, ok, extrap, dt, duty, min_coverage, hours)
        hourly[h] = hr
        good_hours = hr.index[(hr["qcflag"] & LOW_COVERAGE) == 0]
        used |= ok & pd.DatetimeIndex(times).floor("h").isin(good_hours)
    out["used"] = used
    out["in_period"] = pd.DatetimeIndex(times).floor("h").isin(hours)
    summary = _summary(rr.summary, out)
    log.info("site %s: %d records, %d used, %d calibration cycles, target bias %.3f (%s)",
             site["id"], len(out), int(used.sum()), len(cal.cycles),
             cal.target_summary["bias"], species)
    return SiteIngest(out, summary, cal, hourly, rr.problems)


def _file_in(path: Path, p0: pd.Timestamp, p1: pd.Timestamp) -> bool:
    m = picarro.FILE_PATTERN.match(Path(path).name)
    if not m:
        return True
    t = pd.Timestamp(m.group("date") + "T" + m.group("time"))
    return p0 - pd.Timedelta(days=1) <= t <= p1


def _summary(files: pd.DataFrame, out: pd.DataFrame) -> pd.DataFrame:
    s = files.set_index("file").copy()
    fc = out["file"].cat
    code = fc.codes.to_numpy()
    # categories are the file names of the summary, in the same order (see picarro.read_raw)
    reorder = pd.Index(fc.categories).get_indexer(s.index)
    kind = out["kind"].to_numpy()
    amb = kind == "ambient"
    qc = out["qc"].to_numpy()
    excl = (qc & qcm.EXCLUDE) != 0
    in_period = out["in_period"].to_numpy()
    used = out["used"].to_numpy()
    ncat = len(fc.categories)

    def cnt(mask):
        return np.bincount(code[mask], minlength=ncat)[reorder].astype(int)

    s["records_ambient"] = cnt(amb)
    s["records_tank"] = cnt(kind == "tank")
    s["records_other_valve"] = cnt(kind == "other")
    for bit, name in qcm.FLAG_NAMES.items():
        s[f"flag_{name}"] = cnt((qc & bit) != 0)
    s["ambient_excluded"] = cnt(amb & excl)
    s["ambient_outside_period"] = cnt(amb & ~excl & ~in_period)
    s["ambient_low_coverage"] = cnt(amb & ~excl & in_period & ~used)
    s["ambient_used"] = cnt(used)
    return s.reset_index()


def to_dataset(hr: pd.DataFrame, site: dict, height: float, species: str, scale: str,
               target: dict | None = None) -> xr.Dataset:
    """ObsPack-like dataset of one inlet (see docs/formats.md)."""
    units = UNITS[species]
    ds = xr.Dataset(
        {"value": ("time", hr["value"].to_numpy(float), {"units": units, "long_name": f"{species} dry mole fraction, hourly mean"}),
         "value_std_dev": ("time", hr["value_std_dev"].to_numpy(float), {"units": units, "long_name": "standard deviation of the records in the hour"}),
         "nvalue": ("time", hr["nvalue"].to_numpy(np.int64), {"long_name": "number of records averaged"}),
         "coverage": ("time", hr["coverage"].to_numpy(float), {"long_name": "fraction of the inlet's scheduled sampling time with usable records"}),
         "qcflag": ("time", hr["qcflag"].to_numpy(np.int64), {"flag_masks": [1, 2], "flag_meanings": "low_coverage calibration_extrapolated"})},
        coords={"time": ("time", hr.index.to_numpy(), {"long_name": "start of the hour (UTC); the value covers [time, time+1h)"})})
    ds.attrs = {"site": site["id"], "site_name": site.get("name", site["id"]),
                "lon": float(site["lon"]), "lat": float(site["lat"]),
                "intake_height": float(height), "elevation": float(site["elevation"]),
                "scale": scale, "species": species, "units": units,
                "time_convention": "start of averaging interval, UTC"}
    if target:
        ds.attrs.update({"target_bias": target["bias"], "target_scatter": target["scatter"],
                         "target_n": target["n"], "target_goal": target["goal"],
                         "target_exceeds_goal": int(target["exceeds_goal"])})
    return ds


def write_hourly_dir(ing: SiteIngest, site: dict, out_dir: str | os.PathLike, species: str = "co2") -> list[Path]:
    """Write the hourly directory atomically (temporary sibling directory, then rename)."""
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(out_dir.name + f".tmp{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    scale = (site.get("calibration") or {}).get("scale", "unknown")
    paths = []
    for h, hr in ing.hourly.items():
        ds = to_dataset(hr, site, h, species, scale, ing.calibration.target_summary)
        p = tmp / site_path_name(site["id"], h)
        ds.to_netcdf(p, encoding={"time": {"units": "seconds since 1970-01-01 00:00:00", "dtype": "int64"}})
        paths.append(out_dir / p.name)
    ing.summary.to_csv(tmp / "ingest_summary.csv", index=False)
    ing.calibration.cycles.to_csv(tmp / "calibration_cycles.csv", index=False)
    ing.calibration.target.to_csv(tmp / "target_tank.csv", index=False)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(tmp, out_dir)
    return paths


def process_site_hourly_files(path, site: dict, species: str = "co2", min_coverage: float = 0.5,
                              period: tuple | None = None) -> SiteIngest:
    """Ingest already-hourly files of a site (our/ObsPack NetCDF, ICOS ATC text, plain CSV).

    For every inlet of ``site`` the file (or, for ICOS, the rows) with that intake height is
    read with :func:`stations.read`, put on the period's hourly axis (times floored to the hour;
    several values in one hour are averaged); rows whose ``qcflag`` has bit 1 set (our
    LOW_COVERAGE; the ICOS reader maps flags other than ``O`` to 1) are counted, not used. ``nvalue`` below ``min_coverage`` × the median ``nvalue`` of the file
    is flagged too. The ingest summary counts per file: rows read, rows in the period, rows
    flagged by the source, rows used.
    """
    from .read import detect_format, read
    p = Path(path)
    files = sorted(f for f in (p.iterdir() if p.is_dir() else [p])
                   if f.suffix in (".nc", ".nc4", ".txt", ".csv"))
    if not files:
        raise FileNotFoundError(f"{path}: no hourly files (.nc, .txt, .csv) for site {site['id']}")
    inlets = inlet_valves(site)
    found: dict = {}
    rows = []
    for f in files:
        fmt = detect_format(f)
        for h in inlets.values():
            try:
                ds = read(f, format=fmt, species=species, intake_height=h if fmt != "csv" else None)
            except ValueError as exc:
                if "intake_height" in str(exc) or "sampling height" in str(exc):
                    continue
                raise
            fh = float(ds.attrs.get("intake_height", h))
            if not np.isclose(fh, h) or h in found:
                continue
            found[h] = (f, ds)
    for h in inlets.values():
        if h not in found:
            raise ValueError(f"{path}: no file holds site {site['id']} inlet {h:g} m "
                             f"(intake_height attribute / SamplingHeight column); files: "
                             f"{[f.name for f in files]}")
    if period is not None:
        hours = pd.date_range(pd.Timestamp(period[0]), pd.Timestamp(period[1]), freq="h", inclusive="left")
    else:
        t_all = np.concatenate([ds["time"].values for _, ds in found.values()])
        hours = pd.date_range(pd.Timestamp(t_all.min()).floor("h"), pd.Timestamp(t_all.max()).floor("h"), freq="h")
    hourly_out = {}
    for h, (f, ds) in found.items():
        df = ds[["value", "value_std_dev", "nvalue", "qcflag"]].to_dataframe()
        n_read = len(df)
        df.index = pd.DatetimeIndex(df.index).floor("h")
        inside = df.index.isin(hours)
        df = df[inside]
        q = pd.to_numeric(df["qcflag"], errors="coerce").fillna(1).to_numpy().astype(np.int64)
        src_flag = ((q & LOW_COVERAGE) != 0) | ~np.isfinite(df["value"].to_numpy())
        nv = df["nvalue"].to_numpy(float)
        med = np.nanmedian(nv[nv > 0]) if (nv > 0).any() else 0
        ok = df[~src_flag]
        g = ok.groupby(level=0)
        out = pd.DataFrame(index=hours)
        out["value"] = g["value"].mean().reindex(hours)
        out["value_std_dev"] = g["value_std_dev"].mean().reindex(hours)
        out["nvalue"] = g["nvalue"].sum().reindex(hours).fillna(0).astype(np.int64)
        out["coverage"] = (out["nvalue"] / med).clip(upper=1.0) if med > 0 else \
            np.where(out["value"].notna(), 1.0, 0.0)
        out["qcflag"] = np.where(out["value"].isna() | (out["coverage"] < min_coverage), LOW_COVERAGE, 0)
        out.index.name = "time"
        hourly_out[h] = out
        rows.append({"file": f.name, "intake_height": h, "lines_read": n_read,
                     "rows_in_period": int(inside.sum()), "rows_flagged_by_source": int(src_flag.sum()),
                     "rows_used": int(len(ok))})
    empty = calm.Calibration(pd.DataFrame(columns=["time", "gain", "offset", "n_tanks", "rms_residual", "tanks"]),
                             pd.DataFrame(), pd.DataFrame(columns=["time", "bias"]),
                             {"n": 0, "bias": float("nan"), "scatter": float("nan"),
                              "goal": calm.WMO_GOAL.get(species, float("nan")), "exceeds_goal": False})
    return SiteIngest(pd.DataFrame(), pd.DataFrame(rows), empty, hourly_out, [])
