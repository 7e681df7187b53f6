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

import re
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from gzcarbon.grid import Grid, cell_area_m2, edges_from_centres

from .inventory import InventoryError

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


def read_inventory(path, grid: Grid | None = None, *, species: str = "co2", year: int | None = None,
                   month: int | None = None):
    """Read any supported inventory (see module docstring), recognised by content.

    The pipeline's own ``inventory.nc`` (sectors + local-hour profiles + biosphere, docs/formats.md)
    is returned as the validated `xarray.Dataset` of `inversion.inventory.read_inventory`; every other
    file as an `Inventory` (sector mass fluxes kg m-2 s-1 on the file's cells). With ``grid`` an
    `Inventory` is returned regridded ({sector: (ny, nx) kg m-2 s-1} via `Inventory.on_grid`).
    """
    from .inventory import read_inventory as read_pipeline_inventory

    path = Path(path)
    if not path.is_file():
        raise InventoryError(f"inventory {path}: not found. Set config `inputs.inventory` (docs/inventory.md).")
    head = path.read_bytes()[:4]
    if head in (b"II*\x00", b"MM\x00*"):
        inv = read_odiac(path, year=year, month=month, species=species)
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


def read_tiff(path) -> tuple[np.ndarray, dict]:
    """(band 1 as a 2-D array, tags) of a TIFF with strips or tiles, uncompressed (1) or deflate
    (8/32946), predictor 1 (none) or 2 (horizontal differencing of integers) or 3 (floating point).

    GeoTIFF tags kept: ``pixel_scale`` (33550), ``tiepoint`` (33922), ``nodata`` (42113)."""
    buf = Path(path).read_bytes()
    bo, t = _tiff_tags(buf)
    width, height = t[256][0], t[257][0]
    bits = t.get(258, (1,))[0]
    fmt = t.get(339, (1,))[0]
    comp = t.get(259, (1,))[0]
    pred = t.get(317, (1,))[0]
    spp = t.get(277, (1,))[0]
    if t.get(284, (1,))[0] != 1 and spp > 1:
        raise InventoryError(f"{path}: planar configuration 2 with {spp} samples is not supported")
    if comp not in (1, 8, 32946):
        raise InventoryError(f"{path}: TIFF compression {comp} is not supported (uncompressed or deflate); "
                             "convert with `gdal_translate -co COMPRESS=DEFLATE`")
    dt = np.dtype(bo + _SAMPLE_DTYPES[(fmt, bits)])
    out = np.zeros((height, width, spp), dt)
    if 322 in t:  # tiles
        tw, th = t[322][0], t[323][0]
        offs, counts = t[324], t[325]
        per_row = -(-width // tw)
        for k, (o, c) in enumerate(zip(offs, counts)):
            block = _decode(buf[o:o + c], comp, pred, dt, (th, tw, spp))
            r0, c0 = (k // per_row) * th, (k % per_row) * tw
            h, w = min(th, height - r0), min(tw, width - c0)
            out[r0:r0 + h, c0:c0 + w] = block[:h, :w]
    else:
        rps = t.get(278, (height,))[0]
        for k, (o, c) in enumerate(zip(t[273], t[279])):
            r0 = k * rps
            h = min(rps, height - r0)
            out[r0:r0 + h] = _decode(buf[o:o + c], comp, pred, dt, (h, width, spp))
    tags = {"pixel_scale": t.get(33550), "tiepoint": t.get(33922), "nodata": t.get(42113),
            "width": width, "height": height}
    return out[..., 0], tags


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


def read_odiac(path, year: int | None = None, month: int | None = None, species: str = "co2") -> Inventory:
    """ODIAC 1 km monthly GeoTIFF (tonne C per cell per month; file name ``odiac<ver>_1km_excl_intl_YYMM.tif``
    gives the month when ``year``/``month`` are not given) as CO2 kg m-2 s-1, one sector ``total``."""
    if year is None or month is None:
        m = re.search(r"_(\d{2})(\d{2})\.tiff?$", Path(path).name)
        if m is None:
            raise InventoryError(f"ODIAC {path}: pass year and month (the name is not odiac..._YYMM.tif)")
        year, month = 2000 + int(m.group(1)), int(m.group(2))
    vals, tags = read_tiff(path)
    scale, tie = tags["pixel_scale"], tags["tiepoint"]
    if not scale or not tie:
        raise InventoryError(f"ODIAC {path}: GeoTIFF ModelPixelScale/ModelTiepoint tags missing; "
                             "the file is not a geographic GeoTIFF")
    dx, dy = scale[0], scale[1]
    i0, j0, lon0, lat0 = tie[0], tie[1], tie[3], tie[4]
    lon_e = np.round(lon0 + dx * (np.arange(tags["width"] + 1) - i0), 10)
    lat_top = np.round(lat0 - dy * (np.arange(tags["height"] + 1) - j0), 10)
    v = vals.astype(float)[::-1]  # rows north to south -> ascending latitudes
    if tags["nodata"]:
        v[v == float(tags["nodata"])] = 0.0
    v[~np.isfinite(v)] = 0.0
    lat_e = lat_top[::-1]
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
        f *= (w / w.mean())[t.dayofweek]
    if hourly is not None:
        h = np.asarray(hourly, float)
        f *= (h / h.mean())[t.hour]
    return f
