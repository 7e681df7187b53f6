"""Hourly background CO2 (the air arriving before the city adds to it), with its uncertainty.

Two documented methods (docs/stations.md, "Background"); settings ``stations.background`` in
config, per-site overrides under ``stations.background.sites.{SITE}``:

``upwind`` (default)
    The top inlet of a designated upwind site (``upwind_site``, default ``CHU``, Conghua, north-east
    of the city, upwind in the winter monsoon) measures the background when the wind blows from one
    of the sectors ``sectors`` (degrees the wind comes FROM, clockwise from north; ``[a, b]`` with
    ``a > b`` wraps through north) at ``wind_at`` (``upwind_site`` or the receiving ``site``) with a
    speed of at least ``min_wind_speed_ms``. Wind: 10-m wind of the ARL meteorology, bilinear at
    the site (:func:`wind_at_sites`).

    1. ``u(t)`` = usable hourly values of the upwind site's top inlet in in-sector hours.
    2. ``b(t)`` = mean of ``u`` within ``t ± half_window_hours``; hours without any such value are
       interpolated linearly in time between the nearest estimates.
    3. ``σ_b(t)² = upwind_sigma_ppm² + s²/n + (gap_sigma_ppm_per_hour × gap)²`` with ``s``, ``n``
       the standard deviation and number of the values averaged (``s²/n`` = 0 for ``n`` < 2) and
       ``gap`` the hours to the nearest in-sector value.
    4. Hours farther than ``max_gap_hours`` from any in-sector value, or all hours if the upwind
       site has no usable in-sector value, fall back to ``baseline`` with σ =
       ``stations.background_sigma_ppm``.
    The upwind site itself gets the same series (its enhancement is then only its hour-to-hour
    deviation from its own smoothed value).

``baseline``
    Statistical baseline from the lowest values of the network, no meteorology: for every hour the
    lowest usable top-inlet value of all sites within ``t ± half_window_hours``, then a centred
    running mean over the same window; σ = ``stations.background_sigma_ppm`` (constant). Biased
    high where the lowest site still carries city CO2 and low from the minimum of noisy values.

``model``
    A global/regional model (CarbonTracker, CAMS, a CF field) sampled where each receptor's
    particles left the outer domain (``transport.boundary``, ``{R}/boundary/background.csv``,
    docs/boundary.md): the background of a site's hour is its receptor's particle mean, σ² =
    ``model.sigma_ppm``² + spread² / n_particles, and the shares of particles per inflow side
    (``share_N/E/S/W``) go on to selected.csv (``bg_share_*``) for the inversion's boundary bias
    per day and side. Hours without a receptor value fall back to ``baseline`` (counted, logged)
    with equal shares.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from gzcarbon.config import BackgroundConfig

from .hourly import HOUR_EXCLUDE
from .settings import DEFAULT, section

log = logging.getLogger(__name__)

#: the fix shown with a bad ``sectors`` setting
SECTORS_HINT = ("Give a list of [from, to] wind-direction sectors in degrees 0-360 (direction the wind "
                "comes from, clockwise from north), e.g. [[0, 90]].")


class BackgroundConfigError(ValueError):
    """A bad ``stations.background`` setting: the message names the key and the fix."""


def background_config(cfg: BackgroundConfig | Mapping | None = None) -> BackgroundConfig:
    """``stations.background`` (the typed section, a mapping of some of its keys, or None) as a
    checked `BackgroundConfig`; missing keys take the config's defaults."""
    try:
        return section(BackgroundConfig, cfg, "background", BackgroundConfigError)
    except BackgroundConfigError as err:
        msg = str(err)
        raise BackgroundConfigError(msg + (f" {SECTORS_HINT}" if ".sectors" in msg else "")) from None


def settings(cfg: BackgroundConfig | Mapping | None = None, site: str | None = None) -> BackgroundConfig:
    """Settings of ``site``: the section's values, with the keys set in ``sites[site]`` (unset
    per-site keys are None: they inherit) on top. Returns a `BackgroundConfig` without ``sites``."""
    bg = background_config(cfg)
    per = bg.sites.get(site) if site else None
    update = per.model_dump(exclude_none=True) if per is not None else {}
    return bg.model_copy(update={**update, "sites": {}})


def in_sectors(direction, sectors) -> np.ndarray:
    """True where ``direction`` (deg, wind from) lies in any ``[a, b)`` sector (a > b wraps north)."""
    d = np.mod(np.asarray(direction, float), 360.0)
    out = np.zeros(d.shape, bool)
    for a, b in sectors:
        a, b = float(a), float(b)
        if b - a >= 360 or (a == 0 and b == 360):
            out |= np.isfinite(d)
        elif a <= b:
            out |= (d >= a) & (d < b)
        else:
            out |= (d >= a) | (d < b)
    return out


