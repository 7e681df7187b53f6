"""Synthetic January Pearl River Delta meteorology, written as ARL files HYSPLIT reads.

The demo world needs meteorology in the format a real run uses (ARL packed, one file per UTC
day). The fields are analytic and smooth but physically plausible for the winter north-east
monsoon over Guangdong:

- terrain rising from the coast (south) to the Nanling foothills (north), sea south of a wavy
  coastline;
- mean sea-level pressure of a continental cold high (higher to the north) with synoptic
  variations of a few hPa over 3-6 days;
- surface north-easterlies of 3-6 m/s, veering with height inside the boundary layer and turning
  to mid-latitude westerlies aloft (jet ~40 m/s at 200 hPa);
- a diurnal boundary layer over land (~300 m at night, ~1000-1300 m in the early afternoon,
  local time = UTC+8), sensible heat flux and friction velocity with diurnal cycles; a weakly
  unstable marine boundary layer over the warm sea;
- temperature with a standard lapse rate from a diurnally varying surface value, geopotential
  heights integrated hydrostatically from that temperature.

Every random draw comes from ``seed`` and the fields are continuous functions of absolute time, so
consecutive daily files join without jumps and the same seed gives the same bytes.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from gzcarbon.atomic import atomic_write

logger = logging.getLogger(__name__)

#: Pressure levels (hPa) above the surface level 0, GDAS-like.
PRESSURE_LEVELS = (1000.0, 975.0, 950.0, 925.0, 900.0, 850.0, 800.0, 700.0, 600.0, 500.0,
                   400.0, 300.0, 250.0, 200.0)
SURFACE_FIELDS = ("SHGT", "PRSS", "MSLP", "T02M", "U10M", "V10M", "RH2M", "PBLH", "SHTF", "USTR")
LEVEL_FIELDS = ("HGTS", "TEMP", "UWND", "VWND", "WWND", "RELH")

RD = 287.05  # J kg-1 K-1
G = 9.80665  # m s-2
LAPSE = 0.0065  # K m-1
UTC_OFFSET_HOURS = 8
SOURCE = "GZSY"  # four-character ARL source tag of the synthetic met


@dataclass(frozen=True)
class MetGrid:
    """A regular lon/lat grid of met points (both edges included)."""

    lon_min: float
    lon_max: float
    lat_min: float
    lat_max: float
    res: float

    @property
    def nx(self) -> int:
        return int(round((self.lon_max - self.lon_min) / self.res)) + 1

    @property
    def ny(self) -> int:
        return int(round((self.lat_max - self.lat_min) / self.res)) + 1

    @property
    def lons(self) -> np.ndarray:
        return self.lon_min + self.res * np.arange(self.nx)

    @property
    def lats(self) -> np.ndarray:
        return self.lat_min + self.res * np.arange(self.ny)

    @classmethod
    def from_bounds(cls, bounds: dict, res: float | None = None) -> "MetGrid":
        """Build from a config ``met`` mapping (``lon_min, lon_max, lat_min, lat_max, res``)."""
        try:
            return cls(float(bounds["lon_min"]), float(bounds["lon_max"]), float(bounds["lat_min"]),
                       float(bounds["lat_max"]), float(res if res is not None else bounds["res"]))
        except KeyError as exc:
            raise ValueError(f"met grid: missing key {exc.args[0]!r} in {bounds!r}; give "
                             "lon_min, lon_max, lat_min, lat_max and res (config `met`)") from None

    def arl_grid(self):
        """The ``arlmet.Grid`` of this lat/lon grid."""
        import arlmet

        proj = arlmet.Projection(
            pole_lat=self.lats[-1], pole_lon=self.lons[-1], tangent_lat=self.res,
            tangent_lon=self.res, grid_size=0.0, orientation=0.0, cone_angle=0.0,
            sync_x=1.0, sync_y=1.0, sync_lat=self.lat_min, sync_lon=self.lon_min)
        return arlmet.Grid(projection=proj, nx=self.nx, ny=self.ny)


class _World:
    """Seeded parameters of the synthetic atmosphere (all smooth in space and time)."""

    def __init__(self, grid: MetGrid, seed: int):
        rng = np.random.default_rng(seed)
        self.grid = grid
        lon2, lat2 = np.meshgrid(grid.lons, grid.lats)  # (ny, nx)
        self.lon2, self.lat2 = lon2, lat2
        # Coastline: sea south of a wavy line around 22.4 N.
        coast = 22.45 + 0.25 * np.sin((lon2 - 112.0) * 1.3) + 0.1 * np.cos((lon2 - 110.0) * 3.1)
        self.land = 1.0 / (1.0 + np.exp(-(lat2 - coast) / 0.08))  # smooth 0 (sea) .. 1 (land)
        # Terrain: rising north of the coast, with a few seeded hills.
        hills = np.zeros_like(lon2)
        for _ in range(6):
            x0, y0 = rng.uniform(grid.lon_min, grid.lon_max), rng.uniform(23.2, grid.lat_max)
            h, w = rng.uniform(150, 500), rng.uniform(0.3, 0.8)
            hills += h * np.exp(-((lon2 - x0) ** 2 + (lat2 - y0) ** 2) / (2 * w * w))
        self.shgt = self.land * (np.clip(lat2 - 22.6, 0, None) * 180.0 + hills)
        # Synoptic oscillations: a few periods (days) with seeded phases and amplitudes.
        self.periods = np.array([2.9, 4.3, 6.1])
        self.phase = rng.uniform(0, 2 * np.pi, size=(4, 3))
        self.amp = rng.uniform(0.5, 1.0, size=(4, 3))
        # Smooth spatial modulation of wind speed and direction.
        kx, ky, ph = rng.uniform(0.4, 0.9), rng.uniform(0.4, 0.9), rng.uniform(0, 2 * np.pi)
        self.speed_mod = 1.0 + 0.12 * np.sin(kx * lon2 + ky * lat2 + ph) + 0.15 * (1 - self.land)
        self.dir_mod = 8.0 * np.cos(ky * lon2 - kx * lat2 + ph)
        self.rh_mod = 6.0 * np.sin(0.7 * lon2 + 1.1 * lat2 + ph)

    def synoptic(self, k: int, days: float) -> float:
        """Synoptic signal ``k`` in [-1, 1] at ``days`` since 2000-01-01."""
        s = self.amp[k] * np.sin(2 * np.pi * days / self.periods + self.phase[k])
        return float(s.sum() / self.amp[k].sum())

    def fields(self, time: pd.Timestamp) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Surface fields (ny, nx) and level fields (nlev, ny, nx) at one UTC time."""
        days = (time - pd.Timestamp("2000-01-01")) / pd.Timedelta("1D")
        local_h = (time.hour + time.minute / 60 + UTC_OFFSET_HOURS) % 24
        sun = max(0.0, np.sin(np.pi * (local_h - 7.0) / 10.5))  # 07-17:30 local
        warm = np.cos(2 * np.pi * (local_h - 14.5) / 24)  # +1 at 14:30 local
        land, lat2, shgt = self.land, self.lat2, self.shgt
        s_speed, s_dir, s_press, s_temp = (self.synoptic(k, days) for k in range(4))

        # Pressure and temperature.
        mslp = 1019.0 + 2.0 * (lat2 - 23.0) + 4.0 * s_press
        t_sl = (288.0 + 3.0 * s_temp - 1.2 * (lat2 - 23.0)
                + warm * (1.0 + 3.5 * land) - 0.5 * (1 - land))  # sea-level 2 m temperature
        t02m = t_sl - LAPSE * shgt
        prss = mslp * np.exp(-G * shgt / (RD * (t02m + 0.5 * LAPSE * shgt)))

        # Surface wind: north-easterly monsoon, direction measured "from", degrees.
        speed10 = (4.5 + 1.5 * s_speed) * self.speed_mod * (1.0 + 0.15 * sun * land)
        dir10 = 45.0 + 20.0 * s_dir + self.dir_mod
        u10 = -speed10 * np.sin(np.deg2rad(dir10))
        v10 = -speed10 * np.cos(np.deg2rad(dir10))

        # Boundary layer: land diurnal cycle, near-constant over the warm sea.
        pblh_land = 300.0 + (1000.0 + 200.0 * s_speed) * sun
        pblh = land * pblh_land + (1 - land) * (550.0 + 60.0 * s_speed)
        shtf = land * (-25.0 + 210.0 * sun) + (1 - land) * (30.0 + 10.0 * s_speed)
        ustr = land * (0.12 + 0.045 * speed10 + 0.12 * sun) + (1 - land) * (0.035 * speed10)
        rh2m = np.clip(72.0 - 22.0 * sun * land + self.rh_mod + 8 * (1 - land), 20, 100)

        # Levels: temperature from the lapse rate, heights integrated hydrostatically.
        p = np.asarray(PRESSURE_LEVELS)[:, None, None]
        t_lev = np.maximum(t_sl[None] * (p / mslp[None]) ** (RD * LAPSE / G), 212.0)
        # Night-time surface inversion over land at the lowest levels (weak).
        t_lev = t_lev + (0.0 if sun > 0 else 1.5) * land[None] * (p >= 950.0)
        hgts = np.empty_like(t_lev)
        p_prev, t_prev, z_prev = mslp, t_sl, np.zeros_like(mslp)
        for k in range(p.shape[0]):
            z = z_prev + RD / G * 0.5 * (t_prev + t_lev[k]) * np.log(p_prev / p[k])
            hgts[k] = z
            p_prev, t_prev, z_prev = p[k], t_lev[k], z
        # Winds: veer through the boundary layer, turn to westerlies aloft.
        frac = np.clip(np.log(1000.0 / p) / np.log(1000.0 / 850.0), 0, 1)  # 0 at 1000, 1 at 850
        aloft = np.clip(np.log(850.0 / p) / np.log(850.0 / 300.0), 0, 1)  # 0 at 850, 1 at 300
        bl_speed = speed10[None] * (1.25 + 0.35 * frac)
        bl_dir = dir10[None] + 35.0 * frac
        u_bl = -bl_speed * np.sin(np.deg2rad(bl_dir))
        v_bl = -bl_speed * np.cos(np.deg2rad(bl_dir))
        u_jet = 8.0 + 35.0 * aloft + 4.0 * s_speed
        v_jet = 2.0 * s_dir * np.ones_like(u_jet)
        w = aloft ** 0.7
        uwnd = (1 - w) * u_bl + w * u_jet
        vwnd = (1 - w) * v_bl + w * v_jet
        # Weak large-scale subsidence (hPa/s, positive down), stronger in the cold high.
        wwnd = (0.0004 + 0.0002 * s_press) * np.sin(np.pi * np.clip((1000.0 - p) / 800.0, 0, 1)) \
            * np.ones_like(uwnd)
        relh = np.clip((rh2m[None] - 45.0 * np.clip((1000.0 - p) / 600.0, 0, 1)), 10, 100)

        surface = dict(SHGT=shgt, PRSS=prss, MSLP=mslp, T02M=t02m, U10M=u10, V10M=v10, RH2M=rh2m,
                       PBLH=pblh, SHTF=shtf, USTR=ustr)
        levels = dict(HGTS=hgts, TEMP=t_lev, UWND=uwnd, VWND=vwnd, WWND=wwnd, RELH=relh)
        return ({k: np.asarray(v, dtype=np.float32) for k, v in surface.items()},
                {k: np.broadcast_to(v, t_lev.shape).astype(np.float32) for k, v in levels.items()})


