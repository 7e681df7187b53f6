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
* **Biosphere.** The coarse inventory has none, so the outer prior's NEE comes from its own CF
  NEE file (config ``inputs.outer_bio_prior``, e.g. CarbonTracker's 1° ``bio_flux_opt``; empty:
  ``inputs.bio_prior``), read by `inversion.inventories.nee_hourly` and regridded conservatively
  onto the outer grid; a file that does not cover every outer cell stops naming the file and the
  cells. Neither given: no outer biosphere (warned). prior.nc holds it as ``flux_outer_bio`` (part
  of ``flux_outer``).
* **σ.** ``outer_rel_sigma · |step mean of the anthropogenic outer prior| + outer_bio_rel_sigma ·
  step mean of |hourly NEE| + outer_floor_sigma`` per outer cell and step (`outer_sigma`; the
  argument for each term: docs/inversion.md, "Nested outer domain"); correlations: exponential in
  km on the outer grid (``outer_corr_length_km``), the inner Q_t in time, no inner-outer
  correlation (`inversion.covariance.NestedKroneckerCovariance`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp
import xarray as xr

from gzcarbon.grid import Grid, GridError, NestedGrid
from gzcarbon.names import tonnes_per_flux_unit

from .inventories import check_inventory_format, read_inventory, real_inventory_sectors, regrid_conservative
from .inventory import InventoryError

log = logging.getLogger(__name__)

OUTER_VAR = "flux_outer"
OUTER_BIO_VAR = "flux_outer_bio"
#: an outer state cell must be covered by the outer inventory to this fraction of its area
MIN_COVERAGE = 0.999


def check_outer_coverage(path, outer: Grid, mask: np.ndarray, year: int = 2001, month: int = 1,
                         species: str = "co2", key: str = "inputs.outer_inventory") -> None:
    """InventoryError when the inventory at ``path`` leaves an outer state cell (``mask``) uncovered."""
    bounds = (outer.lon_min, outer.lon_max, outer.lat_min, outer.lat_max)
    inv = read_inventory(path, bounds=bounds, year=year, month=month, species=species)
    return _check_cover(inv, path, outer, mask, species, key)


def _check_cover(inv, path, outer: Grid, mask: np.ndarray, species: str = "co2",
                 key: str = "inputs.outer_inventory") -> None:
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
            f"({outer.lon[ix[0]]:.3f}, {outer.lat[iy[0]]:.3f}); give config {key} a file "
            f"covering the outer grid {outer.describe()} (e.g. EDGAR's global 0.1-degree emi_{species}) or shrink "
            "config outer_grid")


def outer_bio_flux(path, nested: NestedGrid, times: pd.DatetimeIndex, what: str = "inputs.outer_bio_prior") -> np.ndarray:
    """(n_hours, ny_o, nx_o) µmol m-2 s-1 NEE of the CF NEE file ``path`` on the full outer grid
    (zeros in the hole), conservatively regridded; InventoryError naming the file when it leaves an
    outer state cell uncovered (zeros there would read as a region without vegetation)."""
    from gzcarbon.grid import edges_from_centres

    from .inventories import _lonlat, nee_hourly

    outer, mask = nested.outer, nested.outer_mask
    try:
        ds = xr.open_dataset(path)
    except Exception as exc:  # noqa: BLE001
        raise InventoryError(f"outer biosphere prior {path} (config {what}): cannot be opened as NetCDF ({exc})") from exc
    with ds:
        lo, la = _lonlat(ds, path)
        lon_e = edges_from_centres(ds[lo].values.astype(float), f"outer biosphere prior {path} {lo}", rtol=1e-4)
        lat = ds[la].values.astype(float)
        lat_e = np.sort(np.clip(edges_from_centres(lat, f"outer biosphere prior {path} {la}", rtol=1e-4), -90, 90))
    cover = regrid_conservative(np.ones((lat_e.size - 1, lon_e.size - 1)), lon_e, lat_e, outer)
    bad = mask & (cover < MIN_COVERAGE)
    if bad.any():
        iy, ix = np.nonzero(bad)
        raise InventoryError(
            f"outer biosphere prior {path} (config {what}): covers lon {lon_e.min():.4g}..{lon_e.max():.4g}, lat "
            f"{lat_e.min():.4g}..{lat_e.max():.4g}, which leaves {int(bad.sum())} of the {int(mask.sum())} outer "
            f"cells (partly) uncovered, e.g. the cell centred at ({outer.lon[ix[0]]:.3f}, {outer.lat[iy[0]]:.3f}); "
            f"give a NEE file covering the outer grid {outer.describe()} (e.g. CarbonTracker's global 1-degree "
            "bio_flux_opt) or shrink config outer_grid")
    bio = nee_hourly(path, outer, pd.DatetimeIndex(times))
    bio[:, ~mask] = 0.0
    return bio


