"""Hourly flag bits, the hourly plausibility test and the ingest result, shared by the raw-file
route (:mod:`stations.hourly`) and the already-hourly route (:mod:`stations.hourly_files`).

Hourly ``qcflag`` bits (docs/stations.md): 1 low_coverage, 2 calibration_extrapolated,
4 implausible_records, 8 out_of_range, 16 step, 32 target_tank. :data:`HOUR_EXCLUDE` keeps an
hour out of the selection and the background.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from gzcarbon.config import PlausibilityConfig

from . import calibration as calm
from . import plausibility as plm

LOW_COVERAGE, HOUR_CAL_EXTRAPOLATED = 1, 2
HOUR_IMPLAUSIBLE_RECORDS, HOUR_OUT_OF_RANGE, HOUR_STEP, HOUR_TARGET = 4, 8, 16, 32
HOUR_FLAG_NAMES = {LOW_COVERAGE: "low_coverage", HOUR_CAL_EXTRAPOLATED: "calibration_extrapolated",
                   HOUR_IMPLAUSIBLE_RECORDS: "implausible_records", HOUR_OUT_OF_RANGE: "out_of_range",
                   HOUR_STEP: "step", HOUR_TARGET: "target_tank"}
#: hourly bits that keep an hour out of the selection and the background
HOUR_EXCLUDE = LOW_COVERAGE | HOUR_OUT_OF_RANGE | HOUR_STEP | HOUR_TARGET


@dataclass
class SiteIngest:
    records: pd.DataFrame                 # time, file, valve, kind, raw, value, qc
    summary: pd.DataFrame                 # per file account of lines
    calibration: calm.Calibration
    hourly: dict = field(default_factory=dict)   # height -> hourly DataFrame
    problems: list = field(default_factory=list)
    skipped: list = field(default_factory=list)  # (file, reason, status) not read
    info: dict = field(default_factory=dict)     # attributes of the hourly files (provenance, counts)


def hour_plausibility(value: np.ndarray, qcflag: np.ndarray, species: str, pset: PlausibilityConfig,
                      implausible=None, target=None) -> np.ndarray:
    """Hourly plausibility bits: OUT_OF_RANGE, STEP (on hours not otherwise excluded),
    IMPLAUSIBLE_RECORDS and TARGET from the hours' record flags (boolean arrays on the hours)."""
    pset = plm.settings(pset)
    f = np.zeros(len(value), np.int64)
    f[plm.out_of_range(value, species, pset)] |= HOUR_OUT_OF_RANGE
    if implausible is not None:
        f[np.asarray(implausible, bool)] |= HOUR_IMPLAUSIBLE_RECORDS
    if target is not None:
        f[np.asarray(target, bool)] |= HOUR_TARGET
    ok = ((np.asarray(qcflag) | f) & (LOW_COVERAGE | HOUR_OUT_OF_RANGE | HOUR_TARGET)) == 0
    f[plm.hourly_step(value, ok, pset.max_hourly_step[species])] |= HOUR_STEP
    return f