def _packable(data: np.ndarray) -> np.ndarray:
    """``data``, nudged if needed so ARL one-byte packing reproduces it.

    arlmet 0.1.0b4 chooses too small an exponent when the largest neighbour difference is exactly
    a power of two (e.g. a smooth field whose differences are all 0.125): the packed differences
    then wrap and the field is corrupted by several units. We check the round trip and, if it
    fails, round the field to 1e-3 (which breaks the exact power of two).
    """
    import arlmet

    ny, nx = data.shape

    def err(x):
        b, prec, e, v0 = arlmet.pack(x)
        y = arlmet.unpack(b.tobytes(), nx, ny, prec, e, v0)
        return float(np.abs(y - x).max()), 4 * prec + 1e-6

    e, tol = err(data)
    if e <= tol:
        return data
    for fix in (lambda x: np.round(x, 3), lambda x: x + np.float32(1e-3) * np.sign(x)):
        cand = fix(data).astype(np.float32)
        e, tol = err(cand)
        if e <= tol:
            return cand
    raise RuntimeError("ARL packing failed for a synthetic field; report this with the seed")


def met_fields(time, bounds: dict, res: float | None = None, seed: int = 0):
    """Surface and level fields of the synthetic met at ``time`` (UTC), for tests and plots."""
    grid = MetGrid.from_bounds(bounds, res)
    return _World(grid, seed).fields(pd.Timestamp(time))


