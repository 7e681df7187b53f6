"""WRF output (``wrfout_d0*``) -> ARL: destagger, interpolate eta levels to pressure levels, rename.

Steps (one time step at a time, so a long wrfout never sits in memory whole):

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


def wrf_to_arl(paths: str | os.PathLike | Sequence | xr.Dataset, out_dir: str | os.PathLike,
               levels_hpa: Sequence[float] = PRESSURE_LEVELS, res: float | None = None,
               file_format: str = "%Y%m%d_gz.arl", days: Sequence | None = None) -> list[Path]:
    """Convert wrfout file(s) (or an open dataset) to one ARL file per UTC day in ``out_dir``
    (only ``days`` when given)."""
    from .met_convert import era5_to_arl

    if isinstance(paths, xr.Dataset):
        ds, label = paths, "WRF dataset"
    else:
        files = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
        for f in files:
            if not Path(f).exists():
                raise FileNotFoundError(f"WRF file {f} does not exist")
        label = ", ".join(str(f) for f in files)
        ds = xr.open_mfdataset(files, combine="nested", concat_dim="Time", decode_times=False)
    logger.info("WRF -> pressure levels %s hPa: %s", list(levels_hpa), label)
    pl = wrf_to_pressure_levels(ds, levels_hpa, res, label)
    return era5_to_arl(pl, out_dir, file_format=file_format, source="WRF", days=days)