def wind_direction(u, v) -> np.ndarray:
    """Meteorological direction (deg clockwise from north the wind comes FROM) of (u, v)."""
    return np.mod(np.degrees(np.arctan2(-np.asarray(u, float), -np.asarray(v, float))), 360.0)


def wind_at_sites(met_files: list, points: dict) -> dict[str, pd.DataFrame]:
    """10-m wind and PBL height at ``points`` ({id: (lon, lat)}) from ARL files (hourly).

    Returns {id: DataFrame indexed by time (UTC) with ``u10, v10, speed, direction, pblh``}
    (``pblh`` NaN when the files have no ``PBLH``). Bilinear in lon/lat; a point outside a file's
    grid stops with a message naming the file.
    """
    import arlmet

    if not met_files:
        raise FileNotFoundError("no meteorology files given: the upwind background and night-time "
                                "tower selection need the run's ARL files (met_files)")
    parts = {k: [] for k in points}
    for f in sorted(str(p) for p in met_files):
        ds = arlmet.open_dataset(f)
        for var in ("U10M", "V10M"):
            if var not in ds:
                raise ValueError(f"{f}: no field {var} (10-m wind) in this ARL file; the upwind "
                                 "background needs U10M and V10M (or use stations.background.method: baseline)")
        names = [v for v in ("U10M", "V10M", "PBLH") if v in ds]
        # the three surface fields read once (interpolating the lazy file per site re-read and
        # deep-copied it: 10x the CPU, the same values)
        surf = ds[names].reset_coords(drop=True).load()
        lon, lat = ds["lon"].values, ds["lat"].values
        for k, (x, y) in points.items():
            if not (lon.min() <= x <= lon.max() and lat.min() <= y <= lat.max()):
                raise ValueError(f"{f}: site {k} ({x}, {y}) lies outside the grid "
                                 f"lon {lon.min()}..{lon.max()}, lat {lat.min()}..{lat.max()}")
            p = surf.interp(lon=x, lat=y)
            df = pd.DataFrame({"u10": p["U10M"].values.astype(float), "v10": p["V10M"].values.astype(float),
                               "pblh": p["PBLH"].values.astype(float) if "PBLH" in p else np.nan},
                              index=pd.DatetimeIndex(p["time"].values).as_unit("ns"))
            parts[k].append(df)
        ds.close()
    out = {}
    for k, lst in parts.items():
        df = pd.concat(lst)
        df = df[~df.index.duplicated(keep="first")].sort_index()
        df.index.name = "time"
        df["speed"] = np.hypot(df["u10"], df["v10"])
        df["direction"] = wind_direction(df["u10"], df["v10"])
        out[k] = df
    return out


def usable(table: pd.DataFrame) -> pd.DataFrame:
    """Rows with a finite value and no excluding hourly flag (low coverage, implausible, target tank)."""
    ok = np.isfinite(table["value"]) & ((table["qcflag"] & HOUR_EXCLUDE) == 0)
    if "plausible" in table:
        ok &= table["plausible"].astype(bool)
    return table[ok]


def baseline(table: pd.DataFrame, half_window_hours: int = DEFAULT.background.half_window_hours) -> pd.Series:
    """Statistical baseline per hour (index: time) from the lowest network values (module doc)."""
    ok = usable(table)
    if ok.empty:
        raise ValueError("no usable hourly values in any site: cannot estimate a background")
    per_hour = ok.groupby("time")["value"].min()
    hours = pd.date_range(per_hour.index.min(), per_hour.index.max(), freq="h")
    per_hour = per_hour.reindex(hours)
    w = 2 * half_window_hours + 1
    b0 = per_hour.rolling(w, center=True, min_periods=1).min()
    b = b0.rolling(w, center=True, min_periods=1).mean()
    return b.interpolate(limit_direction="both")


