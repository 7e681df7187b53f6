"""Real emission inventories in: EDGAR, ODIAC, any CF NetCDF flux field; conservative regridding to
the state grid, proxy downscaling of coarse inventories, temporal profiles (docs/inventory.md).

`read_inventory(path)` recognises the file by its content, not its name:

* **TIFF** (magic bytes ``II*\\0`` / ``MM\\0*``): ODIAC 1 km monthly GeoTIFF, tonne C per cell per
  month, geographic (WGS84) pixels of 1/120°; read by :func:`read_tiff` (our own reader of the
  uncompressed and deflate strip/tile layouts; tifffile/rasterio are not needed).
* **NetCDF** with ``emi_<species>`` (EDGAR v4-v8: kg m-2 s-1, annual mean, or per month with a
  ``time`` axis of 12), ``fluxes`` (EDGAR 2024 ``_flx`` files, kg m-2 s-1) or ``emissions``
  (EDGAR 2024 ``_emi`` files, ``Tonnes`` per cell per year or month);
* **any CF NetCDF** whose variables on (lat, lon) carry flux units in their ``units`` attribute —
  one variable per sector; the units are parsed by meaning (``kg m-2 s-1``, ``kg/m2/s``,
  ``umol m-2 s-1``, ``mol m-2 s-1``, ``g m-2 yr-1``, ``t yr-1`` per cell, ...).

Every reader returns an `Inventory`: per sector the *mass flux* in kg (species) m-2 s-1 averaged over
the inventory's period, on the file's own regular lon-lat cells (edges from the centres, latitudes
ascending). `Inventory.on_grid(grid)` regrids conservatively (each sector's mass inside the domain is
kept to rounding, cells straddling the domain edge contribute their overlapping part), and
`downscale` redistributes each coarse cell's mass over the fine cells inside it in proportion to a
documented proxy field.

ODIAC includes power plants (as points) and excludes international aviation and shipping (the
``excl_intl`` files); it has no sectors and is land only (no domestic shipping on rivers/sea, no
biosphere). `remove_point_sources` subtracts the power stage's metered plants from the cells that hold
them so nothing is counted twice.
"""

from __future__ import annotations

import logging
import mmap
import re
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from gzcarbon.grid import Grid, cell_area_m2, edges_from_centres

from .inventory import KG_TO_UMOL, InventoryError

log = logging.getLogger(__name__)

#: molar masses, g/mol
MOLAR_MASS = {"co2": 44.0095, "ch4": 16.0425, "co": 28.0101, "c": 12.011}
SECONDS_PER_DAY = 86400.0
#: seconds of a year of 365 days: EDGAR's annual means ("time: mean (interval: 1 year, 365 days)")
SECONDS_PER_YEAR = 365.0 * SECONDS_PER_DAY


# --------------------------------------------------------------------------------------------------
# units by meaning
# --------------------------------------------------------------------------------------------------
_MASS = {"kg": 1.0, "g": 1e-3, "mg": 1e-6, "t": 1e3, "tonne": 1e3, "tonnes": 1e3, "ton": 1e3, "tons": 1e3,
         "mt": 1e9, "kt": 1e6, "gg": 1e6, "tg": 1e9}
_MOLES = {"mol": 1.0, "mmol": 1e-3, "umol": 1e-6, "µmol": 1e-6, "micromol": 1e-6, "micromole": 1e-6,
          "nmol": 1e-9, "nanomol": 1e-9, "kmol": 1e3}
_AREA = {"m": 1.0, "km": 1e6, "cm": 1e-4}
_TIME = {"s": 1.0, "sec": 1.0, "second": 1.0, "h": 3600.0, "hr": 3600.0, "hour": 3600.0,
         "d": SECONDS_PER_DAY, "day": SECONDS_PER_DAY, "yr": SECONDS_PER_YEAR, "year": SECONDS_PER_YEAR,
         "a": SECONDS_PER_YEAR, "y": SECONDS_PER_YEAR, "month": None}


@dataclass(frozen=True)
class FluxUnits:
    """A flux unit: ``factor`` × (kg or mol) [per m²] [per s]; ``per_cell`` when no area is given,
    ``per_period`` when no time is given (then the file's period applies), ``moles`` for molar units,
    ``element`` "c" when the mass counts carbon only (ODIAC's tonne C)."""

    factor: float
    moles: bool
    per_cell: bool
    per_period: bool
    per_month: bool = False
    element: str = ""


def parse_flux_units(text: str, what: str = "units") -> FluxUnits:
    """Parse a flux unit string by meaning: ``kg m-2 s-1``, ``kg/m2/s``, ``kg m**-2 s**-1``,
    ``micromol m-2 s-1``, ``Tonnes`` (per cell, per the file's period), ``t C/month``, ..."""
    s = str(text).strip().lower().replace("**", "").replace("^", "").replace("·", " ").replace("*", " ")
    s = re.sub(r"\bper\b", "/", s)
    toks = re.findall(r"/|[a-zµ]+|-?\d+", s)
    mass = moles = None
    area = tdiv = None
    per_month = False
    element = ""
    i, denom = 0, False
    while i < len(toks):
        t = toks[i]
        nxt = toks[i + 1] if i + 1 < len(toks) else ""
        neg = denom or nxt.startswith("-")
        if t == "/":
            denom = True
        elif t in ("c", "carbon") and (mass is not None or moles is not None):
            element = "c"
        elif t in ("co2", "ch4", "co"):
            pass
        elif mass is None and moles is None and not neg and t in _MASS:
            mass = _MASS[t]
        elif mass is None and moles is None and not neg and t in _MOLES:
            moles = _MOLES[t]
        elif neg and t in _AREA and nxt.lstrip("-") in ("2", ""):
            area = _AREA[t]
            denom = False
        elif neg and t.rstrip("s") in ("m2", "km2") or t in ("m2", "km2") and denom:
            area = 1.0 if t.startswith("m") else 1e6
            denom = False
        elif neg and (t in _TIME or t.rstrip("s") in _TIME):
            key = t if t in _TIME else t.rstrip("s")
            if _TIME[key] is None:
                per_month = True
                tdiv = 1.0
            else:
                tdiv = _TIME[key]
            denom = False
        elif t.lstrip("-").isdigit():
            pass
        else:
            raise InventoryError(f"{what} {text!r}: cannot read the unit {t!r}; give a mass or molar flux "
                                 "such as 'kg m-2 s-1', 'umol m-2 s-1' or 'Tonnes' (per cell and period)")
        i += 1
    if mass is None and moles is None:
        raise InventoryError(f"{what} {text!r}: no mass (kg, g, t) or amount (mol) in the units; "
                             "a flux field needs e.g. 'kg m-2 s-1'")
    f = (mass if mass is not None else moles) / (area or 1.0) / (tdiv or 1.0)
    return FluxUnits(f, moles is not None, area is None, tdiv is None, per_month, element)


# --------------------------------------------------------------------------------------------------
# the inventory object
# --------------------------------------------------------------------------------------------------
@dataclass
class Inventory:
    """Sector mass fluxes kg (species) m-2 s-1 (means over ``period``) on regular lon-lat cells."""

    sectors: dict
    lon_edges: np.ndarray
    lat_edges: np.ndarray
    species: str
    source: str
    kind: str
    period: str = "year"
    attrs: dict = field(default_factory=dict)

    @property
    def cell_area(self) -> np.ndarray:
        return cell_area_m2(self.lat_edges, self.lon_edges)

    def mass_rate(self, sector: str) -> np.ndarray:
        """kg s-1 per source cell."""
        return self.sectors[sector] * self.cell_area

    def on_grid(self, grid: Grid) -> dict:
        """{sector: kg m-2 s-1 on ``grid``} by conservative regridding (`regrid_conservative`)."""
        return {k: regrid_conservative(v, self.lon_edges, self.lat_edges, grid) for k, v in self.sectors.items()}


def _band_area(lat_edges) -> np.ndarray:
    """Area per radian of longitude of the bands between the latitude edges (WGS84)."""
    e = np.asarray(lat_edges, float)
    return cell_area_m2(e, np.array([0.0, np.degrees(1.0)]))[:, 0]


