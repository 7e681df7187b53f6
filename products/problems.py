"""What went wrong in a month, for the top of the report: flagged problems and, per reason, every
receptor and observation that did not make it into the inversion.

Everything is read from what the earlier stages record, and read robustly — a file or a column
that does not exist (older runs, a stage that does not record it yet) is simply not shown:

* ``diagnostics.json`` (rule ``inversion``): ``innovation_screen`` (screened observations),
  ``chi2_test`` (innovation χ² and its p-value), ``largest_normalised_residuals``,
  ``observations_lost`` (selected observations without a receptor, whose receptor has no footprint,
  outside the period, screened) and ``receptors`` (receptors without a footprint);
* ``footprints/failures.csv`` (rule ``jacobian``): receptors HYSPLIT failed on (``receptor_id``,
  optional ``error``), to tell those apart from receptors without a footprint for another reason;
* the hourly files ``obs/hourly/<site>/*.nc`` (rule ``hourly_obs``): hours of the top inlet in the
  selection window that are not in ``selected.csv``, by their ``qcflag`` bits (named by the
  variable's ``flag_masks`` / ``flag_meanings`` attributes), or without a value;
* ``obs/hourly/<site>/ingest_summary.csv``: raw-record counts; the implausibility flags (columns
  ``flag_range``, ``flag_unit``, ``flag_stuck``, ``flag_target``) are problems when not zero, and so
  are raw files whose ``status`` is not ``read`` or ``outside_period`` (named with their ``reason``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .i18n import fill
from .settings import SELECT_HOURS_LOCAL, UTC_OFFSET_HOURS

log = logging.getLogger(__name__)

HYSPLIT_FAILED = "HYSPLIT failed"
NO_FOOTPRINT = "receptor without footprint (not a HYSPLIT failure)"
NO_VALUE = "no hourly value (no usable raw data)"
NOT_SELECTED = "not selected (no QC flag)"
#: hourly flags that do not exclude an hour from the selection
INFORMATIONAL_FLAGS = {"calibration_extrapolated", "cal_extrapolated"}
#: raw-record flags of the ingest summary that are problems when not zero
PROBLEM_RECORD_FLAGS = ("range", "unit", "stuck", "target")
#: raw-file statuses of the ingest summary that are not problems
OK_FILE_STATUS = ("read", "outside_period")


def read_failures(path) -> pd.DataFrame | None:
    """``footprints/failures.csv`` (None when absent or unreadable; logged)."""
    if not path or not Path(path).is_file():
        return None
    try:
        df = pd.read_csv(path, dtype=str)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as err:
        log.warning("%s: not read (%s)", path, err)
        return None
    if "receptor_id" not in df:
        log.warning("%s: no column receptor_id; HYSPLIT failures not shown", path)
        return None
    return df


def _flag_names(da) -> dict[int, str]:
    masks = da.attrs.get("flag_masks")
    meanings = da.attrs.get("flag_meanings")
    if masks is None or meanings is None:
        return {}
    masks = np.atleast_1d(np.asarray(masks)).astype(np.int64).tolist()
    names = str(meanings).split()
    return dict(zip(masks, names)) if len(names) == len(masks) else {}


def station_hours_lost(hourly_dirs, selected: pd.DataFrame, days, utc_offset_hours: float,
                       select_hours_local) -> pd.DataFrame:
    """Per site and reason, the hours of the top inlet in the selection window of the period days that
    are not in ``selected.csv``: ``site, reason, count`` (reason ``QC flag <names>``, ``no hourly
    value …`` or ``not selected …``). Unreadable directories are skipped (logged)."""
    import xarray as xr

    rows = []
    days = {str(d).replace("-", "") for d in (days or [])}
    a, b = (int(select_hours_local[0]), int(select_hours_local[1])) if select_hours_local else (0, 24)
    sel = selected.assign(hour=pd.to_datetime(selected["time"], utc=True).dt.tz_localize(None).dt.floor("h"))
    have = set(zip(sel["site"].astype(str), sel["hour"]))
    for d in hourly_dirs or []:
        files = sorted(Path(d).glob("*.nc"))
        if not files:
            continue
        try:
            dss = [xr.open_dataset(f) for f in files]
        except (OSError, ValueError) as err:
            log.warning("%s: hourly files not read (%s)", d, err)
            continue
        try:
            top = max(dss, key=lambda ds: float(ds.attrs.get("intake_height", 0.0)))
            site = str(top.attrs.get("site", Path(d).name))
            t = pd.DatetimeIndex(top["time"].values)
            if t.tz is not None:
                t = t.tz_convert(None)
            value = top["value"].values.astype(float) if "value" in top else np.full(t.size, np.nan)
            qc = (top["qcflag"].values.astype(np.int64) if "qcflag" in top else np.zeros(t.size, np.int64))
            names = _flag_names(top["qcflag"]) if "qcflag" in top else {}
        finally:
            for ds in dss:
                ds.close()
        local = (t + pd.Timedelta(hours=float(utc_offset_hours))).hour
        win = (local >= a) & (local < b) if a <= b else (local >= a) | (local < b)
        inper = np.array([x.strftime("%Y%m%d") in days for x in t]) if days else np.ones(t.size, bool)
        for i in np.flatnonzero(win & inper):
            if (site, t[i]) in have:
                continue
            bits = [n for m, n in sorted(names.items()) if qc[i] & m and n not in INFORMATIONAL_FLAGS]
            if bits or (qc[i] and not names):
                reason = "QC flag " + ("+".join(bits) if bits else f"{int(qc[i])}")
            elif not np.isfinite(value[i]):
                reason = NO_VALUE
            else:
                reason = NOT_SELECTED
            rows.append((site, reason))
    df = pd.DataFrame(rows, columns=["site", "reason"])
    return df.groupby(["site", "reason"]).size().rename("count").reset_index() if len(df) else \
        pd.DataFrame(columns=["site", "reason", "count"])


def skipped_raw_files(hourly_dirs) -> list[tuple[str, str, str, str]]:
    """(site, file, status, reason) of the raw files ``ingest_summary.csv`` marks as not read (column
    ``status`` other than ``read`` and ``outside_period``; nothing when the column does not exist)."""
    out = []
    for d in hourly_dirs or []:
        p = Path(d) / "ingest_summary.csv"
        if not p.is_file():
            continue
        try:
            df = pd.read_csv(p, dtype=str, keep_default_na=False)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError):
            continue
        if "status" not in df or "file" not in df:
            continue
        bad = df[~df["status"].isin(OK_FILE_STATUS)]
        out += [(Path(d).name, r["file"], r["status"], r.get("reason", "")) for _, r in bad.iterrows()]
    return out


def ingest_counts(hourly_dirs) -> pd.DataFrame:
    """Per site, the sums of the numeric columns of ``ingest_summary.csv`` (empty when none exists)."""
    recs = []
    for d in hourly_dirs or []:
        p = Path(d) / "ingest_summary.csv"
        if not p.is_file():
            continue
        try:
            df = pd.read_csv(p)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as err:
            log.warning("%s: not read (%s)", p, err)
            continue
        num = df.select_dtypes(include=[np.number])
        recs.append({"site": Path(d).name, **{c: int(num[c].sum()) for c in num.columns}})
    return pd.DataFrame(recs)


@dataclass
class _Found:
    """What `collect` accumulates: problem texts, (stage, reason, count) losses, what was read."""

    problems: list[str] = field(default_factory=list)
    losses: list[tuple[str, str, int]] = field(default_factory=list)
    read: list[str] = field(default_factory=list)


def _receptor_problems(diag: dict, fails: pd.DataFrame | None, failed_ids: set, out: _Found) -> None:
    """Receptors HYSPLIT failed on (failures.csv) and receptors without a footprint for another reason."""
    rec = diag.get("receptors") if isinstance(diag.get("receptors"), dict) else None
    if fails is not None and len(fails):
        out.losses.append(("receptors", HYSPLIT_FAILED, len(fails)))
        err = fails["error"].astype(str) if "error" in fails else pd.Series([""] * len(fails))
        ex = "; ".join(f"{r} ({e})" if e and e != "nan" else str(r)
                       for r, e in zip(fails["receptor_id"].head(5), err.head(5)))
        out.problems.append(fill({"en": "{n} receptor(s) HYSPLIT failed on (their observations are not used): {ex}",
                                  "zh": "HYSPLIT 在 {n} 个受体上运行失败（其观测未被使用）：{ex}"},
                                 n=len(fails), ex=ex + (" …" if len(fails) > 5 else "")))
    if rec is not None:
        other = [r for r in rec.get("without_footprint", []) if str(r) not in failed_ids]
        if other:
            out.losses.append(("receptors", NO_FOOTPRINT, len(other)))
            out.problems.append(fill({"en": "{n} receptor(s) without a footprint that are not HYSPLIT failures "
                                            "(footprint missing or empty): {ids}",
                                      "zh": "{n} 个受体没有足迹且并非 HYSPLIT 失败（足迹缺失或为空）：{ids}"},
                                     n=len(other), ids=", ".join(map(str, other[:5])) + (" …" if len(other) > 5 else "")))
        out.read.append(f"diagnostics.json receptors: {rec.get('n')} receptor(s), "
                        f"{rec.get('n_without_footprint')} without footprint")


def _station_problems(selected, hourly_dirs, days, utc_offset_hours, select_hours_local,
                      out: _Found) -> pd.DataFrame:
    """Window hours lost to station QC, implausible raw records, raw files not read; returns the
    per-site sums of the ingest summaries."""
    if hourly_dirs and selected is not None:
        st = station_hours_lost(hourly_dirs, selected, days, utc_offset_hours, select_hours_local)
        out.read.append(f"hourly files of {len(list(hourly_dirs))} site(s): qcflag (flag_meanings), value")
        for reason, n in st.groupby("reason")["count"].sum().items():
            out.losses.append(("station hours (selection window)", str(reason), int(n)))
        qc = st[st["reason"].str.startswith("QC flag")]
        if len(qc):
            per = "; ".join(f"{s}: " + ", ".join(f"{r.removeprefix('QC flag ')} {n}" for r, n in
                                                 zip(g["reason"], g["count"]))
                            for s, g in qc.groupby("site"))
            out.problems.append(fill({"en": "{n} hour(s) in the selection window flagged by station QC and not "
                                            "used ({per})",
                                      "zh": "选择窗口内有 {n} 个小时被站点质控标记而未使用（{per}）"},
                                     n=int(qc['count'].sum()), per=per))
    ing = ingest_counts(hourly_dirs)
    if len(ing):
        out.read.append("ingest_summary.csv columns: " + ", ".join(c for c in ing.columns if c != "site"))
        cols = [f"flag_{f}" for f in PROBLEM_RECORD_FLAGS if f"flag_{f}" in ing]
        bad = ing[ing[cols].sum(axis=1) > 0] if cols else ing.iloc[0:0]
        for _, r in bad.iterrows():
            out.problems.append(fill({"en": "station {site}: raw records flagged as implausible ({what})",
                                      "zh": "站点 {site}：原始记录被标记为不合理（{what}）"}, site=r['site'],
                                     what=", ".join(f"{c.removeprefix('flag_')} {int(r[c])}" for c in cols if r[c])))
    skipped = skipped_raw_files(hourly_dirs)
    for site in dict.fromkeys(s for s, *_ in skipped):
        files = [(f, st, why) for s, f, st, why in skipped if s == site]
        out.problems.append(fill({"en": "station {site}: {n} raw file(s) not read: {files}",
                                  "zh": "站点 {site}：{n} 个原始文件未读取：{files}"}, site=site, n=len(files),
                                 files="; ".join(f"{f} ({st}{': ' + why if why else ''})" for f, st, why in files[:5])
                                 + (" …" if len(files) > 5 else "")))
        for st in dict.fromkeys(st for _, st, _ in files):
            out.losses.append(("raw files", f"not read: {st}", sum(1 for _, s2, _ in files if s2 == st)))
    return ing


def _observation_problems(diag: dict, failed_ids: set, out: _Found) -> dict | None:
    """Selected observations that did not reach the solve (diagnostics ``observations_lost``)."""
    lost = diag.get("observations_lost") if isinstance(diag.get("observations_lost"), dict) else None
    if lost is not None:
        counts: dict[str, int] = {}
        for o in lost.get("observations") or []:
            reason = str(o.get("reason", "?"))
            if reason == "receptor without footprint":
                reason = (f"{HYSPLIT_FAILED} (receptor)" if str(o.get("receptor_id", "")) in failed_ids
                          else "receptor without footprint (not a HYSPLIT failure)")
            counts[reason] = counts.get(reason, 0) + 1
        for reason, n in counts.items():
            out.losses.append(("observations (selected.csv → inversion)", reason, n))
        dropped = {r: n for r, n in counts.items() if not r.startswith("screened")}
        if dropped:
            out.problems.append(fill({"en": "{n} selected observation(s) not used in the inversion: {what}",
                                      "zh": "{n} 个选定的观测未用于反演：{what}"}, n=sum(dropped.values()),
                                     what=", ".join(f"{r} {n}" for r, n in dropped.items())))
        out.read.append(f"diagnostics.json observations_lost: {lost.get('n_selected')} selected, "
                        f"{lost.get('n_used')} used")
    elif "observations_dropped" in diag and int(diag["observations_dropped"] or 0) > 0:
        n = int(diag["observations_dropped"])
        out.losses.append(("observations (selected.csv → inversion)", "no receptor or no footprint", n))
        out.problems.append(fill({"en": "{n} selected observation(s) not used in the inversion (no receptor or no "
                                        "footprint)",
                                  "zh": "{n} 个选定的观测未用于反演（没有受体或没有足迹）"}, n=n))
    return lost


def _screen_problems(diag: dict, lost: dict | None, out: _Found) -> None:
    """Observations beyond the innovation screen's threshold and an innovation χ² out of range."""
    scr = diag.get("innovation_screen") if isinstance(diag.get("innovation_screen"), dict) else None
    if scr is not None and int(scr.get("n_flagged", 0)):
        k = scr.get("threshold_sigma", 3)
        fl = scr.get("flagged") or []
        what = ({"en": "excluded from the solve", "zh": "已从求解中剔除"} if scr.get("action") == "exclude"
                else {"en": "flagged, kept in the solve", "zh": "已标记，仍保留在求解中"})
        words = {"en": ("observed", ", prior model"), "zh": ("观测", "，先验模拟")}
        ex = {c: "; ".join(f"{o.get('site')} {o.get('time')}: {w[0]} {float(o.get('observed', np.nan)):.2f} ppm"
                           f"{w[1]} {float(o.get('prior_model', np.nan)):.2f} ppm "
                           f"({float(o.get('normalised', np.nan)):+.1f} σ)" for o in fl[:10])
                  + (" …" if len(fl) > 10 else "") for c, w in words.items()}
        out.problems.append(fill({"en": "{n} observation(s) beyond {k} σ of their prior prediction, {what}: {ex}",
                                  "zh": "{n} 个观测偏离其先验预测超过 {k} σ，{what}：{ex}"},
                                 n=int(scr['n_flagged']), k=f"{k:g}", what=what, ex=ex))
        if lost is None and int(scr.get("n_excluded", 0)):
            out.losses.append(("observations (selected.csv → inversion)", f"screened: |innovation| > {k:g} sigma",
                               int(scr["n_excluded"])))
    chi = diag.get("chi2_test") if isinstance(diag.get("chi2_test"), dict) else None
    if chi is not None and chi.get("out_of_range"):
        out.problems.append(fill({"en": "innovation χ² = {v} for {n} observations (χ²_r {r}): p-value {p} < {pmin}. "
                                        "The data disagree with the prior and observation errors more than chance "
                                        "allows (errors too small, or bad data); see the largest normalised "
                                        "residuals under Diagnostics.",
                                  "zh": "{n} 个观测的新息 χ² = {v}（χ²_r {r}）：p 值 {p} < {pmin}。数据与先验误差和观测"
                                        "误差的不一致超出了随机所能解释的程度（误差设得过小，或数据有误）；见“诊断”中最大的"
                                        "归一化残差。"},
                                 v=f"{float(chi['value']):.4g}", n=int(chi['dof']), r=f"{float(chi['reduced']):.3g}",
                                 p=f"{float(chi['p_value']):.3g}", pmin=f"{float(chi.get('p_min', 0)):g}"))