def outer_prior_flux(path, nested: NestedGrid, times: pd.DatetimeIndex, utc_offset: int, options,
                     bio_path: str = "") -> tuple[np.ndarray, np.ndarray, dict]:
    """(flux_outer, flux_outer_bio, attrs): (n_hours, ny_o, nx_o) µmol m-2 s-1 with zeros in the
    hole, the total (anthropogenic + biosphere) and its biosphere part. The anthropogenic part from
    the outer inventory at ``path`` ("" or None: zeros, warned; ``options``:
    `inversion.prior.InventoryOptions`, its temporal profiles; no downscaling proxy on the outer
    cells); the biosphere from the CF NEE file ``bio_path`` (config ``inputs.outer_bio_prior``), else
    ``options.bio_prior``, else the pipeline's own inventory's ``bio_nee``, else zeros (warned)."""
    if not nested.enabled:
        raise GridError("outer_prior_flux: config outer_grid is disabled; there are no outer cells")
    outer, mask = nested.outer, nested.outer_mask
    times = pd.DatetimeIndex(times)
    shape = (len(times),) + outer.shape
    sectors, out_attrs = {}, {"outer_inventory": "none (zeros)"}
    bio_file = bio_path or getattr(options, "bio_prior", "") or ""
    bio, fmt = None, None
    if bio_file:
        bio = outer_bio_flux(bio_file, nested, times, "inputs.outer_bio_prior" if bio_path else "inputs.bio_prior")
        out_attrs["outer_bio_prior"] = str(bio_file)
    if not path:
        log.warning("no config inputs.outer_inventory: the anthropogenic prior of the %d outer cells is ZERO; "
                    "their sigma is the biosphere's and inversion.outer_floor_sigma (docs/inversion.md, "
                    "'Nested outer domain')", nested.n_outer)
    else:
        fmt = check_inventory_format(path, "auto")
        if fmt == "gzcarbon":
            from .prior import _own_inventory_sectors

            sectors, attrs = _own_inventory_sectors(path, outer, times, utc_offset)
        else:
            check_outer_coverage(path, outer, mask, int(times[-1].year), int(times[-1].month))
            from dataclasses import replace

            sectors, attrs = real_inventory_sectors(path, fmt, outer, times, utc_offset,
                                                    replace(options, downscale_proxy="", bio_prior=bio_file),
                                                    plants=None)
        out_attrs.update({"outer_inventory": str(path), "outer_inventory_format": fmt,
                          "outer_inventory_title": str(attrs.get("inventory_title", ""))})
    if bio is None and fmt == "gzcarbon":  # the pipeline's own inventory.nc on the outer grid carries bio_nee
        bio = np.asarray(sectors["bio"], np.float64)
        out_attrs["outer_bio_prior"] = f"bio_nee of {path}"
    elif bio is None:
        log.warning("no config inputs.outer_bio_prior (nor inputs.bio_prior): the outer prior has NO biosphere; "
                    "give a CF NEE file covering the outer grid, e.g. CarbonTracker's bio_flux_opt "
                    "(docs/inversion.md, 'Nested outer domain')")
        bio = np.zeros(shape)
        out_attrs["outer_bio_prior"] = "none (zeros)"
    sectors.pop("bio", None)  # the inventory reader's copy of the same NEE (or its zeros)
    flux = np.zeros(shape)
    for arr in sectors.values():
        flux += arr
    bio = np.array(bio, np.float64)
    bio[:, ~mask] = 0.0
    flux += bio
    flux[:, ~mask] = 0.0
    out_attrs["outer_sectors"] = ",".join(list(sectors) + ["bio"])
    return flux, bio, out_attrs


