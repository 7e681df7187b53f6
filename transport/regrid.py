"""Conservative regridding of footprints onto the state grid (area-overlap weights on the sphere).

What is conserved. A footprint value ``f_j`` in ppm / (µmol m-2 s-1) is the mole-fraction response
to a unit flux *density* over source cell ``j``: the response to a flux field ``F`` is
``Σ_j f_j F_j`` (the cell area is already inside ``f_j``). With the flux taken uniform within a
source cell, the part of cell ``j`` that lies in state cell ``i`` carries the fraction
``A(i ∩ j) / A(j)`` of ``f_j``, so

    g_i = Σ_j  A(i ∩ j) / A(j) · f_j

and the response to a uniform flux, ``Σ f``, is preserved: ``Σ_i g_i + outside = Σ_j f_j``, where
``outside`` is the part of source cells that falls outside the state domain (kept, not dropped).
Note that footprints are *not* averaged (a 2 x 2 block of 0.005° cells aggregates to the *sum* of
the four values on a 0.01° cell), and a coarse cell split onto fine cells is divided by area.

On a regular lon/lat grid the overlap area factorises: ``A ∝ Δλ · Δ(sin φ)``, so the weights are
``W = W_lat ⊗ W_lon`` with 1-D overlap fractions (lon in degrees, lat in ``sin φ``), applied as
``g[t] = W_lat @ f[t] @ W_lon.T``.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from .grid import StateGrid


def edges_from_centres(centres: np.ndarray, name: str = "axis") -> np.ndarray:
    """Cell edges of ascending cell centres (midpoints; end cells mirrored). Rounded to 10
    decimals like pystilt's centres, so edges that coincide with state edges compare equal."""
    c = np.asarray(centres, float)
    if c.ndim != 1 or c.size == 0:
        raise ValueError(f"footprint {name}: need a 1-D axis of cell centres, got shape {c.shape}")
    if c.size == 1:
        raise ValueError(f"footprint {name}: a single cell centre does not define the cell size; "
                         "give at least two cells")
    d = np.diff(c)
    if np.any(d <= 0):
        raise ValueError(f"footprint {name}: cell centres must be strictly ascending")
    mid = 0.5 * (c[1:] + c[:-1])
    e = np.concatenate([[c[0] - 0.5 * d[0]], mid, [c[-1] + 0.5 * d[-1]]])
    return np.round(e, 10)


def overlap_weights(src_edges: np.ndarray, dst_edges: np.ndarray, lat: bool = False) -> np.ndarray:
    """1-D overlap fractions ``W[i, j]`` = share of source cell ``j`` inside target cell ``i``.

    Longitude is measured in degrees, latitude in ``sin φ`` (area on the sphere). Columns of
    source cells entirely inside the target range sum to 1; cells partly or wholly outside sum
    to less (the rest is outside the domain).
    """
    s = np.asarray(src_edges, float)
    t = np.asarray(dst_edges, float)
    f = (lambda x: np.sin(np.deg2rad(x))) if lat else (lambda x: x)
    lo = np.maximum(t[:-1, None], s[None, :-1])
    hi = np.minimum(t[1:, None], s[None, 1:])
    ov = np.where(hi > lo, f(hi) - f(np.minimum(lo, hi)), 0.0)
    width = f(s[1:]) - f(s[:-1])
    return ov / width[None, :]


def state_edges(grid: StateGrid) -> tuple[np.ndarray, np.ndarray]:
    """(lon_edges, lat_edges) of the state grid, rounded to 10 decimals."""
    lon = np.round(grid.lon_min + grid.res * np.arange(grid.nx + 1), 10)
    lat = np.round(grid.lat_min + grid.res * np.arange(grid.ny + 1), 10)
    return lon, lat


def regrid_weights(src_lons: np.ndarray, src_lats: np.ndarray, grid: StateGrid):
    """``(W_lat (ny, ny_src), W_lon (nx, nx_src))`` from source cell centres to ``grid``."""
    lon_e, lat_e = state_edges(grid)
    wx = overlap_weights(edges_from_centres(src_lons, "lon"), lon_e, lat=False)
    wy = overlap_weights(edges_from_centres(src_lats, "lat"), lat_e, lat=True)
    return wy, wx


def apply_weights(foot: np.ndarray, wy: np.ndarray, wx: np.ndarray):
    """Regrid ``foot(..., ny_src, nx_src)`` -> ``(g(..., ny, nx), outside(...))``.

    ``outside`` is the footprint of source cells (or their parts) outside the state domain,
    computed from the missing weight so that ``g.sum + outside == foot.sum`` to rounding.
    """
    f = np.asarray(foot, np.float64)
    g = np.matmul(np.matmul(wy, f), wx.T)
    keep = np.outer(wy.sum(axis=0), wx.sum(axis=0))  # share of each source cell inside
    outside = (f * (1.0 - keep)).sum(axis=(-2, -1))
    return g, outside


def is_aligned(src_lons: np.ndarray, src_lats: np.ndarray, grid: StateGrid) -> bool:
    """True when every source cell centre is a state cell centre (same resolution and offset,
    any extent): then no regridding is needed, only index mapping."""
    if len(src_lons) > 1 and not np.isclose(np.diff(src_lons), grid.res, rtol=1e-6).all():
        return False
    if len(src_lats) > 1 and not np.isclose(np.diff(src_lats), grid.res, rtol=1e-6).all():
        return False
    fx = (np.asarray(src_lons) - grid.lon_min) / grid.res - 0.5
    fy = (np.asarray(src_lats) - grid.lat_min) / grid.res - 0.5
    return bool(np.allclose(fx, np.round(fx), atol=1e-3) and np.allclose(fy, np.round(fy), atol=1e-3))


def regrid_footprint(foot: xr.DataArray, grid: dict) -> tuple[xr.DataArray, np.ndarray]:
    """Conservatively regrid ``foot(time, lat, lon)`` (any regular or irregular lon/lat cell
    centres) onto the state ``grid``.

    Returns ``(foot on the state grid, outside(time))``: ``outside`` is the footprint mass of each
    hour that falls outside the state domain (``Σ foot_state + outside = Σ foot`` per hour).
    """
    g = StateGrid.from_config(grid)
    foot = foot.transpose("time", "lat", "lon").sortby("lat").sortby("lon")
    wy, wx = regrid_weights(foot["lon"].values, foot["lat"].values, g)
    out, outside = apply_weights(foot.values, wy, wx)
    da = xr.DataArray(out, dims=("time", "lat", "lon"),
                      coords={"time": foot["time"].values, "lat": g.lats, "lon": g.lons},
                      name="foot", attrs=dict(foot.attrs))
    return da, outside
