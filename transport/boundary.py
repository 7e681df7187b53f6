"""Boundary condition from a global or regional model: 3-D mole-fraction fields sampled where and
when each particle leaves the outer domain (docs/boundary.md).

Why in ``transport``: a boundary field is read like the meteorology (a gridded 3-D model field on
levels) and sampled along HYSPLIT's particles, which only this stage has; the result, one
background per receptor (``{R}/boundary/background.csv``), is written and read here
(:func:`write_receptor_backgrounds`, :func:`read_receptor_backgrounds`) and handed to the
observation selection by the rule script, so no stage imports another for it.

Readers (``format``):

``carbontracker``
    CarbonTracker CT2022 / CT-NRT ``molefrac_glb3x2`` files: ``co2(time, level, latitude,
    longitude)`` in ``micromol mol-1`` on 25 levels, ``gph`` (geopotential height, m above sea
    level) and ``pressure`` (Pa) on the 26 level ``boundary`` edges (the lowest edge is the
    ground), ``time`` the centres of 3-hour means (01:30, 04:30, ... UTC). ``gph`` on the level
    centres (dim ``level``) is read too, with the ground from ``orography`` (m) then.
``cams``
    CAMS global greenhouse-gas reanalysis / forecasts (EGG4, CAMS GHG) as the ADS writes them:
    ``co2`` mass mixing ratio ``kg kg**-1`` on ``level``/``levelist``/``model_level``/
    ``pressure_level`` (old and new netCDF layout, ``time`` or ``valid_time``), heights from the
    geopotential ``z`` (m² s⁻²) on the same levels; the ground from ``orography``/``zs`` (m) or a
    surface geopotential ``z_sfc``/``sfc_z`` when present, else 0 m (logged and recorded in the
    field's attrs). Mass to mole fraction: x = w · M_air / M_gas (28.9647, 44.0095, 16.0425 and
    28.0101 g/mol for dry air, CO2, CH4, CO).
``cf``
    A generic CF field: the data variable by ``standard_name``
    (``mole_fraction_of_carbon_dioxide_in_air`` or ``mass_fraction_of_carbon_dioxide_in_air``;
    methane and carbon monoxide alike), units by meaning (any mole fraction: ``mol mol-1``,
    ``ppm``, ``umol/mol``, ``1e-6``...; any mass fraction: ``kg kg-1``, ``g/kg``...); axes by
    ``standard_name``/``axis``/units; heights from a variable with ``standard_name`` ``height``
    (above ground) or ``altitude``/``geopotential_height`` (above sea level, with
    ``surface_altitude``), in m or km.

Internal form (every reader returns it): ``value(time, level, lat, lon)`` mole fraction (ppm for
CO2, ppb for CH4/CO) and ``height(time, level, lat, lon)`` m above ground at the level centres,
lat and lon ascending, levels from the ground up.

Sampling (:func:`sample_field`): for every point (time, lon, lat, height above ground) the field
is interpolated linearly in height within each of the 8 surrounding columns (2 times × 2 lat × 2
lon), then bilinearly in lon/lat and linearly in time, so a field linear in lon, lat, height and
time is reproduced exactly, whatever the columns' heights. Below the lowest or above the highest
level centre the nearest level's value is used. A point outside the field's cell centres or time
span stops with :class:`BoundaryFieldError` naming the file and the field.
"""
from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from gzcarbon.atomic import write_csv

from .units import UnitError, parse_unit

log = logging.getLogger(__name__)

FORMATS = ("carbontracker", "cams", "cf")
#: molar masses (g/mol) for mass → mole fraction
MOLAR_MASS = {"air": 28.9647, "co2": 44.0095, "ch4": 16.0425, "co": 28.0101}
#: mole fraction units of the internal form per gas (factor from mol/mol)
OUT_UNITS = {"co2": ("ppm", 1e6), "ch4": ("ppb", 1e9), "co": ("ppb", 1e9)}
CF_NAMES = {"co2": "carbon_dioxide", "ch4": "methane", "co": "carbon_monoxide"}
G0 = 9.80665
SIDES = ("N", "E", "S", "W")
#: columns of ``{R}/boundary/background.csv``
RECEPTOR_COLUMNS = ("receptor_id", "site", "time", "background", "background_spread", "n_particles",
                    "share_left", *(f"share_{s}" for s in SIDES))