def overlap_matrix_lon(src_edges, dst_edges) -> np.ndarray:
    """(n_dst, n_src) length of overlap (degrees) of each destination cell with each source cell."""
    s, d = np.asarray(src_edges, float), np.asarray(dst_edges, float)
    lo = np.maximum(d[:-1, None], s[None, :-1])
    hi = np.minimum(d[1:, None], s[None, 1:])
    return np.clip(hi - lo, 0.0, None)


def overlap_matrix_lat(src_edges, dst_edges) -> np.ndarray:
    """(n_dst, n_src) ellipsoidal band area (per radian of longitude) of the overlaps in latitude."""
    s, d = np.asarray(src_edges, float), np.asarray(dst_edges, float)
    lo = np.maximum(d[:-1, None], s[None, :-1])
    hi = np.minimum(d[1:, None], s[None, 1:])
    ok = hi > lo
    out = np.zeros(ok.shape)
    if ok.any():
        out[ok] = _band_area(np.stack([lo[ok], hi[ok]], axis=-1).ravel())[::2]
    return out


def regrid_conservative(flux, src_lon_edges, src_lat_edges, grid: Grid) -> np.ndarray:
    """Mass-conserving regridding of a flux density (per m²) from a regular lon-lat grid to ``grid``.

    Each source cell's mass is spread uniformly over its area: destination mass = Σ source flux ×
    area of the overlap (exact on the WGS84 ellipsoid: the overlap of two lon-lat cells is a lon-lat
    cell). A source cell straddling the domain edge gives the domain only its overlapping part, so
    Σ destination mass = Σ source flux × (area of the source cell inside the domain). Source
    longitudes are periodic (a source on 0..360 fills a grid on -180..180).
    """
    f = np.asarray(flux, float)
    lon_e = np.asarray(src_lon_edges, float)
    lat_e = np.asarray(src_lat_edges, float)
    if f.shape != (lat_e.size - 1, lon_e.size - 1):
        raise InventoryError(f"regrid: field shape {f.shape} does not match the edges "
                             f"({lat_e.size - 1}, {lon_e.size - 1})")
    # longitudes are periodic: a source on 0..360 meets a grid on -180..180 (and back)
    Wx = sum(overlap_matrix_lon(lon_e + shift, grid.lon_edges) for shift in (-360.0, 0.0, 360.0))  # degrees
    Wy = overlap_matrix_lat(lat_e, grid.lat_edges)  # m² per radian
    mass = Wy @ f @ Wx.T * np.deg2rad(1.0)  # kg s-1 per destination cell
    return mass / grid.cell_area_m2()


def downscale(coarse_on_grid, proxy, coarse_lon_edges, coarse_lat_edges, grid: Grid) -> np.ndarray:
    """Redistribute a conservatively regridded coarse field within each coarse cell ∝ ``proxy``.

    ``coarse_on_grid``: (ny, nx) kg m-2 s-1 from `regrid_conservative` (flat within each coarse cell);
    ``proxy``: (ny, nx) ≥ 0 on ``grid`` (e.g. ODIAC's 1 km total, population, night lights). Every
    fine cell is assigned to the coarse cell holding its centre; within a coarse cell the mass is
    kept and shared in proportion to proxy × area (a coarse cell whose proxy sums to 0 keeps its flat
    field). The mass of every coarse cell, hence of the field, is conserved.
    """
    f = np.asarray(coarse_on_grid, float)
    p = np.asarray(proxy, float)
    if p.shape != f.shape or np.any(p < 0) or not np.all(np.isfinite(p)):
        raise InventoryError(f"downscale: proxy must be finite, >= 0 and of shape {f.shape}")
    area = grid.cell_area_m2()
    ix = np.searchsorted(np.asarray(coarse_lon_edges, float), grid.lon, side="right") - 1
    iy = np.searchsorted(np.asarray(coarse_lat_edges, float), grid.lat, side="right") - 1
    label = (iy[:, None] * (len(coarse_lon_edges) + 1) + ix[None, :]).ravel()
    mass = (f * area).ravel()
    weight = (p * area).ravel()
    _, inv = np.unique(label, return_inverse=True)
    m_tot = np.bincount(inv, mass)
    w_tot = np.bincount(inv, weight)
    share = np.where(w_tot[inv] > 0, weight / np.where(w_tot[inv] > 0, w_tot[inv], 1.0), np.nan)
    out = np.where(np.isfinite(share), m_tot[inv] * share, mass)
    return out.reshape(f.shape) / area


# --------------------------------------------------------------------------------------------------
# readers
# --------------------------------------------------------------------------------------------------
def _lonlat(ds: xr.Dataset, path) -> tuple[str, str]:
    for lo, la in (("lon", "lat"), ("longitude", "latitude"), ("x", "y")):
        if lo in ds.coords and la in ds.coords:
            return lo, la
    raise InventoryError(f"inventory {path}: no lon/lat coordinates (expected `lon`, `lat` or "
                         "`longitude`, `latitude` cell centres)")


def _to_kg_m2_s(values, units: FluxUnits, species: str, area, period_seconds: float) -> np.ndarray:
    v = np.asarray(values, float) * units.factor
    if units.moles:
        v = v * MOLAR_MASS[species] * 1e-3
    elif units.element == "c":
        v = v * MOLAR_MASS[species] / MOLAR_MASS["c"]
    if units.per_cell:
        v = v / area
    if units.per_period or units.per_month:
        v = v / period_seconds
    return v


def _period_seconds(kind: str, year: int | None, month: int | None) -> float:
    if kind == "month":
        if year is None or month is None:
            raise InventoryError("a monthly inventory in mass per cell needs the year and month to get its seconds")
        return pd.Period(f"{year}-{month:02d}", "M").days_in_month * SECONDS_PER_DAY
    return SECONDS_PER_YEAR


def _sector_name(var: str, species: str) -> str:
    if var in (f"emi_{species}", "fluxes", "emissions", "flux"):
        return "total"
    for pre in (f"emi_{species}_", f"emi_{species}", "emi_", "fluxes_", "flux_", "emissions_"):
        if var.startswith(pre) and len(var) > len(pre):
            return var[len(pre):]
    return "total" if var in (f"emi_{species}", "fluxes", "emissions", "flux") else var


def _select_month(da: xr.DataArray, month: int | None, path, var: str) -> tuple[xr.DataArray, str]:
    tdim = next((d for d in da.dims if d in ("time", "month")), None)
    if tdim is None:
        return da, "year"
    if da.sizes[tdim] == 1:
        return da.isel({tdim: 0}), "year"
    if da.sizes[tdim] != 12:
        raise InventoryError(f"inventory {path}: `{var}` has {da.sizes[tdim]} time steps; expected 1 (annual) or 12 (monthly)")
    if month is None:
        raise InventoryError(f"inventory {path}: `{var}` is monthly (12 steps); pass month=1..12")
    return da.isel({tdim: int(month) - 1}), "month"


def read_netcdf_inventory(path, species: str = "co2", year: int | None = None, month: int | None = None,
                          variables: list[str] | None = None) -> Inventory:
    """EDGAR (``emi_<species>``, ``fluxes``, ``emissions``) or any CF NetCDF flux field: one variable
    per sector on (lat, lon) (plus an optional time axis of 1 or 12 steps), units in attributes."""
    try:
        ds = xr.open_dataset(path)
    except Exception as exc:  # noqa: BLE001
        raise InventoryError(f"inventory {path}: cannot be opened as NetCDF ({exc})") from exc
    with ds:
        lo, la = _lonlat(ds, path)
        cand = variables or [v for v in ds.data_vars if {lo, la} <= set(ds[v].dims) and "units" in ds[v].attrs]
        if not cand:
            raise InventoryError(f"inventory {path}: no variable on ({la}, {lo}) with a `units` attribute; "
                                 "give each sector as a flux variable with units such as 'kg m-2 s-1'")
        edgar = any(v.startswith("emi_") or v in ("fluxes", "emissions") for v in cand) or \
            "jrc" in str(ds.attrs.get("institution", "")).lower()
        lon = ds[lo].values.astype(float)
        lat = ds[la].values.astype(float)
        lon_e = edges_from_centres(lon, f"inventory {path} {lo}", rtol=1e-4)  # EDGAR: float32 centres
        lat_e = edges_from_centres(lat, f"inventory {path} {la}", rtol=1e-4)
        lat_e = np.clip(lat_e, -90.0, 90.0)  # a coarse cut-down's outer half steps may pass the poles
        flip = lat[1] < lat[0] if lat.size > 1 else False
        if flip:
            lat_e = lat_e[::-1]
        lon_e = trim_to_360(lon_e, f"inventory {path} {lo}")
        area = cell_area_m2(lat_e, lon_e)
        sectors, kinds = {}, set()
        for v in cand:
            da, kind = _select_month(ds[v], month, path, v)
            kinds.add(kind)
            units = parse_flux_units(da.attrs.get("units", ""), f"inventory {path}: `{v}` units")
            vals = da.transpose(la, lo).values.astype(float)
            if flip:
                vals = vals[::-1]
            vals = np.where(np.isfinite(vals), vals, 0.0)  # EDGAR/CF fill: no emission
            if (vals < 0).any() and edgar:
                raise InventoryError(f"inventory {path}: `{v}` has negative emissions")
            sectors[_sector_name(v, species)] = _to_kg_m2_s(vals, units, species, area,
                                                             _period_seconds(kind, year, month))
        return Inventory(sectors, lon_e, lat_e, species, str(path), "edgar" if edgar else "cf",
                         period="month" if "month" in kinds else "year", attrs=dict(ds.attrs))


