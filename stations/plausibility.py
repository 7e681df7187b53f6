"""Plausibility of observations: range per species, ppm/ppb switches, stuck analyser, hourly steps.

These tests catch values no atmosphere produces (a 10,000 ppm hour, an analyser that switched
from ppm to ppb half-way, an analyser repeating the same reading) before they reach the
calibration, the hourly means or the selection. They are deliberately wide: a real urban plume
must never be clipped (docs/stations.md, Plausibility, gives the reasons for each number).

Record tests (:mod:`stations.qc` bits, records excluded from calibration and hourly means):

- ``range``: an ambient record (calibrated, species units: ppm CO2, ppb CH4/CO) outside
  ``range[species]``;
- ``unit``: a record (any valve) whose value is outside the range while 1/1000 or 1000 times it
  is inside: the analyser or logger switched between ppm and ppb;
- ``stuck``: the analyser wrote exactly the same reading for at least ``stuck_minutes``.

Hourly tests (hourly ``qcflag`` bits, :mod:`stations.hourly`): the hourly mean outside the range
(``out_of_range``), and an isolated hour that differs from both neighbouring usable hours by more
than ``max_hourly_step[species]`` in the same direction (``step``).

Settings: `gzcarbon.config.PlausibilityConfig` (config ``stations.plausibility``; its defaults are
the only ones, docs/stations.md gives the reasons for each number).
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from gzcarbon.config import PlausibilityConfig

from .settings import section


class PlausibilityConfigError(ValueError):
    """stations.plausibility holds an impossible setting."""


def settings(cfg: PlausibilityConfig | Mapping | None = None) -> PlausibilityConfig:
    """``cfg`` (``stations.plausibility``: the typed section, a mapping of some of its keys, or
    None) as a checked `PlausibilityConfig`; missing keys take the config's defaults."""
    return section(PlausibilityConfig, cfg, "plausibility", PlausibilityConfigError)


def out_of_range(value: np.ndarray, species: str, cfg: PlausibilityConfig | Mapping | None = None) -> np.ndarray:
    """True where ``value`` (species units) is finite and outside the plausible range.

    ``cfg``: ``stations.plausibility`` (:func:`settings`; None: the config's defaults)."""
    lo, hi = settings(cfg).range[species]
    v = np.asarray(value, float)
    with np.errstate(invalid="ignore"):
        return np.isfinite(v) & ((v < lo) | (v > hi))


def unit_switch(value: np.ndarray, species: str, cfg: PlausibilityConfig | Mapping | None = None) -> np.ndarray:
    """True where ``value`` is outside the range but 1/1000 or 1000 times it is inside (ppm<->ppb).

    ``cfg``: ``stations.plausibility`` (:func:`settings`; None: the config's defaults)."""
    lo, hi = settings(cfg).range[species]
    v = np.asarray(value, float)
    with np.errstate(invalid="ignore"):
        bad = np.isfinite(v) & ((v < lo) | (v > hi))
        return bad & (((v / 1000.0 >= lo) & (v / 1000.0 <= hi)) | ((v * 1000.0 >= lo) & (v * 1000.0 <= hi)))


def stuck(time: np.ndarray, value: np.ndarray, min_minutes: float) -> np.ndarray:
    """True for records of runs of exactly equal consecutive readings lasting ``min_minutes`` or more.

    ``time`` sorted (datetime64); the run's duration is last minus first record time. A real
    analyser's readings (noise ~0.05 ppm, 3 to 8 decimals) practically never repeat twice in a row.
    """
    v = np.asarray(value, float)
    n = len(v)
    out = np.zeros(n, bool)
    if n < 2:
        return out
    same = np.r_[False, (v[1:] == v[:-1])]         # NaN != NaN: missing values never form a run
    start = np.flatnonzero(~same)
    end = np.r_[start[1:], n] - 1
    t = np.asarray(time).astype("datetime64[ms]").astype(np.int64) / 60000.0
    long = (end > start) & ((t[end] - t[start]) >= min_minutes)
    for a, b in zip(start[long], end[long]):
        out[a:b + 1] = True
    return out


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) indices of the runs of True in ``mask``."""
    m = np.r_[False, np.asarray(mask, bool), False].astype(np.int8)
    d = np.diff(m)
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1) - 1))


def hourly_step(value: np.ndarray, usable: np.ndarray, max_step: float) -> np.ndarray:
    """Isolated hourly excursions: the hour differs from the previous AND the next usable hour by
    more than ``max_step`` in the same direction (a rise and fall, or fall and rise, within one
    hour). Only usable hours (``usable`` and finite) are compared; the first and last usable hours
    have one neighbour and are never flagged (the range test still applies to them)."""
    v = np.asarray(value, float)
    ok = np.flatnonzero(np.asarray(usable, bool) & np.isfinite(v))
    out = np.zeros(len(v), bool)
    if len(ok) < 3:
        return out
    x = v[ok]
    d_prev = x[1:-1] - x[:-2]
    d_next = x[1:-1] - x[2:]
    flag = (np.sign(d_prev) == np.sign(d_next)) & (np.abs(d_prev) > max_step) & (np.abs(d_next) > max_step)
    out[ok[1:-1][flag]] = True
    return out