def upwind(values: pd.Series, in_sector: pd.Series, hours: pd.DatetimeIndex,
           half_window_hours: int = DEFAULT.background.half_window_hours,
           upwind_sigma_ppm: float = DEFAULT.background.upwind_sigma_ppm,
           gap_sigma_ppm_per_hour: float = DEFAULT.background.gap_sigma_ppm_per_hour,
           max_gap_hours: float = DEFAULT.background.max_gap_hours) -> pd.DataFrame:
    """Upwind-site background on ``hours``: columns ``background, background_sigma, n, gap_hours``.

    ``values``: usable hourly values of the upwind site (index time); ``in_sector``: bool per hour
    (index time). Hours with ``gap_hours > max_gap_hours`` get NaN (the caller falls back).
    """
    v = values.reindex(hours)
    ok = in_sector.reindex(hours).fillna(False).to_numpy(bool) & np.isfinite(v.to_numpy())
    u = v.where(ok)
    w = 2 * int(half_window_hours) + 1
    roll = u.rolling(w, center=True, min_periods=1)
    mean, n, sd = roll.mean(), roll.count(), roll.std()
    idx = np.flatnonzero(ok)
    pos = np.arange(len(hours))
    if len(idx) == 0:
        gap = np.full(len(hours), np.inf)
        b = np.full(len(hours), np.nan)
    else:
        j = np.searchsorted(idx, pos)
        left = idx[np.clip(j - 1, 0, len(idx) - 1)]
        right = idx[np.clip(j, 0, len(idx) - 1)]
        gap = np.minimum(np.abs(pos - left), np.abs(right - pos)).astype(float)
        have = np.isfinite(mean.to_numpy())
        b = np.interp(pos, pos[have], mean.to_numpy()[have])
    sem2 = np.where(n.to_numpy() >= 2, sd.to_numpy() ** 2 / np.maximum(n.to_numpy(), 1), 0.0)
    sem2 = np.nan_to_num(sem2)
    sig = np.sqrt(upwind_sigma_ppm ** 2 + sem2 + (gap_sigma_ppm_per_hour * np.where(np.isfinite(gap), gap, 0)) ** 2)
    far = gap > max_gap_hours
    b = np.where(far, np.nan, b)
    sig = np.where(far, np.nan, sig)
    return pd.DataFrame({"background": b, "background_sigma": sig, "n": n.to_numpy().astype(int),
                         "gap_hours": gap}, index=hours)


#: inflow sides of the model boundary (columns ``share_<side>`` of the receptor table,
#: ``bg_share_<side>`` of selected.csv)
SIDES = ("N", "E", "S", "W")
SHARE_COLUMNS = tuple(f"bg_share_{s}" for s in SIDES)


def model_site_series(receptor_table: pd.DataFrame, sigma_ppm: float) -> dict[str, pd.DataFrame]:
    """Per site, on the receptor's clock hour (release time floored: obs hour + 30 min), the model
    boundary's ``background``, ``background_sigma`` (√(sigma_ppm² + spread²/n)) and ``bg_share_*``
    from the receptor table of ``transport.boundary`` (columns ``site, time, background,
    background_spread, n_particles, share_N/E/S/W``)."""
    t = receptor_table.copy()
    t["hour"] = pd.DatetimeIndex(pd.to_datetime(t["time"], utc=True)).tz_localize(None).floor("h")  # naive UTC
    n = np.maximum(t["n_particles"].to_numpy(float), 1.0)
    t["background_sigma"] = np.sqrt(float(sigma_ppm) ** 2 + t["background_spread"].to_numpy(float) ** 2 / n)
    for s in SIDES:
        t[f"bg_share_{s}"] = t[f"share_{s}"].to_numpy(float)
    out = {}
    for site, g in t.groupby(t["site"].astype(str)):
        g = g.drop_duplicates("hour").set_index("hour").sort_index()
        g.index.name = "time"
        out[site] = g[["background", "background_sigma", *SHARE_COLUMNS]]
    return out


