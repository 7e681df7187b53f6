"""A small wrfout written as WRF writes it (netCDF4, WRF's dimension names, ``Times`` as a char
array ``(Time, DateStrLen)``, global projection attributes), for the WRF tests.

XLAT/XLONG come from pyproj on WRF's sphere (6370 km; ``lcc`` with ``lat_1``/``lat_2`` =
TRUELAT1/2, ``stere`` true at TRUELAT1, ``merc`` true at TRUELAT1, all about STAND_LON, as WPS
places grid points): independent of the ARL header maths under test. The atmosphere: hydrostatic,
isothermal-lapse standard profile on ``n_eta`` eta levels, winds uniform (grid-relative ``u``,
``v``), optionally WRF's time-averaged mass-coupled winds ``AVGFLX_RUM/RVM`` of another wind.
"""

from __future__ import annotations

import netCDF4
import numpy as np
import pandas as pd
import pyproj

R_WRF = 6370000.0
G, RD, KAPPA = 9.81, 287.0, 2.0 / 7.0


def wrf_crs(map_proj: int, truelat1: float, truelat2: float, stand_lon: float) -> pyproj.CRS:
    base = dict(R=R_WRF, units="m", lon_0=stand_lon)
    if map_proj == 1:
        return pyproj.CRS.from_dict(dict(base, proj="lcc", lat_1=truelat1, lat_2=truelat2,
                                         lat_0=truelat1))
    if map_proj == 2:
        return pyproj.CRS.from_dict(dict(base, proj="stere", lat_0=90.0 if truelat1 > 0 else -90.0,
                                         lat_ts=truelat1))
    return pyproj.CRS.from_dict(dict(base, proj="merc", lat_ts=truelat1))


def grid_latlon(map_proj, truelat1, truelat2, stand_lon, cen_lat, cen_lon, dx, nx, ny):
    """XLAT, XLONG (ny, nx) of a mass grid centred on (cen_lat, cen_lon), as WPS places them."""
    if map_proj == 6:
        lon = cen_lon + dx * (np.arange(nx) - (nx - 1) / 2)
        lat = cen_lat + dx * (np.arange(ny) - (ny - 1) / 2)
        lon2, lat2 = np.meshgrid(lon, lat)
        return lat2, lon2
    crs = wrf_crs(map_proj, truelat1, truelat2, stand_lon)
    fwd = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    inv = pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    xc, yc = fwd.transform(cen_lon, cen_lat)
    x = xc + dx * (np.arange(nx) - (nx - 1) / 2)
    y = yc + dx * (np.arange(ny) - (ny - 1) / 2)
    xx, yy = np.meshgrid(x, y)
    lon, lat = inv.transform(xx, yy)
    return lat, lon