class BoundaryFieldError(ValueError):
    """A boundary field that cannot be read or used: the message names the file, the field and the fix."""


# ------------------------------------------------------------------------------------- units
def fraction_kind(units: str, standard_name: str = "") -> tuple[str, float]:
    """``("mole" | "mass", factor to mol/mol or kg/kg)`` of a units string, by meaning.

    Mole: ``mol mol-1``, ``ppm``, ``umol/mol``, ``micromol mol-1``, ``1E-6 mol mol(semidry_air)-1``,
    ``1e-6`` (with a mole-fraction standard_name)...; mass: ``kg kg**-1``, ``g/kg``, ``1`` (with a
    mass-fraction standard_name). Anything else raises :class:`UnitError`."""
    text = str(units or "").strip()
    clean = re.sub(r"\([^()]*air[^()]*\)", "", text)  # CT's "mol(semidry_air)-1"
    clean = re.sub(r"\bmicro(?=mol|g)", "u", clean)
    clean = re.sub(r"\bnano(?=mol|g)", "n", clean)
    factor = 1.0
    m = re.match(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)(?:\s+|$)(.*)$", clean)
    if m:
        factor = float(m.group(1))
        clean = m.group(2).strip() or "1"
    words = set(re.findall(r"[A-Za-zµ]+", clean))
    mol = any(w.endswith("mol") for w in words) or bool(words & {"ppm", "ppmv", "ppb", "ppbv", "ppt"})
    mass = any(w in ("kg", "g", "ug", "mg", "µg", "ng") for w in words)
    try:
        u = parse_unit(clean)
    except UnitError as exc:
        raise UnitError(f"units {text!r}: {exc}") from None
    if u.powers:
        raise UnitError(f"units {text!r} are not a fraction (dimensions {dict(u.powers)})")
    sn = str(standard_name or "")
    if mol and not mass:
        kind = "mole"
    elif mass and not mol:
        kind = "mass"
    elif not mol and not mass and ("mole_fraction" in sn or "mass_fraction" in sn or "mixing_ratio" in sn):
        kind = "mass" if ("mass_fraction" in sn or "mass_mixing" in sn) else "mole"
    else:
        raise UnitError(f"units {text!r} are neither a mole fraction (mol mol-1, ppm, ...) nor a mass "
                        "fraction (kg kg-1)")
    return kind, factor * u.factor


def to_mole_fraction(values, units: str, gas: str, standard_name: str = "", where: str = "") -> np.ndarray:
    """``values`` in ``units`` as the internal mole fraction of ``gas`` (ppm CO2, ppb CH4/CO)."""
    try:
        kind, f = fraction_kind(units, standard_name)
    except UnitError as exc:
        raise BoundaryFieldError(f"{where}: {exc}; give the field as a mole fraction (e.g. "
                                 "'mol mol-1', 'ppm') or a mass fraction ('kg kg-1')") from None
    x = np.asarray(values, dtype=np.float64) * f
    if kind == "mass":
        x = x * MOLAR_MASS["air"] / MOLAR_MASS[gas]
    return x * OUT_UNITS[gas][1]


