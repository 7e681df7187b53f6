"""The hourly prior flux on the state grid: inventory sectors × diurnal profiles + hourly power plants.

`build_prior` turns an EDGAR-like inventory (docs/formats.md; annual-mean kg m-2 s-1 with local-time
diurnal profiles and a biosphere NEE by local hour) and the power stage's hourly point sources
(``time, plant_id, lon, lat, co2_t_per_h``) into ``flux(time, lat, lon)`` in µmol m-2 s-1 over the
run's hourly axis ``[hour_start, hour_end)`` (UTC), plus one ``flux_<sector>`` field per sector
(industry, road, residential, power, bio).

Units: 1 kg CO2 = 1e9 / 44.01 µmol, so kg m-2 s-1 × 2.2722e7 = µmol m-2 s-1. A plant's t/h goes
into the cell holding it as t/h × 1e12 / 44.01 / 3600 / cell_area µmol m-2 s-1 (tested: tonnes in =
tonnes out).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from gzcarbon.grid import Grid
from gzcarbon.names import GASES
from .inventories import (cell_size, check_inventory_format, is_coarse, profiles_for, read_netcdf_inventory,
                          read_temporal_profiles, real_inventory_sectors, regrid_conservative, temporal_factors)
from .inventory import KG_TO_UMOL, M_CO2, SECTORS, InventoryError, check_inventory_grid, read_inventory

log = logging.getLogger(__name__)

POINT_COLUMNS = ("time", "plant_id", "lon", "lat", "co2_t_per_h")
ALL_SECTORS = SECTORS + ("power", "bio")
#: t/h -> µmol s-1 : 1 t = 1e6 g = 1e6/44.01 mol = 1e12/44.01 µmol, per 3600 s
T_PER_H_TO_UMOL_PER_S = 1.0e12 / M_CO2 / 3600.0


class PointSourceError(ValueError):
    """A point-source table that cannot be used; the message names the file, the field and the fix."""


def _to_utc_naive(t) -> pd.Timestamp:
    ts = pd.Timestamp(t)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts


def hourly_times(hour_start, hour_end) -> pd.DatetimeIndex:
    """The run's hourly axis: UTC hours from ``hour_start`` (inclusive) to ``hour_end`` (exclusive)."""
    t0, t1 = _to_utc_naive(hour_start), _to_utc_naive(hour_end)
    if t0 != t0.floor("h") or t1 != t1.floor("h") or t1 <= t0:
        raise ValueError(f"hour axis: need whole hours with start < end, got {hour_start!r}, {hour_end!r}")
    return pd.date_range(t0, t1, freq="h", inclusive="left").as_unit("ns")


def local_hours(times: pd.DatetimeIndex, utc_offset: int) -> np.ndarray:
    """Local hour of day (0..23) of each UTC time."""
    return ((np.asarray(times.hour) + int(utc_offset)) % 24).astype(np.int64)


def read_point_sources(path) -> pd.DataFrame:
    """Read ``point_sources.csv`` (``time, plant_id, lon, lat, co2_t_per_h``); times become UTC-naive."""
    path = Path(path)
    if not path.is_file():
        raise PointSourceError(f"point sources {path}: not found; the power stage writes it (docs/formats.md).")
    df = pd.read_csv(path)
    missing = [c for c in POINT_COLUMNS if c not in df.columns]
    if missing:
        raise PointSourceError(
            f"point sources {path}: column(s) {missing} missing; expected columns {list(POINT_COLUMNS)}."
        )
    try:
        t = pd.to_datetime(df["time"], utc=True)
    except (ValueError, TypeError) as exc:
        raise PointSourceError(f"point sources {path}: column `time` is not ISO date-times ({exc}).") from exc
    df = df.assign(time=t.dt.tz_localize(None).astype("datetime64[ns]"))
    for c in ("lon", "lat", "co2_t_per_h"):
        df[c] = pd.to_numeric(df[c], errors="coerce")
        if df[c].isna().any():
            raise PointSourceError(f"point sources {path}: column `{c}` has empty or non-numeric values.")
    if (df["co2_t_per_h"] < 0).any():
        raise PointSourceError(f"point sources {path}: `co2_t_per_h` has negative values.")
    df["plant_id"] = df["plant_id"].astype(str)
    if df.duplicated(["plant_id", "time"]).any():
        dup = df[df.duplicated(["plant_id", "time"])].iloc[0]
        raise PointSourceError(
            f"point sources {path}: plant {dup.plant_id} has two rows at {dup.time}; one row per plant and hour."
        )
    pos = df.groupby("plant_id")[["lon", "lat"]].agg(["min", "max"])
    moved = pos[(pos[("lon", "max")] - pos[("lon", "min")] > 1e-9) | (pos[("lat", "max")] - pos[("lat", "min")] > 1e-9)]
    if len(moved):
        raise PointSourceError(f"point sources {path}: plant(s) {list(moved.index)} change lon/lat between rows.")
    return df


