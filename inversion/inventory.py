"""EDGAR-like gridded CO2 inventory: the writer and the reader of ``inventory.nc`` (docs/formats.md).

Format: dims ``lat``, ``lon`` (cell centres, ascending) and ``hour`` (0..23, local hour of day);
``emi_<sector>(lat, lon)`` annual-mean CO2 flux in kg m-2 s-1 (EDGAR units) for
``SECTORS = industry, road, residential``; ``profile_<sector>(hour)`` diurnal factors with mean 1 in
local time; ``bio_nee(hour, lat, lon)`` biosphere net flux in kg m-2 s-1 by local hour (negative =
uptake); attrs ``title, institution, source, utc_offset_hours``. Power plants are not in the file.

Also holds the small NetCDF helpers shared by the prior and the demo truth (atomic writes and unit
conversion constants).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import xarray as xr

from gzcarbon.grid import Grid

SECTORS = ("industry", "road", "residential")
REQUIRED_ATTRS = ("title", "institution", "source", "utc_offset_hours")

#: molar mass of CO2, g/mol
M_CO2 = 44.01
#: kg m-2 s-1 of CO2  ->  µmol m-2 s-1 : 1 kg = 1e3 g = 1e3/44.01 mol = 1e9/44.01 µmol
KG_TO_UMOL = 1.0e9 / M_CO2
SECONDS_PER_YEAR = 365.25 * 86400.0


class InventoryError(ValueError):
    """An inventory file that cannot be used; the message names the file, the field and the fix."""


def kg_m2_s_to_umol_m2_s(x):
    """CO2 mass flux kg m-2 s-1 -> molar flux µmol m-2 s-1 (÷ 44.01e-9)."""
    return np.asarray(x) * KG_TO_UMOL


def umol_m2_s_to_kg_m2_s(x):
    """CO2 molar flux µmol m-2 s-1 -> mass flux kg m-2 s-1 (× 44.01e-9)."""
    return np.asarray(x) / KG_TO_UMOL


def write_netcdf_atomic(ds: xr.Dataset, path, encoding: Mapping | None = None) -> None:
    """Write ``ds`` to a temporary file beside ``path`` then rename it, so no half-written file remains.

    Through :func:`gzcarbon.atomic.write_netcdf`: an I/O fault (disk full, permission) raises
    ``FileIOError`` naming the file and the cause."""
    from gzcarbon.atomic import write_netcdf

    write_netcdf(ds, path, encoding, engine="netcdf4")


def inventory_dataset(
    grid: Grid,
    emissions: Mapping[str, np.ndarray],
    profiles: Mapping[str, np.ndarray],
    bio_nee: np.ndarray,
    attrs: Mapping[str, object],
) -> xr.Dataset:
    """Assemble an inventory Dataset in the documented format (arrays in kg m-2 s-1, local hours)."""
    ds = xr.Dataset(
        coords={
            "lat": ("lat", grid.lat, {"units": "degrees_north", "standard_name": "latitude", "long_name": "cell centre latitude"}),
            "lon": ("lon", grid.lon, {"units": "degrees_east", "standard_name": "longitude", "long_name": "cell centre longitude"}),
            "hour": ("hour", np.arange(24, dtype=np.int32), {"long_name": "local hour of day", "units": "1"}),
        }
    )
    for s in SECTORS:
        ds[f"emi_{s}"] = (("lat", "lon"), np.asarray(emissions[s], dtype=np.float64),
                          {"units": "kg m-2 s-1", "long_name": f"annual-mean CO2 emission flux, {s}"})
        ds[f"profile_{s}"] = (("hour",), np.asarray(profiles[s], dtype=np.float64),
                              {"units": "1", "long_name": f"diurnal factor of {s} (mean 1, local time)"})
    ds["bio_nee"] = (("hour", "lat", "lon"), np.asarray(bio_nee, dtype=np.float64),
                     {"units": "kg m-2 s-1", "long_name": "biosphere net ecosystem exchange of CO2 by local hour (negative = uptake)"})
    ds.attrs.update({k: v for k, v in attrs.items()})
    ds.attrs.setdefault("Conventions", "CF-1.8")
    validate_inventory(ds, "<in memory>")
    return ds


def validate_inventory(ds: xr.Dataset, path) -> None:
    """Raise InventoryError naming ``path`` and the field when ``ds`` breaks the format."""
    fix = "See the inventory format in docs/formats.md."
    for dim in ("lat", "lon", "hour"):
        if dim not in ds.coords and dim not in ds.dims:
            raise InventoryError(f"inventory {path}: dimension `{dim}` is missing. {fix}")
    hours = np.asarray(ds["hour"].values)
    if hours.shape != (24,) or not np.array_equal(np.sort(hours), np.arange(24)):
        raise InventoryError(f"inventory {path}: `hour` must be 0..23 (local hour of day), found {hours.tolist()}. {fix}")
    for s in SECTORS:
        for name, dims in ((f"emi_{s}", ("lat", "lon")), (f"profile_{s}", ("hour",))):
            if name not in ds:
                raise InventoryError(f"inventory {path}: variable `{name}` is missing. {fix}")
            if tuple(ds[name].dims) != dims:
                raise InventoryError(f"inventory {path}: `{name}` has dims {tuple(ds[name].dims)}, expected {dims}. {fix}")
            if not np.all(np.isfinite(ds[name].values)):
                raise InventoryError(f"inventory {path}: `{name}` has NaN/inf values; fill missing cells with 0. {fix}")
        units = ds[f"emi_{s}"].attrs.get("units", "")
        if units.replace(" ", "") not in ("kgm-2s-1", "kg/m2/s", "kgm**-2s**-1"):
            raise InventoryError(
                f"inventory {path}: `emi_{s}` has units {units!r}, expected 'kg m-2 s-1'; convert the field. {fix}"
            )
        if (ds[f"emi_{s}"].values < 0).any():
            raise InventoryError(f"inventory {path}: `emi_{s}` has negative emissions. {fix}")
        prof = ds[f"profile_{s}"].values
        if (prof < 0).any() or abs(prof.mean() - 1.0) > 1e-3:
            raise InventoryError(
                f"inventory {path}: `profile_{s}` must be >= 0 with mean 1 over the 24 hours, found mean "
                f"{prof.mean():.4f}; divide it by its mean. {fix}"
            )
    if "bio_nee" not in ds:
        raise InventoryError(f"inventory {path}: variable `bio_nee` is missing (use zeros for no biosphere). {fix}")
    if set(ds["bio_nee"].dims) != {"hour", "lat", "lon"}:
        raise InventoryError(f"inventory {path}: `bio_nee` has dims {tuple(ds['bio_nee'].dims)}, expected (hour, lat, lon). {fix}")
    if not np.all(np.isfinite(ds["bio_nee"].values)):
        raise InventoryError(f"inventory {path}: `bio_nee` has NaN/inf values. {fix}")
    try:
        off = float(ds.attrs.get("utc_offset_hours", 0))
    except (TypeError, ValueError):
        raise InventoryError(f"inventory {path}: attribute `utc_offset_hours` must be a number of hours. {fix}")
    if off != round(off):
        raise InventoryError(f"inventory {path}: `utc_offset_hours` = {off} must be a whole number of hours. {fix}")


def write_inventory(ds: xr.Dataset, path) -> None:
    """Validate and write an inventory atomically (float64, zlib-compressed)."""
    validate_inventory(ds, path)
    missing = [a for a in REQUIRED_ATTRS if a not in ds.attrs]
    if missing:
        raise InventoryError(f"inventory {path}: attribute(s) {missing} missing; set them before writing")
    enc = {v: {"zlib": True, "complevel": 4} for v in ds.data_vars}
    write_netcdf_atomic(ds, path, enc)


def read_inventory(path, grid: Grid | None = None) -> xr.Dataset:
    """Read and validate an inventory (loaded in memory, lat/lon ascending, hour 0..23 sorted).

    With ``grid``, the inventory must be on exactly that grid (cell centres), otherwise an
    InventoryError names the file, the expected and found grids and what to do.
    """
    path = Path(path)
    if not path.is_file():
        raise InventoryError(
            f"inventory {path}: not found. Set config `inputs.inventory` to an EDGAR-like NetCDF (docs/formats.md) "
            "or enable the demo world (`demo.enabled: true`)."
        )
    try:
        with xr.open_dataset(path) as raw:
            ds = raw.load()
    except Exception as exc:  # netCDF4/h5 raise OSError, ValueError, ...
        raise InventoryError(f"inventory {path}: cannot be opened as NetCDF ({exc}). See docs/formats.md.") from exc
    validate_inventory(ds, path)
    ds = ds.sortby(["lat", "lon", "hour"])
    if grid is not None:
        check_inventory_grid(ds, grid, path)
    return ds


def check_inventory_grid(ds: xr.Dataset, grid: Grid, path) -> None:
    if not grid.matches(ds["lon"].values, ds["lat"].values):
        raise InventoryError(
            f"inventory {path} is on a different grid than the state grid.\n"
            f"  expected (config `grid`): {grid.describe()}\n"
            f"  found in the file:        {Grid.describe_centres(ds['lon'].values, ds['lat'].values)}\n"
            "Regrid the inventory conservatively onto the config grid (cell centres lon_min+res/2 ... ), "
            "or change config `grid` to the inventory's grid."
        )