# ----------------------------------------------------------------------------------- readers
def _internal(value, height, times, lat, lon, attrs: dict, gas: str) -> xr.Dataset:
    """The internal form, sorted: lat/lon ascending, levels from the ground up."""
    ds = xr.Dataset(
        {"value": (("time", "level", "lat", "lon"), np.asarray(value, np.float64),
                   {"units": OUT_UNITS[gas][0], "long_name": f"{gas.upper()} dry-air mole fraction"}),
         "height": (("time", "level", "lat", "lon"), np.asarray(height, np.float64),
                    {"units": "m", "long_name": "height of the level centre above ground"})},
        coords={"time": pd.DatetimeIndex(times).as_unit("ns").values,
                "level": np.arange(np.shape(value)[1]),
                "lat": np.asarray(lat, np.float64), "lon": np.asarray(lon, np.float64)},
        attrs={**attrs, "gas": gas})
    lon_v = ds["lon"].values
    if lon_v.max() > 180.0:
        ds = ds.assign_coords(lon=np.where(lon_v > 180.0, lon_v - 360.0, lon_v))
    ds = ds.sortby(["time", "lat", "lon"])
    h = ds["height"].values
    if h.shape[1] > 1 and np.nanmean(h[:, 0]) > np.nanmean(h[:, -1]):
        ds = ds.isel(level=slice(None, None, -1)).assign_coords(level=np.arange(h.shape[1]))
    return ds


def _find(ds: xr.Dataset, names: Sequence[str]) -> str | None:
    for n in names:
        if n in ds.variables:
            return n
    return None


def _decoded_time(ds: xr.Dataset, name: str, path) -> pd.DatetimeIndex:
    t = ds[name]
    if not np.issubdtype(t.dtype, np.datetime64):
        raise BoundaryFieldError(f"{path}: field `{name}` has units {t.attrs.get('units')!r} that "
                                 "are not a CF time ('<unit> since <date>')")
    return pd.DatetimeIndex(t.values)


def read_carbontracker(path, gas: str = "co2") -> xr.Dataset:
    """A CarbonTracker ``molefrac`` file (module doc) in the internal form."""
    with _open(path) as ds:
        name = gas if gas in ds else None
        if name is None:
            raise BoundaryFieldError(f"{path}: no field `{gas}` (CarbonTracker mole fraction); is this a "
                                     "CT molefrac file (co2_total)? Set background.model.format to match")
        var = ds[name]
        if var.dims != ("time", "level", "latitude", "longitude"):
            raise BoundaryFieldError(f"{path}: field `{name}` has dims {var.dims}, expected "
                                     "(time, level, latitude, longitude) as in CarbonTracker")
        value = to_mole_fraction(var.values, var.attrs.get("units", ""), gas,
                                 var.attrs.get("standard_name", ""), f"{path}: field `{name}`")
        if "gph" not in ds:
            raise BoundaryFieldError(f"{path}: no field `gph` (geopotential height of the levels); the "
                                     "exit points' heights need it (CarbonTracker co2_total files carry it)")
        gph = np.asarray(ds["gph"].values, np.float64)
        if "boundary" in ds["gph"].dims:
            if gph.shape[1] != var.shape[1] + 1:
                raise BoundaryFieldError(f"{path}: field `gph` has {gph.shape[1]} boundaries for "
                                         f"{var.shape[1]} levels (expected levels + 1)")
            height = 0.5 * (gph[:, 1:] + gph[:, :-1]) - gph[:, :1]
        elif "level" in ds["gph"].dims:
            if "orography" not in ds:
                raise BoundaryFieldError(f"{path}: field `gph` is on level centres but there is no "
                                         "`orography` (ground height) to turn it into height above ground")
            height = gph - np.asarray(ds["orography"].values, np.float64)[None, None]
        else:
            raise BoundaryFieldError(f"{path}: field `gph` has dims {ds['gph'].dims}; expected "
                                     "(time, boundary|level, latitude, longitude)")
        times = _decoded_time(ds, "time", path)
        return _internal(value, height, times, ds["latitude"].values, ds["longitude"].values,
                         {"source": str(path), "format": "carbontracker", "field": name}, gas)


CAMS_LEVEL = ("level", "levelist", "model_level", "pressure_level", "hybrid", "lev")
CAMS_TIME = ("time", "valid_time")