def point_source_hourly(df: pd.DataFrame, times: pd.DatetimeIndex, path="<point sources>") -> pd.DataFrame:
    """Hourly t/h per plant on ``times`` (rows: times, columns: plant_id).

    Rows outside the axis are ignored. An hour of the axis that a plant lacks is filled with that
    plant's mean at the same UTC hour of day (else its overall mean) and logged; a table with no row
    in the axis at all is an error (it belongs to another period).
    """
    if df.empty:  # a table with a header and no plant: no power plant in the domain
        log.warning("point sources %s: no rows; the power sector is zero", path)
        return pd.DataFrame(index=times, columns=pd.Index([], name="plant_id"), dtype=float)
    inside = df[(df["time"] >= times[0]) & (df["time"] <= times[-1])]
    if inside.empty:
        raise PointSourceError(
            f"point sources {path}: no row inside the run's hours {times[0]} .. {times[-1]} (UTC); "
            "rerun the power stage for this month."
        )
    table = inside.pivot(index="time", columns="plant_id", values="co2_t_per_h").reindex(times)
    n_missing = int(table.isna().sum().sum())
    if n_missing:
        by_hour = table.groupby(table.index.hour).transform("mean")
        table = table.fillna(by_hour).fillna(table.mean())
        log.warning(
            "point sources %s: %d plant-hours of the run's axis were missing and were filled with the "
            "plant's mean at the same hour of day", path, n_missing,
        )
    return table


def grid_point_sources(df: pd.DataFrame, grid: Grid, times: pd.DatetimeIndex, path="<point sources>"):
    """(nt, ny, nx) µmol m-2 s-1 of the point sources in their cells, and the hourly t/h table used."""
    table = point_source_hourly(df, times, path)
    pos = df.drop_duplicates("plant_id").set_index("plant_id").loc[table.columns, ["lon", "lat"]]
    iy, ix, inside = grid.locate(pos["lon"].values, pos["lat"].values)
    if not inside.all():
        bad = list(pos.index[~inside])
        raise PointSourceError(
            f"point sources {path}: plant(s) {bad} lie outside the state grid ({grid.describe()}); "
            "enlarge config `grid` or remove them from the registry."
        )
    area = grid.cell_area_m2()
    out = np.zeros((len(times), grid.ny, grid.nx))
    vals = table.to_numpy(dtype=np.float64)  # (nt, n_plant) t/h
    for j in range(vals.shape[1]):  # a few plants: one += per plant, so plants sharing a cell add up
        out[:, iy[j], ix[j]] += vals[:, j] * T_PER_H_TO_UMOL_PER_S / area[iy[j], ix[j]]
    return out, table


def sector_hourly(emi_kg: np.ndarray, profile: np.ndarray, times: pd.DatetimeIndex, utc_offset: int) -> np.ndarray:
    """(nt, ny, nx) µmol m-2 s-1 = annual-mean field × diurnal factor at each UTC hour's local hour."""
    fac = np.asarray(profile, dtype=np.float64)[local_hours(times, utc_offset)]
    return fac[:, None, None] * (np.asarray(emi_kg, dtype=np.float64) * KG_TO_UMOL)[None]


def bio_hourly(bio_kg: np.ndarray, times: pd.DatetimeIndex, utc_offset: int) -> np.ndarray:
    """(nt, ny, nx) µmol m-2 s-1 of the biosphere flux by local hour."""
    return np.asarray(bio_kg, dtype=np.float64)[local_hours(times, utc_offset)] * KG_TO_UMOL


