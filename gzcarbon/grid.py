"""The state grid: one regular longitude-latitude grid of cells (WGS84 degrees) for every stage.

`Grid` is built from the config block ``grid`` (``lon_min, lon_max, lat_min, lat_max, res``; these
are cell *edges*) or from a file's cell centres (:meth:`Grid.from_centres`). Cells are numbered
row-major from the south-west corner: ``cell = iy * nx + ix`` with ``iy`` counting north from
``lat_min`` and ``ix`` east from ``lon_min`` — the numbering of the Jacobian columns
(docs/formats.md). Centres are exactly ``edge_min + res * (i + 1/2)`` and edges
``edge_min + res * i``, both rounded to 10 decimals (as pystilt rounds them), so every stage
writes and compares the same coordinates.

`NestedGrid` is the state of the nested inversion (issue 19): the inner `Grid` (1 km over the city)
inside a coarser regular outer `Grid` (config block ``outer_grid``, 0.3° by default, out to the met
domain). The inner box lies on outer cell edges, so the outer cells under it (the *hole*) are
exactly tiled by inner cells and are not state cells. State cells are numbered: the inner cells
row-major ``0 .. n_inner - 1`` (as :class:`Grid` numbers them), then the outer cells outside the
hole, row-major over the outer grid, ``n_inner .. n_cells - 1``. With no outer grid
(``outer_grid.enabled: false``) a `NestedGrid` is the inner grid alone (``n_outer = 0``).

Cell areas (:func:`cell_area_m2`) are exact on the WGS84 *ellipsoid*: the area of the quadrangle
bounded by two meridians and two parallels is

    A = a² (1 − e²) / 2 · Δλ · [S(φ₂) − S(φ₁)],
    S(φ) = sin φ / (1 − e² sin² φ) + 1/(2e) · ln((1 + e sin φ) / (1 − e sin φ)),

(the authalic-latitude formula, e.g. Snyder 1987, *Map Projections — A Working Manual*, eq. 3-12).
For e → 0 it reduces to the sphere's a² Δλ (sin φ₂ − sin φ₁). It agrees with pyproj's geodesic
polygon area to < 1e-6 relative for 0.01° cells (tested).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

#: WGS84 semi-major axis (m) and flattening.
WGS84_A = 6378137.0
WGS84_F = 1.0 / 298.257223563
WGS84_E2 = WGS84_F * (2.0 - WGS84_F)

#: Keys of the config block ``grid``.
GRID_KEYS = ("lon_min", "lon_max", "lat_min", "lat_max", "res")
#: Decimals kept in centre and edge coordinates.
DECIMALS = 10


class GridError(ValueError):
    """A grid that is not a whole number of regular cells, or a file on another grid."""


def _n_cells(lo: float, hi: float, res: float, axis: str) -> int:
    span = (hi - lo) / res
    n = int(round(span))
    if n < 1 or abs(span - n) > 1e-6:
        raise GridError(
            f"config grid: ({axis}_max - {axis}_min) / res = ({hi} - {lo}) / {res} = {span:.6f} is not "
            f"a positive whole number of cells; choose {axis}_min/{axis}_max on multiples of res")
    return n


def regular_edges(start: float, res: float, n: int) -> np.ndarray:
    """``n + 1`` edges ``start + res * i`` (rounded to :data:`DECIMALS`)."""
    return np.round(start + res * np.arange(n + 1, dtype=np.float64), DECIMALS)


def edges_from_centres(centres, what: str = "coordinate", rtol: float = 1e-6) -> np.ndarray:
    """Cell edges of regularly spaced, ascending or descending cell centres (n → n + 1).

    The one centre-to-edge rule of the code base: edges half a step either side, rounded like
    :func:`regular_edges`. Centres regular only to ``rtol`` > 1e-6 (float32 coordinates of
    global inventories are regular to ~1e-5) get midpoint edges instead — interior edges halfway
    between neighbouring centres, the outer ones half a step out — which keep every centre inside
    its cell and tile the axis without gaps, so conservative regridding stays conservative.
    A single centre has no spacing, and steps beyond ``rtol``: :class:`GridError`.
    """
    c = np.asarray(centres, dtype=np.float64)
    if c.ndim != 1 or c.size < 2:
        raise GridError(f"{what}: need at least 2 cell centres to know the cell size, got {c.size}")
    step = np.diff(c)
    res = float(np.median(step))
    if np.allclose(step, res, rtol=1e-6, atol=1e-9 + 1e-6 * abs(res)):
        return np.round(np.concatenate([c - res / 2, [c[-1] + res / 2]]), DECIMALS)
    if rtol > 1e-6 and np.allclose(step, res, rtol=rtol, atol=0):
        return np.concatenate([[c[0] - step[0] / 2], 0.5 * (c[1:] + c[:-1]), [c[-1] + step[-1] / 2]])
    raise GridError(f"{what}: cell centres are not regularly spaced (steps {step.min():.6g} to "
                    f"{step.max():.6g}); regrid to a regular grid first")


@dataclass(frozen=True)
class Grid:
    """Regular lon-lat grid defined by its outer edges and resolution (degrees)."""

    lon_min: float
    lon_max: float
    lat_min: float
    lat_max: float
    res: float

    def __post_init__(self) -> None:
        if not self.res > 0:
            raise GridError(f"config grid.res must be > 0, got {self.res}")
        if not (-180.0 <= self.lon_min < self.lon_max <= 360.0):
            raise GridError(
                f"config grid: need lon_min < lon_max within [-180, 360], got {self.lon_min}, {self.lon_max}")
        if not (-90.0 <= self.lat_min < self.lat_max <= 90.0):
            raise GridError(
                f"config grid: need lat_min < lat_max within [-90, 90], got {self.lat_min}, {self.lat_max}")
        _n_cells(self.lon_min, self.lon_max, self.res, "lon")
        _n_cells(self.lat_min, self.lat_max, self.res, "lat")

    # construction -------------------------------------------------------------------------
    @classmethod
    def from_config(cls, cfg) -> "Grid":
        """From the config ``grid`` block, a full config holding one, or an object with the five
        attributes (``lon_min, lon_max, lat_min, lat_max, res``)."""
        if isinstance(cfg, Grid):
            return cfg
        if not isinstance(cfg, Mapping):
            cfg = {k: getattr(cfg, k) for k in GRID_KEYS if hasattr(cfg, k)}
        block = cfg["grid"] if isinstance(cfg.get("grid"), Mapping) else cfg
        missing = [k for k in GRID_KEYS if k not in block]
        if missing:
            raise GridError(f"config grid: missing key(s) {missing}; give lon_min, lon_max, "
                            "lat_min, lat_max and res (degrees)")
        return cls(**{k: float(block[k]) for k in GRID_KEYS})

    @classmethod
    def from_centres(cls, lon_centres, lat_centres, what: str = "grid") -> "Grid":
        """The grid whose cell centres these are (ascending, regular, square cells)."""
        lon_e = edges_from_centres(lon_centres, f"{what} longitudes")
        lat_e = edges_from_centres(lat_centres, f"{what} latitudes")
        rx, ry = lon_e[1] - lon_e[0], lat_e[1] - lat_e[0]
        if rx <= 0 or ry <= 0:
            raise GridError(f"{what}: cell centres must be ascending (west to east, south to north)")
        if abs(rx - ry) > 1e-6 * max(rx, ry):
            raise GridError(f"{what}: cells are {rx:g} x {ry:g} degrees; the state grid has square cells")
        return cls(float(lon_e[0]), float(lon_e[-1]), float(lat_e[0]), float(lat_e[-1]),
                   float(np.round(rx, DECIMALS)))

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in GRID_KEYS}

    # sizes --------------------------------------------------------------------------------
    @property
    def nx(self) -> int:
        return _n_cells(self.lon_min, self.lon_max, self.res, "lon")

    @property
    def ny(self) -> int:
        return _n_cells(self.lat_min, self.lat_max, self.res, "lat")

    @property
    def n_cells(self) -> int:
        return self.nx * self.ny

    @property
    def shape(self) -> tuple[int, int]:
        """(ny, nx), the order of (lat, lon) arrays."""
        return (self.ny, self.nx)

    # coordinates --------------------------------------------------------------------------
    @property
    def lon_edges(self) -> np.ndarray:
        return regular_edges(self.lon_min, self.res, self.nx)

    @property
    def lat_edges(self) -> np.ndarray:
        return regular_edges(self.lat_min, self.res, self.ny)

    @property
    def lon(self) -> np.ndarray:
        """Cell-centre longitudes (nx,), west to east."""
        return np.round(self.lon_min + self.res * (np.arange(self.nx) + 0.5), DECIMALS)

    @property
    def lat(self) -> np.ndarray:
        """Cell-centre latitudes (ny,), south to north."""
        return np.round(self.lat_min + self.res * (np.arange(self.ny) + 0.5), DECIMALS)

    def cell_area_m2(self) -> np.ndarray:
        """(ny, nx) cell areas on the WGS84 ellipsoid, m²."""
        return cell_area_m2(self.lat_edges, self.lon_edges)

    # indexing -----------------------------------------------------------------------------
    def cell_index(self, iy, ix):
        """Row-major cell index from the south-west: ``iy * nx + ix``."""
        return np.asarray(iy) * self.nx + np.asarray(ix)

    def locate(self, lon, lat) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(iy, ix, inside) of points; a point on an interior edge goes to the cell east/north of it."""
        lon = np.asarray(lon, dtype=float)
        lat = np.asarray(lat, dtype=float)
        ix = np.floor((lon - self.lon_min) / self.res + 1e-9).astype(np.int64)
        iy = np.floor((lat - self.lat_min) / self.res + 1e-9).astype(np.int64)
        inside = (ix >= 0) & (ix < self.nx) & (iy >= 0) & (iy < self.ny)
        return iy, ix, inside

    def centre_index(self, lons, lats) -> tuple[np.ndarray, np.ndarray]:
        """(ix, iy) of cell-centre coordinates on this grid; -1 where a value is not a centre."""
        lons = np.asarray(lons, float)
        lats = np.asarray(lats, float)
        tol = 1e-5 + self.res * 1e-3
        ix = np.rint((lons - self.lon_min) / self.res - 0.5).astype(int)
        iy = np.rint((lats - self.lat_min) / self.res - 0.5).astype(int)
        okx = (ix >= 0) & (ix < self.nx) & (np.abs(self.lon_min + self.res * (ix + 0.5) - lons) < tol)
        oky = (iy >= 0) & (iy < self.ny) & (np.abs(self.lat_min + self.res * (iy + 0.5) - lats) < tol)
        return np.where(okx, ix, -1), np.where(oky, iy, -1)

    def matches(self, lon_centres, lat_centres, atol: float = 1e-6) -> bool:
        """True when the given centre coordinates are exactly this grid's (ascending)."""
        lon_c = np.asarray(lon_centres, dtype=float)
        lat_c = np.asarray(lat_centres, dtype=float)
        return (lon_c.shape == (self.nx,) and lat_c.shape == (self.ny,)
                and np.allclose(lon_c, self.lon, atol=atol, rtol=0)
                and np.allclose(lat_c, self.lat, atol=atol, rtol=0))

    def describe(self) -> str:
        return (f"lon {self.lon_min}..{self.lon_max}, lat {self.lat_min}..{self.lat_max} (edges), "
                f"res {self.res} deg, {self.nx} x {self.ny} cells")

    @staticmethod
    def describe_centres(lon_centres, lat_centres) -> str:
        lon_c = np.asarray(lon_centres, dtype=float)
        lat_c = np.asarray(lat_centres, dtype=float)
        if lon_c.size < 2 or lat_c.size < 2:
            return f"{lon_c.size} x {lat_c.size} cells"
        rx = float(np.median(np.diff(lon_c)))
        ry = float(np.median(np.diff(lat_c)))
        return (f"lon centres {lon_c[0]:.5f}..{lon_c[-1]:.5f}, lat centres {lat_c[0]:.5f}..{lat_c[-1]:.5f}, "
                f"res {rx:.5f} x {ry:.5f} deg, {lon_c.size} x {lat_c.size} cells")


