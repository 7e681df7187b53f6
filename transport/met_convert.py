"""Convert ERA5-style NetCDF meteorology on pressure levels to daily ARL files HYSPLIT reads.

Input: one xarray Dataset (or paths opened together) on a regular lat/lon grid with dims
``time``, ``pressure_level`` (or ``level``/``plev``, hPa), ``latitude``/``longitude`` (any order,
either direction) holding, by default, ERA5 names and units:

=========  ========================  ===========  ===========================================
ARL        ERA5 variable             ERA5 units   conversion
=========  ========================  ===========  ===========================================
HGTS       ``z`` (levels)            m2 s-2       / g
TEMP       ``t``                     K
UWND/VWND  ``u``/``v``               m s-1
WWND       ``w``                     Pa s-1       / 100 (hPa s-1)
RELH       ``r``                     %
SHGT       ``z_sfc`` (surface geop.) m2 s-2       / g
PRSS/MSLP  ``sp``/``msl``            Pa           / 100
T02M       ``t2m``                   K
U10M/V10M  ``u10``/``v10``           m s-1
RH2M       ``d2m`` with ``t2m``      K            Magnus formula (%)
PBLH       ``blh``                   m
SHTF       ``sshf``                  J m-2 / h    -sshf / 3600 (ERA5 is downward-positive,
                                                  accumulated over the hour; ARL upward W m-2)
USTR       ``zust``                  m s-1
=========  ========================  ===========  ===========================================

WRF output interpolated to pressure levels (e.g. with ``wrf-python`` ``vinterp``) works the same
way once its variables are renamed with ``names=`` and its units match the table.

Files as the CDS delivers them (:func:`open_era5`): the *new* CDS layout (``valid_time``,
``pressure_level``, scalar ``number`` and ``expver`` coordinates; single levels often as a zip
with one NetCDF per step type, ``..._stepType-instant.nc`` and ``..._stepType-accum.nc``, whose
members are both read) and the *old* one (``time``, ``level``, int16 packed with
``scale_factor``/``add_offset``). The single-level geopotential is ``z`` in both, like the
pressure-level one: it is told apart by its lack of a level dimension and renamed ``z_sfc``.
GRIB files and model levels are not read: the error names the file and says how to convert it
(``cdo -f nc4 copy`` or ``grib_to_netcdf``; ``cdo ml2pl`` for model levels, or request pressure
levels from the CDS).
"""

from __future__ import annotations

import logging
import os
import tempfile
import zipfile
from contextlib import ExitStack
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from .arl import G, MetGrid, utc_day_groups, write_arl

logger = logging.getLogger(__name__)

ERA5_NAMES = {"HGTS": "z", "TEMP": "t", "UWND": "u", "VWND": "v", "WWND": "w", "RELH": "r",
              "SHGT": "z_sfc", "PRSS": "sp", "MSLP": "msl", "T02M": "t2m", "U10M": "u10",
              "V10M": "v10", "D2M": "d2m", "PBLH": "blh", "SHTF": "sshf", "USTR": "zust"}
REQUIRED = ("HGTS", "TEMP", "UWND", "VWND", "SHGT", "PRSS", "T02M", "U10M", "V10M", "PBLH",
            "SHTF", "USTR")


LEVEL_DIMS = ("pressure_level", "level", "plev", "isobaricInhPa")
MODEL_LEVEL_DIMS = ("model_level", "hybrid", "lev")


class Era5FormatError(ValueError):
    """An ERA5 file this converter does not read (GRIB, model levels); names file and fix."""


def _members(path: Path, tmp: Path) -> list[Path]:
    """The NetCDF files of ``path``: itself, or every member of a CDS zip extracted to ``tmp``."""
    if not zipfile.is_zipfile(path):
        return [path]
    out = []
    with zipfile.ZipFile(path) as zf:
        for name in zf.namelist():
            if name.endswith("/"):
                continue
            target = tmp / f"{path.stem}__{Path(name).name}"
            target.write_bytes(zf.read(name))
            out.append(target)
    if not out:
        raise Era5FormatError(f"{path}: the zip holds no file; download the ERA5 request again")
    return out