def flux_dataset(grid: Grid, times: pd.DatetimeIndex, sectors: dict[str, np.ndarray], attrs: dict,
                 gas: str = "co2") -> xr.Dataset:
    """Dataset with ``flux`` (sum of sectors, float64) and ``flux_<sector>`` (float32) in the gas's
    flux units (µmol m-2 s-1 CO2, nmol m-2 s-1 CH4 and CO; gzcarbon.names.GASES)."""
    units, label = GASES[gas]["flux_units"], GASES[gas]["label"]
    total = np.zeros((len(times), grid.ny, grid.nx))
    for arr in sectors.values():
        total += arr
    ds = xr.Dataset(
        coords={
            "time": ("time", times.values, {"standard_name": "time", "long_name": "start of the hour (UTC)"}),
            "lat": ("lat", grid.lat, {"units": "degrees_north", "standard_name": "latitude"}),
            "lon": ("lon", grid.lon, {"units": "degrees_east", "standard_name": "longitude"}),
        }
    )
    ds["flux"] = (("time", "lat", "lon"), total,
                  {"units": units, "long_name": f"{label} surface flux, all sectors (positive = emission)"})
    for name, arr in sectors.items():
        ds[f"flux_{name}"] = (("time", "lat", "lon"), arr.astype(np.float32),
                              {"units": units, "long_name": f"{label} surface flux, {name}"})
    ds["cell_area"] = (("lat", "lon"), grid.cell_area_m2(), {"units": "m2", "long_name": "cell area on the WGS84 ellipsoid"})
    ds.attrs.update(attrs)
    ds.attrs["sectors"] = ",".join(sectors)
    ds.attrs.update({k: v for k, v in zip(("grid_lon_min", "grid_lon_max", "grid_lat_min", "grid_lat_max", "grid_res"),
                                          (grid.lon_min, grid.lon_max, grid.lat_min, grid.lat_max, grid.res))})
    return ds


def flux_encoding(ds: xr.Dataset) -> dict:
    enc = {v: {"zlib": True, "complevel": 3} for v in ds.data_vars}
    enc["time"] = {"units": "hours since 2000-01-01 00:00:00", "calendar": "standard", "dtype": "int64"}
    return enc


def tonnes(flux_umol: np.ndarray, cell_area: np.ndarray, seconds: float = 3600.0) -> float:
    """Total tonnes CO2 of an hourly µmol m-2 s-1 field (nt, ny, nx) over its hours."""
    return float((np.asarray(flux_umol, dtype=np.float64).sum(axis=0) * cell_area).sum() * seconds / KG_TO_UMOL / 1e3)


@dataclass(frozen=True)
class InventoryOptions:
    """How `build_prior` reads ``inputs.inventory`` (config ``inputs``, docs/inventory.md).

    ``inventory_format``: ``auto`` (by content), ``edgar``, ``odiac``, ``cf`` or ``gzcarbon`` (the
    pipeline's own inventory.nc); ``inventory_species``: ``co2``/``ch4``/``co`` (the `emi_<species>`
    variable of EDGAR, the molar mass of molar units); ``downscale_proxy``: a GeoTIFF/NetCDF proxy
    for coarse inventories (empty: coarse cells stay flat, with a warning); ``temporal_profiles``: a
    CSV of monthly/weekday/hourly factors per sector (empty: flat, with a warning); ``bio_prior``: a
    CF NetCDF NEE field (empty: no biosphere in the prior, with a warning). Built from the typed
    config with `from_config`."""

    inventory_format: str = "auto"
    inventory_species: str = "co2"
    downscale_proxy: str = ""
    temporal_profiles: str = ""
    bio_prior: str = ""

    @classmethod
    def from_config(cls, inputs) -> "InventoryOptions":
        """From a ``gzcarbon.config.InputsConfig`` (or its dict); the keys it does not hold yet keep
        the defaults above (pending gzcarbon.config fields)."""
        get = inputs.get if hasattr(inputs, "get") else (lambda k, d=None: getattr(inputs, k, d))
        kw = {}
        for k in cls.__dataclass_fields__:
            v = get(k, None)
            if v is not None:
                kw[k] = v
        return cls(**kw)


