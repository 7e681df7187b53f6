"""The state grid: one regular longitude-latitude grid of cells (WGS84 degrees) for every stage.

`Grid` is built from the config block ``grid`` (``lon_min, lon_max, lat_min, lat_max, res``; these
are cell *edges*) or from a file's cell centres (:meth:`Grid.from_centres`). Cells are numbered
row-major from the south-west corner: ``cell = iy * nx + ix`` with ``iy`` counting north from
``lat_min`` and ``ix`` east from ``lon_min`` — the numbering of the Jacobian columns
(docs/formats.md). Centres are exactly ``edge_min + res * (i + 1/2)`` and edges
``edge_min + res * i``, both rounded to 10 decimals (as pystilt rounds them), so every stage
writes and compares the same coordinates. A nested outer domain of coarser cells will be a second
`Grid` whose cells are numbered after the inner grid's; nothing here assumes there is only one.

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
