"""Already-hourly files of a site (our / ObsPack / ICOS / OpenGHG NetCDF, ICOS ATC L2 text, plain
CSV) -> the hourly tables of :mod:`stations.hourly` (the same flags and attributes).

Files are recognised by their content (:func:`stations.read.detect_format`), whatever their
suffix: a site directory may hold ICOS files named ``ICOS_ATC_L2_L2-2024.1_GAT_341.0_CTS.CO2``
next to ObsPack ``co2_..._tower-insitu_....nc`` files. Files whose content is none of these
formats are listed in the ingest summary with the reason (status ``not_read``).
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from gzcarbon.config import PlausibilityConfig

from . import calibration as calm
from . import plausibility as plm
from .errors import FormatNotRecognisedError, HeightNotFoundError
from .hourly_common import (HOUR_EXCLUDE, HOUR_OUT_OF_RANGE, HOUR_STEP, LOW_COVERAGE, SiteIngest,
                            hour_plausibility)
from .read import detect_format, read
from .settings import DEFAULT
from .sites import inlet_valves
from .units import UNITS

log = logging.getLogger(__name__)


def site_files(path) -> tuple[list[Path], list[tuple[Path, str, str]]]:
    """(files with a station format, format) and (file, reason, status) of the other files."""
    p = Path(path)
    cand = sorted(f for f in (p.rglob("*") if p.is_dir() else [p]) if f.is_file())
    found, skipped = [], []
    for f in cand:
        if f.name.startswith("."):
            skipped.append((f, "hidden file", "not_read"))
            continue
        try:
            found.append((f, detect_format(f)))
        except FormatNotRecognisedError as exc:
            skipped.append((f, str(exc), "not_read"))
    return found, skipped


def _find_inlets(path, files: list, site: dict, species: str, time_reference) -> dict:
    """height -> (file, dataset): for every inlet of ``site`` the first file holding it."""
    found: dict = {}
    for f, fmt in files:
        if fmt == "picarro":
            raise FormatNotRecognisedError(
                f"{f}: a Picarro raw file among hourly files of site {site['id']}; keep raw files "
                "and hourly files in separate site directories")
        for h in inlet_valves(site).values():
            if h in found:
                continue
            try:
                ds = read(f, format=fmt, species=species, intake_height=h if fmt != "csv" else None,
                          time_reference=time_reference)
            except HeightNotFoundError:
                continue
            if np.isclose(float(ds.attrs.get("intake_height", h)), h):
                found[h] = (f, ds)
    missing = [h for h in inlet_valves(site).values() if h not in found]
    if missing:
        raise HeightNotFoundError(
            f"{path}: no file holds site {site['id']} inlet(s) {[float(h) for h in missing]} m "
            f"(intake_height attribute / SamplingHeight column); files: {[f.name for f, _ in files]}. "
            "Add the inlet's file or correct the inlets of the site in the stations file.")
    return found


def _hourly_table(ds, hours: pd.DatetimeIndex, species: str, pset: PlausibilityConfig, min_coverage: float):
    """(hourly table on ``hours``, per-file counts) of one inlet's dataset."""
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
    out["qcflag"] = out["qcflag"].to_numpy() | hour_plausibility(
        out["value"].to_numpy(float), out["qcflag"].to_numpy(), species, pset)
    out.index.name = "time"
    counts = {"lines_read": n_read, "rows_in_period": int(inside.sum()),
              "rows_flagged_by_source": int(src_flag.sum()), "rows_used": int(len(ok))}
    return out, counts


def _log_hour_flags(site_id, f, out, species, pset) -> dict:
    q = out["qcflag"].to_numpy()
    for b, what in ((HOUR_OUT_OF_RANGE, f"outside the plausible range {pset.range[species]}"),
                    (HOUR_STEP, f"an isolated step of more than {pset.max_hourly_step[species]:g}")):
        if ((q & b) != 0).any():
            log.warning("site %s: %s: %d hour(s) %s %s, flagged, not used: %s", site_id, f,
                        int(((q & b) != 0).sum()), what, UNITS[species], list(out.index[(q & b) != 0][:5]))
    return {"hours_out_of_range": int(((q & HOUR_OUT_OF_RANGE) != 0).sum()),
            "hours_step": int(((q & HOUR_STEP) != 0).sum()),
            "hours_usable": int((((q & HOUR_EXCLUDE) == 0) & out["value"].notna().to_numpy()).sum())}


