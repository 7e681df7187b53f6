"""Footprint readers: any footprint a user has -> ``foot(time, lat, lon)`` in ppm / (µmol m-2 s-1).

Layouts read by :func:`read_footprint`:

- pystilt sparse Parquet (``*.parquet``) and pystilt / STILT-R NetCDF with variable ``foot``
  (dims in any order of ``time, lat, lon``);
- legacy STILT-R NetCDF with variable ``Footprint``;
- the NAME / openghg layout ``fp(lat, lon, time)`` in (mol/mol) / (mol m-2 s-1), numerically equal
  to ppm / (µmol m-2 s-1) (1e6 / 1e6);
- one receptor of our site-day files ``foot(receptor, time, lat, lon)`` (give ``receptor``).

Coordinates are cell centres; ``time`` is the start of the hourly bin. Times are UTC, tz-naive.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from .units import RESIDENCE, UnitError, factor_to

FOOT_UNITS = "ppm / (umol m-2 s-1)"

_LAT_NAMES = ("lat", "latitude", "y")
_LON_NAMES = ("lon", "longitude", "x")


class FootprintFormatError(ValueError):
    """A footprint file is not in a layout we read."""


def unit_factor(da: xr.DataArray, path) -> float:
    """Factor from the ``units`` of a footprint variable to ppm / (µmol m-2 s-1), by meaning
    (:mod:`transport.units`); no ``units`` = already in them (pystilt writes none)."""
    units = str(da.attrs.get("units", "")).strip()
    if not units:
        return 1.0
    try:
        return factor_to(units)
    except UnitError as exc:
        raise FootprintFormatError(
            f"{path}: footprint units {units!r} unknown as a footprint unit (variable "
            f"{da.name!r}: {exc}). A footprint must be a mole-fraction response "
            "per molar flux, e.g. 'ppm / (umol m-2 s-1)' or '(mol/mol)/(mol/m2/s)'; FLEXPART "
            "residence times ('s m3 kg-1') are converted by read_footprints(layer_height=...)") from None


def _standardise(da: xr.DataArray, path: Path) -> xr.DataArray:
    ren = {}
    for d in da.dims:
        if d.lower() in _LAT_NAMES:
            ren[d] = "lat"
        elif d.lower() in _LON_NAMES:
            ren[d] = "lon"
    da = da.rename(ren)
    for need in ("lat", "lon"):
        if need not in da.dims:
            raise FootprintFormatError(f"{path}: footprint variable {da.name!r} has dims {da.dims}; "
                                       "need lat/latitude and lon/longitude dimensions")
    if "time" not in da.dims:
        da = da.expand_dims(time=[pd.Timestamp(da.attrs.get("time", "1970-01-01"))])
    extra = [d for d in da.dims if d not in ("time", "lat", "lon")]
    if extra:
        raise FootprintFormatError(f"{path}: unexpected dims {extra} on {da.name!r}; select one "
                                   "receptor/particle set first")
    da = da.transpose("time", "lat", "lon")
    factor = unit_factor(da, path)
    t = pd.to_datetime(da["time"].values)
    if getattr(t, "tz", None) is not None:
        t = t.tz_convert("UTC").tz_localize(None)
    out = xr.DataArray(np.asarray(da.values, dtype=np.float64) * factor,
                       dims=("time", "lat", "lon"),
                       coords={"time": t.values, "lat": np.asarray(da["lat"].values, float),
                               "lon": np.asarray(da["lon"].values, float)},
                       name="foot", attrs={"units": FOOT_UNITS, "source_file": str(path)})
    out = out.sortby("lat").sortby("lon").sortby("time")
    return out


def to_clock_hours(foot: xr.DataArray) -> xr.DataArray:
    """Re-bin hourly layers that start off the hour (pystilt bins from the release time, e.g.
    hh:30) onto clock hours, splitting each layer between the two hours it overlaps in
    proportion to the overlap (uniform within the layer; mass is conserved exactly)."""
    t = pd.to_datetime(foot["time"].values)
    off = (t - t.floor("h")) / pd.Timedelta("1min")
    if np.all(off == 0):
        return foot
    h0 = t.floor("h")
    hours = pd.date_range(h0.min(), h0.max() + pd.Timedelta("1h"), freq="h")
    out = np.zeros((len(hours),) + foot.shape[1:])
    vals = foot.values
    for k in range(len(t)):
        i = hours.get_loc(h0[k])
        w = float(off[k]) / 60.0
        out[i] += (1 - w) * vals[k]
        out[i + 1] += w * vals[k]
    return xr.DataArray(out, dims=foot.dims,
                        coords={"time": hours.values, "lat": foot["lat"].values,
                                "lon": foot["lon"].values}, name="foot", attrs=dict(foot.attrs))


def read_footprint(path: str | os.PathLike, receptor: str | None = None,
                   clock_hours: bool = False) -> xr.DataArray:
    """Read one receptor's footprint as ``foot(time, lat, lon)`` in ppm / (µmol m-2 s-1).

    Parameters
    ----------
    path : footprint file (``.parquet`` or NetCDF).
    receptor : receptor id to select from a multi-receptor file (site-day files); required when
        the file holds more than one receptor.
    clock_hours : re-bin layers that start off the hour onto clock hours (:func:`to_clock_hours`),
        as the Jacobian needs; pystilt's own files bin from the release time.
    """
    foot = _read_footprint(path, receptor)
    return to_clock_hours(foot) if clock_hours else foot


def _read_footprint(path, receptor):
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"footprint file {path} does not exist")
    if path.suffix == ".parquet":
        import stilt

        foot = stilt.read_footprint(path)
        if foot is None:
            raise FootprintFormatError(f"{path}: pystilt footprint is empty (no particle reached "
                                       "the grid)")
        return _standardise(foot, path)
    with xr.open_dataset(path) as ds:
        rel = next((n for n in RELEASE_LAYOUTS if n in ds.data_vars), None)
        if rel is not None and ds.sizes.get("time", 1) > 1:
            raise FootprintFormatError(
                f"{path}: `{rel}` holds {ds.sizes['time']} releases (its `time` is the release "
                "time, each slice integrated over the back period), not hourly layers of one "
                "receptor; read it with transport.read_footprints(path)")
        for name in ("foot", "Footprint", "fp", "srr"):
            if name in ds.data_vars:
                da = ds[name]
                break
        else:
            raise FootprintFormatError(f"{path}: no footprint variable; expected `foot` (pystilt, "
                                       f"STILT-R), `Footprint` (legacy STILT-R), `fp` (NAME/"
                                       f"openghg) or `srr` (FLEXPART/PARIS), found "
                                       f"{list(ds.data_vars)}")
        rdim = next((d for d in da.dims if d in ("receptor", "release")), None)
        if rdim is not None:
            ids = [str(v) for v in ds[rdim].values]
            if receptor is None:
                if len(ids) != 1:
                    raise FootprintFormatError(f"{path}: holds {len(ids)} receptors; pass "
                                               "receptor=<receptor_id> to pick one")
                da = da.isel({rdim: 0})
            else:
                if receptor not in ids:
                    raise KeyError(f"{path}: receptor {receptor!r} not in file")
                da = da.isel({rdim: ids.index(receptor)})
        da = da.load()
    if da.name == "Footprint" and "units" not in da.attrs:
        da.attrs["units"] = "ppm / (umol m-2 s-1)"
    return _standardise(da, path)


def read_site_day(path: str | os.PathLike) -> xr.Dataset:
    """Open a site-day file ``foot(receptor, time, lat, lon)`` (lazy; use as a context manager)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"site-day footprint file {path} does not exist; run rule "
                                "footprints")
    try:
        ds = xr.open_dataset(path)
    except Exception as exc:  # netCDF4/h5py raise OSError, ValueError, ...
        raise FootprintFormatError(
            f"{path}: cannot be opened as NetCDF ({exc}); the file is truncated or corrupt. Delete "
            "it and re-run with `--forcerun jacobian`: Snakemake recomputes only this site-day "
            "(cached receptors in footprints/work are reused) and what depends on it.") from exc
    for v in ("foot",):
        if v not in ds:
            ds.close()
            raise FootprintFormatError(f"{path}: no variable `{v}`; not a site-day footprint file "
                                       "(docs/formats.md)")
    if set(ds["foot"].dims) != {"receptor", "time", "lat", "lon"}:
        dims = ds["foot"].dims
        ds.close()
        raise FootprintFormatError(f"{path}: foot has dims {dims}; expected "
                                   "(receptor, time, lat, lon)")
    units = str(ds["foot"].attrs.get("units", "")).strip()
    try:
        same = np.isclose(factor_to(units or FOOT_UNITS), 1.0, rtol=1e-12)
    except UnitError:
        same = False
    if not same:
        ds.close()
        raise FootprintFormatError(
            f"{path}: foot has units {units!r}; site-day files must be in {FOOT_UNITS!r}. Convert "
            "the footprints (read_footprint knows the factors of other units) or recompute them "
            "with rule footprints.")
    return ds


