"""Readers and validators of the hourly power inputs (formats in docs/power.md).

All files are CSV, one row per hour and item, times in UTC (ISO 8601; naive times are UTC,
times with an offset are converted), an hourly value stamped `t` covering `[t, t+1h)`:

    generation.csv           time, plant_id, generation_mwh    (MWh in the hour = mean MW)
    load.csv                 time, district, load_mwh          (electricity consumed in the district)
    external_intensity.csv   time, intensity_kg_per_kwh        (external grid, kg CO2/kWh)
    flows.csv (optional)     time, from_district, to_district, flow_mwh   (known inter-district flows)

Each reader returns a dense array on a given hourly axis and raises `PowerInputError` naming the
file, the row (line number in the file) and the fix for negative, missing or inconsistent values.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from .registry import INTENSITY_RANGE, PowerInputError, _csv_row, read_csv_with_lines
from .settings import POWER

#: Generation may exceed nameplate capacity by this relative margin (rounding, overload ratings).
CAPACITY_TOLERANCE = 0.02


def _table(obj, what: str) -> tuple[pd.DataFrame, str]:
    if isinstance(obj, pd.DataFrame):
        df = obj.reset_index(drop=True).copy()
        return df, obj.attrs.get("source", f"<{what} table>")
    path = str(obj)
    if not os.path.exists(path):
        raise PowerInputError(f"{path}: {what} file not found; check config 'inputs' or run the demo.")
    return read_csv_with_lines(path), path


def _fail(source, df, idx, msg):
    row = _csv_row(df, idx) if idx is not None else None
    where = f"{source}, row {row}" if row is not None else source
    raise PowerInputError(f"{where}: {msg}")


def _require(df, source, cols, what):
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise PowerInputError(f"{source}: missing column(s) {missing}; a {what} file needs the "
                              f"columns {cols} (see docs/power.md).")


def parse_times(df: pd.DataFrame, source: str, col: str = "time") -> pd.Series:
    """UTC naive datetimes of column `col`; errors name the row."""
    t = pd.to_datetime(df[col].astype(str).str.strip(), utc=True, errors="coerce", format="ISO8601")
    bad = t.isna()
    if bad.any():
        idx = bad[bad].index[0]
        _fail(source, df, idx, f"time {df.loc[idx, col]!r} is not an ISO 8601 time; write e.g. "
                               "2025-01-01T00:00:00 (UTC).")
    t = t.dt.tz_convert(None).dt.as_unit("ns")
    off = t != t.dt.floor("h")
    if off.any():
        idx = off[off].index[0]
        _fail(source, df, idx, f"time {df.loc[idx, col]!r} is not on the hour; values are hourly and "
                               "stamped at the start of their hour.")
    return t


def _values(df, source, col, what, allow_negative=False):
    v = pd.to_numeric(df[col], errors="coerce")
    bad = v.isna()
    if bad.any():
        idx = bad[bad].index[0]
        _fail(source, df, idx, f"{what} '{col}' is missing or not a number ({df.loc[idx, col]!r}); "
                               "give a number for every hour (0 when nothing flows).")
    if not allow_negative:
        neg = v < 0
        if neg.any():
            idx = neg[neg].index[0]
            _fail(source, df, idx, f"negative {what} {v[idx]} in '{col}'; values must be >= 0 "
                                   "(MWh delivered in the hour).")
    return v.to_numpy(dtype=float)


def _dense(df, source, times, keys, key_col, t, vals, what, key_label):
    """Scatter (time, key, value) rows into a (T, K) array; every cell must be given exactly once."""
    tindex = pd.DatetimeIndex(times)
    ti = tindex.get_indexer(pd.DatetimeIndex(t))
    ki = pd.Index(keys).get_indexer(df[key_col].astype(str).str.strip())
    inside = ti >= 0
    out = np.full((len(tindex), len(keys)), np.nan)
    seen = np.zeros(out.shape, dtype=np.int64)
    rows = np.flatnonzero(inside & (ki >= 0))
    np.add.at(seen, (ti[rows], ki[rows]), 1)
    if (seen > 1).any():
        ti_d, ki_d = np.argwhere(seen > 1)[0]
        r = rows[(ti[rows] == ti_d) & (ki[rows] == ki_d)][1]
        _fail(source, df, df.index[r], f"{key_label} '{keys[ki_d]}' at {tindex[ti_d]} appears twice; "
                                       "give one row per hour and item.")
    out[ti[rows], ki[rows]] = vals[rows]
    if (seen == 0).any():
        ti_m, ki_m = np.argwhere(seen == 0)[0]
        raise PowerInputError(
            f"{source}: no {what} row for {key_label} '{keys[ki_m]}' at {tindex[ti_m]:%Y-%m-%dT%H:%M} "
            f"({int((seen == 0).sum())} hour-item cells missing); give a row for every hour of "
            f"{tindex[0]:%Y-%m-%dT%H:%M} .. {tindex[-1]:%Y-%m-%dT%H:%M} (0 when nothing flows).")
    return out


def read_generation(generation, plants: pd.DataFrame, times) -> np.ndarray:
    """Hourly generation (MWh) of the dispatched plants, shape (T, n_dispatched) in registry order.

    Rows of retired plants must be 0; rows outside `times` are ignored.
    """
    df, source = _table(generation, "generation")
    _require(df, source, ["time", "plant_id", "generation_mwh"], "generation")
    t = parse_times(df, source)
    vals = _values(df, source, "generation_mwh", "generation")
    pid = df["plant_id"].astype(str).str.strip()
    unknown = ~pid.isin(plants.index)
    if unknown.any():
        idx = unknown[unknown].index[0]
        _fail(source, df, idx, f"plant_id '{pid[idx]}' is not in the plant registry "
                               f"({plants.attrs.get('source', 'registry')}); add it there or fix the id.")
    retired = pid.map(~plants["dispatched"]).to_numpy(dtype=bool) & (vals > 0)
    if retired.any():
        idx = df.index[np.flatnonzero(retired)[0]]
        _fail(source, df, idx, f"plant '{pid[idx]}' is retired in the registry but generates "
                               f"{vals[df.index.get_loc(idx)]} MWh; set its status to operating or drop the row.")
    cap = pid.map(plants["capacity_mw"]).to_numpy(dtype=float)
    over = vals > cap * (1 + CAPACITY_TOLERANCE)
    if over.any():
        i = np.flatnonzero(over)[0]
        idx = df.index[i]
        _fail(source, df, idx, f"plant '{pid[idx]}' generates {vals[i]} MWh in one hour, above its "
                               f"capacity of {cap[i]} MW; generation is MWh per hour (not kWh), or "
                               "correct capacity_mw in the registry.")
    keys = list(plants.index[plants["dispatched"]])
    return _dense(df, source, times, keys, "plant_id", t, vals, "generation", "plant")


def read_load(load, districts: list[str], times) -> np.ndarray:
    """Hourly district load (MWh), shape (T, n_districts) in `districts` order."""
    df, source = _table(load, "load")
    _require(df, source, ["time", "district", "load_mwh"], "load")
    t = parse_times(df, source)
    vals = _values(df, source, "load_mwh", "load")
    d = df["district"].astype(str).str.strip()
    unknown = ~d.isin(districts)
    if unknown.any():
        idx = unknown[unknown].index[0]
        _fail(source, df, idx, f"unknown district '{d[idx]}'; use one of {list(districts)}.")
    return _dense(df, source, times, list(districts), "district", t, vals, "load", "district")


def load_times(load) -> pd.DatetimeIndex:
    """The sorted hours present in a load table (the default time axis)."""
    df, source = _table(load, "load")
    _require(df, source, ["time", "district", "load_mwh"], "load")
    return pd.DatetimeIndex(np.unique(parse_times(df, source).to_numpy()))


def read_external(external, times, default: float) -> np.ndarray:
    """External-grid intensity (kg CO2/kWh = t/MWh) on `times`; a number or None gives a constant."""
    if external is None or (isinstance(external, str) and not external):
        external = default
    if isinstance(external, (int, float, np.floating)):
        val = float(external)
        lo, hi = INTENSITY_RANGE
        if not lo <= val <= hi:
            raise PowerInputError(f"config 'power.external_factor' = {val} kg CO2/kWh is outside "
                                  f"[{lo}, {hi}]; the default (the 2022 Southern grid value) is {POWER.external_factor}.")
        return np.full(len(times), val)
    df, source = _table(external, "external intensity")
    _require(df, source, ["time", "intensity_kg_per_kwh"], "external intensity")
    t = parse_times(df, source)
    vals = _values(df, source, "intensity_kg_per_kwh", "intensity")
    lo, hi = INTENSITY_RANGE
    bad = (vals < lo) | (vals > hi)
    if bad.any():
        idx = df.index[np.flatnonzero(bad)[0]]
        _fail(source, df, idx, f"intensity {vals[np.flatnonzero(bad)[0]]} kg CO2/kWh is outside "
                               f"[{lo}, {hi}]; check the units (kg CO2/kWh, not g/kWh).")
    df = df.assign(_key="external")
    return _dense(df, source, times, ["external"], "_key", t, vals, "external intensity", "series")[:, 0]


def read_flows(flows, districts: list[str], times) -> np.ndarray:
    """Known inter-district flows (MWh), shape (T, N, N) with [t, i, j] = flow from i to j.

    Pairs and hours without a row are 0; each district's exchange with the external grid then
    closes its balance (see power.flow).
    """
    df, source = _table(flows, "flows")
    _require(df, source, ["time", "from_district", "to_district", "flow_mwh"], "flows")
    t = parse_times(df, source)
    vals = _values(df, source, "flow_mwh", "flow")
    n = len(districts)
    out = np.zeros((len(times), n, n))
    fi = pd.Index(districts).get_indexer(df["from_district"].astype(str).str.strip())
    tj = pd.Index(districts).get_indexer(df["to_district"].astype(str).str.strip())
    for col, ix in (("from_district", fi), ("to_district", tj)):
        if (ix < 0).any():
            idx = df.index[np.flatnonzero(ix < 0)[0]]
            _fail(source, df, idx, f"unknown district '{df.loc[idx, col]}' in '{col}'; use one of "
                                   f"{list(districts)} (exchanges with the external grid are derived, "
                                   "do not list them).")
    same = fi == tj
    if same.any():
        idx = df.index[np.flatnonzero(same)[0]]
        _fail(source, df, idx, "from_district equals to_district; a district cannot send power to itself.")
    ti = pd.DatetimeIndex(times).get_indexer(pd.DatetimeIndex(t))
    rows = np.flatnonzero(ti >= 0)
    np.add.at(out, (ti[rows], fi[rows], tj[rows]), vals[rows])
    return out