def _authalic_s(phi_rad: np.ndarray, e2: float) -> np.ndarray:
    s = np.sin(phi_rad)
    if e2 == 0.0:
        return 2.0 * s
    e = np.sqrt(e2)
    return s / (1.0 - e2 * s * s) + np.log((1.0 + e * s) / (1.0 - e * s)) / (2.0 * e)


def cell_area_m2(lat_edges, lon_edges, a: float = WGS84_A, e2: float = WGS84_E2) -> np.ndarray:
    """Exact areas (m²) on the ellipsoid (a, e²) of the cells between the given edges.

    Returns shape (len(lat_edges) - 1, len(lon_edges) - 1). Default ellipsoid: WGS84.
    """
    lat_edges = np.asarray(lat_edges, dtype=np.float64)
    lon_edges = np.asarray(lon_edges, dtype=np.float64)
    if lat_edges.ndim != 1 or lon_edges.ndim != 1 or lat_edges.size < 2 or lon_edges.size < 2:
        raise GridError("cell_area_m2: lat_edges and lon_edges must be 1-D with at least 2 values")
    s = _authalic_s(np.deg2rad(lat_edges), e2)
    band = 0.5 * a * a * (1.0 - e2) * np.abs(np.diff(s))  # per radian of longitude
    dlon = np.abs(np.deg2rad(np.diff(lon_edges)))
    return band[:, None] * dlon[None, :]