def build_prior(inventory_path, point_sources_csv, grid: Grid, hour_start, hour_end, utc_offset: int = 8,
                options: InventoryOptions | None = None) -> xr.Dataset:
    """Hourly prior ``flux(time, lat, lon)`` µmol m-2 s-1 plus ``flux_<sector>`` on the state grid.

    The pipeline's own inventory.nc: the diurnal profiles are applied at local hour = UTC hour + the
    inventory's ``utc_offset_hours`` attribute (the time its ``hour`` axis refers to); ``utc_offset``
    is used only when the inventory has no such attribute. Any other inventory (EDGAR, ODIAC, CF
    NetCDF) goes through `real_inventory_sectors` (plants removed, conservative regridding,
    downscaling, temporal profiles at local time UTC + ``utc_offset``) with ``options``.
    """
    options = options or InventoryOptions()
    times = hourly_times(hour_start, hour_end)
    fmt = check_inventory_format(inventory_path, options.inventory_format)
    ps = read_point_sources(point_sources_csv)
    power, table = grid_point_sources(ps, grid, times, point_sources_csv)
    if fmt == "gzcarbon":
        sectors, attrs = _own_inventory_sectors(inventory_path, grid, times, utc_offset)
        sectors["power"] = power
        sectors["bio"] = sectors.pop("bio")
    else:
        plants = _plant_means(ps, table)
        sectors, attrs = real_inventory_sectors(inventory_path, fmt, grid, times, utc_offset, options, plants)
        bio = sectors.pop("bio")
        sectors["power"] = power
        sectors["bio"] = bio
    title = attrs.pop("inventory_title", "")
    attrs = {
        "title": "Hourly prior CO2 flux on the state grid",
        "source": f"inventory {inventory_path} ({title}); power point sources {point_sources_csv}",
        **attrs,
        "power_plants": ",".join(table.columns),
        "power_t_total": float(table.to_numpy().sum()),
    }
    ds = flux_dataset(grid, times, sectors, attrs)
    log.info("prior: %d hours x %d x %d cells; domain totals (t): %s", len(times), grid.ny, grid.nx,
             {k: round(tonnes(v, ds["cell_area"].values), 1) for k, v in sectors.items()})
    return ds


def _own_inventory_sectors(inventory_path, grid: Grid, times, utc_offset: int) -> tuple[dict, dict]:
    """Sectors (industry, road, residential, bio) of the pipeline's own inventory.nc."""
    inv = read_inventory(inventory_path, grid)
    off = int(round(float(inv.attrs.get("utc_offset_hours", utc_offset))))
    if off != int(utc_offset):
        log.warning("inventory %s: profiles are in UTC%+d (attribute utc_offset_hours), config says UTC%+d; "
                    "using the inventory's", inventory_path, off, int(utc_offset))
    sectors = {s: sector_hourly(inv[f"emi_{s}"].values, inv[f"profile_{s}"].values, times, off) for s in SECTORS}
    sectors["bio"] = bio_hourly(inv["bio_nee"].transpose("hour", "lat", "lon").values, times, off)
    return sectors, {"inventory_title": inv.attrs.get("title", ""), "utc_offset_hours": off}