def read_cams(path, gas: str = "co2") -> xr.Dataset:
    """A CAMS GHG file (EGG4 / CAMS global GHG, module doc) in the internal form."""
    with _open(path) as ds:
        if gas not in ds:
            raise BoundaryFieldError(f"{path}: no field `{gas}` (CAMS mass mixing ratio); request "
                                     f"'{CF_NAMES[gas].replace('_', ' ')}' from the ADS")
        var = ds[gas]
        tname = next((d for d in var.dims if d in CAMS_TIME), None)
        lname = next((d for d in var.dims if d in CAMS_LEVEL), None)
        if tname is None or lname is None or not {"latitude", "longitude"} <= set(var.dims):
            raise BoundaryFieldError(f"{path}: field `{gas}` has dims {var.dims}; expected (time|valid_time, "
                                     "level|levelist|model_level|pressure_level, latitude, longitude)")
        var = var.transpose(tname, lname, "latitude", "longitude")
        value = to_mole_fraction(var.values, var.attrs.get("units", ""), gas, "", f"{path}: field `{gas}`")
        if "z" not in ds or lname not in ds["z"].dims:
            raise BoundaryFieldError(f"{path}: no field `z` (geopotential) on the levels of `{gas}`; the "
                                     "exit points' heights need it: add geopotential to the ADS request")
        z = ds["z"].transpose(tname, lname, "latitude", "longitude")
        zu = str(z.attrs.get("units", "m**2 s**-2"))
        alt = np.asarray(z.values, np.float64) / (G0 if "s" in zu else 1.0)
        ground, how = _cams_ground(ds, path)
        times = _decoded_time(ds, tname, path)
        return _internal(value, alt - ground, times, ds["latitude"].values, ds["longitude"].values,
                         {"source": str(path), "format": "cams", "field": gas, "ground": how}, gas)


def _cams_ground(ds: xr.Dataset, path):
    for n in ("orography", "zs"):
        if n in ds:
            return np.asarray(ds[n].values, np.float64).reshape((1, 1, *ds[n].shape[-2:])), f"`{n}`"
    for n in ("z_sfc", "sfc_z"):
        if n in ds:
            return np.asarray(ds[n].values, np.float64).reshape((1, 1, *ds[n].shape[-2:])) / G0, f"`{n}`"
    log.warning("%s: no ground height (orography, zs, z_sfc): heights of the levels above sea level "
                "are taken as heights above ground (the delta is near sea level; hills are not)", path)
    return 0.0, "none (0 m assumed)"


def _cf_axis(ds: xr.Dataset, var: xr.DataArray, kind: str) -> str | None:
    for d in var.dims:
        c = ds[d] if d in ds.variables else None
        a = {} if c is None else c.attrs
        sn, ax, un = a.get("standard_name", ""), str(a.get("axis", "")).upper(), str(a.get("units", ""))
        if kind == "lat" and (sn == "latitude" or ax == "Y" or un in ("degrees_north", "degree_north")):
            return d
        if kind == "lon" and (sn == "longitude" or ax == "X" or un in ("degrees_east", "degree_east")):
            return d
        if kind == "time" and (sn == "time" or ax == "T" or (c is not None and np.issubdtype(c.dtype, np.datetime64))):
            return d
    return None


