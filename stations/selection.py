"""Selection of the observations the inversion uses, with their hourly background.

Selection: the top inlet of every site, hours whose *local* start hour (UTC + ``utc_offset_hours``)
lies in ``[start, end)`` of ``select_hours_local`` (a window with start > end wraps midnight),
usable hourly values (finite, ``qcflag`` without an excluding bit: low coverage, out of range,
step, target tank; value inside the plausible range of :mod:`stations.plausibility`).

Optional night-time tower use (``stations.night_tower``, off by default): the top inlet of tower
sites also in the local hours ``hours_local`` (default ``[22, 6)``) when the inlet lies above the
stable nocturnal layer: ``intake_height > PBLH + min_height_above_pbl_m`` at the start and the end
of the hour (PBLH of the ARL meteorology, bilinear at the site). The tower top then samples the
residual layer, which keeps the daytime mixed air.

Background: :mod:`stations.background` (methods ``upwind`` and ``baseline``).
"""
from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from gzcarbon.config import BackgroundConfig, NightTowerConfig, PlausibilityConfig, StationsConfig, load_config

from . import background as bgm
from . import plausibility as plm
from .hourly import HOUR_EXCLUDE, HOUR_FLAG_NAMES, LOW_COVERAGE  # noqa: F401 (kept for importers)
from .settings import DEFAULT, section

log = logging.getLogger(__name__)

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
        df["species"] = str(top.attrs.get("species", "co2")).lower()
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def in_local_window(time: pd.Series, utc_offset_hours: float, window: tuple[int, int]) -> np.ndarray:
    """True where the local start hour of ``time`` (UTC) lies in ``[start, end)``."""
    local = (pd.DatetimeIndex(time) + pd.Timedelta(hours=utc_offset_hours)).hour
    a, b = int(window[0]), int(window[1])
    return np.asarray((local >= a) & (local < b) if a <= b else (local >= a) | (local < b))


def network_minimum_background(table: pd.DataFrame,
                               half_window_hours: int = DEFAULT.background.half_window_hours) -> pd.Series:
    """The statistical baseline (kept name; see :func:`stations.background.baseline`)."""
    return bgm.baseline(table, half_window_hours)


def night_settings(cfg: NightTowerConfig | Mapping | None = None) -> NightTowerConfig:
    """``stations.night_tower`` (the typed section, a mapping of some of its keys, or None) as a
    checked `NightTowerConfig`; missing keys take the config's defaults."""
    return section(NightTowerConfig, cfg, "night_tower")


def night_tower_mask(tab: pd.DataFrame, utc_offset_hours: float, night: NightTowerConfig | Mapping | None,
                     wind: dict, tower_ids) -> np.ndarray:
    """Rows of ``tab`` that are night hours of a tower whose top inlet is above the PBL."""
    night = night_settings(night)
    ids = list(night.sites or tower_ids)
    m = np.zeros(len(tab), bool)
    if not ids:
        return m
    in_night = in_local_window(tab["time"], utc_offset_hours, night.hours_local)
    for s in ids:
        rows = np.flatnonzero((tab["site"] == s).to_numpy() & in_night)
        if not len(rows):
            continue
        if s not in wind:
            raise ValueError(f"night_tower: no PBL height for site {s}; pass the met files")
        pbl = wind[s]["pblh"]
        t = pd.DatetimeIndex(tab["time"].to_numpy()[rows])
        p0 = pbl.reindex(t).to_numpy()
        p1 = pbl.reindex(t + pd.Timedelta(hours=1)).to_numpy()
        p = np.fmax(p0, p1)
        h = tab["intake_height"].to_numpy(float)[rows]
        m[rows] = np.isfinite(p) & (h > p + float(night.min_height_above_pbl_m))
    return m


def select_from_config(hourly_dirs: list, cfg: StationsConfig | Mapping | None = None, *,
                       wind: dict | None = None, met_files=None, tower_ids=(),
                       model_background: pd.DataFrame | None = None) -> pd.DataFrame:
    """:func:`select` with the settings of the ``stations`` config section ``cfg`` (the typed
    section, a mapping of some of its keys, e.g. a partial ``config["stations"]``, or None: every
    setting at the config's default), as the pipeline's rule ``select_obs`` uses them."""
    st = cfg if isinstance(cfg, StationsConfig) else load_config({"stations": dict(cfg or {})}).stations
    return select(hourly_dirs, utc_offset_hours=st.utc_offset_hours,
                  select_hours_local=tuple(st.select_hours_local),
                  background_sigma_ppm=st.background_sigma_ppm, background=st.background, wind=wind,
                  met_files=met_files, night_tower=st.night_tower, tower_ids=tower_ids,
                  plausibility=st.plausibility, model_background=model_background)


