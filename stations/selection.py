"""Selection of the observations the inversion uses, with a basic background estimate.

Selection: the top inlet of every site, hours whose *local* start hour (UTC + ``utc_offset_hours``)
lies in ``[start, end)`` of ``select_hours_local`` (a window with start > end wraps midnight),
usable hourly values (finite, ``qcflag`` without LOW_COVERAGE).

Background (method ``network_minimum``): a statistical baseline from the lowest values of the
network.
1. For every hour, ``b0(t)`` = the lowest hourly value of all sites' top inlets within
   ``t ± half_window_hours`` (usable hours, all local times).
2. ``b(t)`` = centred running mean of ``b0`` over ``2 * half_window_hours + 1`` hours.
The lowest site is the least influenced by the city, but still carries some enhancement (bias
high) while the minimum over many noisy values is biased low; the inversion therefore also solves
a daily background offset per site with prior σ ``inversion.bg_sigma_ppm``. The uncertainty
reported per hour is ``background_sigma_ppm`` from config (constant, 1 σ).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from .hourly import LOW_COVERAGE

COLUMNS = ["site", "time", "intake_height", "lon", "lat", "value", "value_std_dev", "nvalue",
           "background", "background_sigma"]


def read_hourly_dir(path: str | os.PathLike) -> list[xr.Dataset]:
    """All inlet datasets (``*.nc``) of one hourly directory."""
    files = sorted(Path(path).glob("*.nc"))
    if not files:
        raise FileNotFoundError(f"{path}: no hourly NetCDF files ({{site}}_{{height}}m.nc)")
    out = []
    for f in files:
        with xr.open_dataset(f) as ds:
            out.append(ds.load())
    return out


def top_inlet_table(hourly_dirs: list) -> pd.DataFrame:
    """Hourly values of every site's top inlet (one row per site and hour)."""
    frames = []
    for d in hourly_dirs:
        dss = read_hourly_dir(d)
        top = max(dss, key=lambda ds: float(ds.attrs["intake_height"]))
        df = top[["value", "value_std_dev", "nvalue", "qcflag"]].to_dataframe().reset_index()
        for k in ("site", "intake_height", "lon", "lat"):
            df[k] = top.attrs[k]
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def in_local_window(time: pd.Series, utc_offset_hours: float, window: tuple[int, int]) -> np.ndarray:
    """True where the local start hour of ``time`` (UTC) lies in ``[start, end)``."""
    local = (pd.DatetimeIndex(time) + pd.Timedelta(hours=utc_offset_hours)).hour
    a, b = int(window[0]), int(window[1])
    return np.asarray((local >= a) & (local < b) if a <= b else (local >= a) | (local < b))


def network_minimum_background(table: pd.DataFrame, half_window_hours: int = 2) -> pd.Series:
    """Background per hour (index: time) from the lowest network values, see module doc."""
    ok = table[np.isfinite(table["value"]) & ((table["qcflag"] & LOW_COVERAGE) == 0)]
    if ok.empty:
        raise ValueError("no usable hourly values in any site: cannot estimate a background")
    per_hour = ok.groupby("time")["value"].min()
    hours = pd.date_range(per_hour.index.min(), per_hour.index.max(), freq="h")
    per_hour = per_hour.reindex(hours)
    w = 2 * half_window_hours + 1
    b0 = per_hour.rolling(w, center=True, min_periods=1).min()
    b = b0.rolling(w, center=True, min_periods=1).mean()
    return b.interpolate(limit_direction="both")


def select(hourly_dirs: list, utc_offset_hours: float = 8, select_hours_local=(12, 16),
           background_sigma_ppm: float = 2.0, half_window_hours: int = 2) -> pd.DataFrame:
    """The table of ``{R}/obs/selected.csv`` (columns :data:`COLUMNS`), sorted by time and site."""
    tab = top_inlet_table(hourly_dirs)
    bg = network_minimum_background(tab, half_window_hours)
    sel = tab[in_local_window(tab["time"], utc_offset_hours, select_hours_local)
              & np.isfinite(tab["value"]) & ((tab["qcflag"] & LOW_COVERAGE) == 0)].copy()
    sel["background"] = bg.reindex(pd.DatetimeIndex(sel["time"])).to_numpy()
    sel["background_sigma"] = float(background_sigma_ppm)
    sel = sel.sort_values(["time", "site"]).reset_index(drop=True)
    sel["time"] = pd.DatetimeIndex(sel["time"]).strftime("%Y-%m-%dT%H:%M:%SZ")
    return sel[COLUMNS]


def write_selected(df: pd.DataFrame, path: str | os.PathLike) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    df.to_csv(tmp, index=False, float_format="%.4f")
    os.replace(tmp, path)
