"""Calibration of analyser readings against reference tanks.

Method:
1. Tank periods are the runs of consecutive records on a tank's ``MPVPosition``; their usable
   records (no excluding QC flag, so the flush after the switch is left out) are averaged.
2. Reference-tank runs closer than ``gap_minutes`` to each other form one calibration cycle. Per
   cycle, ``measured = offset + gain * assigned`` is fitted by least squares (two or more tanks;
   one tank gives an offset with gain 1).
3. Gain and offset are interpolated linearly in time between cycle times (mean time of the
   cycle's tank runs) and held constant before the first / after the last cycle (such records
   get the informational flag ``CAL_EXTRAPOLATED``). ``calibrated = (raw - offset) / gain``.
4. The target tank is calibrated like ambient air; its bias (calibrated − assigned) and scatter
   are reported and flagged when |mean bias| exceeds the WMO compatibility goal.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from gzcarbon.config import TargetTankConfig

from . import qc as qcm
from .settings import section

#: WMO/GAW network compatibility goals (ppm for CO2, ppb for CH4 and CO).
WMO_GOAL = {"co2": 0.1, "ch4": 2.0, "co": 2.0}


@dataclass
class Calibration:
    cycles: pd.DataFrame    # time, gain, offset, n_tanks, rms_residual, tanks (names)
    runs: pd.DataFrame      # every tank run: start, end, time, valve, tank, assigned, mean, std, n, target
    target: pd.DataFrame    # target runs with calibrated value and bias
    target_summary: dict    # n, bias, scatter, goal, exceeds_goal


def tank_runs(rec: pd.DataFrame, value: np.ndarray, qc: np.ndarray, tanks: dict) -> pd.DataFrame:
    """Mean of usable records of every run of consecutive records on a tank valve."""
    valve = np.rint(rec["MPVPosition"].to_numpy()).astype(np.int64)
    sw = np.r_[True, valve[1:] != valve[:-1]]
    run = np.cumsum(sw) - 1
    is_tank = np.isin(valve, list(tanks))
    ok = is_tank & ((qc & qcm.EXCLUDE) == 0)
    t = rec["time"].to_numpy()
    df = pd.DataFrame({"run": run[ok], "valve": valve[ok], "v": value[ok],
                       "t": t[ok].astype("datetime64[ns]").astype(np.int64)})
    cols = ["start", "end", "time", "valve", "tank", "assigned", "target", "mean", "std", "n"]
    if df.empty:
        return pd.DataFrame(columns=cols)
    g = df.groupby("run")
    out = pd.DataFrame({"valve": g["valve"].first(), "mean": g["v"].mean(), "std": g["v"].std(),
                        "n": g["v"].size(), "time": pd.to_datetime(g["t"].mean()),
                        "start": pd.to_datetime(g["t"].min()), "end": pd.to_datetime(g["t"].max())})
    out["tank"] = [tanks[v][0] for v in out["valve"]]
    out["assigned"] = [tanks[v][1] for v in out["valve"]]
    out["target"] = [tanks[v][2] for v in out["valve"]]
    return out[cols].reset_index(drop=True)


def fit_cycles(runs: pd.DataFrame, gap_minutes: float = 30.0, min_records: int = 10) -> pd.DataFrame:
    """Per-cycle linear fit ``mean = offset + gain * assigned`` of reference-tank runs."""
    ref = runs[(~runs["target"].astype(bool)) & (runs["n"] >= min_records)].sort_values("start")
    cols = ["time", "gain", "offset", "n_tanks", "rms_residual", "tanks"]
    if ref.empty:
        return pd.DataFrame(columns=cols)
    gap = (ref["start"] - ref["end"].shift()) > pd.Timedelta(minutes=gap_minutes)
    cyc = gap.cumsum().to_numpy()
    rows = []
    for _, r in ref.groupby(cyc):
        a, m = r["assigned"].to_numpy(float), r["mean"].to_numpy(float)
        if len(np.unique(a)) >= 2:
            gain, offset = np.polyfit(a, m, 1)
        else:
            gain, offset = 1.0, float(np.mean(m - a))
        res = m - (offset + gain * a)
        rows.append({"time": pd.Timestamp(int(r["time"].astype("int64").mean())), "gain": gain,
                     "offset": offset, "n_tanks": len(r),
                     "rms_residual": float(np.sqrt(np.mean(res ** 2))),
                     "tanks": "+".join(r["tank"])})
    return pd.DataFrame(rows, columns=cols)


def apply(time: np.ndarray, raw: np.ndarray, cycles: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated values and the extrapolation mask (outside the span of the cycles)."""
    if cycles.empty:
        return np.full(len(raw), np.nan), np.ones(len(raw), bool)
    t = time.astype("datetime64[ns]").astype(np.int64).astype(float)
    tc = cycles["time"].to_numpy().astype("datetime64[ns]").astype(np.int64).astype(float)
    gain = np.interp(t, tc, cycles["gain"].to_numpy(float))
    offset = np.interp(t, tc, cycles["offset"].to_numpy(float))
    extrap = (t < tc[0]) | (t > tc[-1])
    return (raw - offset) / gain, extrap


