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
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

FOOT_UNITS = "ppm / (umol m-2 s-1)"

#: Unit strings taken as ppm / (µmol m-2 s-1) and their factor to it.
_UNIT_FACTORS = {
    "": 1.0, "ppm / (umol m-2 s-1)": 1.0, "ppm m2 s umol-1": 1.0, "ppm/(umol/m2/s)": 1.0,
    "ppm (umol m-2 s-1)-1": 1.0, "(mol/mol)/(mol/m2/s)": 1.0, "mol/mol / (mol m-2 s-1)": 1.0,
    "(mol/mol)/(mol m-2 s-1)": 1.0, "mol mol-1 m2 s mol-1": 1.0, "m2 s mol-1": 1.0,
    "ppb / (nmol m-2 s-1)": 1.0, "ppm / (mol m-2 s-1)": 1e-6, "ppm m2 s mol-1": 1e-6,
}

_LAT_NAMES = ("lat", "latitude", "y")
_LON_NAMES = ("lon", "longitude", "x")


class FootprintFormatError(ValueError):
    """A footprint file is not in a layout we read."""


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
    units = str(da.attrs.get("units", "")).strip()
    factor = _UNIT_FACTORS.get(units)
    if factor is None:
        raise FootprintFormatError(f"{path}: footprint units {units!r} unknown; expected one of "
                                   f"{sorted(k for k in _UNIT_FACTORS if k)}")
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
        for name in ("foot", "Footprint", "fp"):
            if name in ds.data_vars:
                da = ds[name]
                break
        else:
            raise FootprintFormatError(f"{path}: no footprint variable; expected `foot` (pystilt, "
                                       f"STILT-R), `Footprint` (legacy STILT-R) or `fp` (NAME/"
                                       f"openghg), found {list(ds.data_vars)}")
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
    if _UNIT_FACTORS.get(units) != 1.0:
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