def write_footprint_netcdf(path: str | os.PathLike, foot: xr.DataArray, *,
                           legacy: bool = False) -> Path:
    """Write one footprint as STILT-R NetCDF (``foot``; ``Footprint`` when ``legacy``)."""
    path = Path(path)
    name = "Footprint" if legacy else "foot"
    da = foot.rename(name)
    da.attrs = {"units": FOOT_UNITS}
    da.to_dataset().to_netcdf(path)
    return path


# --------------------------------------------------------------------------------------------------
# One footprint per receptor / release: read_footprints
# --------------------------------------------------------------------------------------------------
#: Molar mass of dry air, kg mol-1 (FLEXPART's residence-time conversion).
M_AIR = 0.0289644
RELEASE_LAYOUTS = ("fp", "srr")  # time = release time, each slice integrated over the back period
BOUNDARY_VARS = tuple(f"particle_locations_{d}" for d in "nesw")


def _release_info(ds: xr.Dataset, n: int, path: Path) -> dict:
    """Release lon/lat/height per release: variables ``release_lon/lat/height``; a missing height
    from the attribute ``inlet_height`` (``100magl``), ``LPDM_sampling_height`` or the file name
    (``TAC-100magl_...``, openghg's convention); NaN where none is known."""
    out = {k: (np.asarray(ds[k].values, float).reshape(-1) if k in ds else np.full(n, np.nan))
           for k in ("release_lon", "release_lat", "release_height")}
    if np.isnan(out["release_height"]).all():
        for text in (ds.attrs.get("inlet_height"), ds.attrs.get("LPDM_sampling_height"),
                     re.search(r"-(\d+(?:\.\d+)?)magl", path.name)):
            if hasattr(text, "group"):
                text = text.group(1)
            m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(?:magl|m)?\s*", str(text)) if text is not None else None
            if m:
                out["release_height"] = np.full(n, float(m.group(1)))
                break
    return out


