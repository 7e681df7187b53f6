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

from gzcarbon.grid import Grid, edges_from_centres


def _ascending_edges(centres: np.ndarray, what: str) -> np.ndarray:
    """Edges of ascending, regularly spaced footprint cell centres (:func:`gzcarbon.grid.
    edges_from_centres`, the one centre-to-edge rule); descending centres are refused here because
    the overlap weights assume ascending edges (callers sort first)."""
    c = np.asarray(centres, float)
    if c.size > 1 and np.any(np.diff(c) <= 0):
        raise ValueError(f"footprint {what}: cell centres must be strictly ascending")
    return edges_from_centres(c, f"footprint {what}")


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


def regrid_weights(src_lons: np.ndarray, src_lats: np.ndarray, grid: Grid):
    """``(W_lat (ny, ny_src), W_lon (nx, nx_src))`` from source cell centres to ``grid``."""
    wx = overlap_weights(_ascending_edges(src_lons, "longitudes"), grid.lon_edges, lat=False)
    wy = overlap_weights(_ascending_edges(src_lats, "latitudes"), grid.lat_edges, lat=True)
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


def is_aligned(src_lons: np.ndarray, src_lats: np.ndarray, grid: Grid) -> bool:
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
    """Conservatively regrid ``foot(time, lat, lon)`` (regularly spaced lon/lat cell
    centres, any resolution, offset and extent) onto the state ``grid``.

    Returns ``(foot on the state grid, outside(time))``: ``outside`` is the footprint mass of each
    hour that falls outside the state domain (``Σ foot_state + outside = Σ foot`` per hour).
    """
    g = Grid.from_config(grid)
    foot = foot.transpose("time", "lat", "lon").sortby("lat").sortby("lon")
    wy, wx = regrid_weights(foot["lon"].values, foot["lat"].values, g)
    out, outside = apply_weights(foot.values, wy, wx)
    da = xr.DataArray(out, dims=("time", "lat", "lon"),
                      coords={"time": foot["time"].values, "lat": g.lat, "lon": g.lon},
                      name="foot", attrs=dict(foot.attrs))
    return da, outside