def trim_to_360(lon_edges, what: str = "longitude") -> np.ndarray:
    """Longitude edges that cover at most 360°: a global axis whose regular cells span more (a
    cut-down of a global grid, e.g. every 51st EDGAR 0.1° cell: 71 cells of 5.14° = 365°, the
    last centre 359.95 only 0.1° from the first, 0.05) would cover the longitudes of its first
    and last cells twice, and conservative regridding with periodic longitudes would add both
    cells' fluxes there. The first and last cells are cut where they meet, halfway between their
    centres (each longitude then belongs to the cell with the nearer centre; logged). An overlap
    that reaches past a centre is an error.
    """
    e = np.asarray(lon_edges, float)
    span = float(e[-1] - e[0])
    if span <= 360.0 + 1e-6:
        return e
    first, last = 0.5 * (e[0] + e[1]), 0.5 * (e[-2] + e[-1]) - 360.0
    cut = 0.5 * (first + last)
    if not (last < cut < first and e[0] <= cut and cut + 360.0 <= e[-1]):
        raise InventoryError(f"{what}: the cells span {span:.4f}° of longitude and the first and last "
                             "cells overlap past their centres; give a field whose longitudes cover "
                             "the globe at most once")
    log.warning("%s: the cells span %.4f° of longitude (> 360°): the first and last cells are cut "
                "at %.4f° E, halfway between their centres, so that no longitude is counted twice",
                what, span, cut)
    out = e.copy()
    out[0], out[-1] = cut, cut + 360.0
    return out


def read_inventory(path, grid: Grid | None = None, *, species: str = "co2", year: int | None = None,
                   month: int | None = None, bounds: tuple[float, float, float, float] | None = None):
    """Read any supported inventory (see module docstring), recognised by content.

    The pipeline's own ``inventory.nc`` (sectors + local-hour profiles + biosphere, docs/formats.md)
    is returned as the validated `xarray.Dataset` of `inversion.inventory.read_inventory`; every other
    file as an `Inventory` (sector mass fluxes kg m-2 s-1 on the file's cells). With ``grid`` an
    `Inventory` is returned regridded ({sector: (ny, nx) kg m-2 s-1} via `Inventory.on_grid`).
    An ODIAC GeoTIFF is read only over ``bounds`` (lon_min, lon_max, lat_min, lat_max) or the
    grid's, when given (`read_odiac`).
    """
    from .inventory import read_inventory as read_pipeline_inventory

    path = Path(path)
    if not path.is_file():
        raise InventoryError(f"inventory {path}: not found. Set config `inputs.inventory` (docs/inventory.md).")
    with path.open("rb") as fh:
        head = fh.read(4)
    if head in (b"II*\x00", b"MM\x00*"):
        if bounds is None and grid is not None:
            bounds = (grid.lon_min, grid.lon_max, grid.lat_min, grid.lat_max)
        inv = read_odiac(path, year=year, month=month, species=species, bounds=bounds)
    else:
        with xr.open_dataset(path) as probe:
            own = "hour" in probe.dims and any(v.startswith("profile_") for v in probe.data_vars)
        if own:
            return read_pipeline_inventory(path, grid)
        inv = read_netcdf_inventory(path, species, year, month)
    return inv.on_grid(grid) if grid is not None else inv


# --------------------------------------------------------------------------------------------------
# ODIAC GeoTIFF
# --------------------------------------------------------------------------------------------------
_TIFF_TYPES = {1: "B", 2: "s", 3: "H", 4: "I", 5: "II", 6: "b", 7: "B", 8: "h", 9: "i", 10: "ii", 11: "f", 12: "d",
               16: "Q", 17: "q"}
_SAMPLE_DTYPES = {(1, 8): "u1", (1, 16): "u2", (1, 32): "u4", (2, 8): "i1", (2, 16): "i2", (2, 32): "i4",
                  (3, 32): "f4", (3, 64): "f8"}


def _tiff_tags(buf: bytes) -> tuple[str, dict]:
    bo = "<" if buf[:2] == b"II" else ">"
    magic = struct.unpack(bo + "H", buf[2:4])[0]
    if magic == 43:  # BigTIFF
        off = struct.unpack(bo + "Q", buf[8:16])[0]
        n = struct.unpack(bo + "Q", buf[off:off + 8])[0]
        entry, hdr, inline = 20, 8, 8
        fmt = bo + "HHQ"
    elif magic == 42:
        off = struct.unpack(bo + "I", buf[4:8])[0]
        n = struct.unpack(bo + "H", buf[off:off + 2])[0]
        entry, hdr, inline = 12, 2, 4
        fmt = bo + "HHI"
    else:
        raise InventoryError(f"not a TIFF file (magic {magic})")
    tags = {}
    for i in range(n):
        e = off + hdr + i * entry
        tag, typ, count = struct.unpack(fmt, buf[e:e + struct.calcsize(fmt)])
        code = _TIFF_TYPES.get(typ)
        if code is None:
            continue
        size = struct.calcsize(bo + code) * count
        start = e + struct.calcsize(fmt)
        if size > inline:
            start = struct.unpack(bo + ("Q" if magic == 43 else "I"), buf[start:start + inline])[0]
        raw = buf[start:start + size]
        if code == "s":
            tags[tag] = raw.rstrip(b"\x00").decode("latin-1")
        else:
            vals = struct.unpack(bo + code * count, raw)
            if typ in (5, 10):
                vals = tuple(vals[k] / vals[k + 1] for k in range(0, len(vals), 2))
            tags[tag] = vals
    return bo, tags


def read_tiff(path, window: tuple[int, int, int, int] | None = None) -> tuple[np.ndarray, dict]:
    """(band 1 as a 2-D array, tags) of a TIFF with strips or tiles, uncompressed (1) or deflate
    (8/32946), predictor 1 (none) or 2 (horizontal differencing of integers) or 3 (floating point).

    ``window = (row0, row1, col0, col1)`` (half-open pixel ranges, row 0 at the top) reads only
    those pixels: the file is memory-mapped, not read, and only the strips or tiles that hold the
    window are decoded (a global 1 km ODIAC GeoTIFF is 3.7 GB as float32; a city needs a few MB).

    GeoTIFF tags kept: ``pixel_scale`` (33550), ``tiepoint`` (33922), ``nodata`` (42113); also
    ``width``/``height`` of the whole image and ``window``."""
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        bo, t = _tiff_tags(buf)
        width, height = t[256][0], t[257][0]
        r0, r1, c0, c1 = window if window is not None else (0, height, 0, width)
        if not (0 <= r0 < r1 <= height and 0 <= c0 < c1 <= width):
            raise InventoryError(f"{path}: window rows {r0}..{r1}, columns {c0}..{c1} is not inside the "
                                 f"{height} x {width} image")
        out = _read_blocks(buf, t, str(path), (r0, r1, c0, c1), bo)
    tags = {"pixel_scale": t.get(33550), "tiepoint": t.get(33922), "nodata": t.get(42113),
            "width": width, "height": height, "window": (r0, r1, c0, c1)}
    return out[..., 0], tags


