"""The nested state's outer cells in the inversion (issue 19; docs/inversion.md, "Nested outer domain").

The state holds the inner 1 km cells and, when config ``outer_grid`` is enabled, the coarse outer
cells outside the inner box (`gzcarbon.grid.NestedGrid`: within every step the inner cells
row-major, then the outer cells row-major over the outer grid without the hole).

* **Prior.** `outer_prior_flux` reads a coarse inventory (config ``inputs.outer_inventory``: EDGAR
  0.1° global ``emi_co2``, any format `inversion.inventories.read_inventory` knows, or the
  pipeline's own inventory.nc on the outer grid), regrids it conservatively onto the *full* outer
  grid (mass kept), applies ``inputs.temporal_profiles`` at local time like the inner prior (none:
  flat, warned) and sets the hole under the inner box to zero: the inner box's emissions are the
  inner prior's. Nothing is removed for the power stage's plants (they lie in the hole). An
  inventory that does not cover every outer cell stops naming the file and the uncovered cells
  (zeros there would look like a clean countryside). Without an outer inventory the outer prior is
  zero (logged warning) and σ is the floor. `add_outer_prior` writes it into prior.nc as
  ``flux_outer(time, olat, olon)`` (µmol m-2 s-1, zero in the hole) with ``outer_cell_area`` and
  the nesting attributes (``n_inner``, ``n_outer``, ``outer_lon_min`` … ``outer_res``).
* **σ.** ``outer_rel_sigma · |step mean of flux_outer| + outer_floor_sigma`` per outer cell and
  step (`outer_sigma`); correlations: exponential in km on the outer grid
  (``outer_corr_length_km``), the inner Q_t in time, no inner-outer correlation
  (`inversion.covariance.NestedKroneckerCovariance`).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import xarray as xr

from gzcarbon.grid import Grid, GridError, NestedGrid
from gzcarbon.names import tonnes_per_flux_unit

from .inventories import check_inventory_format, read_inventory, real_inventory_sectors, regrid_conservative
from .inventory import InventoryError

log = logging.getLogger(__name__)

OUTER_VAR = "flux_outer"
#: an outer state cell must be covered by the outer inventory to this fraction of its area
MIN_COVERAGE = 0.999


def check_outer_coverage(path, outer: Grid, mask: np.ndarray, year: int = 2001, month: int = 1) -> None:
    """InventoryError when the inventory at ``path`` leaves an outer state cell (``mask``) uncovered."""
    bounds = (outer.lon_min, outer.lon_max, outer.lat_min, outer.lat_max)
    inv = read_inventory(path, bounds=bounds, year=year, month=month)
    if not hasattr(inv, "lon_edges"):  # the pipeline's own inventory.nc: checked on the grid by its reader
        return
    ones = np.ones((inv.lat_edges.size - 1, inv.lon_edges.size - 1))
    cover = regrid_conservative(ones, inv.lon_edges, inv.lat_edges, outer)
    bad = mask & (cover < MIN_COVERAGE)
    if bad.any():
        iy, ix = np.nonzero(bad)
        raise InventoryError(
            f"outer inventory {path}: covers lon {inv.lon_edges.min():.4g}..{inv.lon_edges.max():.4g}, lat "
            f"{inv.lat_edges.min():.4g}..{inv.lat_edges.max():.4g}, which leaves {int(bad.sum())} of the "
            f"{int(mask.sum())} outer cells (partly) uncovered, e.g. the cell centred at "
            f"({outer.lon[ix[0]]:.3f}, {outer.lat[iy[0]]:.3f}); give config inputs.outer_inventory a file "
            f"covering the outer grid {outer.describe()} (e.g. EDGAR's global 0.1-degree emi_co2) or shrink "
            "config outer_grid")


def outer_prior_flux(path, nested: NestedGrid, times: pd.DatetimeIndex, utc_offset: int, options) -> tuple[np.ndarray, dict]:
    """(flux_outer (n_hours, ny_o, nx_o) µmol m-2 s-1 with zeros in the hole, attrs) of the outer
    inventory at ``path`` ("" or None: zeros, warned). ``options``: `inversion.prior.InventoryOptions`
    (its temporal profiles and biosphere prior are used; no downscaling proxy on the outer cells)."""
    if not nested.enabled:
        raise GridError("outer_prior_flux: config outer_grid is disabled; there are no outer cells")
    outer, mask = nested.outer, nested.outer_mask
    times = pd.DatetimeIndex(times)
    if not path:
        log.warning("no config inputs.outer_inventory: the prior of the %d outer cells is ZERO; their sigma is "
                    "inversion.outer_floor_sigma (docs/inversion.md, 'Nested outer domain')", nested.n_outer)
        return np.zeros((len(times),) + outer.shape), {"outer_inventory": "none (zeros)"}
    fmt = check_inventory_format(path, "auto")
    if fmt == "gzcarbon":
        from .prior import _own_inventory_sectors

        sectors, attrs = _own_inventory_sectors(path, outer, times, utc_offset)
    else:
        check_outer_coverage(path, outer, mask, int(times[-1].year), int(times[-1].month))
        from dataclasses import replace

        sectors, attrs = real_inventory_sectors(path, fmt, outer, times, utc_offset,
                                                replace(options, downscale_proxy=""), plants=None)
    flux = np.zeros((len(times),) + outer.shape)
    for arr in sectors.values():
        flux += arr
    flux[:, ~mask] = 0.0
    out_attrs = {"outer_inventory": str(path), "outer_inventory_format": fmt,
                 "outer_inventory_title": str(attrs.get("inventory_title", "")),
                 "outer_sectors": ",".join(sectors)}
    return flux, out_attrs


def add_outer_prior(ds: xr.Dataset, nested: NestedGrid, flux_outer: np.ndarray, attrs: dict,
                    units: str = "umol m-2 s-1") -> xr.Dataset:
    """``ds`` (prior.nc) with ``flux_outer(time, olat, olon)``, ``outer_cell_area(olat, olon)``, the
    coordinates ``olat``/``olon`` (outer cell centres) and the nesting attributes."""
    outer = nested.outer
    ds = ds.assign_coords(
        olat=("olat", outer.lat, {"units": "degrees_north", "standard_name": "latitude",
                                  "long_name": "outer cell centre latitude"}),
        olon=("olon", outer.lon, {"units": "degrees_east", "standard_name": "longitude",
                                  "long_name": "outer cell centre longitude"}))
    ds[OUTER_VAR] = (("time", "olat", "olon"), np.asarray(flux_outer, np.float64),
                     {"units": units, "long_name": "CO2 surface flux of the outer cells (zero under the inner "
                      "box, whose flux is `flux`), all sectors of the outer inventory"})
    ds["outer_cell_area"] = (("olat", "olon"), outer.cell_area_m2(),
                             {"units": "m2", "long_name": "outer cell area on the WGS84 ellipsoid"})
    ds.attrs.update(nested.attrs())
    ds.attrs.update(attrs)
    return ds


def read_outer_flux(path, what: str, hours: pd.DatetimeIndex, nested: NestedGrid) -> np.ndarray:
    """(n_hours, n_outer) float64 of ``flux_outer`` of a flux file (prior.nc, the demo truth) on
    ``hours``, in state order; errors name the file, the variable and the fix."""
    with xr.open_dataset(path) as ds:
        if OUTER_VAR not in ds:
            raise ValueError(f"{what} {path}: variable `{OUTER_VAR}(time, olat, olon)` is missing but the run has "
                             f"{nested.n_outer} outer cells (config outer_grid); rebuild it with outer_grid enabled "
                             f"(--forcerun {what})")
        da = ds[OUTER_VAR].transpose("time", "olat", "olon")
        if da.olat.size > 1 and da.olat.values[1] < da.olat.values[0]:
            da = da.isel(olat=slice(None, None, -1))
        if not nested.outer.matches(da.olon.values, da.olat.values):
            raise ValueError(f"{what} {path}: `{OUTER_VAR}` is on the outer grid "
                             f"{Grid.describe_centres(da.olon.values, da.olat.values)}, the run's outer grid is "
                             f"{nested.outer.describe()}; rebuild it with the same config outer_grid")
        t = pd.DatetimeIndex(da["time"].values)
        missing = pd.DatetimeIndex(hours).difference(t)
        if len(missing):
            raise ValueError(f"{what} {path}: `{OUTER_VAR}` lacks {len(missing)} hour(s) of the run's axis "
                             f"(first {missing[0]}); regenerate it on the hourly axis")
        vals = da.sel(time=pd.DatetimeIndex(hours)).values.astype(np.float64)
    if not np.all(np.isfinite(vals)):
        raise ValueError(f"{what} {path}: `{OUTER_VAR}` has NaN/inf values")
    return nested.outer_to_state(vals)


def outer_sigma(flux_outer_state: np.ndarray, step_hours: int, rel: float, floor: float) -> np.ndarray:
    """σ (n_step, n_outer) = rel · |mean of the hourly outer prior over each step| + floor."""
    f = np.asarray(flux_outer_state, np.float64)
    nh, n = f.shape
    n_step = -(-nh // step_hours)
    pad = n_step * step_hours - nh
    if pad:
        f = np.concatenate([f, np.full((pad, n), np.nan)])
    return rel * np.abs(np.nanmean(f.reshape(n_step, step_hours, n), axis=1)) + floor


def with_outer_prior(prior: xr.Dataset, nested: NestedGrid, outer_inventory, utc_offset: int, options) -> xr.Dataset:
    """prior.nc of `inversion.prior.build_prior` plus the outer cells' prior (unchanged when the
    nested grid has no outer domain): `outer_prior_flux` on the prior's hours, `add_outer_prior`."""
    if not nested.enabled:
        return prior
    times = pd.DatetimeIndex(prior["time"].values)
    flux, attrs = outer_prior_flux(outer_inventory, nested, times, utc_offset, options)
    out = add_outer_prior(prior, nested, flux, attrs)
    area = nested.outer.cell_area_m2()
    log.info("outer prior: %d outer cells (%s), %.4g t CO2 over %d hours", nested.n_outer, nested.outer.describe(),
             float((flux.sum(axis=0) * area).sum() * 3600.0 * tonnes_per_flux_unit("co2")), len(times))
    return out