def _empty_calibration(species: str) -> calm.Calibration:
    return calm.Calibration(pd.DataFrame(columns=["time", "gain", "offset", "n_tanks", "rms_residual", "tanks"]),
                            pd.DataFrame(), pd.DataFrame(columns=["time", "bias"]),
                            {"n": 0, "bias": float("nan"), "scatter": float("nan"),
                             "goal": calm.WMO_GOAL.get(species, float("nan")), "exceeds_goal": False})


def process_site_hourly_files(path, site: dict, species: str = "co2",
                              min_coverage: float = DEFAULT.min_coverage, period: tuple | None = None,
                              plausibility: PlausibilityConfig | dict | None = None,
                              time_reference: str | None = DEFAULT.time_reference) -> SiteIngest:
    """Ingest already-hourly files of a site (a file or a directory of them, any supported format).

    For every inlet of ``site`` the file (or, for ICOS/ObsPack, the rows) with that intake height
    is read with :func:`stations.read`, put on the period's hourly axis (times floored to the
    hour; several values in one hour are averaged); rows whose ``qcflag`` has bit 1 set (flagged
    by the source) are counted, not used. ``nvalue`` below ``min_coverage`` × the median
    ``nvalue`` of the file is flagged too. Hours outside the plausible range or isolated steps
    (``plausibility``, :mod:`stations.plausibility`) get the hourly bits ``out_of_range`` /
    ``step``. The ingest summary counts per file: rows read, rows in the period, rows flagged by
    the source, hours flagged out of range / step, rows used, usable hours; files that are not
    station files are listed with the reason. The calibration scale of the source is kept in
    ``info['scale']``. ``time_reference``: ObsPack files whose ``time`` comment does not say
    where in the averaging interval the stamp lies (see :func:`stations.netcdf.read_obspack`).
    """
    pset = plm.settings(plausibility)
    files, skipped = site_files(path)
    if not files:
        raise FileNotFoundError(f"{path}: no station files (ObsPack/ICOS/OpenGHG NetCDF, ICOS ATC L2 "
                                f"text, CSV) for site {site['id']}; {len(skipped)} other file(s)")
    for f, why, _ in skipped:
        log.warning("site %s: not read: %s: %s", site["id"], f, why)
    found = _find_inlets(path, files, site, species, time_reference)
    if period is not None:
        hours = pd.date_range(pd.Timestamp(period[0]), pd.Timestamp(period[1]), freq="h", inclusive="left")
    else:
        t_all = np.concatenate([ds["time"].values for _, ds in found.values()])
        hours = pd.date_range(pd.Timestamp(t_all.min()).floor("h"), pd.Timestamp(t_all.max()).floor("h"), freq="h")
    hourly_out, rows = {}, []
    for h, (f, ds) in found.items():
        out, counts = _hourly_table(ds, hours, species, pset, min_coverage)
        hourly_out[h] = out
        rows.append({"file": f.name, "status": "read", "reason": "", "intake_height": h, **counts,
                     **_log_hour_flags(site["id"], f, out, species, pset)})
    rows += [{"file": f.name, "status": status, "reason": why} for f, why, status in skipped]
    scales = sorted({str(ds.attrs.get("scale", "unknown")) for _, ds in found.values()})
    info = {"scale": "; ".join(scales), "source_formats": ",".join(sorted({str(ds.attrs.get("format", ""))
                                                                        for _, ds in found.values()}))}
    return SiteIngest(pd.DataFrame(), pd.DataFrame(rows), _empty_calibration(species), hourly_out, [],
                      skipped=skipped, info=info)