def tiff_tags(path) -> dict:
    """The tags of `read_tiff` without reading any pixel (``width``, ``height``, GeoTIFF tags)."""
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        _, t = _tiff_tags(buf)
    return {"pixel_scale": t.get(33550), "tiepoint": t.get(33922), "nodata": t.get(42113),
            "width": t[256][0], "height": t[257][0]}


def _read_blocks(buf, t: dict, path: str, window, bo: str) -> np.ndarray:
    """The window (row0, row1, col0, col1) of band data, decoding only the blocks it touches."""
    width, height = t[256][0], t[257][0]
    bits, fmt = t.get(258, (1,))[0], t.get(339, (1,))[0]
    comp, pred, spp = t.get(259, (1,))[0], t.get(317, (1,))[0], t.get(277, (1,))[0]
    if t.get(284, (1,))[0] != 1 and spp > 1:
        raise InventoryError(f"{path}: planar configuration 2 with {spp} samples is not supported")
    if comp not in (1, 8, 32946):
        raise InventoryError(f"{path}: TIFF compression {comp} is not supported (uncompressed or deflate); "
                             "convert with `gdal_translate -co COMPRESS=DEFLATE`")
    dt = np.dtype(bo + _SAMPLE_DTYPES[(fmt, bits)])
    r0, r1, c0, c1 = window
    out = np.zeros((r1 - r0, c1 - c0, spp), dt)
    if 322 in t:  # tiles
        tw, th = t[322][0], t[323][0]
        offs, counts = t[324], t[325]
        per_row = -(-width // tw)
        for ty in range(r0 // th, -(-r1 // th)):
            for tx in range(c0 // tw, -(-c1 // tw)):
                k = ty * per_row + tx
                block = _decode(buf[offs[k]:offs[k] + counts[k]], comp, pred, dt, (th, tw, spp))
                _paste(out, block, ty * th, tx * tw, window)
    else:
        rps = t.get(278, (height,))[0]
        offs, counts = t[273], t[279]
        for k in range(r0 // rps, -(-r1 // rps)):
            h = min(rps, height - k * rps)
            block = _decode(buf[offs[k]:offs[k] + counts[k]], comp, pred, dt, (h, width, spp))
            _paste(out, block, k * rps, 0, window)
    return out


def _paste(out: np.ndarray, block: np.ndarray, top: int, left: int, window) -> None:
    """Copy the part of ``block`` (image rows top.., columns left..) inside the window into ``out``."""
    r0, r1, c0, c1 = window
    a0, a1 = max(top, r0), min(top + block.shape[0], r1)
    b0, b1 = max(left, c0), min(left + block.shape[1], c1)
    if a0 < a1 and b0 < b1:
        out[a0 - r0:a1 - r0, b0 - c0:b1 - c0] = block[a0 - top:a1 - top, b0 - left:b1 - left]


def _decode(raw: bytes, comp: int, pred: int, dt: np.dtype, shape) -> np.ndarray:
    data = zlib.decompress(raw) if comp in (8, 32946) else raw
    h, w, spp = shape
    if pred == 3:  # floating point predictor: bytes of each row split by significance, differenced
        nb = dt.itemsize
        b = np.frombuffer(data, np.uint8)[: h * w * spp * nb].reshape(h, w * spp * nb)
        b = np.cumsum(b, axis=1, dtype=np.uint8)
        b = b.reshape(h, nb, w * spp).transpose(0, 2, 1)
        if dt.byteorder in ("<",) or (dt.byteorder == "=" and np.little_endian):
            b = b[..., ::-1]
        return np.ascontiguousarray(b).view(dt.newbyteorder(">")).reshape(h, w, spp).astype(dt)
    a = np.frombuffer(data, dt)[: h * w * spp].reshape(h, w, spp)
    if pred == 2:
        a = np.cumsum(a, axis=1, dtype=dt)
    return a


def read_odiac(path, year: int | None = None, month: int | None = None, species: str = "co2",
               bounds: tuple[float, float, float, float] | None = None) -> Inventory:
    """ODIAC 1 km monthly GeoTIFF (tonne C per cell per month; file name ``odiac<ver>_1km_excl_intl_YYMM.tif``
    gives the month when ``year``/``month`` are not given) as CO2 kg m-2 s-1, one sector ``total``.
    ``bounds = (lon_min, lon_max, lat_min, lat_max)``: only the pixels overlapping them (and one
    more on every side) are read (`read_tiff` window), not the whole global file."""
    if year is None or month is None:
        m = re.search(r"_(\d{2})(\d{2})\.tiff?$", Path(path).name)
        if m is None:
            raise InventoryError(f"ODIAC {path}: pass year and month (the name is not odiac..._YYMM.tif)")
        year, month = 2000 + int(m.group(1)), int(m.group(2))
    v, lon_e, lat_e = _geotiff_cells(path, bounds)  # rows north to south -> ascending latitudes
    v[~np.isfinite(v)] = 0.0
    units = FluxUnits(1e3, False, True, True, True, "c")  # tonne C per cell per month
    flux = _to_kg_m2_s(v, units, species, cell_area_m2(lat_e, lon_e), _period_seconds("month", year, month))
    return Inventory({"total": flux}, lon_e, lat_e, species, str(path), "odiac", period="month",
                     attrs={"year": year, "month": month,
                            "lacks": "international aviation and shipping (excl_intl), domestic shipping "
                                     "off land, sectors, biosphere; includes power plants"})


def remove_point_sources(flux_on_grid, point_t_per_h, plant_lon, plant_lat, grid: Grid,
                         hours_in_period: float) -> tuple[np.ndarray, np.ndarray]:
    """ODIAC on the state grid minus the metered plants (t CO2/h, mean over the period) in their
    cells, so the power stage's hourly point sources are not counted twice. Returns (flux without
    the plants, the mass (t CO2) that could not be removed because the cell held less)."""
    out = np.array(flux_on_grid, float, copy=True)
    area = grid.cell_area_m2()
    iy, ix, inside = grid.locate(plant_lon, plant_lat)
    short = np.zeros(len(np.atleast_1d(point_t_per_h)))
    for k, rate in enumerate(np.atleast_1d(point_t_per_h)):
        if not inside[k]:
            continue
        want = float(rate) * 1e3 / 3600.0 / area[iy[k], ix[k]]  # kg m-2 s-1
        take = min(want, max(out[iy[k], ix[k]], 0.0))
        out[iy[k], ix[k]] -= take
        short[k] = (want - take) * area[iy[k], ix[k]] * 3600.0 * hours_in_period / 1e3
    return out, short


# --------------------------------------------------------------------------------------------------
# temporal profiles
# --------------------------------------------------------------------------------------------------
def temporal_factors(times_utc, utc_offset_hours: int, monthly=None, weekday=None, hourly=None) -> np.ndarray:
    """Factor of each UTC hour for an annual-mean flux: monthly[m] × weekday[dow] × hourly[h], all in
    *local* time (UTC + offset). Each profile given is normalised to mean 1 (the monthly one weighted by
    the days of the month, the weekday one over the 7 days), so the annual mean is kept; an omitted
    profile is flat. EDGAR's temporal profiles (Crippa et al. 2020, Sci. Data 7, 121) are per
    country and sector in this form."""
    t = pd.DatetimeIndex(times_utc) + pd.Timedelta(hours=int(utc_offset_hours))
    f = np.ones(len(t))
    if monthly is not None:
        m = np.asarray(monthly, float)
        days = np.array([pd.Period(f"2001-{k:02d}", "M").days_in_month for k in range(1, 13)], float)
        f *= (m / (np.sum(m * days) / days.sum()))[t.month - 1]
    if weekday is not None:
        w = np.asarray(weekday, float)
        f *= (w / w.mean())[t.day_of_week]
    if hourly is not None:
        h = np.asarray(hourly, float)
        if h.ndim == 1:
            f *= (h / h.mean())[t.hour]
        else:  # (12 months, 7 weekdays Mon..Sun, 24 local hours), EDGAR's per month and day type
            f *= (h / h.mean(axis=-1, keepdims=True))[t.month - 1, t.day_of_week, t.hour]
    return f


#: the files of EDGAR's published temporal-profile tables (the "auxiliary tables" of
#: edgar.jrc.ec.europa.eu/dataset_temp_profile; Crippa et al. 2020, Sci. Data 7, 121)
EDGAR_PROFILE_TABLES = {"weekly": "weekly_profiles.csv", "hourly": "hourly_profiles.csv",
                        "weekend_of_country": "weekenddays.csv", "daytypes": "weekdays.csv"}


def _edgar_table(directory: Path, key: str, columns: tuple[str, ...]) -> pd.DataFrame:
    path = directory / EDGAR_PROFILE_TABLES[key]
    if not path.is_file():
        raise InventoryError(f"EDGAR temporal profiles {directory}: {path.name} not found; the directory "
                             f"needs {', '.join(EDGAR_PROFILE_TABLES.values())} as EDGAR publishes them")
    df = pd.read_csv(path, sep=None, engine="python")  # EDGAR writes some with ',' and some with ';'
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InventoryError(f"EDGAR temporal profiles {path}: column(s) {missing} missing; expected "
                             f"{', '.join(columns)}")
    return df


def read_edgar_profiles(directory, country: str) -> dict[str, dict[str, np.ndarray]]:
    """EDGAR's temporal profiles of one country (ISO 3166 alpha-3, e.g. ``CHN``) from its published
    tables (`EDGAR_PROFILE_TABLES` in ``directory``), per EDGAR activity code (``TRO``, ``ENE``,
    ``RCO``, ...): ``weekday`` (7 daily factors, Monday first: ``Weekday_id`` 1 = Monday .. 7 =
    Sunday) and ``hour`` (12 months x 7 weekdays x 24 local hours: ``h1`` is 00:00-01:00 local
    time; each weekday takes the hourly profile of its day type, ``Daytype_id`` of the country's
    weekend type). `temporal_factors` normalises each to mean 1. Monthly cycles come with EDGAR's
    monthly grids (files of 12 months), so no monthly table is read here."""
    directory = Path(directory)
    weekly = _edgar_table(directory, "weekly", ("Country_code_A3", "activity_code", "Weekday_id", "daily_factor"))
    hourly = _edgar_table(directory, "hourly", ("Country_code_A3", "activity_code", "month_id", "Daytype_id",
                                                *(f"h{i}" for i in range(1, 25))))
    wend = _edgar_table(directory, "weekend_of_country", ("Country_code_A3", "Weekend_type_id"))
    dtypes = _edgar_table(directory, "daytypes", ("Weekend_type_id", "Weekday_id", "Daytype_id"))
    own = wend[wend["Country_code_A3"].astype(str).str.strip() == country]
    if own.empty:
        raise InventoryError(f"EDGAR temporal profiles {directory / EDGAR_PROFILE_TABLES['weekend_of_country']}: "
                             f"no row for country {country!r}; give the ISO 3166 alpha-3 code (e.g. CHN)")
    kind = int(own["Weekend_type_id"].iloc[0])
    d = dtypes[dtypes["Weekend_type_id"].astype(int) == kind].set_index("Weekday_id")["Daytype_id"].astype(int)
    if sorted(d.index.astype(int)) != list(range(1, 8)):
        raise InventoryError(f"EDGAR temporal profiles {directory / EDGAR_PROFILE_TABLES['daytypes']}: weekend "
                             f"type {kind} needs a day type for each Weekday_id 1..7")
    out: dict[str, dict[str, np.ndarray]] = {}
    for code, rows in weekly[weekly["Country_code_A3"] == country].groupby("activity_code"):
        w = rows.set_index(rows["Weekday_id"].astype(int))["daily_factor"].astype(float)
        if sorted(w.index) != list(range(1, 8)):
            raise InventoryError(f"EDGAR temporal profiles {directory / EDGAR_PROFILE_TABLES['weekly']}: "
                                 f"{country} {code} needs Weekday_id 1..7 once each")
        out.setdefault(str(code), {})["weekday"] = w.loc[range(1, 8)].to_numpy()
    hcols = [f"h{i}" for i in range(1, 25)]
    for code, rows in hourly[hourly["Country_code_A3"] == country].groupby("activity_code"):
        table = rows.set_index([rows["month_id"].astype(int), rows["Daytype_id"].astype(int)])[hcols]
        prof = np.empty((12, 7, 24))
        for m in range(1, 13):
            for wd in range(1, 8):
                key = (m, int(d.loc[wd]))
                if key not in table.index:
                    raise InventoryError(f"EDGAR temporal profiles {directory / EDGAR_PROFILE_TABLES['hourly']}: "
                                         f"{country} {code} has no row for month_id {m}, Daytype_id {key[1]}")
                prof[m - 1, wd - 1] = table.loc[[key]].to_numpy(float)[0]
        out.setdefault(str(code), {})["hour"] = prof
    if not out:
        raise InventoryError(f"EDGAR temporal profiles {directory}: no profile for country {country!r}")
    return out


# --------------------------------------------------------------------------------------------------
# what the prior rule needs from a real inventory: format, proxy, profiles, plants on native cells
# --------------------------------------------------------------------------------------------------
#: config ``inputs.inventory_format`` values (``auto``: recognised from the content)
INVENTORY_FORMATS = ("auto", "edgar", "odiac", "cf", "gzcarbon")
#: sector variables that hold power generation (dropped: the power stage supplies metered plants)
POWER_SECTOR_NAMES = ("ene", "power", "energy", "power_industry", "powerindustry", "a_publicpower",
                      "public_power", "electricity")
#: a real inventory is downscaled when its cells are this many times coarser than the state grid's
COARSE_FACTOR = 1.5


def inventory_format(path) -> str:
    """The format of an inventory file from its content: ``odiac`` (a TIFF), ``gzcarbon`` (the
    pipeline's own inventory.nc: an ``hour`` axis and ``profile_*`` variables), ``edgar``
    (``emi_*``/``fluxes``/``emissions`` variables or a JRC institution) or ``cf`` (any other NetCDF)."""
    path = Path(path)
    if not path.is_file():
        raise InventoryError(f"inventory {path}: not found. Set config `inputs.inventory` (docs/inventory.md).")
    with path.open("rb") as fh:
        head = fh.read(4)
    if head in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "odiac"
    try:
        with xr.open_dataset(path) as ds:
            if "hour" in ds.dims and any(v.startswith("profile_") for v in ds.data_vars):
                return "gzcarbon"
            names = list(ds.data_vars)
            jrc = "jrc" in str(ds.attrs.get("institution", "")).lower()
    except Exception as exc:  # noqa: BLE001  (netCDF4/h5netcdf raise OSError, ValueError, ...)
        raise InventoryError(f"inventory {path}: neither a GeoTIFF (ODIAC) nor a NetCDF file ({exc}); "
                             "give an EDGAR/CF NetCDF, an ODIAC GeoTIFF or the pipeline's inventory.nc") from exc
    if jrc or any(v.startswith("emi_") or v in ("fluxes", "emissions") for v in names):
        return "edgar"
    return "cf"


def check_inventory_format(path, expected: str = "auto") -> str:
    """The detected format of ``path``; an ``InventoryError`` naming the file, the config key and
    the fix when config ``inputs.inventory_format`` says otherwise."""
    if expected not in INVENTORY_FORMATS:
        raise InventoryError(f"config `inputs.inventory_format` = {expected!r}: allowed {list(INVENTORY_FORMATS)}")
    found = inventory_format(path)
    if expected != "auto" and found != expected:
        raise InventoryError(f"inventory {path}: config `inputs.inventory_format` says {expected!r} but the "
                             f"file is {found!r} by its content; set `inputs.inventory_format: {found}` "
                             "(or `auto`) or give the intended file")
    return found


def cell_size(inv: Inventory) -> float:
    """The inventory's largest cell side in degrees (the resolution it resolves)."""
    return float(max(np.max(np.diff(inv.lon_edges)), np.max(np.diff(inv.lat_edges))))


def is_coarse(inv: Inventory, grid: Grid) -> bool:
    """True when the inventory's cells are more than `COARSE_FACTOR` times the state grid's."""
    return cell_size(inv) > COARSE_FACTOR * grid.res


def _area_in_units(units: str) -> bool:
    u = str(units).lower().replace("**", "").replace("^", "")
    return bool(re.search(r"(m|km)-2|/(k?m)2|per (square )?k?m", u))


def read_proxy(path, variable: str | None = None, bounds: tuple[float, float, float, float] | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A downscaling proxy as (density per m², lon edges, lat edges ascending); a GeoTIFF is read
    only over ``bounds`` (lon_min, lon_max, lat_min, lat_max) when given.

    A GeoTIFF (ODIAC 1 km, GHS-POP or WorldPop population counts, VIIRS night lights: geographic
    pixels, values per pixel) or a NetCDF with one 2-D variable on (lat, lon) (``variable`` picks one
    of several); a NetCDF value whose ``units`` carry an area (``km-2``, ``m-2``) is already a
    density, any other is per cell. Negative or non-finite values (fill) count as 0."""
    path = Path(path)
    if not path.is_file():
        raise InventoryError(f"downscaling proxy {path}: not found; set config `inputs.downscale_proxy` to a "
                             "GeoTIFF or NetCDF proxy (docs/inventory.md) or leave it empty")
    with path.open("rb") as fh:
        tiff = fh.read(4) in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
    if tiff:
        vals, lon_e, lat_e = _geotiff_cells(path, bounds)
        per_area = False
    else:
        vals, lon_e, lat_e, per_area = _netcdf_proxy(path, variable)
    vals = np.where(np.isfinite(vals) & (vals > 0), vals, 0.0)
    if not per_area:
        vals = vals / cell_area_m2(lat_e, lon_e)
    return vals, lon_e, lat_e


def _geotiff_cells(path, bounds: tuple[float, float, float, float] | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(values with ascending latitudes, lon edges, lat edges) of a geographic GeoTIFF; with
    ``bounds = (lon_min, lon_max, lat_min, lat_max)`` only the pixels overlapping them (plus one
    pixel on every side), read through `read_tiff`'s window."""
    tags = tiff_tags(path)
    scale, tie = tags["pixel_scale"], tags["tiepoint"]
    if not scale or not tie:
        raise InventoryError(f"{path}: GeoTIFF ModelPixelScale/ModelTiepoint tags missing; the file is not a "
                             "geographic GeoTIFF (reproject it to WGS84 lon-lat, e.g. `gdalwarp -t_srs EPSG:4326`)")
    dx, dy = scale[0], scale[1]
    i0, j0, lon0, lat0 = tie[0], tie[1], tie[3], tie[4]
    lon_e = np.round(lon0 + dx * (np.arange(tags["width"] + 1) - i0), 10)
    lat_top = np.round(lat0 - dy * (np.arange(tags["height"] + 1) - j0), 10)  # descending
    window = None
    if bounds is not None:
        lo0, lo1, la0, la1 = bounds
        c0 = max(int(np.searchsorted(lon_e, lo0, side="right")) - 2, 0)
        c1 = min(int(np.searchsorted(lon_e, lo1, side="left")) + 1, tags["width"])
        r0 = max(int(np.searchsorted(-lat_top, -la1, side="right")) - 2, 0)
        r1 = min(int(np.searchsorted(-lat_top, -la0, side="left")) + 1, tags["height"])
        if lo1 <= lon_e[0] or lo0 >= lon_e[-1] or la1 <= lat_top[-1] or la0 >= lat_top[0]:
            raise InventoryError(f"{path}: the GeoTIFF ({lon_e[0]:.3f}..{lon_e[-1]:.3f} E, "
                                 f"{lat_top[-1]:.3f}..{lat_top[0]:.3f} N) does not overlap the domain "
                                 f"{lo0}..{lo1} E, {la0}..{la1} N")
        window = (r0, r1, c0, c1)
        lon_e, lat_top = lon_e[c0:c1 + 1], lat_top[r0:r1 + 1]
    vals, tags = read_tiff(path, window)
    v = vals.astype(float)[::-1]
    if tags["nodata"]:
        v[v == float(tags["nodata"])] = 0.0
    return v, lon_e, lat_top[::-1]


def _netcdf_proxy(path, variable):
    try:
        ds = xr.open_dataset(path)
    except Exception as exc:  # noqa: BLE001
        raise InventoryError(f"downscaling proxy {path}: cannot be opened as NetCDF or GeoTIFF ({exc})") from exc
    with ds:
        lo, la = _lonlat(ds, path)
        cand = [v for v in ds.data_vars if {lo, la} == set(ds[v].squeeze().dims)]
        if variable:
            cand = [v for v in cand if v == variable]
        if len(cand) != 1:
            raise InventoryError(f"downscaling proxy {path}: expected one 2-D variable on ({la}, {lo}), found "
                                 f"{cand or 'none'}; keep one (e.g. population) in the file")
        da = ds[cand[0]].squeeze().transpose(la, lo)
        lon, lat = ds[lo].values.astype(float), ds[la].values.astype(float)
        vals = da.values.astype(float)
        per_area = _area_in_units(da.attrs.get("units", ""))
    lon_e = edges_from_centres(lon, f"proxy {path} {lo}", rtol=1e-4)
    lat_e = edges_from_centres(lat, f"proxy {path} {la}", rtol=1e-4)
    if lat.size > 1 and lat[1] < lat[0]:
        lat_e, vals = lat_e[::-1], vals[::-1]
    return vals, lon_e, np.clip(lat_e, -90.0, 90.0), per_area


def proxy_on_grid(path, grid: Grid, variable: str | None = None) -> np.ndarray:
    """The proxy of ``path`` on ``grid`` (density per m², conservative regridding); an error naming the
    file when it does not cover the grid (a downscaling without proxy data in part of the domain)."""
    dens, lon_e, lat_e = read_proxy(path, variable, (grid.lon_min, grid.lon_max, grid.lat_min, grid.lat_max))
    if lon_e[0] > grid.lon_min + 1e-9 or lon_e[-1] < grid.lon_max - 1e-9 or \
            lat_e[0] > grid.lat_min + 1e-9 or lat_e[-1] < grid.lat_max - 1e-9:
        raise InventoryError(f"downscaling proxy {path}: covers {lon_e[0]:.4f}..{lon_e[-1]:.4f} E x "
                             f"{lat_e[0]:.4f}..{lat_e[-1]:.4f} N, not the state grid ({grid.describe()}); "
                             "give a proxy covering the grid")
    return regrid_conservative(dens, lon_e, lat_e, grid)


#: temporal-profile CSV: the allowed `profile` values and their index ranges (local time)
PROFILE_KINDS = {"month": (1, 12), "weekday": (0, 6), "hour": (0, 23)}


def read_temporal_profiles(path) -> dict[str, dict[str, np.ndarray]]:
    """Temporal profiles from a CSV with columns ``sector, profile, index, factor``.

    ``profile`` is ``month`` (index 1..12), ``weekday`` (0 = Monday .. 6 = Sunday) or ``hour``
    (0..23, *local* time); ``sector`` is a sector of the inventory or ``*`` (every sector without
    its own rows). A profile given must have every index once; it is normalised to mean 1 by
    `temporal_factors`. Returns {sector: {profile: factors}}."""
    path = Path(path)
    if not path.is_file():
        raise InventoryError(f"temporal profiles {path}: not found; set config `inputs.temporal_profiles` to a "
                             "CSV (docs/inventory.md) or leave it empty for flat profiles")
    df = pd.read_csv(path, comment="#", skipinitialspace=True)
    missing = [c for c in ("sector", "profile", "index", "factor") if c not in df.columns]
    if missing:
        raise InventoryError(f"temporal profiles {path}: column(s) {missing} missing; expected "
                             "sector, profile, index, factor (docs/inventory.md)")
    df["factor"] = pd.to_numeric(df["factor"], errors="coerce")
    df["index"] = pd.to_numeric(df["index"], errors="coerce")
    bad = df[df["factor"].isna() | df["index"].isna() | (df["factor"] < 0)]
    if len(bad):
        raise InventoryError(f"temporal profiles {path}, line {int(bad.index[0]) + 2}: `index` and `factor` must "
                             "be numbers, factor >= 0")
    out: dict[str, dict[str, np.ndarray]] = {}
    for (sector, kind), rows in df.groupby(["sector", "profile"], sort=False):
        if kind not in PROFILE_KINDS:
            raise InventoryError(f"temporal profiles {path}: profile {kind!r} (sector {sector}) is not one of "
                                 f"{list(PROFILE_KINDS)}")
        lo, hi = PROFILE_KINDS[kind]
        idx = rows["index"].astype(int).to_numpy()
        if sorted(idx.tolist()) != list(range(lo, hi + 1)):
            raise InventoryError(f"temporal profiles {path}: sector {sector} profile {kind} needs each index "
                                 f"{lo}..{hi} once, found {sorted(idx.tolist())}")
        vals = np.empty(hi - lo + 1)
        vals[idx - lo] = rows["factor"].to_numpy(float)
        if vals.sum() <= 0:
            raise InventoryError(f"temporal profiles {path}: sector {sector} profile {kind} is all 0")
        out.setdefault(str(sector), {})[str(kind)] = vals
    return out


def profiles_for(profiles: dict, sector: str) -> dict[str, np.ndarray]:
    """The profiles of ``sector`` (its own, else those of ``*``, else none = flat)."""
    return profiles.get(sector) or profiles.get("*") or {}


def plant_mass_rates(field, lon_edges, lat_edges, point_t_per_h, plant_lon, plant_lat) -> tuple[np.ndarray, np.ndarray]:
    """Remove metered plants from an inventory field on its *own* cells.

    ``field`` kg m-2 s-1 on (lat_edges, lon_edges); ``point_t_per_h`` each plant's mean t CO2/h over
    the period. The plant's mass rate is taken from the native cell holding it; when that cell holds
    less (the inventory places the plant a cell away), the rest is taken from its 8 neighbours in
    proportion to what they hold. Returns (field without the plants, t/h that could not be removed
    per plant; plants outside the field's cells give their whole rate)."""
    out = np.array(field, float, copy=True)
    area = cell_area_m2(lat_edges, lon_edges)
    mass = out * area  # kg s-1 per cell
    rates = np.atleast_1d(np.asarray(point_t_per_h, float)) * 1e3 / 3600.0  # kg s-1
    ix = np.searchsorted(lon_edges, np.atleast_1d(plant_lon), side="right") - 1
    iy = np.searchsorted(lat_edges, np.atleast_1d(plant_lat), side="right") - 1
    ny, nx = mass.shape
    short = np.zeros(rates.size)
    for k, want in enumerate(rates):
        if not (0 <= ix[k] < nx and 0 <= iy[k] < ny):
            short[k] = want * 3600.0 / 1e3
            continue
        take = min(want, max(mass[iy[k], ix[k]], 0.0))
        mass[iy[k], ix[k]] -= take
        rest = want - take
        if rest > 0:
            win = np.s_[max(iy[k] - 1, 0):iy[k] + 2, max(ix[k] - 1, 0):ix[k] + 2]
            avail = np.clip(mass[win], 0.0, None)
            got = min(rest, float(avail.sum()))
            if got > 0:
                mass[win] -= avail * (got / avail.sum())
            rest -= got
        short[k] = rest * 3600.0 / 1e3
    return mass / area, short


# --------------------------------------------------------------------------------------------------
# a real inventory as hourly prior sectors on the state grid (rule `prior`)
# --------------------------------------------------------------------------------------------------
def odiac_month(path) -> tuple[int, int] | None:
    """(year, month) from an ODIAC file name ``..._YYMM.tif``, else None."""
    m = re.search(r"_(\d{2})(\d{2})\.tiff?$", Path(path).name)
    return (2000 + int(m.group(1)), int(m.group(2))) if m and 1 <= int(m.group(2)) <= 12 else None


def kg_to_umol(species: str) -> float:
    """kg (species) -> µmol; CO2 uses the pipeline's 44.01 g/mol (`inversion.inventory.KG_TO_UMOL`)."""
    return KG_TO_UMOL if species == "co2" else 1e9 / MOLAR_MASS[species]


def _read_real(path, fmt: str, species: str, year: int, month: int, grid: Grid | None = None) -> Inventory:
    if fmt == "odiac":  # one month per file: used for every hour of the run (spin-up days included)
        ym = odiac_month(path) or (year, month)
        if ym != (year, month):
            log.warning("ODIAC %s holds %04d-%02d; used for the run's month %04d-%02d", path, *ym, year, month)
        bounds = None if grid is None else (grid.lon_min, grid.lon_max, grid.lat_min, grid.lat_max)
        return read_odiac(path, *ym, species=species, bounds=bounds)  # the domain's pixels only
    return read_netcdf_inventory(path, species, year, month)


def _without_power(inv: Inventory, plants: pd.DataFrame | None) -> tuple[dict, dict]:
    """The inventory's sectors without power generation: a power sector is dropped (the power
    stage supplies the metered plants); else the plants are taken out of a ``total`` sector
    (EDGAR TOTALS and ODIAC include power plants) on the inventory's own cells. Returns (sectors,
    attrs: t/h removed and not removed)."""
    sectors = dict(inv.sectors)
    dropped = [k for k in sectors if k.lower() in POWER_SECTOR_NAMES]
    for k in dropped:
        del sectors[k]
        log.info("inventory %s: sector %s dropped: the power stage supplies the metered plants", inv.source, k)
    if dropped:
        return sectors, {"power_sector_dropped": ",".join(dropped)}
    if plants is None or plants.empty or "total" not in sectors:
        return sectors, {}
    field, short = plant_mass_rates(sectors["total"], inv.lon_edges, inv.lat_edges,
                                    plants["t_per_h"].to_numpy(float), plants["lon"].to_numpy(float),
                                    plants["lat"].to_numpy(float))
    sectors["total"] = field
    want = float(plants["t_per_h"].sum())
    if short.sum() > 1e-9 * max(want, 1.0):
        worst = plants.index[int(np.argmax(short))]
        log.warning("inventory %s: %.3f of %.3f t CO2/h of metered plants could not be removed (their cells "
                    "and neighbours hold less; e.g. plant %s short by %.3f t/h): that much power is counted "
                    "twice", inv.source, short.sum(), want, worst, short.max())
    log.info("inventory %s: %.3f t CO2/h of %d metered plants removed from `total`", inv.source,
             want - short.sum(), len(plants))
    return sectors, {"point_sources_removed_t_per_h": want - float(short.sum()),
                     "point_sources_not_removed_t_per_h": float(short.sum())}


def _spatial(inv: Inventory, sectors: dict, grid: Grid, proxy) -> tuple[dict, str]:
    """Sectors regridded conservatively to ``grid`` and, when coarse, downscaled with ``proxy``."""
    fields = {k: regrid_conservative(v, inv.lon_edges, inv.lat_edges, grid) for k, v in sectors.items()}
    if not is_coarse(inv, grid):
        return fields, f"none needed (inventory cells {cell_size(inv):.4g} deg)"
    if proxy is None:
        log.warning("inventory %s: cells of %.4g deg are coarser than the state grid (%.4g deg) and no "
                    "inputs.downscale_proxy is given: each coarse cell stays a FLAT block (docs/inventory.md, "
                    "Downscaling)", inv.source, cell_size(inv), grid.res)
        return fields, f"none: {cell_size(inv):.4g} deg cells kept flat (no inputs.downscale_proxy)"
    path, p = proxy
    return ({k: downscale(v, p, inv.lon_edges, inv.lat_edges, grid) for k, v in fields.items()},
            f"proxy {path} within each {cell_size(inv):.4g} deg cell")


def _sector_factors(sector: str, profiles: dict, times, utc_offset: int, period: str) -> np.ndarray:
    pr = profiles_for(profiles, sector)
    monthly = pr.get("month") if period == "year" else None  # a monthly inventory has its own month
    return temporal_factors(times, utc_offset, monthly, pr.get("weekday"), pr.get("hour"))


def real_inventory_sectors(path, fmt: str, grid: Grid, times: pd.DatetimeIndex, utc_offset: int, options,
                           plants: pd.DataFrame | None = None) -> tuple[dict, dict]:
    """Hourly sectors (µmol m-2 s-1, (nt, ny, nx)) of a real inventory (EDGAR, ODIAC, CF) on ``grid``.

    Per month of ``times`` (monthly files: that month's field; annual: one field): power sectors
    dropped or the metered ``plants`` (index plant_id; lon, lat, t_per_h) removed on the inventory's
    own cells (`_without_power`), conservative regridding, downscaling of coarse inventories with
    ``options.downscale_proxy`` (`downscale`), then the temporal profiles of
    ``options.temporal_profiles`` at local time (UTC + ``utc_offset``). ``bio`` from
    ``options.bio_prior`` (`nee_hourly`) or zeros. Returns (sectors, attrs for prior.nc)."""
    species = options.inventory_species
    proxy = (options.downscale_proxy, proxy_on_grid(options.downscale_proxy, grid)) if options.downscale_proxy \
        else None
    profiles = read_temporal_profiles(options.temporal_profiles) if options.temporal_profiles else {}
    if not profiles:
        log.warning("inventory %s: no inputs.temporal_profiles: every sector is FLAT in time (no monthly, "
                    "weekday or diurnal cycle); give EDGAR's profiles as a CSV (docs/inventory.md)", path)
    keys = pd.PeriodIndex(times, freq="M")
    fields, attrs, first = {}, {}, None
    order = [keys[-1]] + [p for p in keys.unique() if p != keys[-1]]  # the run's month first
    for per in order:
        if first is not None and (first.period == "year" or fmt == "odiac"):
            fields[per] = fields[order[0]]
            continue
        inv = _read_real(path, fmt, species, per.year, per.month, grid)
        first = first or inv
        sectors, attrs = _without_power(inv, plants)
        fields[per], attrs["downscaling"] = _spatial(inv, sectors, grid, proxy)
    conv = kg_to_umol(species)
    out = {}
    for name in fields[keys[0]]:
        fac = _sector_factors(name, profiles, times, utc_offset, first.period) * conv
        arr = np.empty((len(times), grid.ny, grid.nx))
        for per in keys.unique():
            sel = np.flatnonzero(keys == per)
            arr[sel] = fac[sel, None, None] * fields[per][name][None]
        out[_safe_name(name)] = arr
    out["bio"] = nee_hourly(options.bio_prior, grid, times) if options.bio_prior else _no_bio(grid, times)
    attrs.update({"inventory_title": first.attrs.get("title", first.kind), "inventory_format": fmt,
                  "inventory_period": first.period, "utc_offset_hours": int(utc_offset),
                  "temporal_profiles": options.temporal_profiles or "flat (none given)",
                  "bio_prior": options.bio_prior or "none (zeros)"})
    if "lacks" in first.attrs:
        attrs["inventory_lacks"] = first.attrs["lacks"]
        log.warning("inventory %s lacks %s", path, first.attrs["lacks"])
    return out, attrs


def _safe_name(name: str) -> str:
    s = re.sub(r"[^0-9a-zA-Z_]+", "_", str(name)).strip("_").lower()
    return s or "total"


def _no_bio(grid: Grid, times) -> np.ndarray:
    log.warning("no inputs.bio_prior: the prior has no biosphere flux (flux_bio = 0); give a CF NetCDF NEE "
                "field, e.g. CarbonTracker's bio_flux_opt (docs/inventory.md)")
    return np.zeros((len(times), grid.ny, grid.nx))


# --------------------------------------------------------------------------------------------------
# biogenic prior: a CF NetCDF NEE field with a time axis (CarbonTracker flux1x1, any CF flux)
# --------------------------------------------------------------------------------------------------
NEE_NAMES = ("nee", "bio_flux_opt", "bio_flux_prior", "bio_flux", "fco2_nee", "nep")


def _nee_variable(ds: xr.Dataset, lo: str, la: str, path, variable: str | None) -> str:
    cand = [v for v in ds.data_vars if {lo, la, "time"} <= set(ds[v].dims) and "units" in ds[v].attrs]
    if variable:
        cand = [v for v in cand if v == variable]
    named = [v for v in cand if v.lower() in NEE_NAMES]
    if len(named) == 1 or len(cand) == 1:
        return (named or cand)[0]
    raise InventoryError(f"biogenic prior {path}: expected one NEE variable on (time, {la}, {lo}) with units "
                         f"(e.g. {', '.join(NEE_NAMES[:3])}), found {cand or 'none'}")


def _interval_starts(ds: xr.Dataset, path) -> tuple[pd.DatetimeIndex, pd.Timedelta]:
    """Start of each time step and the step: from ``time`` bounds when given, else stamps on whole
    steps are starts and stamps half a step off (CarbonTracker's 01:30, 04:30 ...) are centres."""
    t = pd.DatetimeIndex(ds["time"].values)
    if t.size < 2 and not ds["time"].attrs.get("bounds"):
        raise InventoryError(f"biogenic prior {path}: one time step only; give a time series covering the run")
    bname = ds["time"].attrs.get("bounds")
    if bname and bname in ds:
        b = pd.DatetimeIndex(ds[bname].values[:, 0])
        return b, pd.Timedelta(ds[bname].values[0, 1] - ds[bname].values[0, 0])
    step = pd.Timedelta(np.median(np.diff(t.values)))
    off = (t - t.floor(step)) if step <= pd.Timedelta(days=1) else pd.TimedeltaIndex([pd.Timedelta(0)] * t.size)
    centred = bool(np.all(off == step / 2))
    return (t - step / 2 if centred else t), step


def nee_hourly(path, grid: Grid, times: pd.DatetimeIndex, variable: str | None = None) -> np.ndarray:
    """(nt, ny, nx) µmol CO2 m-2 s-1 of a CF NEE field (positive = to the atmosphere) on the UTC
    hours ``times``: each hour takes the time step holding it, regridded conservatively. Units by
    meaning (``mol m-2 s-1``, ``umol m-2 s-1``, ``kg m-2 s-1``, ``g C m-2 d-1`` ...). An hour outside
    the file's steps is an error naming the file and the hours."""
    try:
        ds = xr.open_dataset(path)
    except Exception as exc:  # noqa: BLE001
        raise InventoryError(f"biogenic prior {path}: cannot be opened as NetCDF ({exc})") from exc
    with ds:
        lo, la = _lonlat(ds, path)
        var = _nee_variable(ds, lo, la, path, variable)
        starts, step = _interval_starts(ds, path)
        k = np.searchsorted(starts.values, times.values, side="right") - 1
        bad = (k < 0) | (times.values >= (starts[np.clip(k, 0, None)] + step).values)
        if bad.any():
            raise InventoryError(f"biogenic prior {path}: no time step holds {int(bad.sum())} of the run's hours "
                                 f"(first {times[bad][0]}); the file covers {starts[0]} .. {starts[-1] + step}; "
                                 "give a file covering the run (with the spin-up days)")
        units = parse_flux_units(ds[var].attrs["units"], f"biogenic prior {path}: `{var}` units")
        lon_e = edges_from_centres(ds[lo].values.astype(float), f"biogenic prior {path} {lo}", rtol=1e-4)
        lat = ds[la].values.astype(float)
        lat_e = np.clip(edges_from_centres(lat, f"biogenic prior {path} {la}", rtol=1e-4), -90.0, 90.0)
        flip = lat.size > 1 and lat[1] < lat[0]
        area = cell_area_m2(lat_e[::-1] if flip else lat_e, lon_e)
        used = np.unique(k)
        steps = {}
        for j in used:
            v = ds[var].isel(time=int(j)).transpose(la, lo).values.astype(float)
            v = np.where(np.isfinite(v), v, 0.0)[::-1] if flip else np.where(np.isfinite(v), v, 0.0)
            steps[j] = regrid_conservative(_nee_umol(v, units, area, step), lon_e[:], lat_e[::-1] if flip else lat_e,
                                           grid)
    return np.stack([steps[j] for j in k])


def _nee_umol(v, units: FluxUnits, area, step: pd.Timedelta) -> np.ndarray:
    if units.moles:  # molar: straight to µmol (no molar-mass round trip)
        out = v * units.factor * 1e6
        if units.per_cell:
            out = out / area
        if units.per_period:
            out = out / step.total_seconds()
        return out
    return _to_kg_m2_s(v, units, "co2", area, step.total_seconds()) * KG_TO_UMOL
