"""The one Picarro chain: raw records -> species -> units -> instrument QC -> plausibility ->
valves -> calibration. Used by :func:`stations.read` (format ``picarro``) and by
:func:`stations.hourly.process_site` (the pipeline), so both give the same numbers.

Steps (each documented in docs/stations.md):

1. species: the dry mole fraction of every record (:func:`stations.picarro.dry_mole_fraction`:
   the analyser's dry column, the isotopologue sum of a G2201-i, or the wet value corrected with
   H2O);
2. units: analyser ppm -> species units (ppm CO2, ppb CH4/CO; :data:`stations.units.RAW_TO_UNITS`);
3. instrument QC (:func:`stations.qc.flag_instrument`: alarm, cavity, flush, missing);
4. plausibility of the readings before calibration (unit switch, stuck analyser, ambient range;
   :mod:`stations.plausibility`);
5. valves: ambient inlets, tanks, other positions (``site`` inlets and tanks);
6. calibration against the reference tanks (:func:`stations.calibration.calibrate`), then the
   range test on the calibrated ambient values.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from gzcarbon.config import PlausibilityConfig

from . import calibration as calm
from . import picarro
from . import plausibility as plm
from . import qc as qcm
from .settings import DEFAULT
from .sites import inlet_valves, tank_table
from .units import RAW_TO_UNITS

KINDS = ["ambient", "tank", "other"]


@dataclass
class ChainResult:
    """Every record of the chain (arrays aligned with ``records``)."""

    records: pd.DataFrame       # the raw records (time, file, line, analyser columns)
    raw: np.ndarray             # dry mole fraction in species units, not calibrated
    value: np.ndarray           # calibrated (== raw when no site / no tanks are given)
    qc: np.ndarray              # record QC bits (stations.qc)
    valve: np.ndarray           # MPVPosition rounded
    kind: pd.Categorical        # ambient / tank / other (all ambient without a site)
    extrapolated: np.ndarray    # calibration held constant beyond the cycles
    corrected: np.ndarray       # wet value corrected with H2O
    sources: list               # per file: the column(s) the dry mole fraction came from
    calibration: calm.Calibration | None


def valve_kinds(valve: np.ndarray, inlets: dict, tanks: dict) -> pd.Categorical:
    """ambient (an inlet's valve), tank (a tank's valve) or other, per record."""
    code = np.where(np.isin(valve, list(inlets)), 0, np.where(np.isin(valve, list(tanks)), 1, 2))
    return pd.Categorical.from_codes(code, categories=KINDS)


def plausibility_flags(rec: pd.DataFrame, raw: np.ndarray, values: np.ndarray, corrected: np.ndarray,
                       ambient: np.ndarray, species: str, pset: PlausibilityConfig) -> np.ndarray:
    """Record bits UNIT, STUCK and RANGE (ambient, before calibration) of the readings."""
    qc = np.zeros(len(raw), np.int64)
    qc[plm.unit_switch(raw, species, pset)] |= qcm.UNIT
    src = values.copy()
    if corrected.any():       # a stuck analyser repeats its reading; H2O may still vary
        wcol = picarro.WATER_CORRECTION[species][0]
        src[corrected] = rec[wcol].to_numpy(float)[corrected]
    qc[plm.stuck(rec["time"].to_numpy(), src, pset.stuck_minutes)] |= qcm.STUCK
    qc[ambient & plm.out_of_range(raw, species, pset)] |= qcm.RANGE
    return qc


def run_chain(rr: picarro.RawRead, species: str, site: dict | None = None, *,
              flush_seconds: float = DEFAULT.flush_seconds, qc_kw: dict | None = None,
              plausibility: PlausibilityConfig | dict | None = None,
              allow_wet_correction: bool = DEFAULT.allow_wet_correction) -> ChainResult:
    """The chain on the records of :func:`stations.picarro.read_raw` (see module doc).

    Without ``site`` every record counts as ambient and nothing is calibrated (``value == raw``).
    ``plausibility``: ``stations.plausibility`` settings (:func:`stations.plausibility.settings`);
    settings not given take the config's defaults (:mod:`stations.settings`).
    """
    pset = plm.settings(plausibility)
    rec = rr.records
    values, corrected, sources = picarro.dry_mole_fraction(rr, species, allow_wet_correction)
    raw = values * RAW_TO_UNITS[species]
    qc = qcm.flag_instrument(rec, raw, flush_seconds=flush_seconds, **(qc_kw or {}))
    valve = np.rint(rec["MPVPosition"].to_numpy()).astype(np.int64)
    inlets = inlet_valves(site) if site is not None else {}
    tanks = tank_table(site, species) if site is not None else {}
    kind = valve_kinds(valve, inlets, tanks) if site is not None else \
        pd.Categorical.from_codes(np.zeros(len(rec), np.int64), categories=KINDS)
    ambient = np.asarray(kind.codes == 0)
    qc |= plausibility_flags(rec, raw, values, corrected, ambient, species, pset)
    if site is None:
        return ChainResult(rec, raw, raw, qc, valve, kind, np.zeros(len(rec), bool), corrected,
                           sources, None)
    value, extrap, cal = calm.calibrate(rec, raw, qc, tanks, species=species)
    qc[extrap] |= qcm.CAL_EXTRAPOLATED
    qc[np.isnan(value)] |= qcm.MISSING
    qc[ambient & plm.out_of_range(value, species, pset)] |= qcm.RANGE
    return ChainResult(rec, raw, value, qc, valve, kind, extrap, corrected, sources, cal)