def _demo_problems(diag: dict, out: _Found) -> None:
    """A demo whose truth went through the inversion's own footprints (issue 18): every recovery
    number of such a run is optimistic."""
    tt = diag.get("truth_transport") if isinstance(diag.get("truth_transport"), dict) else None
    if tt is not None and tt.get("identical_twin"):
        out.problems.append({"en": "identical-twin demo: the demo's truth was made with the inversion's own "
                                   "footprints (same seed and particles, no transport error), so recovery "
                                   "and coverage figures of this run are optimistic (docs/demo.md; config "
                                   "demo.truth_transport).",
                             "zh": "同卵双胞胎式演示：演示真值是用反演自身的足迹生成的（相同的随机种子和粒子，没有传输"
                                   "误差），因此本次运行的还原和覆盖数字偏乐观（docs/demo.md；配置项 "
                                   "demo.truth_transport）。"})


def collect(diag: dict, selected: pd.DataFrame | None = None, failures_csv=None, hourly_dirs=None,
            days=None, utc_offset_hours: float = UTC_OFFSET_HOURS,
            select_hours_local=SELECT_HOURS_LOCAL) -> dict:
    """Problems and losses of a month.

    Returns ``{"problems": [message, …], "losses": DataFrame(stage, reason, count), "ingest": DataFrame,
    "read": [what was read, …]}``; ``problems`` is empty when nothing was flagged; each problem is a
    ``{"en", "zh"}`` message (`products.i18n`).
    """
    out = _Found()
    fails = read_failures(failures_csv)
    failed_ids = set(fails["receptor_id"].astype(str)) if fails is not None else set()
    if fails is not None:
        out.read.append(f"{failures_csv}: {len(fails)} receptor(s)")
    _receptor_problems(diag, fails, failed_ids, out)
    ing = _station_problems(selected, hourly_dirs, days, utc_offset_hours, select_hours_local, out)
    lost = _observation_problems(diag, failed_ids, out)
    _screen_problems(diag, lost, out)
    _demo_problems(diag, out)
    return {"problems": out.problems,
            "losses": pd.DataFrame(out.losses, columns=["stage", "reason", "count"]),
            "ingest": ing, "read": out.read}
