"""Demo world: synthetic January Pearl River Delta meteorology, written as ARL files HYSPLIT reads.

The ARL constants, the met grid, the index reader and the coverage check real runs use live in
:mod:`transport.arl`; this module only invents the weather.

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
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from gzcarbon.atomic import atomic_write
from transport.arl import (G, LAPSE, LEVEL_FIELDS, PRESSURE_LEVELS, RD, SURFACE_FIELDS, MetGrid,
                           packable)

logger = logging.getLogger(__name__)

UTC_OFFSET_HOURS = 8
SOURCE = "GZSY"  # four-character ARL source tag of the synthetic met


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
                    rs.create_datarecord(name, 0, forecast=0, data=packable(surface[name]))
                for k in range(len(PRESSURE_LEVELS)):
                    for name in LEVEL_FIELDS:
                        rs.create_datarecord(name, k + 1, forecast=0,
                                             data=packable(levels[name][k]))
                f.flush()
        finally:
            f.close()

    atomic_write(path, _write)
    logger.info("wrote %s (%d hours, %d x %d points)", path, len(hours), grid.nx, grid.ny)
    return path