def add_outer_prior(ds: xr.Dataset, nested: NestedGrid, flux_outer: np.ndarray, attrs: dict,
                    units: str = "umol m-2 s-1", bio_outer: np.ndarray | None = None, gas: str = "co2") -> xr.Dataset:
    """``ds`` (prior.nc) with ``flux_outer(time, olat, olon)`` (and its biosphere part
    ``flux_outer_bio`` when given), ``outer_cell_area(olat, olon)``, the coordinates
    ``olat``/``olon`` (outer cell centres) and the nesting attributes."""
    outer = nested.outer
    ds = ds.assign_coords(
        olat=("olat", outer.lat, {"units": "degrees_north", "standard_name": "latitude",
                                  "long_name": "outer cell centre latitude"}),
        olon=("olon", outer.lon, {"units": "degrees_east", "standard_name": "longitude",
                                  "long_name": "outer cell centre longitude"}))
    ds[OUTER_VAR] = (("time", "olat", "olon"), np.asarray(flux_outer, np.float64),
                     {"units": units, "long_name": f"{gas.upper()} surface flux of the outer cells (zero under the "
                      "inner box, whose flux is `flux`), all sectors of the outer inventory"
                      + (" + the biosphere" if gas == "co2" else "")})
    if bio_outer is not None:
        ds[OUTER_BIO_VAR] = (("time", "olat", "olon"), np.asarray(bio_outer, np.float64),
                             {"units": units, "long_name": "biosphere NEE part of flux_outer (outer biosphere prior)"})
    ds["outer_cell_area"] = (("olat", "olon"), outer.cell_area_m2(),
                             {"units": "m2", "long_name": "outer cell area on the WGS84 ellipsoid"})
    ds.attrs.update(nested.attrs())
    ds.attrs.update(attrs)
    return ds


def read_outer_flux(path, what: str, hours: pd.DatetimeIndex, nested: NestedGrid,
                    var: str = OUTER_VAR) -> np.ndarray:
    """(n_hours, n_outer) float64 of ``var`` (``flux_outer``) of a flux file (prior.nc, the demo
    truth) on ``hours``, in state order; errors name the file, the variable and the fix."""
    with xr.open_dataset(path) as ds:
        if var not in ds:
            raise ValueError(f"{what} {path}: variable `{var}(time, olat, olon)` is missing but the run has "
                             f"{nested.n_outer} outer cells (config outer_grid); rebuild it with outer_grid enabled "
                             f"(--forcerun {what})")
        da = ds[var].transpose("time", "olat", "olon")
        if da.olat.size > 1 and da.olat.values[1] < da.olat.values[0]:
            da = da.isel(olat=slice(None, None, -1))
        if not nested.outer.matches(da.olon.values, da.olat.values):
            raise ValueError(f"{what} {path}: `{var}` is on the outer grid "
                             f"{Grid.describe_centres(da.olon.values, da.olat.values)}, the run's outer grid is "
                             f"{nested.outer.describe()}; rebuild it with the same config outer_grid")
        t = pd.DatetimeIndex(da["time"].values)
        missing = pd.DatetimeIndex(hours).difference(t)
        if len(missing):
            raise ValueError(f"{what} {path}: `{var}` lacks {len(missing)} hour(s) of the run's axis "
                             f"(first {missing[0]}); regenerate it on the hourly axis")
        vals = da.sel(time=pd.DatetimeIndex(hours)).values.astype(np.float64)
    if not np.all(np.isfinite(vals)):
        raise ValueError(f"{what} {path}: `{var}` has NaN/inf values")
    return nested.outer_to_state(vals)


