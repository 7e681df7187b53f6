"""WRF output (``wrfout_d0*``) -> ARL on WRF's own grid and native eta levels
(:func:`wrf_to_arl`), or -> pressure levels on a lat/lon grid (:func:`wrf_to_pressure_levels`).

:func:`wrf_to_arl` (the rule ``met_convert``): the ARL grid is WRF's own projection -- Lambert
conformal (``MAP_PROJ`` 1), polar stereographic (2), Mercator (3) or a regular lat-lon grid (6) --
written into the index record with HYSPLIT's conventions (:func:`wrf_arl_projection`), so no field
is interpolated horizontally; the winds stay grid-relative as WRF writes them (HYSPLIT reads
grid-relative winds on projected grids) and are only destaggered to the mass points. Levels are
WRF's half (mass) eta levels ``ZNU`` with ARL's sigma vertical flag (1) and the full pressure
``P + PB`` of every level in ``PRES`` (HYSPLIT's sigma profile uses a level's own pressure when the
file has one). Winds: WRF's time-averaged mass-coupled winds (``AVGFLX_RUM``/``AVGFLX_RVM``,
``output_avgflx = 1``, the WRF-STILT practice) decoupled with the column mass ``MU + MUB`` at the
u/v points and the map factors, where the file has them; otherwise the instantaneous ``U``/``V``
(a log line says which). ``PBLH``, ``HFX``, ``UST`` are required (HYSPLIT-STILT's mixing).

:func:`wrf_to_pressure_levels` steps (one time step at a time, so a long wrfout never sits in memory whole):

1. **Destagger** to mass points: ``U`` along ``west_east_stag``, ``V`` along ``south_north_stag``,
   ``W`` and geopotential ``PH + PHB`` along ``bottom_top_stag`` (mean of the two faces).
2. **Diagnose** on model (eta) levels: pressure ``p = P + PB`` (Pa); temperature from the
   perturbation potential temperature ``T``: ``T_K = (T + 300) (p / 1e5)^(R_d/c_p)``; relative
   humidity from ``QVAPOR`` (Magnus, as :mod:`transport.met_convert`); vertical velocity
   ``omega = -rho g w`` with ``rho = p / (R_d T_v)`` (Pa s-1, as ERA5's ``w``).
3. **Earth-relative winds**: grid-relative ``U, V, U10, V10`` are rotated with ``COSALPHA`` /
   ``SINALPHA`` when present (Lambert, polar stereographic; they are 1/0 on lat-lon grids).
4. **Pressure levels**: linear in ``ln p`` between the two eta levels that bracket each target
   level. Below the lowest model level (targets under ground, e.g. 1000 hPa over hills):
   geopotential extrapolated hypsometrically with the lowest level's virtual temperature,
   temperature with a 6.5 K/km lapse rate, other fields held at the lowest level's value. Above
   the model top: the top value.
5. **Horizontal grid**: a WRF lat-lon grid (``MAP_PROJ = 6``, or XLAT/XLONG on a regular axis
   with equal spacing) is used as it is. Otherwise (Lambert, Mercator, polar) every field is
   interpolated linearly (Delaunay triangulation on lon/lat, weights computed once) onto a
   regular lat/lon grid of resolution ``res`` (default: the WRF grid spacing in degrees).
6. **Rename** to ERA5 names/units and hand the result to :func:`transport.met_convert.era5_to_arl`:
   ``HGT`` -> surface geopotential, ``PSFC`` -> ``sp``, ``T2`` -> ``t2m``, ``Q2`` -> ``d2m``
   (dew point), ``U10/V10``, ``PBLH`` -> ``blh``, ``HFX`` (upward W m-2) -> ``sshf``
   (``-HFX * 3600``, ERA5's downward hourly accumulation), ``UST`` -> ``zust``. MSLP is not in
   wrfout; ARL gets the surface pressure there (HYSPLIT does not use MSLP for transport).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from .arl import G, PRESSURE_LEVELS, RD

logger = logging.getLogger(__name__)

KAPPA = 2.0 / 7.0  # R_d / c_p as in WRF
LAPSE = 0.0065  # K m-1, for temperature below the lowest model level
WRF_REQUIRED = ("U", "V", "T", "P", "PB", "PH", "PHB", "QVAPOR", "PSFC", "T2", "U10", "V10",
                "PBLH", "HFX", "UST", "HGT", "XLAT", "XLONG")


def destagger(a: np.ndarray, axis: int) -> np.ndarray:
    """Mean of neighbouring faces along ``axis`` (n+1 staggered values -> n mass points)."""
    a = np.asarray(a, float)
    n = a.shape[axis]
    lo = np.take(a, np.arange(n - 1), axis=axis)
    hi = np.take(a, np.arange(1, n), axis=axis)
    return 0.5 * (lo + hi)


def interp_to_pressure(field: np.ndarray, p: np.ndarray, levels_pa: Sequence[float],
                       kind: str = "linear", t_low: np.ndarray | None = None) -> np.ndarray:
    """Interpolate ``field(nz, ny, nx)`` on model levels with pressure ``p(nz, ny, nx)`` (Pa,
    decreasing with k) to ``levels_pa``; linear in ``ln p``. ``kind`` says how to extrapolate
    below the lowest level: ``"linear"`` (hold the lowest value), ``"geopotential"``
    (hypsometric with ``t_low``, the lowest level's virtual temperature) or ``"temperature"``
    (6.5 K/km lapse rate)."""
    f = np.asarray(field, float)
    lnp = np.log(np.asarray(p, float))
    nz = f.shape[0]
    out = np.empty((len(levels_pa),) + f.shape[1:])
    for m, lev in enumerate(levels_pa):
        x = np.log(lev)
        cnt = (lnp >= x).sum(axis=0)  # levels at or below (higher pressure than) the target
        k = np.clip(cnt - 1, 0, nz - 2)
        l0 = np.take_along_axis(lnp, k[None], 0)[0]
        l1 = np.take_along_axis(lnp, k[None] + 1, 0)[0]
        f0 = np.take_along_axis(f, k[None], 0)[0]
        f1 = np.take_along_axis(f, k[None] + 1, 0)[0]
        w = (l0 - x) / (l0 - l1)
        v = f0 + w * (f1 - f0)
        above = cnt >= nz
        v = np.where(above, f[-1], v)
        below = cnt == 0
        if below.any():
            if kind == "geopotential":
                ext = f[0] + RD * t_low * (lnp[0] - x)
            elif kind == "temperature":
                ext = f[0] * np.exp(RD * LAPSE / G * (x - lnp[0]))
            else:
                ext = f[0]
            v = np.where(below, ext, v)
        out[m] = v
    return out


def _times(ds: xr.Dataset) -> pd.DatetimeIndex:
    if "Times" in ds:
        raw = ds["Times"].values
        if raw.dtype.kind == "S" and raw.ndim == 2:  # char array (Time, DateStrLen)
            raw = np.array([b"".join(r) for r in raw])
        s = [r.decode() if isinstance(r, bytes) else str(r) for r in np.atleast_1d(raw)]
        return pd.to_datetime([x.replace("_", " ") for x in s])
    if "XTIME" in ds and np.issubdtype(ds["XTIME"].dtype, np.datetime64):
        return pd.DatetimeIndex(ds["XTIME"].values)
    if "Time" in ds.coords and np.issubdtype(ds["Time"].dtype, np.datetime64):
        return pd.DatetimeIndex(ds["Time"].values)
    raise ValueError("WRF file: no `Times` (or datetime `XTIME`) variable; cannot tell the time "
                     "of each record")


def _dewpoint(q: np.ndarray, p: np.ndarray) -> np.ndarray:
    e = q * p / (0.622 + q) / 100.0  # hPa
    a = np.log(np.maximum(e, 1e-6) / 6.112)
    return (17.67 * 273.15 - 29.65 * a) / (17.67 - a)  # inverse of the Magnus form used for RH


def _rh(q: np.ndarray, p: np.ndarray, t: np.ndarray) -> np.ndarray:
    e = q * p / (0.622 + q) / 100.0
    es = 6.112 * np.exp(17.67 * (t - 273.15) / (t - 29.65))
    return np.clip(100.0 * e / es, 0.0, 100.0)


class _Horizontal:
    """Regular lat/lon target of a WRF grid: identity for lat-lon grids, else linear
    (barycentric) interpolation with weights computed once."""

    def __init__(self, xlat: np.ndarray, xlon: np.ndarray, res: float | None, label: str):
        self.xlat, self.xlon = xlat, xlon
        lat1, lon1 = xlat[:, 0], xlon[0, :]
        regular = (np.allclose(xlat, lat1[:, None], atol=1e-5)
                   and np.allclose(xlon, lon1[None, :], atol=1e-5))
        dlat, dlon = np.diff(lat1), np.diff(lon1)
        if regular and lat1.size > 1 and lon1.size > 1 and np.allclose(dlat, dlat[0], atol=1e-5) \
                and np.allclose(dlon, dlon[0], atol=1e-5) and np.isclose(dlat[0], dlon[0], atol=1e-5) \
                and (res is None or np.isclose(res, dlat[0])):
            self.identity = True
            self.lats, self.lons = lat1, lon1
            return
        self.identity = False
        from scipy.spatial import Delaunay

        if res is None:
            res = float(np.round(min(np.abs(np.diff(xlat, axis=0)).mean(),
                                     np.abs(np.diff(xlon, axis=1)).mean()), 4))
        # the largest regular box inside the WRF domain
        lo_lon = max(xlon[:, 0].max(), xlon.min())
        hi_lon = min(xlon[:, -1].min(), xlon.max())
        lo_lat = max(xlat[0, :].max(), xlat.min())
        hi_lat = min(xlat[-1, :].min(), xlat.max())
        self.lons = np.round(np.arange(np.ceil(lo_lon / res) * res, hi_lon + 1e-9, res), 6)
        self.lats = np.round(np.arange(np.ceil(lo_lat / res) * res, hi_lat + 1e-9, res), 6)
        if self.lons.size < 2 or self.lats.size < 2:
            raise ValueError(f"{label}: WRF domain too small for a {res}° lat/lon grid")
        tri = Delaunay(np.column_stack([xlon.ravel(), xlat.ravel()]))
        lo, la = np.meshgrid(self.lons, self.lats)
        pts = np.column_stack([lo.ravel(), la.ravel()])
        simp = tri.find_simplex(pts)
        if (simp < 0).any():
            raise ValueError(f"{label}: {int((simp < 0).sum())} target points outside the WRF "
                             "domain; give a coarser `res`")
        T = tri.transform[simp]
        b = np.einsum("nij,nj->ni", T[:, :2], pts - T[:, 2])
        self.weights = np.column_stack([b, 1 - b.sum(axis=1)])
        self.vertices = tri.simplices[simp]
        self.shape = (self.lats.size, self.lons.size)

    def __call__(self, a: np.ndarray) -> np.ndarray:
        if self.identity:
            return a
        flat = a.reshape(a.shape[:-2] + (-1,))
        v = (flat[..., self.vertices] * self.weights).sum(axis=-1)
        return v.reshape(a.shape[:-2] + self.shape)


def wrf_to_pressure_levels(ds: xr.Dataset, levels_hpa: Sequence[float] = PRESSURE_LEVELS,
                           res: float | None = None, label: str = "WRF dataset") -> xr.Dataset:
    """WRF (eta levels, staggered) -> an ERA5-named dataset on pressure levels and a regular
    lat/lon grid, ready for :func:`transport.met_convert.era5_to_arl`."""
    missing = [v for v in WRF_REQUIRED if v not in ds]
    if missing:
        raise ValueError(f"{label}: missing WRF variable(s) {', '.join(missing)}; wrfout files "
                         "need winds, T, P/PB, PH/PHB, QVAPOR and the surface fields "
                         f"{', '.join(WRF_REQUIRED)}")
    times = _times(ds)
    sq = lambda v, t: np.asarray(ds[v].isel(Time=t).values if "Time" in ds[v].dims  # noqa: E731
                                 else ds[v].values, float)
    hz = _Horizontal(sq("XLAT", 0), sq("XLONG", 0), res, label)
    lev_pa = [1e2 * float(x) for x in levels_hpa]
    names3 = ("z", "t", "u", "v", "w", "r")
    names2 = ("z_sfc", "sp", "t2m", "d2m", "u10", "v10", "blh", "sshf", "zust")
    out3 = {k: [] for k in names3}
    out2 = {k: [] for k in names2}
    for it in range(len(times)):
        p = sq("P", it) + sq("PB", it)
        theta = sq("T", it) + 300.0
        t = theta * (p / 1e5) ** KAPPA
        q = np.maximum(sq("QVAPOR", it), 0.0)
        tv = t * (1 + 0.608 * q)
        phi = destagger(sq("PH", it) + sq("PHB", it), 0)
        u = destagger(sq("U", it), 2)
        v = destagger(sq("V", it), 1)
        w = destagger(sq("W", it), 0) if "W" in ds else np.zeros_like(t)
        u10, v10 = sq("U10", it), sq("V10", it)
        if "COSALPHA" in ds and "SINALPHA" in ds:  # grid-relative -> earth-relative
            ca, sa = sq("COSALPHA", it), sq("SINALPHA", it)
            u, v = u * ca - v * sa, v * ca + u * sa
            u10, v10 = u10 * ca - v10 * sa, v10 * ca + u10 * sa
        omega = -p / (RD * tv) * G * w
        rh = _rh(q, p, t)
        lev = {
            "z": interp_to_pressure(phi, p, lev_pa, "geopotential", t_low=tv[0]),
            "t": interp_to_pressure(t, p, lev_pa, "temperature"),
            "u": interp_to_pressure(u, p, lev_pa), "v": interp_to_pressure(v, p, lev_pa),
            "w": interp_to_pressure(omega, p, lev_pa), "r": interp_to_pressure(rh, p, lev_pa)}
        psfc = sq("PSFC", it)
        sfc = {"z_sfc": sq("HGT", it) * G, "sp": psfc, "t2m": sq("T2", it),
               "d2m": _dewpoint(np.maximum(sq("Q2", it), 1e-7), psfc) if "Q2" in ds
               else sq("T2", it) - 5.0,
               "u10": u10, "v10": v10, "blh": sq("PBLH", it), "sshf": -sq("HFX", it) * 3600.0,
               "zust": sq("UST", it)}
        for k in names3:
            out3[k].append(hz(lev[k]))
        for k in names2:
            out2[k].append(hz(sfc[k]))
    d3 = ("valid_time", "pressure_level", "latitude", "longitude")
    d2 = ("valid_time", "latitude", "longitude")
    res_ds = xr.Dataset({**{k: (d3, np.array(v)) for k, v in out3.items()},
                         **{k: (d2, np.array(v)) for k, v in out2.items()}},
                        coords={"valid_time": times.values, "pressure_level": list(levels_hpa),
                                "latitude": hz.lats, "longitude": hz.lons},
                        attrs={"source": "WRF", "horizontal": "native lat-lon" if hz.identity
                               else "linear (Delaunay) to regular lat/lon"})
    return res_ds


WRF_EARTH_KM = 6370.0  # WRF's (and WPS's) spherical earth radius
#: Surface fields HYSPLIT-STILT's mixing needs: a wrfout without them is refused, naming them.
WRF_MIXING = ("PBLH", "HFX", "UST")
NATIVE_REQUIRED = ("U", "V", "T", "P", "PB", "QVAPOR", "PSFC", "T2", "U10", "V10", "HGT", "XLAT",
                   "XLONG", "ZNU")
NATIVE_LEVEL_FIELDS = ("PRES", "TEMP", "UWND", "VWND", "WWND", "RELH")
#: Largest distance (grid cells) allowed between a grid point as the ARL header places it and the
#: file's own XLAT/XLONG; beyond it the attributes do not describe the grid (error).
HEADER_TOLERANCE_CELLS = 0.02


def _f7(v: float) -> float:
    """``v`` as HYSPLIT reads it back from the index record's ``F7`` field."""
    from .arl import _fixed

    return float(_fixed(float(v), 7))


def _cone_latitude(t1: float, t2: float) -> float:
    """Tangent latitude of the cone equivalent to a secant Lambert cone true at ``t1`` and
    ``t2`` (same cone constant as WRF's ``lc_cone``; HYSPLIT's ``EQVLAT``)."""
    p1, p2 = np.deg2rad(abs(t1)), np.deg2rad(abs(t2))
    if abs(t1 - t2) < 1e-6:
        n = np.sin(p1)
    else:
        n = (np.log(np.cos(p1) / np.cos(p2))
             / np.log(np.tan(np.pi / 4 + p2 / 2) / np.tan(np.pi / 4 + p1 / 2)))
    return float(np.sign(t1) * np.rad2deg(np.arcsin(n)))


def wrf_arl_projection(attrs: dict, xlat: np.ndarray, xlon: np.ndarray,
                       label: str = "WRF file", p_top_pa: float = 0.0) -> list[float]:
    """The 12 ARL grid parameters (:data:`transport.arl.PROJECTION_FIELDS` order) of a WRF mass
    grid, so that HYSPLIT places every grid point at the file's own XLAT/XLONG.

    Lambert (``MAP_PROJ`` 1): TANG_LAT = the tangent latitude of the cone equivalent to the secant
    cone at TRUELAT1/TRUELAT2; polar stereographic (2): TANG_LAT = ±90; Mercator (3): 0. REF_LAT =
    TRUELAT1 (where WRF's grid spacing is exactly DX), REF_LON = STAND_LON (the meridian parallel
    to the grid's y axis: ORIENT = 0), POLE_LAT = TANG_LAT for Lambert and ±90 otherwise,
    POLE_LON = STAND_LON, reserved = the model top ``p_top_pa`` in hPa (all as HYSPLIT's
    ``arw2arl`` sets them). SIZE = DX in km times 6367.47/6370 (HYSPLIT's earth radius over
    WRF's: grid positions then agree exactly). The sync point is a point near the grid centre
    whose latitude and longitude are exactly representable in ``F7``, with its fractional grid
    position (``arw2arl`` takes CEN_LAT/CEN_LON at the centre, which is wrong for a file cut from a
    larger domain). Regular lat-lon (6): lat-lon ARL header. Raises ``ValueError`` naming the file when the attributes do not describe the grid
    within :data:`HEADER_TOLERANCE_CELLS`.
    """
    from .arl import HYSPLIT_EARTH_KM, _Cone, grid_xy

    need = ("MAP_PROJ", "TRUELAT1", "TRUELAT2", "STAND_LON", "DX", "DY")
    missing = [k for k in need if k not in attrs]
    if missing:
        raise ValueError(f"{label}: global attribute(s) {', '.join(missing)} missing; a wrfout "
                         "written by WRF has them (the projection of the grid)")
    mp = int(attrs["MAP_PROJ"])
    ny, nx = xlat.shape
    xlat, xlon = np.asarray(xlat, float), np.asarray(xlon, float)
    if mp == 6:
        lat1, lon1 = xlat[:, 0], xlon[0, :]
        dlat, dlon = np.diff(lat1), np.diff(lon1)
        if not (np.allclose(xlat, lat1[:, None], atol=1e-4) and np.allclose(
                xlon, lon1[None, :], atol=1e-4) and np.allclose(dlat, dlat.mean(), atol=1e-4)
                and np.allclose(dlon, dlon.mean(), atol=1e-4)):
            raise ValueError(f"{label}: MAP_PROJ 6 but XLAT/XLONG are not a regular lat-lon grid "
                             "(a rotated-pole WRF grid); ARL has no rotated lat-lon projection")
        return [_f7(lat1[-1]), _f7(lon1[-1]), _f7(dlat.mean()), _f7(dlon.mean()), 0.0, 0.0, 0.0,
                1.0, 1.0, _f7(lat1[0]), _f7(lon1[0]), _f7(p_top_pa / 100.0)]
    if mp not in (1, 2, 3):
        raise ValueError(f"{label}: MAP_PROJ {mp} is not a WRF projection HYSPLIT reads (1 "
                         "Lambert, 2 polar stereographic, 3 Mercator, 6 lat-lon)")
    t1, t2 = float(attrs["TRUELAT1"]), float(attrs["TRUELAT2"])
    lon0, dx, dy = float(attrs["STAND_LON"]), float(attrs["DX"]), float(attrs["DY"])
    if not np.isclose(dx, dy):
        raise ValueError(f"{label}: DX = {dx} and DY = {dy} differ; ARL grids have one spacing")
    hemi = -1.0 if t1 < 0 else 1.0
    cone = {1: _cone_latitude(t1, t2), 2: hemi * 90.0, 3: 0.0}[mp]
    pole = cone if mp == 1 else hemi * 90.0
    head = [pole, lon0, t1, lon0, dx / 1000.0 * HYSPLIT_EARTH_KM / WRF_EARTH_KM, 0.0, cone]
    head = [_f7(v) for v in head]
    names = ("pole_lat", "pole_lon", "tangent_lat", "tangent_lon", "grid_size", "orientation",
             "cone_angle")
    p = dict(zip(names, head), sync_x=1.0, sync_y=1.0, sync_lat=xlat[0, 0], sync_lon=xlon[0, 0])
    lat_c, lon_c = _Cone(p, label).inverse((nx + 1) / 2.0, (ny + 1) / 2.0)
    lat_c, lon_c = _f7(lat_c), _f7(lon_c)
    xc, yc = _Cone(p, label).forward(lat_c, lon_c)
    p.update(sync_x=_f7(xc), sync_y=_f7(yc), sync_lat=lat_c, sync_lon=lon_c)
    x, y = grid_xy(p, xlat, xlon, label)
    i, j = np.meshgrid(np.arange(1.0, nx + 1), np.arange(1.0, ny + 1))
    off = float(np.hypot(x - i, y - j).max())
    if off > HEADER_TOLERANCE_CELLS:
        raise ValueError(f"{label}: the grid of MAP_PROJ {mp} (TRUELAT1 {t1}, TRUELAT2 {t2}, "
                         f"STAND_LON {lon0}, DX {dx}) misses the file's XLAT/XLONG by up to "
                         f"{off:.3f} grid cells; the attributes do not describe this grid (a "
                         "file cut or edited without updating them?)")
    return head + [p["sync_x"], p["sync_y"], p["sync_lat"], p["sync_lon"], _f7(p_top_pa / 100.0)]


def _stagger_mass(mu: np.ndarray, axis: int) -> np.ndarray:
    """Column mass at the u (axis 1) or v (axis 0) points of a (ny, nx) field: mean of the two
    neighbours inside, the edge value at the edges (as WRF computes MUU/MUV)."""
    inner = 0.5 * (np.take(mu, np.arange(mu.shape[axis] - 1), axis=axis)
                   + np.take(mu, np.arange(1, mu.shape[axis]), axis=axis))
    first = np.take(mu, [0], axis=axis)
    last = np.take(mu, [mu.shape[axis] - 1], axis=axis)
    return np.concatenate([first, inner, last], axis=axis)


def _check_native(ds: xr.Dataset, label: str) -> bool:
    """Refuse a wrfout lacking what the native conversion needs; True when it has WRF's
    time-averaged winds (and what decouples them)."""
    mixing = [v for v in WRF_MIXING if v not in ds]
    missing = [v for v in NATIVE_REQUIRED if v not in ds]
    parts = []
    if mixing:
        parts.append(
            f"{', '.join(mixing)} (of PBLH mixed-layer height, HFX sensible heat flux, UST friction "
            "velocity: HYSPLIT-STILT's turbulence needs them; WRF writes them with any PBL scheme "
            "to the history stream: keep them in the output, iofields_filename / io_form_history)")
    if missing:
        parts.append(f"{', '.join(missing)} (a wrfout needs {', '.join(NATIVE_REQUIRED)})")
    if parts:
        raise ValueError(f"{label}: the wrfout lacks {'; and '.join(parts)}; rerun WRF or "
                         "re-extract the files with these variables")
    avg = "AVGFLX_RUM" in ds and "AVGFLX_RVM" in ds
    if avg:
        need = [v for v in ("MU", "MUB") if v not in ds]
        if not any(m in ds for m in ("MAPFAC_UY", "MAPFAC_U")):
            need.append("MAPFAC_UY (or MAPFAC_U)")
        if not any(m in ds for m in ("MAPFAC_VX", "MAPFAC_V")):
            need.append("MAPFAC_VX (or MAPFAC_V)")
        if need:
            raise ValueError(f"{label}: has time-averaged winds AVGFLX_RUM/AVGFLX_RVM but lacks "
                             f"{', '.join(need)} to decouple them from the column mass; keep "
                             "them in the output")
    return avg


def _native_step(ds: xr.Dataset, it: int, avg: bool) -> dict:
    """ARL fields ``{(level, name): (ny, nx)}`` of time step ``it`` on WRF's native levels."""
    def sq(v):
        return np.asarray(ds[v].isel(Time=it).values if "Time" in ds[v].dims else ds[v].values,
                          float)

    p = sq("P") + sq("PB")
    t = (sq("T") + 300.0) * (p / 1e5) ** KAPPA
    q = np.maximum(sq("QVAPOR"), 0.0)
    if avg:
        mu = sq("MU") + sq("MUB")
        nz = p.shape[0]
        c1 = sq("C1H") if "C1H" in ds else np.ones(nz)
        c2 = sq("C2H") if "C2H" in ds else np.zeros(nz)
        msfu = sq("MAPFAC_UY" if "MAPFAC_UY" in ds else "MAPFAC_U")
        msfv = sq("MAPFAC_VX" if "MAPFAC_VX" in ds else "MAPFAC_V")
        muu = c1[:, None, None] * _stagger_mass(mu, 1)[None] + c2[:, None, None]
        muv = c1[:, None, None] * _stagger_mass(mu, 0)[None] + c2[:, None, None]
        u_st, v_st = sq("AVGFLX_RUM") * msfu / muu, sq("AVGFLX_RVM") * msfv / muv
    else:
        u_st, v_st = sq("U"), sq("V")
    u, v = destagger(u_st, 2), destagger(v_st, 1)
    w = destagger(sq("W"), 0) if "W" in ds else np.zeros_like(t)
    omega = -p / (RD * t * (1 + 0.608 * q)) * G * w  # Pa s-1
    rh = _rh(q, p, t)
    psfc, t2 = sq("PSFC"), sq("T2")
    rh2 = (_rh(np.maximum(sq("Q2"), 0.0), psfc, t2) if "Q2" in ds else rh[0])
    out = {(0, "SHGT"): sq("HGT"), (0, "PRSS"): psfc / 100.0, (0, "MSLP"): psfc / 100.0,
           (0, "T02M"): t2, (0, "U10M"): sq("U10"), (0, "V10M"): sq("V10"), (0, "RH2M"): rh2,
           (0, "PBLH"): sq("PBLH"), (0, "SHTF"): sq("HFX"), (0, "USTR"): sq("UST")}
    for k in range(p.shape[0]):
        out.update({(k + 1, "PRES"): p[k] / 100.0, (k + 1, "TEMP"): t[k], (k + 1, "UWND"): u[k],
                    (k + 1, "VWND"): v[k], (k + 1, "WWND"): omega[k] / 100.0,
                    (k + 1, "RELH"): rh[k]})
    return out


def _open_wrf(paths) -> tuple[xr.Dataset, str]:
    if isinstance(paths, xr.Dataset):
        return paths, "WRF dataset"
    files = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    for f in files:
        if not Path(f).exists():
            raise FileNotFoundError(f"WRF file {f} does not exist (config inputs.wrf_files)")
    label = ", ".join(str(f) for f in files)
    try:
        ds = xr.open_mfdataset(files, combine="nested", concat_dim="Time", decode_times=False,
                               data_vars="minimal", coords="minimal", compat="override")
    except Exception as exc:
        raise ValueError(f"{label}: cannot be opened as WRF NetCDF ({exc}); give wrfout files "
                         "of one domain") from exc
    return ds, label


def wrf_to_arl(paths: str | os.PathLike | Sequence | xr.Dataset, out_dir: str | os.PathLike,
               file_format: str = "%Y%m%d_gz.arl", days: Sequence | None = None,
               source: str = "WRF") -> list[Path]:
    """Convert wrfout file(s) (or an open dataset with WRF's global attributes) to one ARL file
    per UTC day in ``out_dir`` (only ``days`` when given), on WRF's own grid and native eta
    levels (module docstring). Returns the paths written."""
    from .arl import SURFACE_FIELDS, VERTICAL_SIGMA, utc_day_groups, write_arl_grid

    ds, label = _open_wrf(paths)
    avg = _check_native(ds, label)
    times = _times(ds)
    xlat = np.asarray(ds["XLAT"].isel(Time=0).values if "Time" in ds["XLAT"].dims
                      else ds["XLAT"].values, float)
    xlon = np.asarray(ds["XLONG"].isel(Time=0).values if "Time" in ds["XLONG"].dims
                      else ds["XLONG"].values, float)
    p_top = float(np.ravel(ds["P_TOP"].values)[0]) if "P_TOP" in ds else 0.0
    proj = wrf_arl_projection(ds.attrs, xlat, xlon, label, p_top)
    znu = np.asarray(ds["ZNU"].isel(Time=0).values if "Time" in ds["ZNU"].dims
                     else ds["ZNU"].values, float)
    if avg:
        logger.info("%s: winds = WRF's time-averaged AVGFLX_RUM/AVGFLX_RVM decoupled with MU+MUB "
                    "(the WRF-STILT practice)", label)
    else:
        logger.info("%s: no time-averaged winds (AVGFLX_RUM/AVGFLX_RVM; WRF namelist "
                    "output_avgflx = 1): instantaneous U/V used", label)
    table = [(1.0, SURFACE_FIELDS)] + [(float(e), NATIVE_LEVEL_FIELDS) for e in znu]
    ny, nx = xlat.shape
    out_dir = Path(out_dir)
    written = []
    for day, idx in utc_day_groups(times, days, label, "add the wrfout files of those days"):
        path = out_dir / pd.Timestamp(day).strftime(file_format)
        steps = ((times[it], _native_step(ds, int(it), avg)) for it in idx)
        write_arl_grid(path, nx, ny, proj, VERTICAL_SIGMA, table, steps, source=source)
        written.append(path)
        logger.info("wrote %s (%d time steps, %d x %d grid, MAP_PROJ %s, %d eta levels)", path,
                    len(idx), nx, ny, ds.attrs.get("MAP_PROJ"), len(znu))
    return written