def _era5_part(path: Path, label: str) -> xr.Dataset:
    """One ERA5 NetCDF as a dataset ready to combine: CDS bookkeeping coordinates dropped,
    ``valid_time`` -> ``time``, single-level ``z`` -> ``z_sfc``. Refuses GRIB and model levels."""
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic == b"GRIB":
        raise Era5FormatError(
            f"{label}: a GRIB file; the ERA5 conversion reads NetCDF only. Convert it first "
            f"(`cdo -f nc4 copy {path.name} {path.stem}.nc` or `grib_to_netcdf -o {path.stem}.nc "
            f"{path.name}`) or request NetCDF from the CDS")
    try:
        ds = xr.open_dataset(path)
    except Exception as exc:
        raise Era5FormatError(f"{label}: cannot be opened as NetCDF ({exc}); give ERA5 NetCDF "
                              "files (or the CDS zip that holds them)") from exc
    ds = ds.drop_vars([v for v in ("number", "expver") if v in ds.variables])
    model = [d for d in ds.dims if d in MODEL_LEVEL_DIMS or "model" in str(
        ds[d].attrs.get("long_name", "") if d in ds.variables else "").lower()]
    if model:
        raise Era5FormatError(
            f"{label}: ERA5 on model levels (dimension {model[0]!r}) is not supported; interpolate "
            "to pressure levels first (e.g. `cdo ml2pl,100000,97500,...`) or request the "
            "pressure-levels product from the CDS")
    if "valid_time" in ds.dims and "time" not in ds.dims:
        ds = ds.rename({"valid_time": "time"})
    if not any(d in ds.dims for d in LEVEL_DIMS) and "z" in ds:
        ds = ds.rename({"z": "z_sfc"})
    return ds


def open_era5(paths: Sequence[str | os.PathLike], tmp_dir: str | os.PathLike) -> xr.Dataset:
    """ERA5 pressure- and single-level NetCDF files (old or new CDS layout, zips split by step
    type) combined into one dataset (see the module docstring); zip members are extracted to
    ``tmp_dir``, which must live as long as the dataset is used."""
    parts = []
    for p in paths:
        p = Path(p)
        if not p.exists():
            raise FileNotFoundError(f"ERA5 file {p} does not exist (config inputs.era5_files)")
        for m in _members(p, Path(tmp_dir)):
            parts.append(_era5_part(m, f"{p}" + (f" (member {m.name})" if m != p else "")))
    try:
        return xr.combine_by_coords(parts, combine_attrs="drop_conflicts")
    except ValueError as exc:
        raise Era5FormatError(f"{', '.join(map(str, paths))}: the ERA5 files do not combine "
                              f"({exc}); give files on one grid with distinct times or "
                              "variables") from exc


def _rh_from_dewpoint(t: np.ndarray, td: np.ndarray) -> np.ndarray:
    es = lambda x: 6.112 * np.exp(17.67 * (x - 273.15) / (x - 29.65))  # noqa: E731  (hPa)
    return np.clip(100.0 * es(td) / es(t), 0.0, 100.0)


def _standard(ds: xr.Dataset, source: str) -> xr.Dataset:
    ren = {}
    for d in ds.dims:
        if d in ("latitude", "lat"):
            ren[d] = "lat"
        elif d in ("longitude", "lon"):
            ren[d] = "lon"
        elif d in ("pressure_level", "level", "plev", "isobaricInhPa"):
            ren[d] = "plev"
        elif d in ("valid_time", "time"):
            ren[d] = "time"
    ds = ds.rename(ren)
    for need in ("time", "lat", "lon", "plev"):
        if need not in ds.dims:
            raise ValueError(f"{source}: no `{need}` dimension (have {list(ds.dims)}); give "
                             "time, pressure_level (hPa), latitude and longitude")
    if float(ds["plev"].max()) > 2000:  # Pa -> hPa
        ds = ds.assign_coords(plev=ds["plev"] / 100.0)
    ds = ds.sortby("lat").sortby("lon").sortby("plev", ascending=False)
    lat, lon = ds["lat"].values, ds["lon"].values
    for name, ax in (("latitude", lat), ("longitude", lon)):
        d = np.diff(ax)
        if ax.size < 2 or not np.allclose(d, d[0], atol=1e-6):
            raise ValueError(f"{source}: {name} is not a regular axis; regrid to a regular "
                             "lat/lon grid first")
    if not np.isclose(lat[1] - lat[0], lon[1] - lon[0]):
        raise ValueError(f"{source}: latitude and longitude spacings differ "
                         f"({lat[1] - lat[0]} vs {lon[1] - lon[0]}); ARL lat/lon grids need one")
    return ds