def calibrate(rec: pd.DataFrame, value: np.ndarray, qc: np.ndarray, tanks: dict,
              species: str = "co2", gap_minutes: float = 30.0) -> tuple[np.ndarray, np.ndarray, Calibration]:
    """Calibrate ``value`` of records ``rec`` (sorted by time).

    ``tanks`` maps MPVPosition -> (name, assigned value, is_target) (see
    :func:`stations.sites.tank_table`). Returns calibrated values, the extrapolation mask and the
    :class:`Calibration` with cycles, tank runs and the target-tank report.
    """
    runs = tank_runs(rec, value, qc, tanks)
    cycles = fit_cycles(runs, gap_minutes=gap_minutes)
    cal, extrap = apply(rec["time"].to_numpy(), value, cycles)
    tgt = runs[runs["target"].astype(bool)].copy()
    if len(tgt) and len(cycles):
        c, _ = apply(tgt["time"].to_numpy(), tgt["mean"].to_numpy(float), cycles)
        tgt["calibrated"] = c
        tgt["bias"] = c - tgt["assigned"]
    else:
        tgt["calibrated"] = np.nan
        tgt["bias"] = np.nan
    goal = WMO_GOAL.get(species, np.nan)
    b = tgt["bias"].dropna()
    summary = {"n": int(len(b)), "bias": float(b.mean()) if len(b) else float("nan"),
               "scatter": float(b.std()) if len(b) > 1 else float("nan"), "goal": goal,
               "exceeds_goal": bool(len(b) and abs(b.mean()) > goal)}
    return cal, extrap, Calibration(cycles, runs, tgt, summary)


def target_settings(cfg: TargetTankConfig | Mapping | None = None) -> TargetTankConfig:
    """``stations.target_tank`` (the typed section, a mapping of some of its keys, or None) as a
    checked `TargetTankConfig`: ``action`` ``flag`` (ambient records of a failing period are
    flagged ``target`` and left out) or ``warn`` (logged only); ``max_bias`` per species (default:
    the WMO/GAW *extended* compatibility goals, GAW Report No. 255, 2020). A bad value raises
    ``ValueError`` naming the key."""
    return section(TargetTankConfig, cfg, "target_tank")


def target_failed_periods(target: pd.DataFrame, max_bias: float) -> pd.DataFrame:
    """Periods a failing target run puts in doubt: from the last passing target run before it to
    the next passing one after it (the calibration was last confirmed then and is confirmed again
    there); open-ended at the start or end of the data. Columns ``start``, ``end`` (NaT = open),
    ``runs`` (failing runs), ``max_abs_bias``, ``first_run`` (time of the first failing run)."""
    cols = ["start", "end", "runs", "max_abs_bias", "first_run"]
    if target is None or target.empty or "bias" not in target:
        return pd.DataFrame(columns=cols)
    t = target[np.isfinite(target["bias"].to_numpy(float))].sort_values("time").reset_index(drop=True)
    if t.empty:
        return pd.DataFrame(columns=cols)
    fail = (t["bias"].abs() > max_bias).to_numpy()
    rows = []
    i = 0
    while i < len(t):
        if not fail[i]:
            i += 1
            continue
        j = i
        while j + 1 < len(t) and fail[j + 1]:
            j += 1
        start = t["end"].iloc[i - 1] if i > 0 else pd.NaT
        end = t["start"].iloc[j + 1] if j + 1 < len(t) else pd.NaT
        rows.append({"start": start, "end": end, "runs": j - i + 1,
                     "max_abs_bias": float(t["bias"].iloc[i:j + 1].abs().max()),
                     "first_run": t["time"].iloc[i]})
        i = j + 1
    return pd.DataFrame(rows, columns=cols)


def in_periods(time: np.ndarray, periods: pd.DataFrame) -> np.ndarray:
    """True for times inside any of ``periods`` (``start`` < t < ``end``; NaT = open end)."""
    t = pd.DatetimeIndex(time)
    out = np.zeros(len(t), bool)
    for _, p in periods.iterrows():
        m = np.ones(len(t), bool)
        if pd.notna(p["start"]):
            m &= t > p["start"]
        if pd.notna(p["end"]):
            m &= t < p["end"]
        out |= m
    return out