def write_met_day(path: str | os.PathLike, day, bounds: dict, res: float | None = None,
                  seed: int = 0, hours: Sequence[int] | None = None) -> Path:
    """Write the hourly synthetic meteorology of one UTC ``day`` to the ARL file ``path``.

    Parameters
    ----------
    path : path-like
        Output file, conventionally ``YYYYMMDD_gz.arl``. Written to a temporary name in the same
        directory, then renamed, so a killed job never leaves a file that looks finished.
    day : date-like
        UTC day; the file holds hours 00..23 of it.
    bounds : dict
        ``lon_min, lon_max, lat_min, lat_max`` (and ``res`` unless given), degrees; grid points
        include both edges.
    seed : int
        Seed of the synoptic phases, hills and spatial patterns.
    hours : sequence of int, optional
        Subset of hours to write (tests); default all 24.
    """
    import arlmet

    path = Path(path)
    day = pd.Timestamp(day).normalize()
    grid = MetGrid.from_bounds(bounds, res)
    world = _World(grid, seed)
    axis = arlmet.PressureAxis(levels=[0.0, *PRESSURE_LEVELS])
    path.parent.mkdir(parents=True, exist_ok=True)
    hours = range(24) if hours is None else hours
    if grid.nx * grid.ny < 1100:
        raise ValueError(f"met grid {grid.nx} x {grid.ny} is too small for an ARL file (the index "
                         "record must fit in one field record: need nx * ny >= 1100); widen the "
                         "domain or refine `res`")
    def _write(tmp):
        f = arlmet.File(tmp, mode="w", source=SOURCE, grid=grid.arl_grid(), vertical_axis=axis)
        try:
            for h in hours:
                t = day + pd.Timedelta(hours=int(h))
                surface, levels = world.fields(t)
                rs = f.create_recordset(t, forecast=0)
                for name in SURFACE_FIELDS:
                    rs.create_datarecord(name, 0, forecast=0, data=_packable(surface[name]))
                for k in range(len(PRESSURE_LEVELS)):
                    for name in LEVEL_FIELDS:
                        rs.create_datarecord(name, k + 1, forecast=0,
                                             data=_packable(levels[name][k]))
                f.flush()
        finally:
            f.close()

    atomic_write(path, _write)
    logger.info("wrote %s (%d hours, %d x %d points)", path, len(hours), grid.nx, grid.ny)
    return path