def select(hourly_dirs: list, utc_offset_hours: float = DEFAULT.utc_offset_hours,
           select_hours_local=tuple(DEFAULT.select_hours_local),
           background_sigma_ppm: float = DEFAULT.background_sigma_ppm, half_window_hours: int | None = None,
           background: BackgroundConfig | Mapping | None = None, wind: dict | None = None, met_files=None,
           night_tower: NightTowerConfig | Mapping | None = None, tower_ids=(),
           plausibility: PlausibilityConfig | Mapping | None = None,
           model_background: pd.DataFrame | None = None) -> pd.DataFrame:
    """The table of ``{R}/obs/selected.csv`` (columns :data:`COLUMNS`), sorted by time and site.

    Settings not given take the config's defaults (`gzcarbon.config.StationsConfig`; the
    sections may be given typed or as mappings of some of their keys; :func:`select_from_config`
    takes the whole ``stations`` section). ``background``: ``stations.background`` settings
    (default: the upwind method); ``half_window_hours`` overrides its window. ``wind``: output of
    :func:`stations.background.wind_at_sites`, else read from ``met_files`` when the upwind method
    or the night-time tower selection needs it. ``night_tower``: ``stations.night_tower``
    settings; ``tower_ids``: sites with role ``tower`` (used when ``night_tower.sites`` is empty).
    ``plausibility``: ``stations.plausibility``; hours whose value lies outside the range are not
    selected (nor used for the background) even when the hourly file did not flag them.
    ``model_background``: the receptor table of ``transport.boundary`` (``background.method:
    model``); the result then also has the columns ``bg_share_N/E/S/W``. Hours
    with an excluding hourly flag (:data:`stations.hourly.HOUR_EXCLUDE`) are not selected. The
    result's ``attrs["dropped"]`` ({site: {reason: count}}) counts, per site, the window hours not selected by reason
    (:func:`dropped_counts`); the log names them.
    """
    tab = top_inlet_table(hourly_dirs)
    pset = plm.settings(plausibility)
    tab["plausible"] = True
    for sp in tab["species"].unique():
        r = (tab["species"] == sp).to_numpy()
        tab.loc[r, "plausible"] = ~plm.out_of_range(tab.loc[r, "value"].to_numpy(float), sp, pset)
    bcfg = bgm.background_config(background)
    if half_window_hours is not None:
        bcfg = bcfg.model_copy(update={"half_window_hours": int(half_window_hours)})
    night = night_settings(night_tower)
    site_ids = list(dict.fromkeys(tab["site"]))
    if wind is None and (bgm.needs_met(bcfg, site_ids) or night.enabled) and met_files:
        pts = tab.groupby("site")[["lon", "lat"]].first()
        wind = bgm.wind_at_sites(list(met_files), {k: (r.lon, r.lat) for k, r in pts.iterrows()})
    t = pd.DatetimeIndex(tab["time"])
    hours = pd.date_range(t.min(), t.max(), freq="h")
    model = (bgm.model_site_series(model_background, bcfg.model.sigma_ppm)
             if model_background is not None else None)
    bgs = bgm.site_backgrounds(tab, bcfg, wind, background_sigma_ppm, hours, model)
    ok = np.isfinite(tab["value"]).to_numpy() & ((tab["qcflag"] & HOUR_EXCLUDE) == 0).to_numpy() \
        & tab["plausible"].to_numpy(bool)
    day = in_local_window(tab["time"], utc_offset_hours, select_hours_local)
    keep = day.copy()
    if night.enabled:
        nm = night_tower_mask(tab, utc_offset_hours, night, wind or {}, tower_ids)
        log.info("night-time tower hours selected: %d", int((nm & ok & ~day).sum()))
        keep |= nm
    _warn_empty_days(tab, day, ok, utc_offset_hours)
    dropped = dropped_counts(tab, keep)
    for site, row in dropped.iterrows():
        if row.drop("window_hours").sum():
            log.warning("site %s: of %d hours in the selection window, not selected: %s", site,
                        row["window_hours"], ", ".join(f"{k} {v}" for k, v in row.items()
                                                       if k != "window_hours" and v))
    bad = tab[keep & ~tab["plausible"].to_numpy(bool) & np.isfinite(tab["value"]).to_numpy()]
    for _, r in bad.head(20).iterrows():
        log.warning("site %s %s: hourly value %.6g outside the plausible range %s of %s (unflagged in "
                    "the hourly file): not selected", r["site"], r["time"], r["value"],
                    pset.range[r["species"]], r["species"])
    sel = tab[keep & ok].copy()
    ti = pd.DatetimeIndex(sel["time"])
    sel["background"] = np.nan
    sel["background_sigma"] = np.nan
    shares = [c for c in bgm.SHARE_COLUMNS if any(c in df for df in bgs.values())]
    for s, df in bgs.items():
        r = (sel["site"] == s).to_numpy()
        for c in ("background", "background_sigma", *shares):
            sel.loc[r, c] = (df[c].reindex(ti[r]).to_numpy() if c in df else 1.0 / len(bgm.SIDES))
    sel = sel.sort_values(["time", "site"]).reset_index(drop=True)
    sel["time"] = pd.DatetimeIndex(sel["time"]).strftime("%Y-%m-%dT%H:%M:%SZ")
    out = sel[COLUMNS + shares]
    out.attrs["dropped"] = {s: {k: int(v) for k, v in r.items()} for s, r in dropped.iterrows()}
    return out


