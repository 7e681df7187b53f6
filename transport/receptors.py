"""Receptor schedule: where and when particles are released (one row per site and hour).

The inversion uses the top inlet of every site during the well-mixed afternoon window
(local hours ``[start, end)``). Each hourly observation stamped ``t`` covers ``[t, t+1h)``, so its
particles are released at the middle of the hour, ``t + 30 min``. Times are UTC.
``receptor_id = {site}_{YYYYmmddHHMM}_{agl}`` (release time, agl in whole metres).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import pandas as pd

COLUMNS = ["receptor_id", "site", "time", "lon", "lat", "agl"]


def receptor_id(site: str, time: pd.Timestamp, agl: float) -> str:
    """The id of a receptor: ``{site}_{YYYYmmddHHMM}_{agl}``."""
    return f"{site}_{pd.Timestamp(time).strftime('%Y%m%d%H%M')}_{int(round(float(agl)))}"


def top_inlet(site: Mapping) -> float:
    """Height (m above ground) of the highest inlet of a site dict from stations.yaml."""
    inlets = site.get("inlets") or []
    heights = [float(i["height"]) if isinstance(i, Mapping) else float(i) for i in inlets]
    if not heights:
        raise ValueError(f"stations file: site {site.get('id')!r} has no `inlets` with a "
                         "`height`; give at least one inlet height in metres above ground")
    return max(heights)


def schedule(sites: Sequence[Mapping], days: Iterable, hours_local: Sequence[int] = (12, 16),
             utc_offset: float = 8) -> pd.DataFrame:
    """Receptors of the top inlet of every site, every hour of the local window of every day.

    Parameters
    ----------
    sites : sequence of dict
        Site dicts as in stations.yaml (``id``, ``lon``, ``lat``, ``inlets``).
    days : iterable of date-like or ``"YYYYMMDD"``
        UTC days of the period. The local window of a day is taken on the local date equal to it
        (12-16 local = 04-08 UTC for UTC+8, so it stays inside the UTC day).
    hours_local : (start, end)
        Local hours ``[start, end)`` of the selection window; ``start > end`` wraps midnight
        (receptors at every hour of each UTC day whose local hour is in the window, as
        :func:`night_schedule`).
    utc_offset : float
        Local time minus UTC, hours.

    Returns
    -------
    DataFrame with columns ``receptor_id, site, time, lon, lat, agl``, sorted by site order
    then time; ``time`` is the UTC release time (obs hour + 30 min), tz-naive.
    """
    start, end = int(hours_local[0]), int(hours_local[1])
    if not (0 <= start < 24 and 0 <= end <= 24 and start != end):
        raise ValueError(f"stations.select_hours_local: need 0 <= start < 24, 0 <= end <= 24 and "
                         f"start != end, got {list(hours_local)}")
    if start > end:  # wraps midnight (e.g. 22-6 local): the hours of each UTC day in the window
        return night_schedule(sites, days, (start, end), utc_offset)
    days = [pd.Timestamp(str(d)).normalize() for d in days]
    obs_hours = [day + pd.Timedelta(hours=h) - pd.Timedelta(hours=float(utc_offset))
                 for day in days for h in range(start, end)]
    return _table(sites, obs_hours)


def _table(sites: Sequence[Mapping], obs_hours: list) -> pd.DataFrame:
    """Receptors of the top inlet of every site at every observation hour (release mid-hour)."""
    rows = []
    for site in sites:
        agl = top_inlet(site)
        for t_obs in obs_hours:
            t_rel = t_obs + pd.Timedelta(minutes=30)
            rows.append(dict(receptor_id=receptor_id(site["id"], t_rel, agl), site=site["id"],
                             time=t_rel, lon=float(site["lon"]), lat=float(site["lat"]), agl=agl))
    df = pd.DataFrame(rows, columns=COLUMNS)
    df["time"] = pd.to_datetime(df["time"])
    return df


def night_schedule(sites: Sequence[Mapping], days: Iterable, hours_local: Sequence[int] = (22, 6),
                   utc_offset: float = 8) -> pd.DataFrame:
    """Night-time receptors of tower top inlets (``stations.night_tower``).

    ``hours_local = (start, end)`` may wrap midnight (22-6 local). Every hour of the window whose
    observation hour falls on one of the UTC ``days`` becomes a receptor, so the footprints of a
    site-day cover exactly its UTC day. The station stage keeps only the night hours in which the
    inlet is above the boundary layer; the other receptors cost HYSPLIT time but no observation.
    """
    start, end = int(hours_local[0]) % 24, int(hours_local[1]) % 24
    local_hours = list(range(start, end)) if start < end else list(range(start, 24)) + list(range(0, end))
    days = [pd.Timestamp(str(d)).normalize() for d in days]
    obs_hours = [day + pd.Timedelta(hours=hour) for day in days for hour in range(24)
                 if (hour + float(utc_offset)) % 24 in local_hours]
    return _table(sites, obs_hours)


def write_receptors(path: str | os.PathLike, receptors: pd.DataFrame) -> Path:
    """Write receptors.csv (atomically); time as ISO ``YYYY-mm-ddTHH:MM:SS``."""
    from gzcarbon.atomic import write_csv

    path = Path(path)
    out = receptors[COLUMNS].copy()
    out["time"] = pd.to_datetime(out["time"]).dt.strftime("%Y-%m-%dT%H:%M:%S")
    return write_csv(out, path, index=False)


def read_receptors(path: str | os.PathLike) -> pd.DataFrame:
    """Read receptors.csv; ``time`` parsed as tz-naive UTC timestamps."""
    path = Path(path)
    df = pd.read_csv(path, dtype={"receptor_id": str, "site": str})
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; receptors.csv needs {COLUMNS} "
                         "(see docs/formats.md)")
    t = pd.to_datetime(df["time"], utc=True)
    df["time"] = t.dt.tz_localize(None)
    df["agl"] = df["agl"].astype(float)
    return df[COLUMNS]


def site_day(receptors: pd.DataFrame, site: str, day) -> pd.DataFrame:
    """The receptors of one site released on one UTC day (``YYYYMMDD`` or date-like)."""
    d = pd.Timestamp(str(day)).normalize()
    t = pd.to_datetime(receptors["time"])
    sel = (receptors["site"] == site) & (t >= d) & (t < d + pd.Timedelta("1D"))
    return receptors.loc[sel].reset_index(drop=True)