def write_wrfout(path, times, map_proj=1, truelat1=20.0, truelat2=40.0, stand_lon=113.5,
                 cen_lat=23.1, cen_lon=113.3, dx=3000.0, nx=41, ny=35, n_eta=12, u=5.0, v=0.0,
                 avg_uv=None, drop=(), p_top=5000.0, u10_factor=0.7, hybrid=False):
    """Write the wrfout; returns a dict of what went in (XLAT, XLONG, ZNU, p, U, V)."""
    times = pd.DatetimeIndex(times)
    nt = len(times)
    lat, lon = grid_latlon(map_proj, truelat1, truelat2, stand_lon, cen_lat, cen_lon,
                           dx if map_proj != 6 else dx, nx, ny)
    znw = np.linspace(1.0, 0.0, n_eta + 1) ** 1.4
    znu = 0.5 * (znw[1:] + znw[:-1])
    hgt = 50.0 * np.exp(-((lon - cen_lon) ** 2 + (lat - cen_lat) ** 2) / 0.05)
    ps = 101325.0 * np.exp(-hgt / 8000.0)
    mu_full = ps - p_top  # dry column mass (moisture-free test atmosphere)
    p = p_top + znu[:, None, None] * mu_full[None]
    t_k = 288.0 * (p / 101325.0) ** (RD * 0.0065 / G)
    theta = t_k * (1e5 / p) ** KAPPA
    ph_w = np.empty((n_eta + 1, ny, nx))
    pw = p_top + znw[:, None, None] * mu_full[None]
    tw = 288.0 * (pw / 101325.0) ** (RD * 0.0065 / G)
    ph_w[0] = G * hgt
    for k in range(n_eta):
        tbar = 0.5 * (tw[k] + tw[k + 1])
        ph_w[k + 1] = ph_w[k] + RD * tbar * np.log(pw[k] / np.maximum(pw[k + 1], 1.0))
    U = np.full((n_eta, ny, nx + 1), float(u))
    V = np.full((n_eta, ny + 1, nx), float(v))
    mu_u = np.concatenate([mu_full[:, :1], 0.5 * (mu_full[:, 1:] + mu_full[:, :-1]),
                           mu_full[:, -1:]], axis=1)
    mu_v = np.concatenate([mu_full[:1], 0.5 * (mu_full[1:] + mu_full[:-1]), mu_full[-1:]], axis=0)
    msf_u = np.full((ny, nx + 1), 1.02)  # map factors: the decoupling must use them
    msf_v = np.full((ny + 1, nx), 0.99)
    fields = {
        "XLAT": (("Time", "south_north", "west_east"), lat), "XLONG": (("Time", "south_north", "west_east"), lon),
        "ZNU": (("Time", "bottom_top"), znu), "ZNW": (("Time", "bottom_top_stag"), znw),
        "U": (("Time", "bottom_top", "south_north", "west_east_stag"), U),
        "V": (("Time", "bottom_top", "south_north_stag", "west_east"), V),
        "W": (("Time", "bottom_top_stag", "south_north", "west_east"), np.zeros((n_eta + 1, ny, nx))),
        "PH": (("Time", "bottom_top_stag", "south_north", "west_east"), 0.0 * ph_w),
        "PHB": (("Time", "bottom_top_stag", "south_north", "west_east"), ph_w),
        "T": (("Time", "bottom_top", "south_north", "west_east"), theta - 300.0),
        "P": (("Time", "bottom_top", "south_north", "west_east"), 0.1 * p),
        "PB": (("Time", "bottom_top", "south_north", "west_east"), 0.9 * p),
        "QVAPOR": (("Time", "bottom_top", "south_north", "west_east"), 0.008 * (p / 1e5) ** 3),
        "MU": (("Time", "south_north", "west_east"), 0.05 * mu_full),
        "MUB": (("Time", "south_north", "west_east"), 0.95 * mu_full),
        "MAPFAC_U": (("Time", "south_north", "west_east_stag"), msf_u),
        "MAPFAC_V": (("Time", "south_north_stag", "west_east"), msf_v),
        "PSFC": (("Time", "south_north", "west_east"), ps),
        "T2": (("Time", "south_north", "west_east"), t_k[0] + 0.3),
        "Q2": (("Time", "south_north", "west_east"), np.full((ny, nx), 0.008)),
        "U10": (("Time", "south_north", "west_east"), np.full((ny, nx), u10_factor * u)),
        "V10": (("Time", "south_north", "west_east"), np.full((ny, nx), u10_factor * v)),
        "HGT": (("Time", "south_north", "west_east"), hgt),
        "PBLH": (("Time", "south_north", "west_east"), np.full((ny, nx), 900.0)),
        "HFX": (("Time", "south_north", "west_east"), np.full((ny, nx), 80.0)),
        "UST": (("Time", "south_north", "west_east"), np.full((ny, nx), 0.35)),
    }
    # hybrid coordinate (HYBRID_OPT = 2): column mass of level k = C1H * mu + C2H
    c1 = np.linspace(0.6, 1.0, n_eta)[::-1] if hybrid else np.ones(n_eta)
    c2 = np.linspace(0.0, 8000.0, n_eta) if hybrid else np.zeros(n_eta)
    if hybrid:
        fields["C1H"] = (("Time", "bottom_top"), c1)
        fields["C2H"] = (("Time", "bottom_top"), c2)
    if avg_uv is not None:
        ua, va = avg_uv
        mass_u = c1[:, None, None] * mu_u[None] + c2[:, None, None]
        mass_v = c1[:, None, None] * mu_v[None] + c2[:, None, None]
        fields["AVGFLX_RUM"] = (("Time", "bottom_top", "south_north", "west_east_stag"),
                                ua * mass_u / msf_u[None])
        fields["AVGFLX_RVM"] = (("Time", "bottom_top", "south_north_stag", "west_east"),
                                va * mass_v / msf_v[None])
    with netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
        for name, size in (("Time", None), ("DateStrLen", 19), ("west_east", nx),
                           ("south_north", ny), ("bottom_top", n_eta),
                           ("bottom_top_stag", n_eta + 1), ("west_east_stag", nx + 1),
                           ("south_north_stag", ny + 1)):
            nc.createDimension(name, size)
        tv = nc.createVariable("Times", "S1", ("Time", "DateStrLen"))
        tv[:] = netCDF4.stringtochar(np.array([t.strftime("%Y-%m-%d_%H:%M:%S") for t in times],
                                              dtype="S19"))
        ptop = nc.createVariable("P_TOP", "f4", ("Time",))  # a variable in wrfout, not an attribute
        ptop[:] = np.full(nt, p_top, np.float32)
        for name, (dims, data) in fields.items():
            if name in drop:
                continue
            var = nc.createVariable(name, "f4", dims, zlib=True)
            var[:] = np.repeat(np.asarray(data, np.float32)[None], nt, axis=0)
        nc.setncatts({"TITLE": " OUTPUT FROM WRF V4.5 MODEL", "MAP_PROJ": np.int32(map_proj),
                      "TRUELAT1": np.float32(truelat1), "TRUELAT2": np.float32(truelat2),
                      "STAND_LON": np.float32(stand_lon), "CEN_LAT": np.float32(cen_lat),
                      "CEN_LON": np.float32(cen_lon), "DX": np.float32(dx), "DY": np.float32(dx),
                      "MOAD_CEN_LAT": np.float32(cen_lat),
                      "WEST-EAST_GRID_DIMENSION": np.int32(nx + 1),
                      "SOUTH-NORTH_GRID_DIMENSION": np.int32(ny + 1),
                      "BOTTOM-TOP_GRID_DIMENSION": np.int32(n_eta + 1)})
    return dict(XLAT=lat, XLONG=lon, ZNU=znu, p=p, t=t_k, hgt=hgt, ps=ps)