def dropped_counts(tab: pd.DataFrame, window: np.ndarray) -> pd.DataFrame:
    """Per site: hours in the selection window(s) and, by reason, those not selected.

    Columns ``window_hours``, ``no_value`` (NaN value, no other flag), one per excluding hourly
    flag (``low_coverage``, ``out_of_range``, ``step``, ``target_tank``; an hour can carry several)
    and ``implausible_unflagged`` (value outside the plausible range in a file that did not flag it).
    """
    w = np.asarray(window, bool)
    q = tab["qcflag"].to_numpy(np.int64)
    fin = np.isfinite(tab["value"].to_numpy(float))
    cols = {"window_hours": w}
    cols["no_value"] = w & ~fin & ((q & HOUR_EXCLUDE) == 0)
    for b, nm in HOUR_FLAG_NAMES.items():
        if b & HOUR_EXCLUDE:
            cols[nm] = w & ((q & b) != 0)
    cols["implausible_unflagged"] = w & fin & ((q & HOUR_EXCLUDE) == 0) & ~tab["plausible"].to_numpy(bool)
    df = pd.DataFrame({k: v.astype(int) for k, v in cols.items()})
    df["site"] = tab["site"].to_numpy()
    return df.groupby("site").sum()


def _warn_empty_days(tab: pd.DataFrame, window: np.ndarray, ok: np.ndarray,
                     utc_offset_hours: float) -> list[tuple[str, str]]:
    """Log (and return) the site-days with window hours but no usable value (e.g. a NaN-only day).

    Days before the first usable value of the whole network (the spin-up day of the hourly axis)
    are not reported.
    """
    local_day = (pd.DatetimeIndex(tab["time"]) + pd.Timedelta(hours=utc_offset_hours)).normalize()
    if not ok.any():
        return []
    first = local_day[ok].min()
    frame = pd.DataFrame({"site": tab["site"].to_numpy(), "day": local_day,
                          "usable": window & ok})[window & (local_day >= first)]
    empty = frame.groupby(["site", "day"])["usable"].sum()
    empty = [(s, d.strftime("%Y-%m-%d")) for (s, d), n in empty.items() if n == 0]
    for s, d in empty:
        log.warning("site %s: no usable hourly value on %s (local) in the selection window; "
                    "check the ingest summary of that day (alarms, missing files, low coverage)", s, d)
    return empty


def write_selected(df: pd.DataFrame, path: str | os.PathLike) -> None:
    from gzcarbon.atomic import write_csv  # unique temporary name; disk full/permission named

    write_csv(df, path, index=False, float_format="%.4f")