#: Keys of the config block ``outer_grid`` (edges and resolution; plus ``enabled``).
OUTER_GRID_KEYS = ("enabled", "lon_min", "lon_max", "lat_min", "lat_max", "res")


def _on_edge(x: float, start: float, res: float) -> bool:
    k = (x - start) / res
    return abs(k - round(k)) < 1e-6


def check_nesting(inner: Grid, outer) -> None:
    """Raise :class:`GridError` naming the ``outer_grid`` key when ``outer`` (a :class:`Grid`, or
    a mapping/object with ``lon_min, lon_max, lat_min, lat_max, res``) cannot nest ``inner``: the
    outer resolution must be a whole multiple of the inner one, the outer box must contain the
    inner box, the inner box's edges must lie on outer cell edges and the outer box must span
    whole outer cells."""
    get = outer.get if isinstance(outer, Mapping) else (lambda k: getattr(outer, k))
    o = {k: float(get(k)) for k in GRID_KEYS}
    res = o["res"]
    ratio = res / inner.res
    if round(ratio) < 1 or abs(ratio - round(ratio)) > 1e-6:
        raise GridError(f"config outer_grid.res = {res:g} is not a whole multiple of grid.res = "
                        f"{inner.res:g}; choose e.g. {round(max(ratio, 1)) * inner.res:g}")
    for axis in ("lon", "lat"):
        width = (getattr(inner, f"{axis}_max") - getattr(inner, f"{axis}_min")) / res
        if abs(width - round(width)) > 1e-6:
            raise GridError(
                f"config outer_grid.res = {res:g}: the inner grid's {axis} extent "
                f"({getattr(inner, f'{axis}_min')}..{getattr(inner, f'{axis}_max')}) is "
                f"{width:.4f} outer cells, not a whole number; the inner box must be whole outer "
                "cells (choose outer_grid.res dividing it)")
    for key in ("lon_min", "lat_min", "lon_max", "lat_max"):
        lo = key.endswith("min")
        if (o[key] > getattr(inner, key) + 1e-9) if lo else (o[key] < getattr(inner, key) - 1e-9):
            raise GridError(f"config outer_grid.{key} = {o[key]:g} does not contain the inner grid "
                            f"(grid.{key} = {getattr(inner, key):g}); the outer box must contain "
                            "the inner box")
    for key in ("lon_min", "lat_min", "lon_max", "lat_max"):
        if not _on_edge(o[key], getattr(inner, key), res):
            raise GridError(
                f"config outer_grid.{key} = {o[key]:g} is not on the outer cell edges that line up "
                f"with the inner grid (grid.{key} = {getattr(inner, key):g} +/- k * "
                f"outer_grid.res {res:g}); give e.g. "
                f"{getattr(inner, key) + res * np.floor((o[key] - getattr(inner, key)) / res + 1e-9):.10g}")