# --------------------------------------------------------------------------------------------
# Coverage check
# --------------------------------------------------------------------------------------------

class MetCoverageError(ValueError):
    """The meteorology does not cover a receptor's run window or position."""


def _met_extent(path: Path) -> tuple[list[pd.Timestamp], tuple[float, float, float, float]]:
    import arlmet

    with arlmet.File(path) as f:
        times = list(f.times)
        coords = f.grid.calculate_coords()
        lons = np.asarray(coords["lon"][1], dtype=float)
        lats = np.asarray(coords["lat"][1], dtype=float)
    return times, (float(np.min(lons)), float(np.max(lons)), float(np.min(lats)), float(np.max(lats)))


def check_met_coverage(met_files: Iterable[str | os.PathLike], receptors: pd.DataFrame,
                       n_hours: int, bounds: dict | None = None,
                       file_format: str | None = None) -> None:
    """Check that the met covers every receptor's run window and position.

    A backward run of ``n_hours`` from release time ``t`` needs every hour from
    ``floor(t) - |n_hours|`` to ``floor(t) + 1h``. Raises :class:`MetCoverageError` naming the
    missing files/hours or the receptors outside the met domain (``bounds`` = the met grid
    extent; read from the first file when not given). With ``file_format`` (e.g.
    ``"%Y%m%d_gz.arl"``, one file per UTC day) each missing hour is listed with the file that
    should hold it and whether that file was given.
    """
    files = [Path(p) for p in met_files]
    missing_files = [str(p) for p in files if not p.exists()]
    if missing_files:
        raise MetCoverageError(
            f"met files missing: {', '.join(missing_files)}. Create them (demo: rule demo_met) or "
            "point inputs.met_dir at ARL files covering the period.")
    if not files:
        raise MetCoverageError("no met files given; set inputs.met_dir (config) to ARL files")
    if file_format and len(receptors):  # open only the files of the needed days
        t = pd.to_datetime(receptors["time"], utc=True).dt.tz_localize(None).dt.floor("h")
        span = pd.Timedelta(hours=abs(int(n_hours)))
        lo = (t - span).min() if n_hours < 0 else t.min()
        hi = t.max() + pd.Timedelta(hours=1) + (span if n_hours > 0 else pd.Timedelta(0))
        wanted = {h.strftime(file_format) for h in pd.date_range(lo, hi, freq="h")}
        files = [p for p in files if p.name in wanted] or files
    have: set[pd.Timestamp] = set()
    extent = None
    for p in files:
        times, ext = _met_extent(p)
        have.update(pd.Timestamp(t) for t in times)
        extent = extent or ext
    if bounds is not None:
        extent = (float(bounds["lon_min"]), float(bounds["lon_max"]),
                  float(bounds["lat_min"]), float(bounds["lat_max"]))
    lon0, lon1, lat0, lat1 = extent
    rec = receptors
    lon = rec["lon"].to_numpy(float)
    lat = rec["lat"].to_numpy(float)
    ids = rec["receptor_id"].astype(str).to_numpy() if "receptor_id" in rec else rec.index.astype(str)
    outside = (lon < lon0) | (lon > lon1) | (lat < lat0) | (lat > lat1)
    if outside.any():
        bad = [f"{i} ({x:.3f}E, {y:.3f}N)" for i, x, y in zip(ids[outside], lon[outside], lat[outside])]
        raise MetCoverageError(
            f"receptors outside the met domain {lon0}-{lon1}E x {lat0}-{lat1}N: "
            f"{'; '.join(bad[:10])}{' ...' if len(bad) > 10 else ''}. Widen the met domain "
            "(config `met`) or drop these sites.")
    span = abs(int(n_hours))
    need: dict[pd.Timestamp, list[str]] = {}
    for rid, t in zip(ids, pd.to_datetime(rec["time"], utc=True).dt.tz_localize(None)):
        t0 = t.floor("h")
        lo, hi = (t0 - pd.Timedelta(hours=span), t0 + pd.Timedelta(hours=1)) if n_hours < 0 else \
            (t0, t0 + pd.Timedelta(hours=span + 1))
        for hour in pd.date_range(lo, hi, freq="h"):
            if hour not in have:
                need.setdefault(hour, []).append(rid)
    if need:
        hours = sorted(need)
        first = need[hours[0]][0]
        if file_format:
            names = {p.name: p for p in files}
            where = []
            for h in hours[:12]:
                fname = h.strftime(file_format)
                state = ("given but lacks this hour" if fname in names
                         else "file not given")
                where.append(f"{h:%Y-%m-%d %H:00} -> {fname} ({state})")
            listing = "; ".join(where)
        else:
            listing = (f"{', '.join(h.strftime('%Y-%m-%d %H:00') for h in hours[:12])} "
                       f"(files given: {', '.join(p.name for p in files)})")
        raise MetCoverageError(
            f"met lacks {len(hours)} hour(s) needed by "
            f"{len({r for v in need.values() for r in v})} receptor(s): {listing}"
            f"{' ...' if len(hours) > 12 else ''} (e.g. receptor {first}). Add the ARL files of "
            "those UTC days.")