def _cf_heights(ds: xr.Dataset, dims: tuple, path, field: str) -> np.ndarray:
    """Heights above ground (m) broadcast to ``dims`` from height/altitude variables (module doc)."""
    found = {}
    for n, v in ds.variables.items():
        sn = v.attrs.get("standard_name", "")
        if sn in ("height", "altitude", "geopotential_height", "surface_altitude") and sn not in found:
            found[sn] = n
    key = "height" if "height" in found else next((k for k in ("altitude", "geopotential_height") if k in found), None)
    if key is None:
        raise BoundaryFieldError(f"{path}: field `{field}` has no variable with standard_name height, "
                                 "altitude or geopotential_height; the exit points' heights need one")

    def metres(name):
        v = ds[name]
        u = str(v.attrs.get("units", "m")).strip()
        f = {"m": 1.0, "meter": 1.0, "meters": 1.0, "metre": 1.0, "km": 1000.0}.get(u)
        if f is None:
            raise BoundaryFieldError(f"{path}: variable `{name}` has units {u!r}; give heights in m or km")
        return (v * f).broadcast_like(xr.DataArray(np.zeros([ds.sizes[d] for d in dims]), dims=dims)) \
            .transpose(*dims).values.astype(np.float64)

    h = metres(found[key])
    if key != "height":
        if "surface_altitude" not in found:
            raise BoundaryFieldError(f"{path}: heights of `{field}` are {key} (above sea level) but no "
                                     "variable has standard_name surface_altitude (the ground)")
        h = h - metres(found["surface_altitude"])
    return h


def read_cf(path, gas: str = "co2") -> xr.Dataset:
    """A generic CF field (module doc) in the internal form."""
    with _open(path) as ds:
        names = [f"mole_fraction_of_{CF_NAMES[gas]}_in_air", f"mass_fraction_of_{CF_NAMES[gas]}_in_air"]
        cand = [n for n, v in ds.data_vars.items() if v.attrs.get("standard_name") in names]
        if not cand:
            raise BoundaryFieldError(f"{path}: no variable with standard_name {names[0]} or {names[1]}")
        field = cand[0]
        var = ds[field]
        if var.ndim != 4:
            raise BoundaryFieldError(f"{path}: field `{field}` has dims {var.dims}; expected 4 (time, "
                                     "vertical, latitude, longitude)")
        ax = {k: _cf_axis(ds, var, k) for k in ("time", "lat", "lon")}
        if None in ax.values():
            raise BoundaryFieldError(f"{path}: field `{field}`: cannot tell its time/latitude/longitude "
                                     f"dimensions among {var.dims} (give standard_name or axis attributes)")
        zdim = next(d for d in var.dims if d not in ax.values())
        dims = (ax["time"], zdim, ax["lat"], ax["lon"])
        var = var.transpose(*dims)
        value = to_mole_fraction(var.values, var.attrs.get("units", ""), gas,
                                 var.attrs.get("standard_name", ""), f"{path}: field `{field}`")
        height = _cf_heights(ds, dims, path, field)
        times = _decoded_time(ds, ax["time"], path)
        return _internal(value, height, times, ds[ax["lat"]].values, ds[ax["lon"]].values,
                         {"source": str(path), "format": "cf", "field": field}, gas)


READERS = {"carbontracker": read_carbontracker, "cams": read_cams, "cf": read_cf}


def _open(path) -> xr.Dataset:
    p = Path(path)
    if not p.is_file():
        raise BoundaryFieldError(f"{path}: boundary field file not found (background.model.files)")
    try:
        return xr.open_dataset(p)
    except Exception as exc:  # noqa: BLE001
        raise BoundaryFieldError(f"{path}: cannot be read as NetCDF ({type(exc).__name__}: {exc})") from exc


def read_field(files, fmt: str, gas: str = "co2") -> xr.Dataset:
    """Read one or more files of one format (e.g. CT's daily files) into one field on their joint
    time axis (duplicate times: the first file's)."""
    if fmt not in READERS:
        raise BoundaryFieldError(f"background.model.format = {fmt!r}: use one of {list(FORMATS)}")
    files = [files] if isinstance(files, str | os.PathLike) else list(files)
    if not files:
        raise BoundaryFieldError("background.model.files is empty: give the boundary field file(s)")
    parts = [READERS[fmt](f, gas) for f in sorted(str(f) for f in files)]
    grid0 = parts[0]
    for p in parts[1:]:
        for c in ("lat", "lon"):
            if p.sizes[c] != grid0.sizes[c] or not np.allclose(p[c].values, grid0[c].values):
                raise BoundaryFieldError(f"{p.attrs['source']}: its {c} axis differs from "
                                         f"{grid0.attrs['source']}'s; all boundary files need one grid")
    ds = xr.concat(parts, dim="time") if len(parts) > 1 else parts[0]
    _, first = np.unique(ds["time"].values, return_index=True)
    ds = ds.isel(time=np.sort(first))
    ds.attrs.update({"source": ", ".join(p.attrs["source"] for p in parts), "format": fmt})
    return ds


