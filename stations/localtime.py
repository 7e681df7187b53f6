"""Times written in local time instead of UTC, seen in the diurnal cycle.

Near the ground the mole fractions of CO2, CH4 and CO are lowest in the local afternoon (deep mixed
layer) and highest at night. :func:`diurnal_minimum_hour` finds the hour of day of the minimum of
the mean diurnal cycle (values minus their daily median, averaged per hour of the file's time,
smoothed over 3 hours). :func:`check_utc` warns when that minimum sits in the local afternoon of
the file's own clock (13-17 h) while in UTC the local afternoon is ``utc_offset`` hours earlier:
the file's times are then probably local time. Offsets below 3 h cannot be told apart and are not
checked; fewer than 5 days with 16 valid hours are not checked either.
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

#: local hour of the afternoon minimum (13-17 h local; the centre)
AFTERNOON_HOUR = 15
#: smallest diurnal amplitude (species units) for the test to mean anything
MIN_AMPLITUDE = {"co2": 2.0, "ch4": 10.0, "co": 10.0}


def _circ(a: float, b: float) -> float:
    d = abs(a - b) % 24
    return min(d, 24 - d)


def diurnal_minimum_hour(time, value, min_days: int = 5) -> tuple[int | None, float]:
    """(hour of day of the minimum of the mean diurnal cycle, its amplitude); ``None`` when fewer
    than ``min_days`` days have at least 16 valid hours."""
    s = pd.Series(np.asarray(value, float), index=pd.DatetimeIndex(time)).dropna()
    if s.empty:
        return None, 0.0
    day = s.index.floor("D")
    counts = s.groupby(day).transform("size")
    s = s[counts.to_numpy() >= 16]
    if s.index.floor("D").nunique() < min_days:
        return None, 0.0
    anom = s - s.groupby(s.index.floor("D")).transform("median")
    cycle = anom.groupby(anom.index.hour).mean().reindex(range(24))
    if cycle.isna().any():
        cycle = cycle.interpolate(limit_direction="both")
    c = cycle.to_numpy()
    smooth = (np.roll(c, 1) + c + np.roll(c, -1)) / 3.0
    return int(np.argmin(smooth)), float(smooth.max() - smooth.min())


def check_utc(ds, species: str, where: str, utc_offset_hours: float | None = None) -> str | None:
    """Warn (and set attr ``time_check``) when the times of ``ds`` look like local time.

    ``utc_offset_hours``: the site's offset (default: attr ``utc_offset_hours``, else
    round(lon / 15) from attr ``lon``). Returns the warning or ``None``."""
    off = utc_offset_hours if utc_offset_hours is not None else ds.attrs.get("utc_offset_hours")
    if off is None and "lon" in ds.attrs:
        off = round(float(ds.attrs["lon"]) / 15.0)
    if off is None or abs(float(off)) < 3 or "time" not in ds.dims:
        return None
    ok = (np.asarray(ds["qcflag"].values) == 0) if "qcflag" in ds else np.ones(ds.sizes["time"], bool)
    v = np.where(ok, np.asarray(ds["value"].values, float), np.nan)
    h_min, amp = diurnal_minimum_hour(ds["time"].values, v)
    if h_min is None or amp < MIN_AMPLITUDE.get(species, 0.0):
        return None
    expect = (AFTERNOON_HOUR - float(off)) % 24
    if _circ(h_min, AFTERNOON_HOUR) <= 2 and _circ(h_min, expect) >= abs(float(off)) - 2:
        msg = (f"{where}: the mean diurnal cycle of {species} has its minimum at {h_min:02d} h of the "
               f"file's clock; with times in UTC the local afternoon (UTC{float(off):+g}) would be near "
               f"{expect:02.0f} h UTC. The times look like local time: they are used as UTC; convert "
               "them to UTC (or correct the site's longitude) if they are local.")
        log.warning(msg)
        ds.attrs["time_check"] = msg
        return msg
    return None