def _arl_fields(snap: xr.Dataset, nm: Mapping[str, str]) -> tuple[dict, dict]:
    """Surface and level fields of one time step in ARL names and units (table above)."""
    def sfc(key):
        v = snap[nm[key]]
        return np.asarray(v.values if "plev" not in v.dims else v.isel(plev=0).values, float)

    z_sfc = sfc("SHGT")
    surface = {
        "SHGT": z_sfc / G, "PRSS": sfc("PRSS") / 100.0,
        "MSLP": sfc("MSLP") / 100.0 if nm["MSLP"] in snap else sfc("PRSS") / 100.0,
        "T02M": sfc("T02M"), "U10M": sfc("U10M"), "V10M": sfc("V10M"),
        "RH2M": (_rh_from_dewpoint(sfc("T02M"), sfc("D2M")) if nm["D2M"] in snap
                 else np.full_like(z_sfc, 70.0)),
        "PBLH": sfc("PBLH"), "SHTF": -sfc("SHTF") / 3600.0, "USTR": sfc("USTR")}
    temp = np.asarray(snap[nm["TEMP"]].values, float)
    lev = {"HGTS": snap[nm["HGTS"]].values / G, "TEMP": temp,
           "UWND": snap[nm["UWND"]].values, "VWND": snap[nm["VWND"]].values,
           "WWND": (snap[nm["WWND"]].values / 100.0 if nm["WWND"] in snap else np.zeros_like(temp)),
           "RELH": (snap[nm["RELH"]].values if nm["RELH"] in snap else np.full_like(temp, 60.0))}
    return ({k: np.asarray(v, np.float32) for k, v in surface.items()},
            {k: np.asarray(v, np.float32) for k, v in lev.items()})


def era5_to_arl(ds: xr.Dataset | str | os.PathLike | list, out_dir: str | os.PathLike,
                file_format: str = "%Y%m%d_gz.arl", names: Mapping[str, str] | None = None,
                source: str = "ERA5", days: Sequence | None = None) -> list[Path]:
    """Write one ARL file per UTC day of ``ds`` into ``out_dir``; returns the paths written.

    ``ds``: a dataset, or ERA5 file paths (NetCDF or CDS zips, :func:`open_era5`). ``days``:
    only these UTC days (date-likes); a day the data do not hold raises ``ValueError`` naming
    it."""
    with ExitStack() as stack:
        label = str(ds) if not isinstance(ds, xr.Dataset) else "met dataset"
        if not isinstance(ds, xr.Dataset):
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="era5_"))
            ds = open_era5(ds if isinstance(ds, (list, tuple)) else [ds], tmp)
        return _to_arl(ds, label, out_dir, file_format, names, source, days)


def _to_arl(ds, label, out_dir, file_format, names, source, days) -> list[Path]:
    nm = {**ERA5_NAMES, **(names or {})}
    missing = [f"{k} (`{nm[k]}`)" for k in REQUIRED if nm[k] not in ds]
    if missing:
        raise ValueError(f"{label}: missing variable(s) {', '.join(missing)}; rename with "
                         "names={ARL: variable} or add them (see transport.met_convert)")
    ds = _standard(ds, label)
    lat, lon = ds["lat"].values, ds["lon"].values
    res = float(lat[1] - lat[0])
    grid = MetGrid(float(lon[0]), float(lon[-1]), float(lat[0]), float(lat[-1]), res)
    plev = [float(p) for p in ds["plev"].values]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    times = pd.to_datetime(ds["time"].values)
    written = []
    for day, idx in utc_day_groups(times, days, label, "add the files of those days"):
        path = out_dir / pd.Timestamp(day).strftime(file_format)
        steps = (_arl_fields(ds.isel(time=int(it)).load(), nm) for it in idx)
        write_arl(path, grid, plev, ((pd.Timestamp(times[it]), *f)
                                     for it, f in zip(idx, steps)), source=source)
        written.append(path)
        logger.info("wrote %s (%d time steps)", path, len(idx))
    return written
