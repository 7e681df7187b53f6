"""Quality control of raw analyser records: flags, never deletion.

Each record gets an integer ``qc`` bit mask. Flag codes (documented in docs/stations.md):

====  ================  =================================================================
bit   name              meaning
====  ================  =================================================================
1     ALARM             ``ALARM_STATUS`` != 0 (any analyser alarm)
2     CAVITY_PRESSURE   ``CavityPressure`` outside ``pressure_torr`` ± ``pressure_tol_torr``
4     CAVITY_TEMP       ``CavityTemp`` outside ``temp_c`` ± ``temp_tol_c``
8     FLUSH             less than ``flush_seconds`` after a change of ``MPVPosition`` or a
                        data gap longer than ``flush_seconds``
16    SPIKE             spike filter (see :func:`flag_spikes`), ambient records only
32    MISSING           the mole fraction is missing (NaN)
64    CAL_EXTRAPOLATED  calibration held constant outside the span of calibration cycles
                        (informational: not excluded)
128   RANGE             ambient value outside the plausible range of the species
                        (:mod:`stations.plausibility`)
256   UNIT              value in another unit than the series (ppm <-> ppb switch)
512   STUCK             the analyser repeated exactly the same reading for ``stuck_minutes``
1024  TARGET            in a period the target tank check failed (``stations.target_tank``)
====  ================  =================================================================

``EXCLUDE`` is the mask of bits that exclude a record from calibration and hourly means.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .settings import DEFAULT

ALARM, CAVITY_PRESSURE, CAVITY_TEMP, FLUSH, SPIKE, MISSING, CAL_EXTRAPOLATED = 1, 2, 4, 8, 16, 32, 64
RANGE, UNIT, STUCK, TARGET = 128, 256, 512, 1024
FLAG_NAMES = {ALARM: "alarm", CAVITY_PRESSURE: "cavity_pressure", CAVITY_TEMP: "cavity_temp",
              FLUSH: "flush", SPIKE: "spike", MISSING: "missing", CAL_EXTRAPOLATED: "cal_extrapolated",
              RANGE: "range", UNIT: "unit", STUCK: "stuck", TARGET: "target"}
EXCLUDE = ALARM | CAVITY_PRESSURE | CAVITY_TEMP | FLUSH | SPIKE | MISSING | RANGE | UNIT | STUCK | TARGET
#: flags of implausible readings (range, unit switch, stuck analyser)
IMPLAUSIBLE = RANGE | UNIT | STUCK


def flag_instrument(rec: pd.DataFrame, value_col: str, flush_seconds: float = DEFAULT.flush_seconds,
                    pressure_torr: float = 140.0, pressure_tol_torr: float = 0.2,
                    temp_c: float = 45.0, temp_tol_c: float = 0.1) -> np.ndarray:
    """Alarm, cavity-range, flush and missing-value flags of records sorted by time.

    ``value_col``: the column of ``rec`` holding the mole fraction, or the values themselves."""
    qc = np.zeros(len(rec), np.int64)
    qc[rec["ALARM_STATUS"].to_numpy() != 0] |= ALARM
    p = rec["CavityPressure"].to_numpy()
    qc[~(np.abs(p - pressure_torr) <= pressure_tol_torr)] |= CAVITY_PRESSURE
    t = rec["CavityTemp"].to_numpy()
    qc[~(np.abs(t - temp_c) <= temp_tol_c)] |= CAVITY_TEMP
    v = rec[value_col].to_numpy() if isinstance(value_col, str) else np.asarray(value_col, float)
    qc[np.isnan(v)] |= MISSING
    qc[flush_mask(rec["time"].to_numpy(), rec["MPVPosition"].to_numpy(), flush_seconds)] |= FLUSH
    return qc


def flush_mask(time: np.ndarray, valve: np.ndarray, flush_seconds: float) -> np.ndarray:
    """True for records less than ``flush_seconds`` after the last change of valve position.

    The first record of the data set, and the first record after a gap in the data longer than
    ``flush_seconds`` (analyser stopped, files missing), count as a switch: the gas in the cell
    before them is unknown.
    """
    v = np.rint(valve).astype(np.int64)
    t = time.astype("datetime64[ms]").astype(np.int64) / 1000.0
    switch = np.r_[True, (v[1:] != v[:-1]) | (np.diff(t) > flush_seconds)]
    idx = np.maximum.accumulate(np.where(switch, np.arange(len(v)), 0))
    return (t - t[idx]) < flush_seconds


def flag_spikes(time: np.ndarray, value: np.ndarray, usable: np.ndarray, window: str = "5min",
                k: float = 6.0, floor_ppm: float = 1.0, max_candidate_share: float = 0.05) -> np.ndarray:
    """Spike filter on one inlet's time series; returns a boolean mask of spikes.

    Method: among ``usable`` records, the residual from a centred running median over ``window``
    is compared with ``k`` times a robust scatter (1.4826 × running median absolute residual over
    6 × ``window``) plus ``floor_ppm``; records beyond that are spikes. The running median ignores
    single spikes of up to half the window, so short local plumes are flagged while the slow
    (minutes-to-hours) variation an inversion can represent is kept.

    Speed: a record whose residual is at most ``floor_ppm`` can never be a spike, so the scatter
    is evaluated only at the other records (candidates), each as the median of its own window —
    the same numbers as the running median (:func:`flag_spikes_reference`), at a fraction of the
    cost while candidates are fewer than ``max_candidate_share`` of the records.
    """
    out = np.zeros(len(value), bool)
    idx = np.flatnonzero(usable)
    if len(idx) < 5:
        return out
    s = pd.Series(value[idx], index=pd.DatetimeIndex(time[idx]))
    med = s.rolling(window, center=True, min_periods=1).median()
    res = (s - med).abs().to_numpy()
    cand = np.flatnonzero(res > floor_ppm)
    if len(cand) > max_candidate_share * len(res):
        return flag_spikes_reference(time, value, usable, window, k, floor_ppm)
    if len(cand) == 0:
        return out
    t = s.index.as_unit("ns").asi8          # ns whatever the unit of ``time``
    half = pd.Timedelta(window).value * 6 / 2
    # pandas' centred time window: (t - half, t + half]
    lo = np.searchsorted(t, t[cand] - half, side="right")
    hi = np.searchsorted(t, t[cand] + half, side="right")
    mad = np.array([np.median(res[a:b]) for a, b in zip(lo, hi)]) * 1.4826
    spike = res[cand] > k * mad + floor_ppm
    out[idx[cand[spike]]] = True
    return out


def flag_spikes_reference(time: np.ndarray, value: np.ndarray, usable: np.ndarray, window: str = "5min",
                          k: float = 6.0, floor_ppm: float = 1.0) -> np.ndarray:
    """Plain version of :func:`flag_spikes` (running median of the residuals at every record)."""
    out = np.zeros(len(value), bool)
    idx = np.flatnonzero(usable)
    if len(idx) < 5:
        return out
    s = pd.Series(value[idx], index=pd.DatetimeIndex(time[idx]))
    med = s.rolling(window, center=True, min_periods=1).median()
    res = (s - med).abs()
    win = pd.Timedelta(window) * 6
    mad = res.rolling(win, center=True, min_periods=1).median() * 1.4826
    out[idx] = (res > k * mad + floor_ppm).to_numpy()
    return out


def flag_counts(qc: np.ndarray) -> dict[str, int]:
    """Number of records carrying each flag (a record can carry several)."""
    return {name: int(((qc & bit) != 0).sum()) for bit, name in FLAG_NAMES.items()}
