"""Mobile observations: a time-stamped track of a vehicle or UAV, read from CSV, QC'd, aggregated
into 1-minute segments and turned into receptors.

Track file (one per campaign day or vehicle, UTF-8 CSV, header line, ``#`` comment lines allowed):

    time,lat,lon,height,co2,ch4,co
    2025-01-01T04:00:00Z,23.1291,113.2644,3.0,432.18,2011.5,180.2

``time`` ISO 8601 (UTC; a ``Z`` or offset is converted, a naive time is taken as UTC), ``lat``
and ``lon`` degrees WGS84, ``height`` the inlet height above ground (m), and one or more of the
gases: ``co2`` (ppm), ``ch4`` and ``co`` (ppb), dry mole fractions. Time must not go backwards
(:class:`MobileFileError` names the line); records with the same time as the one before are
dropped (a logger repeating its last line).

QC flags a record (``qc`` bit mask, 0 = good): 1 position outside the globe, 2 height outside
0-3000 m, 4 gas outside its plausible range (:data:`PLAUSIBLE`), 8 a jump faster than
``max_speed_ms`` from the record before (a GPS glitch), 16 a missing value.

Segments: good records are averaged over fixed ``segment_seconds`` windows of UTC time (default
1 minute: 600 m at 36 km/h, under the 1 km grid's cell). A segment needs ``min_records``; its
position and height are the record means, its mole fraction the mean, and its ``spread`` the
standard deviation of the records inside, the road-plume structure the grid cannot resolve
(:func:`segment_sigma`). Each segment becomes a receptor at the segment's middle.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from stations.errors import StationFileError

REQUIRED = ("time", "lat", "lon", "height")
GASES = {"co2": "ppm", "ch4": "ppb", "co": "ppb"}
#: plausible dry mole fractions on urban roads (a tail-pipe plume can exceed these: such records
#: are not representative of a 1 km cell anyway)
PLAUSIBLE = {"co2": (380.0, 1000.0), "ch4": (1800.0, 20000.0), "co": (50.0, 20000.0)}
QC_POSITION, QC_HEIGHT, QC_RANGE, QC_JUMP, QC_MISSING = 1, 2, 4, 8, 16
SEGMENT_COLUMNS = ["track", "segment", "time", "lon", "lat", "height", "value", "spread", "n"]


class MobileFileError(StationFileError):
    """A mobile track file cannot be used; the message names the file, the field and the fix."""


def read_track(path: str | os.PathLike) -> pd.DataFrame:
    """Read a track CSV (module docstring). Returns the records with ``time`` tz-naive UTC and the
    gas columns present; raises :class:`MobileFileError` on a missing field, an unreadable value
    or time going backwards."""
    path = Path(path)
    try:
        df = pd.read_csv(path, comment="#", skipinitialspace=True)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise MobileFileError(f"{path}: not a CSV track file ({exc}); see docs/columns.md, "
                              "'Mobile tracks'") from None
    df.columns = [str(c).strip().lower() for c in df.columns]
    for name in REQUIRED:
        if name not in df.columns:
            raise MobileFileError(f"{path}: field {name!r} is missing; a track file has the columns "
                                  f"{', '.join(REQUIRED)} and one or more of {', '.join(GASES)}")
    gases = [g for g in GASES if g in df.columns]
    if not gases:
        raise MobileFileError(f"{path}: no gas column; give one or more of "
                              f"{', '.join(f'{g} ({u})' for g, u in GASES.items())}")
    try:
        t = pd.to_datetime(df["time"].astype(str).str.strip(), utc=True, format="ISO8601")
    except ValueError as exc:
        raise MobileFileError(f"{path}: field 'time': {exc}; write ISO 8601 times, "
                              "e.g. 2025-01-01T04:00:00Z") from None
    t = t.dt.tz_localize(None)
    back = np.flatnonzero(np.diff(t.to_numpy()) < np.timedelta64(0, "ns"))
    if back.size:
        i = int(back[0]) + 1
        raise MobileFileError(
            f"{path}: field 'time' goes backwards at data line {i + 1} (file line {i + 2}): "
            f"{t.iloc[i]} after {t.iloc[i - 1]}; a track must be in time order - sort it or split "
            "it into one file per vehicle and run")
    out = pd.DataFrame({"time": t})
    for name in ("lat", "lon", "height", *gases):
        out[name] = pd.to_numeric(df[name], errors="coerce").astype(float)
    keep = np.concatenate(([True], np.diff(out["time"].to_numpy()) > np.timedelta64(0, "ns")))
    return out.loc[keep].reset_index(drop=True)


def haversine_m(lon1, lat1, lon2, lat2) -> np.ndarray:
    """Great-circle distance in metres (sphere of radius 6,371 km)."""
    lon1, lat1, lon2, lat2 = (np.radians(np.asarray(v, dtype=float)) for v in (lon1, lat1, lon2, lat2))
    a = (np.sin((lat2 - lat1) / 2) ** 2
         + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2)
    return 2 * 6371000.0 * np.arcsin(np.sqrt(np.clip(a, 0, 1)))


def qc_track(track: pd.DataFrame, species: str = "co2", max_speed_ms: float = 60.0) -> np.ndarray:
    """QC bit mask per record (module docstring); 0 = good."""
    qc = np.zeros(len(track), dtype=np.int16)
    lat, lon, h = (track[c].to_numpy(float) for c in ("lat", "lon", "height"))
    v = track[species].to_numpy(float)
    missing = ~(np.isfinite(lat) & np.isfinite(lon) & np.isfinite(h) & np.isfinite(v))
    qc[missing] |= QC_MISSING
    with np.errstate(invalid="ignore"):
        qc[(np.abs(lat) > 90) | (np.abs(lon) > 180)] |= QC_POSITION
        qc[(h < 0) | (h > 3000)] |= QC_HEIGHT
        lo, hi = PLAUSIBLE[species]
        qc[(v < lo) | (v > hi)] |= QC_RANGE
    if len(track) > 1:
        dist = haversine_m(lon[:-1], lat[:-1], lon[1:], lat[1:])
        dt = np.diff(track["time"].to_numpy()) / np.timedelta64(1, "s")
        with np.errstate(invalid="ignore", divide="ignore"):
            fast = dist / dt > float(max_speed_ms)
        qc[1:][fast] |= QC_JUMP
    return qc


def segments(track: pd.DataFrame, species: str = "co2", segment_seconds: int = 60,
             min_records: int = 10, track_id: str = "MOB", max_speed_ms: float = 60.0) -> pd.DataFrame:
    """Fixed-window segments of the good records (module docstring), :data:`SEGMENT_COLUMNS`;
    ``time`` is the window's middle (the receptor's release time)."""
    qc = qc_track(track, species, max_speed_ms)
    good = track.loc[qc == 0]
    if good.empty:
        return pd.DataFrame(columns=SEGMENT_COLUMNS)
    width = pd.Timedelta(seconds=int(segment_seconds))
    start = good["time"].dt.floor(width)
    g = good.assign(_w=start).groupby("_w")
    out = pd.DataFrame({"lon": g["lon"].mean(), "lat": g["lat"].mean(),
                        "height": g["height"].mean(), "value": g[species].mean(),
                        "spread": g[species].std(ddof=1).fillna(0.0), "n": g[species].size()})
    out = out[out["n"] >= int(min_records)]
    out["time"] = out.index + width / 2
    out["track"] = track_id
    out["segment"] = np.arange(len(out))
    return out.reset_index(drop=True)[SEGMENT_COLUMNS]


def segment_sigma(seg: pd.DataFrame, mismatch: float, plume_factor: float = 1.0,
                  measurement: float = 0.0) -> np.ndarray:
    """Model-data mismatch σ of each segment: ``sqrt(mismatch² + measurement² / n +
    (plume_factor · spread)²)``. ``mismatch`` is what a 1 km model misses of a road even when it
    is smooth; the within-segment spread measures the plumes passed through (a segment full of
    tail-pipe spikes gets a large σ, a clean one the floor)."""
    n = np.maximum(seg["n"].to_numpy(float), 1.0)
    return np.sqrt(float(mismatch) ** 2 + float(measurement) ** 2 / n
                   + (float(plume_factor) * seg["spread"].to_numpy(float)) ** 2)


def segment_correlation(seg: pd.DataFrame, corr_minutes: float) -> np.ndarray:
    """Correlation of the segments' mismatch along a track: ``exp(−|Δt| / τ)`` within the same
    track (the vehicle stays in the same street canyon and plume field), 0 between tracks."""
    t = (pd.to_datetime(seg["time"]) - pd.Timestamp("1970-01-01")).dt.total_seconds().to_numpy()
    same = seg["track"].to_numpy()[:, None] == seg["track"].to_numpy()[None, :]
    if corr_minutes <= 0:
        return np.eye(len(seg))
    return np.where(same, np.exp(-np.abs(t[:, None] - t[None, :]) / (60.0 * corr_minutes)), 0.0)


def receptors(seg: pd.DataFrame) -> pd.DataFrame:
    """Receptors of the segments in the pipeline's receptor layout (``transport.receptors``:
    ``receptor_id, site, time, lon, lat, agl``): ``site`` is the track id, ``receptor_id``
    ``{track}_{YYYYmmddHHMMSS}_{agl}``."""
    t = pd.to_datetime(seg["time"])
    rid = [f"{k}_{ti.strftime('%Y%m%d%H%M%S')}_{int(round(float(h)))}"
           for k, ti, h in zip(seg["track"], t, seg["height"])]
    return pd.DataFrame({"receptor_id": rid, "site": seg["track"].to_numpy(), "time": t.to_numpy(),
                         "lon": seg["lon"].to_numpy(float), "lat": seg["lat"].to_numpy(float),
                         "agl": seg["height"].to_numpy(float)})