def site_backgrounds(table: pd.DataFrame, cfg: BackgroundConfig | Mapping | None = None,
                     wind: dict | None = None,
                     background_sigma_ppm: float = DEFAULT.background_sigma_ppm,
                     hours: pd.DatetimeIndex | None = None,
                     model: dict[str, pd.DataFrame] | None = None) -> dict[str, pd.DataFrame]:
    """Background of every site of ``table`` (top-inlet rows: site, time, value, qcflag).

    Returns {site: DataFrame on ``hours`` with ``background``, ``background_sigma``, ``method``
    (the method that produced each hour: ``upwind``, ``model`` or ``baseline``)}, plus
    ``bg_share_*`` for sites of the ``model`` method. ``wind``: output of :func:`wind_at_sites` for
    the sites that need it (``upwind`` method). ``model``: output of :func:`model_site_series`
    (``model`` method). ``cfg``: ``stations.background`` (:func:`settings`; None: the config's
    defaults, the upwind method).
    """
    cfg = background_config(cfg)
    sites = list(dict.fromkeys(table["site"]))
    if hours is None:
        t = pd.DatetimeIndex(table["time"])
        hours = pd.date_range(t.min(), t.max(), freq="h")
    base = None
    cache: dict = {}
    out = {}
    for s in sites:
        st = settings(cfg, s)
        if base is None or st.half_window_hours != base[0]:
            base = (st.half_window_hours, baseline(table, st.half_window_hours).reindex(hours)
                    .interpolate(limit_direction="both"))
        df = pd.DataFrame({"background": base[1].to_numpy(), "background_sigma": float(background_sigma_ppm),
                           "method": "baseline"}, index=hours)
        if st.method == "model":
            df = _with_model(df, s, model, hours)
        elif st.method == "upwind":
            up = st.upwind_site
            where = "upwind_site" if st.wind_at == "upwind_site" else "site"
            wind_key = up if where == "upwind_site" else s
            if up not in sites:
                log.warning("site %s: upwind site %s has no hourly data in this run (not in `sites`?): "
                            "background falls back to the baseline", s, up)
            elif wind is None or wind_key not in wind:
                raise ValueError(f"site {s}: the upwind background needs the wind at {wind_key}; "
                                 "pass the met files (or set stations.background.method: baseline)")
            else:
                key = (up, wind_key, repr(st.model_dump(exclude={"method", "sites"})))
                if key not in cache:
                    w = wind[wind_key].reindex(hours)
                    sector = pd.Series(in_sectors(w["direction"], st.sectors)
                                       & (w["speed"].to_numpy() >= float(st.min_wind_speed_ms)),
                                       index=hours)
                    u = usable(table[table["site"] == up]).set_index("time")["value"]
                    cache[key] = upwind(u, sector, hours, st.half_window_hours, st.upwind_sigma_ppm,
                                        st.gap_sigma_ppm_per_hour, st.max_gap_hours)
                    have = np.isfinite(cache[key]["background"].to_numpy())
                    log.info("background from %s (wind at %s from %s, >= %s m/s): %d of %d hours; "
                             "baseline in the rest", up, wind_key, st.sectors, st.min_wind_speed_ms,
                             int(have.sum()), len(hours))
                ub = cache[key]
                have = np.isfinite(ub["background"].to_numpy())
                df.loc[have, "background"] = ub["background"].to_numpy()[have]
                df.loc[have, "background_sigma"] = ub["background_sigma"].to_numpy()[have]
                df.loc[have, "method"] = "upwind"
        out[s] = df
    return out


def _with_model(df: pd.DataFrame, site: str, model: dict | None, hours) -> pd.DataFrame:
    """``df`` (the baseline) replaced by the model boundary where the site has a receptor value."""
    if model is None:
        raise ValueError(f"site {site}: stations.background.method is model but no model boundary was "
                         "given (rule boundary_background's boundary/background.csv)")
    for c in SHARE_COLUMNS:
        df[c] = 1.0 / len(SIDES)
    m = model.get(site)
    if m is None:
        log.warning("site %s: no receptor in the model boundary table: background falls back to the "
                    "baseline in all %d hours", site, len(hours))
        return df
    m = m.reindex(hours)
    have = np.isfinite(m["background"].to_numpy(float))
    for c in ("background", "background_sigma", *SHARE_COLUMNS):
        df.loc[have, c] = m[c].to_numpy(float)[have]
    df.loc[have, "method"] = "model"
    log.info("site %s: model boundary in %d hours (its receptors); baseline in the other %d", site,
             int(have.sum()), int((~have).sum()))
    return df


def needs_met(cfg: BackgroundConfig | Mapping | None, site_ids) -> bool:
    """True when some site's background uses the upwind method (the rule then reads the met)."""
    cfg = background_config(cfg)
    return any(settings(cfg, s).method == "upwind" for s in site_ids)


def background_error(estimate: pd.Series, truth: pd.Series) -> dict:
    """Bias, rms and n of ``estimate - truth`` on common finite hours (for demo checks)."""
    e = (estimate - truth.reindex(estimate.index)).dropna()
    return {"bias": float(e.mean()) if len(e) else float("nan"),
            "rms": float(np.sqrt((e ** 2).mean())) if len(e) else float("nan"), "n": int(len(e))}


def read_truth_background(path: str | Path) -> pd.Series:
    """``background(time)`` of a demo ``truth.nc``."""
    import xarray as xr
    with xr.open_dataset(path) as ds:
        s = ds["background"].to_series()
    s.index = pd.DatetimeIndex(s.index).as_unit("ns")
    return s