def _plant_means(ps: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """Each plant's mean t CO2/h over the run's hours and its position (for the removal from ODIAC)."""
    pos = ps.drop_duplicates("plant_id").set_index("plant_id").loc[table.columns, ["lon", "lat"]]
    return pos.assign(t_per_h=table.mean(axis=0).reindex(pos.index).to_numpy(float))


# --------------------------------------------------------------------------------------------------
# other gases: CH4 from its own inventory, CO from the CO2 prior's combustion sectors × ratios
# --------------------------------------------------------------------------------------------------
#: kg m-2 s-1 of CH4 -> nmol m-2 s-1 : 1 kg = 1e3 g = 1e3/16.043 mol = 1e12/16.043 nmol
KG_CH4_TO_NMOL = 1.0e12 / GASES["ch4"]["molar_mass"]
_KG_UNITS = ("kgm-2s-1", "kg/m2/s", "kgm**-2s**-1", "kgm^-2s^-1", "kgch4m-2s-1")


def _gas_sector_names(ds: xr.Dataset, path) -> list[str]:
    names = [str(v)[len("emi_"):] for v in ds.data_vars if str(v).startswith("emi_")]
    if not names:
        raise InventoryError(f"CH4 inventory {path}: no variable `emi_<sector>(lat, lon)` (kg CH4 m-2 s-1); "
                             "see the CH4 inventory layout in docs/formats.md")
    return names


def _check_gas_sector(ds: xr.Dataset, sector: str, path) -> None:
    """One sector of a CH4 inventory: units kg m-2 s-1, dims, finite, >= 0, a diurnal profile of mean 1,
    an optional monthly profile (month 1..12)."""
    fix = "See the CH4 inventory layout in docs/formats.md."
    emi = ds[f"emi_{sector}"]
    units = str(emi.attrs.get("units", ""))
    if units.replace(" ", "").lower() not in _KG_UNITS:
        raise InventoryError(
            f"CH4 inventory {path}: `emi_{sector}` has units {units!r}, expected 'kg m-2 s-1' (kg of CH4); "
            f"convert the field (mol m-2 s-1 x 0.016043 = kg m-2 s-1; t m-2 yr-1 / 3.15576e4 = "
            f"kg m-2 s-1) and set its units attribute. {fix}")
    if set(emi.dims) != {"lat", "lon"}:
        raise InventoryError(f"CH4 inventory {path}: `emi_{sector}` has dims {tuple(emi.dims)}, expected (lat, lon). {fix}")
    vals = emi.values
    if not np.all(np.isfinite(vals)) or (vals < 0).any():
        raise InventoryError(f"CH4 inventory {path}: `emi_{sector}` has NaN/inf or negative values; fill "
                             f"missing cells with 0. {fix}")
    if f"profile_{sector}" not in ds:
        raise InventoryError(f"CH4 inventory {path}: `profile_{sector}(hour)` is missing (24 local-hour "
                             f"factors of mean 1; all ones for a flat sector). {fix}")
    prof = ds[f"profile_{sector}"].values
    if prof.shape != (24,) or (prof < 0).any() or abs(prof.mean() - 1.0) > 1e-3:
        raise InventoryError(f"CH4 inventory {path}: `profile_{sector}` must hold 24 factors >= 0 with mean "
                             f"1, found shape {prof.shape} and mean {np.mean(prof):.4f}. {fix}")
    mp = f"month_profile_{sector}"
    if mp in ds and (ds[mp].shape != (12,) or (ds[mp].values < 0).any() or not np.all(np.isfinite(ds[mp].values))):
        raise InventoryError(f"CH4 inventory {path}: `{mp}` must hold 12 factors >= 0 (months 1..12), "
                             f"found shape {ds[mp].shape}. {fix}")


def ch4_sectors(inventory_path, grid: Grid, times: pd.DatetimeIndex, utc_offset: int = 8,
                temporal_profiles: str = "") -> tuple[dict, dict]:
    """{sector: (nt, ny, nx) nmol m-2 s-1} of a CH4 inventory on the state grid.

    Two kinds of file, told apart by content:

    * the layout of the demo's ``inventory_ch4.nc`` (``emi_<sector>`` kg CH4 m-2 s-1 (lat, lon) on
      the state grid, ``profile_<sector>(hour)`` by local hour, optional
      ``month_profile_<sector>(month)`` for months 1..12): emi × diurnal factor × monthly factor at
      each UTC hour's local time, × 1e12/16.043;
    * a real inventory, any file without ``profile_<sector>`` variables: EDGAR (``emi_ch4`` of
      v4-v7, ``fluxes``/``emissions`` of the 2024 releases, annual or 12 months, sector files or
      TOTALS) or a CF NetCDF with flux units, read with `inversion.inventories` (units by meaning,
      conservative regridding to the state grid) and given the profiles of ``temporal_profiles``
      (the CSV layout of ``inputs.temporal_profiles``; empty: flat in time, warned), see
      `real_ch4_sectors`."""
    path = Path(inventory_path)
    if not path.is_file():
        raise InventoryError(f"CH4 inventory {path}: not found; set config inputs.inventory_ch4 (docs/formats.md) "
                             "or leave ch4 out of config species")
    try:
        with xr.open_dataset(path) as raw:
            ds = raw.load()
    except Exception as exc:  # noqa: BLE001 (netCDF4/h5 raise OSError, ValueError, ...)
        raise InventoryError(f"CH4 inventory {path}: cannot be opened as NetCDF ({exc}); see docs/formats.md") from exc
    if not any(str(v).startswith("profile_") for v in ds.data_vars):
        return real_ch4_sectors(path, ds, grid, times, utc_offset, temporal_profiles)
    ds = ds.sortby([d for d in ("lat", "lon", "hour", "month") if d in ds.dims])
    check_inventory_grid(ds, grid, path)
    off = int(round(float(ds.attrs.get("utc_offset_hours", utc_offset))))
    local = pd.DatetimeIndex(times) + pd.Timedelta(hours=off)
    out = {}
    for s in _gas_sector_names(ds, path):
        _check_gas_sector(ds, s, path)
        fac = np.asarray(ds[f"profile_{s}"].values, float)[np.asarray(local.hour)]
        if f"month_profile_{s}" in ds:
            fac = fac * np.asarray(ds[f"month_profile_{s}"].values, float)[np.asarray(local.month) - 1]
        out[s] = fac[:, None, None] * (np.asarray(ds[f"emi_{s}"].values, float) * KG_CH4_TO_NMOL)[None]
    return out, {"inventory_title": str(ds.attrs.get("title", "")), "utc_offset_hours": off}


#: EDGAR variables of other species: a CH4 inventory holding one of them is the wrong file
_OTHER_SPECIES_VARS = re.compile(r"^emi_(co2|co|n2o|nox|so2|nh3|nmvoc|pm10|pm2\.5|pm25|bc|oc|sf6)(_|$)", re.IGNORECASE)


def real_ch4_sectors(path, ds: xr.Dataset, grid: Grid, times: pd.DatetimeIndex, utc_offset: int,
                     temporal_profiles: str = "") -> tuple[dict, dict]:
    """A real CH4 inventory (EDGAR, CF NetCDF) as hourly sectors, nmol m-2 s-1, on ``grid``.

    The file's flux variables are read by `inversion.inventories.read_netcdf_inventory` with the
    species ``ch4`` (units by meaning: kg m-2 s-1, mol m-2 s-1 × 16.043 g/mol, ``Tonnes`` per cell
    and year, ...), regridded conservatively (mass in the domain kept), given the temporal profiles
    of ``temporal_profiles`` at local time UTC + ``utc_offset`` and turned from kg CH4 into nmol
    with 16.043 g/mol (`KG_CH4_TO_NMOL`). No power plants are removed (the power stage is CO2's) and
    there is no biosphere. A variable of another species (EDGAR ``emi_co2``, ...) or units that are
    not a mass or molar flux stop with the file and the variable named."""
    other = [str(v) for v in ds.data_vars if _OTHER_SPECIES_VARS.match(str(v))]
    if other:
        raise InventoryError(f"CH4 inventory {path}: variable `{other[0]}` is another species' emissions "
                             "(EDGAR names its CH4 field `emi_ch4` or `fluxes`); give the CH4 file in "
                             "config inputs.inventory_ch4")
    if "species" in ds.attrs and str(ds.attrs["species"]).strip().lower() not in ("ch4", "methane"):
        raise InventoryError(f"CH4 inventory {path}: attribute species is {ds.attrs['species']!r}, not ch4; "
                             "give the CH4 file in config inputs.inventory_ch4")
    profiles = read_temporal_profiles(temporal_profiles) if temporal_profiles else {}
    if not profiles:
        log.warning("CH4 inventory %s: no inputs.temporal_profiles_ch4: every sector is FLAT in time within "
                    "the inventory's period (year or month)", path)
    keys = pd.PeriodIndex(times, freq="M")
    fields, first = {}, None
    for per in keys.unique():
        if first is not None and first.period == "year":
            fields[per] = fields[keys[0]]
            continue
        try:
            inv = read_netcdf_inventory(path, "ch4", per.year, per.month)
        except InventoryError as exc:
            raise InventoryError(f"CH4 inventory (config inputs.inventory_ch4): {exc}") from exc
        first = first or inv
        fields[per] = {k: regrid_conservative(v, inv.lon_edges, inv.lat_edges, grid) for k, v in inv.sectors.items()}
    if is_coarse(first, grid):
        log.warning("CH4 inventory %s: cells of %.4g deg are coarser than the state grid (%.4g deg): each coarse "
                    "cell stays a FLAT block", path, cell_size(first), grid.res)
    out = {}
    for name in fields[keys[0]]:
        pr = profiles_for(profiles, name)
        fac = temporal_factors(times, utc_offset, pr.get("month") if first.period == "year" else None,
                               pr.get("weekday"), pr.get("hour")) * KG_CH4_TO_NMOL
        arr = np.empty((len(times), grid.ny, grid.nx))
        for per in keys.unique():
            sel = np.flatnonzero(keys == per)
            arr[sel] = fac[sel, None, None] * fields[per][name][None]
        out[re.sub(r"[^0-9a-zA-Z_]+", "_", str(name)).strip("_").lower() or "total"] = arr
    attrs = {"inventory_title": str(first.attrs.get("title", first.kind)), "inventory_format": first.kind,
             "inventory_period": first.period, "utc_offset_hours": int(utc_offset),
             "temporal_profiles": temporal_profiles or "flat (none given)",
             "downscaling": f"none: {cell_size(first):.4g} deg cells kept flat" if is_coarse(first, grid)
             else f"none needed (inventory cells {cell_size(first):.4g} deg)"}
    attrs["inventory_species"] = "ch4"
    return out, attrs


def build_ch4_prior(inventory_path, grid: Grid, hour_start, hour_end, utc_offset: int = 8,
                    temporal_profiles: str = "") -> xr.Dataset:
    """Hourly CH4 prior ``flux(time, lat, lon)`` nmol m-2 s-1 plus ``flux_<sector>`` (`ch4_sectors`)."""
    times = hourly_times(hour_start, hour_end)
    sectors, attrs = ch4_sectors(inventory_path, grid, times, utc_offset, temporal_profiles)
    title = attrs.pop("inventory_title", "")
    ds = flux_dataset(grid, times, sectors, {"title": "Hourly prior CH4 flux on the state grid", "gas": "ch4",
                                             "source": f"CH4 inventory {inventory_path} ({title})", **attrs}, gas="ch4")
    log.info("CH4 prior: %d hours x %d x %d cells; domain totals (t CH4): %s", len(times), grid.ny, grid.nx,
             {k: round(gas_tonnes(v, ds["cell_area"].values, "ch4"), 3) for k, v in sectors.items()})
    return ds


def build_co_prior(co2_prior_path, ratios_path) -> xr.Dataset:
    """Hourly CO prior nmol m-2 s-1 from the CO2 prior (``prior.nc``): each combustion sector
    ``flux_<sector>`` (every sector but ``bio``: the biosphere emits no CO) × its molar CO/CO2
    emission ratio (`inversion.emission_ratios`; a sector without a row stops naming the table and
    the sector)."""
    from .emission_ratios import co_sector_fluxes, read_emission_ratios

    with xr.open_dataset(co2_prior_path) as prior:
        names = [str(v)[len("flux_"):] for v in prior.data_vars
                 if str(v).startswith("flux_") and str(v) != "flux_bio" and set(prior[v].dims) == {"time", "lat", "lon"}]
        if not names:
            raise InventoryError(f"CO2 prior {co2_prior_path}: no combustion sector `flux_<sector>`; the CO prior "
                                 "needs the CO2 prior's sectors (docs/formats.md)")
        ratios = read_emission_ratios(ratios_path, sectors=names)
        co2 = {s: prior[f"flux_{s}"].values.astype(np.float64) for s in names}
        times = pd.DatetimeIndex(prior["time"].values)
        grid = Grid.from_centres(prior["lon"].values, prior["lat"].values, what=str(co2_prior_path))
    sectors = co_sector_fluxes(co2, ratios)
    attrs = {"title": "Hourly prior CO flux on the state grid", "gas": "co",
             "source": f"CO2 prior {co2_prior_path} combustion sectors x CO/CO2 emission ratios {ratios_path}",
             "emission_ratios_mol_per_mol": ", ".join(f"{s} {float(ratios.loc[s, 'ratio_mol_per_mol']):g}"
                                                      for s in names)}
    ds = flux_dataset(grid, times, sectors, attrs, gas="co")
    log.info("CO prior: domain totals (t CO): %s",
             {k: round(gas_tonnes(v, ds["cell_area"].values, "co"), 3) for k, v in sectors.items()})
    return ds


def gas_tonnes(flux: np.ndarray, cell_area: np.ndarray, gas: str, seconds: float = 3600.0) -> float:
    """Total tonnes of ``gas`` of an hourly flux field (nt, ny, nx) in the gas's units over its hours."""
    from gzcarbon.names import tonnes_per_flux_unit

    return float((np.asarray(flux, dtype=np.float64).sum(axis=0) * cell_area).sum() * seconds
                 * tonnes_per_flux_unit(gas))