def _step_means(f: np.ndarray, step_hours: int) -> np.ndarray:
    nh, n = f.shape
    n_step = -(-nh // step_hours)
    pad = n_step * step_hours - nh
    if pad:
        f = np.concatenate([f, np.full((pad, n), np.nan)])
    return np.nanmean(f.reshape(n_step, step_hours, n), axis=1)


def outer_sigma(flux_outer_state: np.ndarray, step_hours: int, rel: float, floor: float,
                bio_state: np.ndarray | None = None, bio_rel: float = 0.0) -> np.ndarray:
    """σ (n_step, n_outer) of the outer cells' correction per step.

    Without ``bio_state``: rel · |step mean of the hourly outer prior| + floor. With the prior's
    biosphere part ``bio_state`` (same shape, inside ``flux_outer_state``): rel · |step mean of the
    anthropogenic part (total − bio)| + bio_rel · step mean of |hourly NEE| + floor: uptake does not
    cancel the inventory's σ, and a step where respiration and uptake cancel on average still has
    the error of both (docs/inversion.md, "Nested outer domain")."""
    f = np.asarray(flux_outer_state, np.float64)
    if bio_state is None:
        return rel * np.abs(_step_means(f, step_hours)) + floor
    b = np.asarray(bio_state, np.float64)
    if b.shape != f.shape:
        raise ValueError(f"outer biosphere prior has shape {b.shape}, the outer prior {f.shape}")
    return (rel * np.abs(_step_means(f - b, step_hours)) + float(bio_rel) * _step_means(np.abs(b), step_hours)
            + floor)


def with_outer_prior(prior: xr.Dataset, nested: NestedGrid, outer_inventory, utc_offset: int, options,
                     outer_bio_prior: str = "") -> xr.Dataset:
    """prior.nc of `inversion.prior.build_prior` plus the outer cells' prior (unchanged when the
    nested grid has no outer domain): `outer_prior_flux` on the prior's hours, `add_outer_prior`."""
    if not nested.enabled:
        return prior
    times = pd.DatetimeIndex(prior["time"].values)
    flux, bio, attrs = outer_prior_flux(outer_inventory, nested, times, utc_offset, options, outer_bio_prior)
    out = add_outer_prior(prior, nested, flux, attrs, bio_outer=bio)
    area = nested.outer.cell_area_m2()
    t = 3600.0 * tonnes_per_flux_unit("co2")
    log.info("outer prior: %d outer cells (%s), %.4g t CO2 over %d hours, of which biosphere %.4g t", nested.n_outer,
             nested.outer.describe(), float((flux.sum(axis=0) * area).sum() * t), len(times),
             float((bio.sum(axis=0) * area).sum() * t))
    return out


# --------------------------------------------------------------------------------------------------
# CH4 and CO of the outer cells (docs/gases.md, "CH4 and CO of the delta's neighbours")
# --------------------------------------------------------------------------------------------------
#: config key of each gas's coarse outer inventory
GAS_OUTER_KEY = {"ch4": "inputs.outer_inventory_ch4", "co": "inputs.outer_inventory_co"}


def _check_gas_variables(path, gas: str, key: str) -> None:
    """InventoryError when the file holds EDGAR fields of another species only (``emi_co2`` given
    for CH4, ...): one message naming the file, the field and the fix."""
    try:
        ds = xr.open_dataset(path)
    except Exception as exc:  # noqa: BLE001
        raise InventoryError(f"outer {gas.upper()} inventory {path} (config {key}): cannot be opened as NetCDF "
                             f"({exc})") from exc
    with ds:
        emi = [str(v) for v in ds.data_vars if str(v).startswith("emi_")]
    if emi and not any(v == f"emi_{gas}" or v.startswith(f"emi_{gas}_") for v in emi):
        raise InventoryError(f"outer {gas.upper()} inventory {path} (config {key}): field(s) {emi} hold another "
                             f"species; give a {gas.upper()} file with `emi_{gas}` (kg m-2 s-1), e.g. EDGAR's "
                             f"global 0.1-degree {gas.upper()} TOTALS")


def outer_gas_prior_flux(path, gas: str, nested: NestedGrid, times: pd.DatetimeIndex,
                         key: str | None = None) -> tuple[np.ndarray, dict]:
    """(flux_outer (n_hours, ny_o, nx_o) nmol m-2 s-1 with zeros in the hole, attrs) of CH4 or CO from
    a coarse inventory (EDGAR ``emi_ch4`` / ``emi_co`` of the TOTALS files, annual or monthly, or a CF
    field with mass or molar flux units; `inversion.inventories.read_inventory`) regridded
    conservatively onto the outer grid (mass kept), flat in time (EDGAR's annual or monthly mean:
    the coarse prior has no diurnal cycle). A file that leaves an outer cell uncovered, holds another
    species or has units that are not a flux stops naming the file and the field."""
    from gzcarbon.names import GASES

    key = key or GAS_OUTER_KEY.get(gas, f"inputs.outer_inventory_{gas}")
    if not nested.enabled:
        raise GridError("outer_gas_prior_flux: config outer_grid is disabled; there are no outer cells")
    times = pd.DatetimeIndex(times)
    outer, mask = nested.outer, nested.outer_mask
    _check_gas_variables(path, gas, key)
    try:
        inv = read_inventory(path, species=gas, year=int(times[-1].year), month=int(times[-1].month))
    except InventoryError as exc:
        raise InventoryError(f"outer {gas.upper()} inventory (config {key}): {exc}") from None
    if not hasattr(inv, "lon_edges"):
        raise InventoryError(f"outer {gas.upper()} inventory {path} (config {key}): is in the pipeline's own "
                             f"inventory.nc layout; the outer cells need a coarse field (EDGAR `emi_{gas}` or a CF "
                             "flux variable with units such as 'kg m-2 s-1')")
    _check_cover(inv, path, outer, mask, gas, key)
    kg = sum(regrid_conservative(v, inv.lon_edges, inv.lat_edges, outer) for v in inv.sectors.values())
    nmol = np.asarray(kg, np.float64) * 1e12 / float(GASES[gas]["molar_mass"])
    nmol[~mask] = 0.0
    flux = np.broadcast_to(nmol, (len(times),) + outer.shape).copy()
    attrs = {"outer_inventory": str(path), "outer_inventory_format": inv.kind,
             "outer_sectors": ",".join(inv.sectors), "outer_units": GASES[gas]["flux_units"]}
    return flux, attrs


def with_outer_gas_prior(prior: xr.Dataset, nested: NestedGrid, path, gas: str) -> xr.Dataset:
    """A gas prior.nc (`inversion.prior.build_ch4_prior` / `build_co_prior`) plus ``flux_outer`` of the
    outer cells from the coarse inventory ``path`` (`outer_gas_prior_flux`); unchanged on the single
    grid. No file on a nested grid: zeros, warned (σ is the gas's outer floor)."""
    from gzcarbon.names import GASES, tonnes_per_flux_unit

    if not nested.enabled:
        return prior
    times = pd.DatetimeIndex(prior["time"].values)
    units = GASES[gas]["flux_units"]
    if not path:
        log.warning("no config %s: the %s prior of the %d outer cells is ZERO; their sigma is "
                    "gases.%s.outer_floor_sigma (docs/gases.md)", GAS_OUTER_KEY.get(gas), gas.upper(), nested.n_outer,
                    gas)
        flux, attrs = np.zeros((len(times),) + nested.outer.shape), {"outer_inventory": "none (zeros)"}
    else:
        flux, attrs = outer_gas_prior_flux(path, gas, nested, times)
    out = add_outer_prior(prior, nested, flux, attrs, units=units, gas=gas)
    t = 3600.0 * tonnes_per_flux_unit(gas)
    log.info("outer %s prior: %d outer cells (%s), %.4g t %s over %d hours", gas.upper(), nested.n_outer,
             nested.outer.describe(), float((flux.sum(axis=0) * nested.outer.cell_area_m2()).sum() * t),
             gas.upper(), len(times))
    return out


# --------------------------------------------------------------------------------------------------
# the nested state in the inversion: inputs, H and Q, aggregation rows, outputs
# --------------------------------------------------------------------------------------------------
@dataclass
class OuterInputs:
    """What the inversion knows of the outer cells: the nesting, the hourly prior (n_hours, n_outer)
    in state order, the demo truth (same shape, or None) and the neighbours' geometry (names, kinds
    and the fraction of every state cell, inner and outer, inside each; none: the ring total only)."""

    nested: NestedGrid
    prior: np.ndarray
    truth: np.ndarray | None = None
    neighbour_names: list = field(default_factory=list)
    neighbour_kinds: list = field(default_factory=list)
    neighbour_fractions: sp.csr_matrix | None = None
    #: the prior's biosphere part (n_hours, n_outer) in state order, inside ``prior`` (None: none)
    prior_bio: np.ndarray | None = None

    @property
    def n_outer(self) -> int:
        return self.nested.n_outer

    @property
    def n_cells(self) -> int:
        return self.nested.n_cells


def hourly_state(inner_hourly: np.ndarray, outer_hourly: np.ndarray | None) -> np.ndarray:
    """The hourly state vector (hour · n_cells + cell) of an inner field (n_hours, ny, nx) and the
    outer cells' (n_hours, n_outer) (None: the inner field alone)."""
    f = np.asarray(inner_hourly, np.float64)
    flat = f.reshape(f.shape[0], -1)
    if outer_hourly is None:
        return flat.ravel()
    return np.concatenate([flat, np.asarray(outer_hourly, np.float64)], axis=1).ravel()


def split_columns(H, n_inner: int, n_cells: int, n_hours: int) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """(H_inner, H_outer) of an hourly Jacobian whose columns are hour · n_cells + cell: the inner
    columns re-indexed hour · n_inner + cell, the outer ones hour · n_outer + (cell − n_inner)."""
    H = sp.coo_matrix(H)
    h, c = np.divmod(H.col.astype(np.int64), n_cells)
    n_outer = n_cells - n_inner
    inner = c < n_inner
    Hi = sp.csr_matrix((H.data[inner], (H.row[inner], h[inner] * n_inner + c[inner])),
                       shape=(H.shape[0], n_hours * n_inner))
    o = ~inner
    Ho = sp.csr_matrix((H.data[o], (H.row[o], h[o] * n_outer + c[o] - n_inner)),
                       shape=(H.shape[0], n_hours * n_outer))
    return Hi, Ho


def nested_covariance(sigma_inner, lat_edges, lon_edges, outer: OuterInputs, cfg, step: int, extra):
    """`NestedKroneckerCovariance` of the nested state: the inner σ and correlations as for the
    single grid, the outer σ from `outer_sigma` (``inversion.outer_rel_sigma``,
    ``outer_bio_rel_sigma``, ``outer_floor_sigma``) and the outer correlation length ``inversion.outer_corr_length_km`` on the outer grid."""
    from .covariance import NestedKroneckerCovariance, grid_spacing_km

    dx, dy = grid_spacing_km(lat_edges, lon_edges)
    o = outer.nested.outer
    dxo, dyo = grid_spacing_km(o.lat_edges, o.lon_edges)
    sig_out = outer_sigma(outer.prior, step, float(cfg.outer_rel_sigma), float(cfg.outer_floor_sigma),
                          bio_state=outer.prior_bio, bio_rel=float(getattr(cfg, "outer_bio_rel_sigma", 0.0)))
    return NestedKroneckerCovariance(sigma_inner, dx, dy, float(cfg.corr_length_km), step,
                                     float(cfg.corr_time_hours), sig_out, outer.nested.outer_mask, dxo, dyo,
                                     float(cfg.outer_corr_length_km), extra_sigma=extra,
                                     diurnal_corr=float(cfg.diurnal_corr))


RING = "outer ring"


def outer_weights(outer: OuterInputs, gas_scale: float = 1.0) -> tuple[list, list, sp.csr_matrix]:
    """(names, kinds, W): the rows of the outer table over the nested state, m² weights (× the gas's
    tonnes factor ``gas_scale`` relative to CO2): the outer ring (every outer cell, whole area) and
    each neighbour (fraction of every state cell inside it × area, inner and outer cells)."""
    area = outer.nested.cell_area_m2()
    n_inner = outer.nested.n_inner
    ring = np.zeros(outer.n_cells)
    ring[n_inner:] = area[n_inner:]
    rows = [sp.csr_matrix(ring[None, :])]
    names, kinds = [RING], ["ring"]
    if outer.neighbour_fractions is not None and len(outer.neighbour_names):
        M = sp.csr_matrix(outer.neighbour_fractions, dtype=np.float64)
        if M.shape[1] != outer.n_cells:
            raise ValueError(f"neighbour matrix has {M.shape[1]} cells, the nested state {outer.n_cells}")
        rows.append(M @ sp.diags(area))
        names += list(outer.neighbour_names)
        kinds += list(outer.neighbour_kinds)
    return names, kinds, (sp.vstack(rows, format="csr") * gas_scale).tocsr()


def outer_cell_rows(n_inner: int, n_outer: int) -> sp.csr_matrix:
    """(n_outer × n_cells) unit rows: each outer cell's own value (for its period-mean σ)."""
    return sp.csr_matrix((np.ones(n_outer), (np.arange(n_outer), n_inner + np.arange(n_outer))),
                         shape=(n_outer, n_inner + n_outer))


def take_tail_rows(res, n_keep: int) -> dict | None:
    """Take the aggregate rows after the first ``n_keep`` off an `InversionResult` (in place, like
    `inversion.sequential.split_unit_rows`) and return their prior/posterior means and covariance
    block; None when there are none."""
    if res.agg_post_cov is None or res.agg_post_cov.shape[0] == n_keep:
        return None
    tail = slice(n_keep, None)
    out = {"prior_mean": np.asarray(res.agg_prior_mean[tail], float).copy(),
           "post_mean": np.asarray(res.agg_post_mean[tail], float).copy(),
           "prior_cov": np.asarray(res.agg_prior_cov[tail, tail], float).copy(),
           "post_cov": np.asarray(res.agg_post_cov[tail, tail], float).copy()}
    res.agg_prior_mean = res.agg_prior_mean[:n_keep]
    res.agg_post_mean = res.agg_post_mean[:n_keep]
    res.agg_prior_cov = res.agg_prior_cov[:n_keep, :n_keep]
    res.agg_post_cov = res.agg_post_cov[:n_keep, :n_keep]
    if res.agg_post_cov_subsets:
        res.agg_post_cov_subsets = {k: v[:n_keep, :n_keep] for k, v in res.agg_post_cov_subsets.items()}
    if res.agg_post_mean_ensemble is not None:
        out["post_mean_ensemble"] = np.asarray(res.agg_post_mean_ensemble[tail], float).copy()
        res.agg_post_mean_ensemble = res.agg_post_mean_ensemble[:n_keep]
    return out


def outer_table(names, kinds, W_hourly_t, prior_hourly, post_hourly, truth_hourly, mask, tail: dict) -> pd.DataFrame:
    """outer.csv: the outer ring and each neighbour, prior / posterior / σ (t over the period) and
    the demo truth. ``W_hourly_t``: (n_rows × n_cells) weights in t per (flux unit · hour);
    ``*_hourly``: (n_hours, n_cells) state fields (truth None: NaN)."""
    m = np.asarray(mask, bool)

    def tot(f):
        return np.asarray(W_hourly_t @ np.asarray(f, float)[m].sum(axis=0)).ravel()

    prior_t = tot(prior_hourly)
    return pd.DataFrame({
        "name": list(names), "kind": list(kinds), "prior_t": prior_t, "posterior_t": tot(post_hourly),
        "prior_sigma_t": np.sqrt(np.maximum(np.diag(tail["prior_cov"]), 0)),
        "posterior_sigma_t": np.sqrt(np.maximum(np.diag(tail["post_cov"]), 0)),
        "truth_t": tot(truth_hourly) if truth_hourly is not None else np.full(len(names), np.nan)})


def outer_signal_shares(sites, prior_total, prior_outer, post_total, post_outer) -> dict:
    """{site: {"prior": Σ H_outer x_a / Σ H x_a, "posterior": the same of x̂, sums in ppm}} over the
    site's observations: the share of the modelled enhancement from the outer cells."""
    sites = np.asarray(sites).astype(str)
    out = {}
    for s in sorted(set(sites)):
        k = sites == s
        pt, po = float(np.sum(prior_total[k])), float(np.sum(prior_outer[k]))
        qt, qo = float(np.sum(post_total[k])), float(np.sum(post_outer[k]))
        out[s] = {"prior": po / pt if pt != 0 else float("nan"), "posterior": qo / qt if qt != 0 else float("nan"),
                  "prior_outer_ppm_sum": po, "prior_total_ppm_sum": pt,
                  "posterior_outer_ppm_sum": qo, "posterior_total_ppm_sum": qt, "n_obs": int(k.sum())}
    return out


def outer_columns(n_state: int, n_flux: int, n_cells: int, n_inner: int) -> np.ndarray:
    """Indices of the outer cells' state elements (every step) among ``n_state``."""
    c = np.arange(n_flux)
    return c[c % n_cells >= n_inner]


def outer_diagnostics(table: pd.DataFrame, prob, modelled: pd.DataFrame, used) -> dict:
    """diagnostics.json entries of the nested state: ``n_outer_cells``, per site
    ``outer_signal_share`` (`outer_signal_shares` over the observations the solve used, prior and
    posterior) and ``outer_totals`` (the rows of outer.csv)."""
    m = modelled[np.asarray(used, bool)]
    prior_total = (m["prior_model"] - m["background_prior"]).to_numpy(float)
    post_total = (m["posterior_model"] - m["background_posterior"]).to_numpy(float)
    shares = outer_signal_shares(m["site"].to_numpy(), prior_total, m["prior_outer"].to_numpy(float),
                                 post_total, m["posterior_outer"].to_numpy(float))
    return {"n_outer_cells": int(prob.n_outer), "outer_signal_share": shares,
            "outer_totals": table.to_dict("records")}


def add_outer_posterior(ds: xr.Dataset, outer: OuterInputs, prob, post, tail: dict, gas: str = "co2") -> xr.Dataset:
    """posterior.nc with the outer cells (their own grid variables ``olat``/``olon``, the hole NaN):
    ``prior_flux_outer``/``posterior_flux_outer`` (time, olat, olon), ``correction_outer`` (step,
    olat, olon) and the exact prior/posterior σ of each outer cell's period-mean flux."""
    from gzcarbon.names import GASES

    ng = outer.nested
    fu = {"units": GASES[gas]["flux_units"]}
    label = GASES[gas]["label"]
    ds = ds.assign_coords(
        olat=("olat", ng.outer.lat, {"units": "degrees_north", "standard_name": "latitude"}),
        olon=("olon", ng.outer.lon, {"units": "degrees_east", "standard_name": "longitude"}))
    nan = float("nan")
    hole = " (NaN under the inner box, whose cells are `lat`/`lon`)"
    ds["prior_flux_outer"] = (("time", "olat", "olon"), ng.outer_from_state(outer.prior, nan).astype(np.float32),
                              {**fu, "long_name": f"prior {label} flux of the outer cells" + hole})
    ds["posterior_flux_outer"] = (("time", "olat", "olon"), ng.outer_from_state(post.flux_outer, nan).astype(np.float32),
                                  {**fu, "long_name": f"posterior {label} flux of the outer cells = prior + "
                                   "correction of its step" + hole})
    ds["correction_outer"] = (("step", "olat", "olon"), ng.outer_from_state(post.correction_outer, nan).astype(np.float32),
                              {**fu, "long_name": "posterior flux correction of the outer cells"})
    for key, what in (("cell_var_prior", "prior"), ("cell_var_post", "posterior")):
        sd = np.sqrt(np.maximum(tail[key], 0))
        ds[f"{what}_sigma_outer"] = (("olat", "olon"), ng.outer_from_state(sd, nan),
                                     {**fu, "long_name": f"{what} sigma of the period-mean flux of the outer cell (exact)"})
    ds.attrs.update(ng.attrs())
    return ds