def _release_layout(ds: xr.Dataset, name: str, path: Path, layer_height: float | None) -> xr.Dataset:
    """NAME/openghg ``fp`` or FLEXPART/PARIS ``srr``: ``time`` is the release time."""
    da = ds[name].rename({d: ("lat" if d.lower() in _LAT_NAMES else "lon" if d.lower() in _LON_NAMES
                              else d) for d in ds[name].dims})
    units = str(da.attrs.get("units", "")).strip()
    try:
        factor = factor_to(units, RESIDENCE)
    except UnitError:
        factor = None
    if factor is not None:  # FLEXPART native residence time: s m3 kg-1
        if layer_height is None:
            raise FootprintFormatError(
                f"{path}: {name} is a residence time in {units!r}; give layer_height (m, the "
                "height of FLEXPART's lowest output layer, OUTHEIGHTS) to convert it: foot = "
                f"{name} * M_air / layer_height")
        factor = factor * M_AIR / float(layer_height)
    else:
        factor = unit_factor(da, path)
    times = pd.to_datetime(ds["time"].values)
    n = len(times)
    info = _release_info(ds, n, path)
    ids = [f"{path.stem}_{t:%Y%m%d%H%M}" for t in times]
    data = {"foot": (("receptor", "lat", "lon"),
                     np.asarray(da.transpose("time", "lat", "lon").values, np.float64) * factor,
                     {"units": FOOT_UNITS, "long_name": "footprint integrated over the back "
                      "period (time = release time)"})}
    if "fp_HiTRes" in ds and "H_back" in ds["fp_HiTRes"].dims:
        hr = ds["fp_HiTRes"].rename({d: ("lat" if d.lower() in _LAT_NAMES else "lon"
                                         if d.lower() in _LON_NAMES else d)
                                     for d in ds["fp_HiTRes"].dims})
        f_hr = unit_factor(hr, path) if hr.attrs.get("units") else factor
        data["foot_hires"] = (("receptor", "back", "lat", "lon"),
                              np.asarray(hr.transpose("time", "H_back", "lat", "lon").values,
                                         np.float64) * f_hr,
                              {"units": FOOT_UNITS, "long_name": "footprint per back-time bin "
                               "starting `back` hours before the release (fp_HiTRes)"})
    for b in BOUNDARY_VARS:
        if b in ds:
            v = ds[b].rename({d: ("lat" if d.lower() in _LAT_NAMES else "lon" if d.lower()
                                  in _LON_NAMES else d) for d in ds[b].dims})
            other = [d for d in v.dims if d != "time"]
            data[b] = (("receptor", *other), np.asarray(v.transpose("time", *other).values, float),
                       dict(v.attrs))
    coords = {"receptor": np.array(ids, dtype=str), "release_time": ("receptor", times.values),
              "lat": np.asarray(da["lat"].values, float), "lon": np.asarray(da["lon"].values, float),
              **{k: ("receptor", v) for k, v in info.items()}}
    if "foot_hires" in data:
        coords["back"] = np.asarray(ds["H_back"].values, float)
    for b in BOUNDARY_VARS:
        if b in ds:
            coords.update({c: np.asarray(ds[c].values, float) for c in ds[b].dims
                           if c in ds.coords and c not in ("time",) and c.lower() not in
                           _LAT_NAMES + _LON_NAMES})
    out = xr.Dataset(data, coords=coords,
                     attrs={"source_file": str(path), "layout": f"{name}: time = release time"})
    return out.sortby("lat").sortby("lon")