def aligned_outer_box(inner: Grid, box: tuple[float, float, float, float], res: float) -> tuple:
    """(lon_min, lon_max, lat_min, lat_max) of the largest box of whole ``res`` cells inside
    ``box`` (e.g. the met domain) whose edges line up with the inner grid's edges (the default of
    ``outer_grid``)."""
    lon_lo, lon_hi, lat_lo, lat_hi = box

    def lo(edge, limit):
        return float(np.round(edge - res * max(0, np.floor((edge - limit) / res + 1e-9)), DECIMALS))

    def hi(edge, limit):
        return float(np.round(edge + res * max(0, np.floor((limit - edge) / res + 1e-9)), DECIMALS))

    return (lo(inner.lon_min, lon_lo), hi(inner.lon_max, lon_hi),
            lo(inner.lat_min, lat_lo), hi(inner.lat_max, lat_hi))


@dataclass(frozen=True)
class NestedGrid:
    """The nested state grid: ``inner`` (fine) and ``outer`` (coarse, regular, or None).

    ``outer`` is the full regular outer grid including the hole under the inner box; the state
    holds only its cells outside the hole (:attr:`outer_mask`). See the module docstring for the
    cell numbering.
    """

    inner: Grid
    outer: Grid | None = None

    def __post_init__(self) -> None:
        if self.outer is not None:
            check_nesting(self.inner, self.outer)

    # construction -------------------------------------------------------------------------
    @classmethod
    def from_config(cls, cfg) -> "NestedGrid":
        """From a full config (dict or typed ``PipelineConfig``) holding ``grid`` and optionally
        ``outer_grid``; a missing or disabled ``outer_grid`` gives the inner grid alone. A config
        without ``outer_grid`` edges takes them from :func:`gzcarbon.config.load_config` (the
        met domain trimmed to whole outer cells on the inner edges)."""
        if isinstance(cfg, NestedGrid):
            return cfg
        get = cfg.get if isinstance(cfg, Mapping) else (lambda k, d=None: getattr(cfg, k, d))
        inner = Grid.from_config(get("grid"))
        block = get("outer_grid")
        if block is None:
            return cls(inner, None)
        if not isinstance(block, Mapping):
            block = {k: getattr(block, k, None) for k in OUTER_GRID_KEYS}
        if not block.get("enabled", True):
            return cls(inner, None)
        if any(block.get(k) is None for k in GRID_KEYS):
            from gzcarbon.config import load_config

            full = {"grid": inner.as_dict(), "outer_grid": dict(block)}
            met = get("met")
            if met is not None:
                full["met"] = met if isinstance(met, Mapping) else met.as_dict()
            block = load_config(full).outer_grid.as_dict()
        outer = Grid(*(float(block[k]) for k in GRID_KEYS))
        return cls(inner, outer)

    @classmethod
    def from_attrs(cls, inner: Grid, attrs: Mapping) -> "NestedGrid":
        """From the ``outer_*`` attributes :meth:`attrs` writes (absent or n_outer 0: no outer)."""
        if not int(attrs.get("n_outer", 0)) and "outer_res" not in attrs:
            return cls(inner, None)
        if "outer_res" not in attrs:
            raise GridError("file attributes give n_outer > 0 but no outer_lon_min/.../outer_res")
        return cls(inner, Grid(*(float(attrs[f"outer_{k}"]) for k in GRID_KEYS)))

    def attrs(self) -> dict:
        """Attributes recording the nesting in a file: n_inner, n_outer and the outer grid
        (``outer_lon_min, outer_lon_max, outer_lat_min, outer_lat_max, outer_res``; absent when
        there is no outer grid)."""
        out = {"n_inner": int(self.n_inner), "n_outer": int(self.n_outer)}
        if self.outer is not None:
            out.update({f"outer_{k}": float(getattr(self.outer, k)) for k in GRID_KEYS})
        return out

    # sizes --------------------------------------------------------------------------------
    @property
    def enabled(self) -> bool:
        return self.outer is not None

    @property
    def n_inner(self) -> int:
        return self.inner.n_cells

    @property
    def hole(self) -> tuple[slice, slice]:
        """(lat slice, lon slice) of the outer cells under the inner box (empty without outer)."""
        if self.outer is None:
            return slice(0, 0), slice(0, 0)
        o, i = self.outer, self.inner
        iy0 = int(round((i.lat_min - o.lat_min) / o.res))
        iy1 = int(round((i.lat_max - o.lat_min) / o.res))
        ix0 = int(round((i.lon_min - o.lon_min) / o.res))
        ix1 = int(round((i.lon_max - o.lon_min) / o.res))
        return slice(iy0, iy1), slice(ix0, ix1)

    @property
    def outer_mask(self) -> np.ndarray:
        """(ny_o, nx_o) bool: True where an outer cell is a state cell (outside the inner box)."""
        if self.outer is None:
            return np.zeros((0, 0), dtype=bool)
        mask = np.ones(self.outer.shape, dtype=bool)
        mask[self.hole] = False
        return mask

    @property
    def n_outer(self) -> int:
        return int(self.outer_mask.sum())

    @property
    def n_cells(self) -> int:
        return self.n_inner + self.n_outer

    @property
    def ratio(self) -> int:
        """Inner cells per outer cell side (outer res / inner res); 1 without outer."""
        return 1 if self.outer is None else int(round(self.outer.res / self.inner.res))

    # numbering ----------------------------------------------------------------------------
    def outer_cells(self) -> tuple[np.ndarray, np.ndarray]:
        """(iy, ix) on the outer grid of each outer state cell, in state order."""
        iy, ix = np.nonzero(self.outer_mask)  # row-major order
        return iy.astype(np.int64), ix.astype(np.int64)

    def outer_index(self) -> np.ndarray:
        """(ny_o, nx_o) int64: the state cell number of each outer cell, -1 in the hole."""
        idx = np.full(self.outer_mask.shape, -1, dtype=np.int64)
        idx[self.outer_mask] = self.n_inner + np.arange(self.n_outer, dtype=np.int64)
        return idx

    def outer_to_state(self, field) -> np.ndarray:
        """(..., ny_o, nx_o) outer field → (..., n_outer) values of the outer state cells."""
        field = np.asarray(field)
        return field[..., self.outer_mask]

    def outer_from_state(self, values, fill: float = 0.0) -> np.ndarray:
        """(..., n_outer) → (..., ny_o, nx_o) outer field, ``fill`` in the hole."""
        values = np.asarray(values)
        out = np.full(values.shape[:-1] + self.outer_mask.shape, fill,
                      dtype=np.result_type(values.dtype, np.asarray(fill).dtype))
        out[..., self.outer_mask] = values
        return out

    def state_vector(self, inner_field, outer_field=None) -> np.ndarray:
        """(..., ny, nx) inner and (..., ny_o, nx_o) outer fields → (..., n_cells) in state order."""
        inner_field = np.asarray(inner_field)
        flat = inner_field.reshape(inner_field.shape[:-2] + (self.n_inner,))
        if self.outer is None:
            return flat
        if outer_field is None:
            raise GridError("state_vector: the nested grid has an outer domain; give outer_field")
        return np.concatenate([flat, self.outer_to_state(outer_field)], axis=-1)

    # cell geometry ------------------------------------------------------------------------
    def cell_lon(self) -> np.ndarray:
        """(n_cells,) cell-centre longitudes in state order."""
        lon = np.broadcast_to(self.inner.lon[None, :], self.inner.shape).ravel()
        if self.outer is None:
            return lon.copy()
        _, ix = self.outer_cells()
        return np.concatenate([lon, self.outer.lon[ix]])

    def cell_lat(self) -> np.ndarray:
        """(n_cells,) cell-centre latitudes in state order."""
        lat = np.broadcast_to(self.inner.lat[:, None], self.inner.shape).ravel()
        if self.outer is None:
            return lat.copy()
        iy, _ = self.outer_cells()
        return np.concatenate([lat, self.outer.lat[iy]])

    def cell_area_m2(self) -> np.ndarray:
        """(n_cells,) cell areas (m², WGS84 ellipsoid) in state order."""
        inner = self.inner.cell_area_m2().ravel()
        if self.outer is None:
            return inner
        return np.concatenate([inner, self.outer_to_state(self.outer.cell_area_m2())])

    def is_outer(self) -> np.ndarray:
        """(n_cells,) bool: True for the outer state cells."""
        return np.arange(self.n_cells) >= self.n_inner

    def describe(self) -> str:
        if self.outer is None:
            return f"inner {self.inner.describe()}; no outer grid"
        return (f"inner {self.inner.describe()}; outer {self.outer.describe()}, "
                f"{self.n_outer} outer cells outside the inner box")