# ---------------------------------------------------------------------------------- sampling
def _bracket(axis: np.ndarray, x: np.ndarray):
    """Lower index and weight of the upper neighbour for ``x`` inside ``axis`` (ascending)."""
    if axis.size == 1:
        return np.zeros(x.shape, np.int64), np.zeros(x.shape)
    i = np.clip(np.searchsorted(axis, x, side="right") - 1, 0, axis.size - 2)
    w = (x - axis[i]) / (axis[i + 1] - axis[i])
    return i, np.clip(w, 0.0, 1.0)


def _column_interp(val: np.ndarray, hgt: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Linear in height within each row's column (rows: points; columns: levels ascending)."""
    n_lev = hgt.shape[1]
    if n_lev == 1:
        return val[:, 0]
    k = np.clip((hgt < z[:, None]).sum(axis=1) - 1, 0, n_lev - 2)
    r = np.arange(len(z))
    h0, h1 = hgt[r, k], hgt[r, k + 1]
    w = np.clip((z - h0) / np.where(h1 != h0, h1 - h0, 1.0), 0.0, 1.0)
    return val[r, k] * (1 - w) + val[r, k + 1] * w


def check_coverage(field: xr.Dataset, time, lon, lat) -> None:
    """Raise :class:`BoundaryFieldError` when a point lies outside the field's cell centres or time."""
    src = field.attrs.get("source", "boundary field")
    name = field.attrs.get("field", "value")
    t = pd.DatetimeIndex(time).as_unit("ns").values
    ft = field["time"].values
    checks = [("time", t < ft[0], t > ft[-1], f"{pd.Timestamp(ft[0])}..{pd.Timestamp(ft[-1])}", t),
              ("longitude", lon < field["lon"].values[0] - 1e-9, lon > field["lon"].values[-1] + 1e-9,
               f"{field['lon'].values[0]:g}..{field['lon'].values[-1]:g}", lon),
              ("latitude", lat < field["lat"].values[0] - 1e-9, lat > field["lat"].values[-1] + 1e-9,
               f"{field['lat'].values[0]:g}..{field['lat'].values[-1]:g}", lat)]
    for what, lo, hi, span, x in checks:
        bad = lo | hi
        if bad.any():
            first = x[np.flatnonzero(bad)[0]]
            first = pd.Timestamp(first) if what == "time" else f"{first:g}"
            raise BoundaryFieldError(
                f"{src}: field `{name}` does not cover {int(bad.sum())} exit point(s) in {what} (e.g. "
                f"{first}; the field's {'times' if what == 'time' else 'cell centres'} span {span}); "
                "give boundary files covering the run's period and the outer domain plus one cell "
                "(and the back-trajectory length before the first day)")


def sample_field(field: xr.Dataset, time, lon, lat, height) -> np.ndarray:
    """The field at points (UTC time, lon, lat, m above ground): module doc. Raises
    :class:`BoundaryFieldError` for points outside the field (:func:`check_coverage`)."""
    lon = np.asarray(lon, np.float64)
    lat = np.asarray(lat, np.float64)
    z = np.asarray(height, np.float64)
    check_coverage(field, time, lon, lat)
    ft = field["time"].values.astype("datetime64[ns]").astype(np.int64) / 3.6e12
    t = pd.DatetimeIndex(time).as_unit("ns").values.astype(np.int64) / 3.6e12
    it, wt = _bracket(ft, t)
    iy, wy = _bracket(field["lat"].values, lat)
    ix, wx = _bracket(field["lon"].values, lon)
    val = field["value"].values
    hgt = field["height"].values
    out = np.zeros(lon.shape)
    n_t, n_y, n_x = val.shape[0], val.shape[2], val.shape[3]
    for dt, a in ((0, 1 - wt), (1, wt)):
        for dy, b in ((0, 1 - wy), (1, wy)):
            for dx, c in ((0, 1 - wx), (1, wx)):
                w = a * b * c
                ti, yi, xi = np.minimum(it + dt, n_t - 1), np.minimum(iy + dy, n_y - 1), np.minimum(ix + dx, n_x - 1)
                col_v = val[ti, :, yi, xi]
                col_h = hgt[ti, :, yi, xi]
                out += w * _column_interp(col_v, col_h, z)
    return out


# ---------------------------------------------------------------------- exit points → receptors
def inflow_side(lon, lat, box) -> np.ndarray:
    """N/E/S/W of each point seen from the centre of ``box`` (lon_min, lon_max, lat_min, lat_max):
    the side of the box a ray from its centre through the point crosses (the box's diagonals
    split the sides). A particle leaving the box gets the side it left through; one that ended
    inside gets the side it was heading to."""
    lo0, lo1, la0, la1 = (float(v) for v in box)
    dx = (np.asarray(lon, float) - 0.5 * (lo0 + lo1)) / (0.5 * (lo1 - lo0))
    dy = (np.asarray(lat, float) - 0.5 * (la0 + la1)) / (0.5 * (la1 - la0))
    return np.where(np.abs(dx) >= np.abs(dy), np.where(dx >= 0, "E", "W"), np.where(dy >= 0, "N", "S"))


def receptor_backgrounds(field: xr.Dataset, exits: pd.DataFrame, box, inside_min_agl_m: float) -> pd.DataFrame:
    """One row per receptor (:data:`RECEPTOR_COLUMNS`) from the particles' exit points.

    ``exits``: one row per particle with ``receptor_id, time, lon, lat, zagl`` and ``left`` (True:
    the particle left the outer domain there; False: its run ended inside, at its last position);
    ``site`` and ``release_time`` optional. Particles that ended inside are sampled at
    ``max(zagl, inside_min_agl_m)``: above the delta's boundary layer, whose own emissions the
    outer state already counts (docs/boundary.md, "End-point approximation"). ``background`` is
    the mean over particles, ``background_spread`` their standard deviation, ``share_<side>`` the
    share of particles per inflow side (:func:`inflow_side`)."""
    need = {"receptor_id", "time", "lon", "lat", "zagl", "left"}
    miss = need - set(exits.columns)
    if miss:
        raise ValueError(f"exit points lack column(s) {sorted(miss)}")
    e = exits.reset_index(drop=True)
    left = e["left"].to_numpy(bool)
    z = np.where(left, e["zagl"].to_numpy(float), np.maximum(e["zagl"].to_numpy(float), float(inside_min_agl_m)))
    v = sample_field(field, pd.DatetimeIndex(e["time"]), e["lon"].to_numpy(float), e["lat"].to_numpy(float), z)
    side = inflow_side(e["lon"], e["lat"], box)
    df = pd.DataFrame({"receptor_id": e["receptor_id"].astype(str), "v": v, "left": left.astype(float),
                       **{f"share_{s}": (side == s).astype(float) for s in SIDES}})
    g = df.groupby("receptor_id", sort=False)
    out = pd.DataFrame({"background": g["v"].mean(), "background_spread": g["v"].std(ddof=0),
                        "n_particles": g["v"].size(), "share_left": g["left"].mean(),
                        **{f"share_{s}": g[f"share_{s}"].mean() for s in SIDES}})
    out = out.reset_index()
    meta = e.groupby(e["receptor_id"].astype(str), sort=False).first()
    out["site"] = meta["site"].reindex(out["receptor_id"]).to_numpy() if "site" in meta else ""
    out["time"] = (pd.DatetimeIndex(meta["release_time"].reindex(out["receptor_id"])).strftime("%Y-%m-%dT%H:%M:%SZ")
                   if "release_time" in meta else "")
    return out[list(RECEPTOR_COLUMNS)]


#: ``exit_reason`` of the site-day footprint files (transport.stilt_driver, docs/formats.md):
#: 1 left the outer box, 2 stopped by HYSPLIT before (left the met domain between output steps),
#: 0 lasted the whole run inside, -1 padding
EXIT_INSIDE, EXIT_PADDING = 0, -1


def exits_from_footprints(paths, receptors: pd.DataFrame | None = None) -> pd.DataFrame:
    """The exit points of every receptor of site-day footprint files (``exit_*(receptor,
    particle)``), one row per particle: ``receptor_id, site, release_time, particle, time, lon,
    lat, zagl, reason, left`` (``left``: reason 1 or 2). ``receptors`` (receptors.csv) gives the
    site of each receptor; without it the site is the receptor id's part before the first ``_``."""
    frames = []
    for p in paths:
        with xr.open_dataset(p) as ds:
            if ds.sizes.get("receptor", 0) == 0:
                continue
            if "exit_lon" not in ds:
                raise ValueError(f"{p}: no exit points (exit_lon, exit_lat, exit_agl, exit_time, exit_reason); "
                                 "the model boundary needs footprints made by HYSPLIT-STILT with the outer "
                                 "grid enabled (outer_grid.enabled: true, transport.footprints_from: stilt)")
            ids = np.asarray(ds["receptor"].values).astype(str)
            reason = ds["exit_reason"].values.astype(int)
            ok = reason != EXIT_PADDING
            r_idx = np.broadcast_to(np.arange(len(ids))[:, None], reason.shape)[ok]
            frames.append(pd.DataFrame({
                "receptor_id": ids[r_idx],
                "release_time": pd.DatetimeIndex(ds["release_time"].values)[r_idx],
                "particle": ds["exit_particle"].values[ok], "time": pd.DatetimeIndex(ds["exit_time"].values[ok]),
                "lon": ds["exit_lon"].values[ok].astype(float), "lat": ds["exit_lat"].values[ok].astype(float),
                "zagl": ds["exit_agl"].values[ok].astype(float), "reason": reason[ok]}))
    cols = ["receptor_id", "site", "release_time", "particle", "time", "lon", "lat", "zagl", "reason", "left"]
    if not frames:
        return pd.DataFrame(columns=cols)
    e = pd.concat(frames, ignore_index=True)
    if receptors is not None and "receptor_id" in receptors:
        site = receptors.assign(receptor_id=receptors["receptor_id"].astype(str)).set_index("receptor_id")["site"]
        e["site"] = site.reindex(e["receptor_id"]).astype(str).to_numpy()
    else:
        e["site"] = e["receptor_id"].str.split("_").str[0]
    e["zagl"] = e["zagl"].fillna(0.0)
    e["left"] = e["reason"] != EXIT_INSIDE
    return e[cols]


def write_receptor_backgrounds(df: pd.DataFrame, path) -> Path:
    """``{R}/boundary/background.csv`` (atomic)."""
    return write_csv(df[list(RECEPTOR_COLUMNS)], path, index=False, float_format="%.6g")


def read_receptor_backgrounds(path) -> pd.DataFrame:
    """Read ``{R}/boundary/background.csv``; checks the columns."""
    df = pd.read_csv(path)
    miss = [c for c in RECEPTOR_COLUMNS if c not in df.columns]
    if miss:
        raise ValueError(f"{path}: missing column(s) {miss}; rerun rule boundary_background")
    df["time"] = pd.DatetimeIndex(pd.to_datetime(df["time"], utc=True)).tz_localize(None)
    df["site"] = df["site"].astype(str)
    return df