def _hourly_layout(path: Path) -> xr.Dataset:
    """pystilt / STILT-R single-receptor files, and our site-day files: ``foot`` on hourly bins."""
    if path.suffix != ".parquet":
        with xr.open_dataset(path) as ds:
            if "receptor" in ds.dims and "foot" in ds:
                site_day = ds.load()
                f = site_day["foot"].astype(np.float64) * unit_factor(site_day["foot"], path)
                coords = {"release_time": ("receptor", pd.to_datetime(
                    site_day["release_time"].values).values)} if "release_time" in site_day else {}
                return xr.Dataset({"foot": f.assign_attrs(units=FOOT_UNITS)}).assign_coords(coords)
    foot = _read_footprint(path, None)
    t = pd.Timestamp(foot.attrs.get("release_time", foot["time"].values[-1]))
    return xr.Dataset({"foot": foot.expand_dims(receptor=[path.stem])},
                      coords={"release_time": ("receptor", [t])},
                      attrs={"source_file": str(path)})


def read_footprints(path: str | os.PathLike, layer_height: float | None = None) -> xr.Dataset:
    """Every footprint of a file, one per receptor / release, in ppm / (µmol m-2 s-1).

    Returns a Dataset with dimension ``receptor`` (coordinates ``release_time`` and, where the
    file has them, ``release_lon, release_lat, release_height``) and

    - ``foot(receptor, time, lat, lon)`` on hourly back-time bins (pystilt, STILT-R, our site-day
      files), or ``foot(receptor, lat, lon)`` integrated over the back period (NAME/openghg ``fp``
      and FLEXPART/PARIS ``srr``, whose ``time`` is the *release* time), plus
      ``foot_hires(receptor, back, lat, lon)`` from NAME's ``fp_HiTRes`` (``back`` = ``H_back``,
      hours before the release);
    - NAME's boundary sensitivities ``particle_locations_{n,e,s,w}`` per receptor when present.

    Units by meaning (:mod:`transport.units`). FLEXPART's native residence time (s m3 kg-1) is
    converted physically: ``foot = srr * M_air / layer_height`` (``layer_height``: the height of
    the lowest output layer in m; M_air = 0.0289644 kg mol-1; docs/transport.md).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"footprint file {path} does not exist")
    if path.suffix == ".parquet":
        return _hourly_layout(path)
    try:
        ds = xr.open_dataset(path)
    except Exception as exc:
        raise FootprintFormatError(f"{path}: cannot be opened as NetCDF ({exc})") from exc
    with ds:
        name = next((n for n in RELEASE_LAYOUTS if n in ds.data_vars), None)
        if name is not None:
            return _release_layout(ds.load(), name, path, layer_height)
    return _hourly_layout(path)
