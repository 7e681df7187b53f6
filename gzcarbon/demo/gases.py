"""The demo world's other gases: the CH4 inventory and truth, the CO truth (issue 20).

Units (the contract the gas stages code against): fluxes in nmol m-2 s-1 on the state grid, so the
CO2 footprints (ppm per µmol m-2 s-1) give ppb unchanged; mole fractions in ppb; totals in tonnes of
the gas (CH4 16.043, CO 28.010 g/mol).

``inventory_ch4.nc`` has the layout of ``inventory.nc`` (docs/formats.md): ``emi_<sector>(lat, lon)``
annual-mean CH4 emission in kg m-2 s-1, ``profile_<sector>(hour)`` diurnal factors (mean 1, local
time), and for seasonal sectors ``month_profile_<sector>(month)`` (month 1..12, mean 1). The flux of
a sector at a UTC hour is ``emi × month_profile[local month] × profile[local hour]``; there is no
``bio_nee`` (wetlands and termites are left out).

The CH4 sectors and their spatial proxies (all totals approx., docs/demo.md):

- landfill: the city's landfills `LANDFILLS` (Gaussian blobs, positions approx.);
- wastewater: the large treatment plants `WASTEWATER_PLANTS` plus sewers and septic tanks with urban
  density;
- rice and aquaculture (ponds with the rest of agriculture and livestock): district weights
  `RICE_WEIGHT`, `AQUACULTURE_WEIGHT` × the non-urban share of a cell;
- gas_distribution: natural-gas network leaks with urban density;
- combustion: 40 % industry, 30 % road, 30 % residential proxy of the CO2 inventory.

The CO truth has no inventory of its own: it is the CO2 truth's combustion sectors × the true
emission ratios (the prior table's × (1 + the registered error)), so the CO2 truth's own errors
(district biases, the unreported site, power factor, road profile, texture) carry over.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import scipy.sparse as sp
import xarray as xr

from gzcarbon.demo.inventory import (
    _blob,
    _centres_2d,
    _norm_profile,
    PROFILES,
    UTC_OFFSET,
    background_series,
    city_fraction,
    district_weight_map,
    industry_proxy,
    road_proxy,
    urban_density,
)
from gzcarbon.demo.truth_errors import GAS_TRUTH_ERRORS
from gzcarbon.grid import Grid
from inversion.emission_ratios import ratio_map
from inversion.inventory import SECONDS_PER_YEAR
from inversion.prior import hourly_times, local_hours

log = logging.getLogger(__name__)

MOLAR_MASS = {"ch4": 16.043, "co": 28.010}
#: kg of the gas -> nmol: 1 kg = 1e3 / M mol = 1e12 / M nmol
KG_TO_NMOL = {g: 1.0e12 / m for g, m in MOLAR_MASS.items()}

CH4_SECTORS = ("landfill", "wastewater", "rice", "aquaculture", "gas_distribution", "combustion")
#: CH4 annual totals inside the 11 districts, kt CH4/yr (sum 200 kt ≈ 5.6 Mt CO2e at GWP100 28).
#: approx.: a Chinese megacity of ~19 million with most waste landfilled until ~2020 (Xingfeng alone
#: takes up to 10 000 t/day, C40 case study), some double-crop rice and fish ponds in the outer
#: districts, and a gas network of a large city. Demo values, not an inventory of Guangzhou.
CH4_TOTALS_KT = {"landfill": 80.0, "wastewater": 25.0, "rice": 25.0, "aquaculture": 20.0,
                 "gas_distribution": 30.0, "combustion": 20.0}
#: Sectors with a month profile.
SEASONAL = ("rice", "aquaculture")

#: Landfills: (name, district, lon, lat, sigma_km, share of the landfill sector, basis). Positions
#: approx. (±2 km); shares approx. (by the waste each received).
LANDFILLS = [
    ("Xingfeng landfill (+ emergency cell 2018)", "Baiyun", 113.40, 23.31, 0.6, 0.60,
     "Taihe, Baiyun; 91.7 ha, up to 10 000 t/day, biogas 26.3 million Nm3/yr at 52-55 % CH4 "
     "(C40 case study 'Solid waste disposal project in Guangzhou')"),
    ("Likeng landfill (closed)", "Baiyun", 113.36, 23.27, 0.4, 0.12,
     "old landfill beside the Likeng waste-to-energy plant, Baiyun, ~23 km from the centre "
     "(China Daily 2007-10-23)"),
    ("Panyu landfill", "Panyu", 113.36, 22.99, 0.4, 0.10, "position assumed (no public coordinates found)"),
    ("Huadu landfill", "Huadu", 113.17, 23.43, 0.4, 0.08, "position assumed (no public coordinates found)"),
    ("Zengcheng landfill", "Zengcheng", 113.78, 23.25, 0.4, 0.06, "position assumed (no public coordinates found)"),
    ("Conghua landfill", "Conghua", 113.55, 23.58, 0.4, 0.04, "position assumed (no public coordinates found)"),
]
#: Large wastewater treatment plants: (name, lon, lat, sigma_km, share); the rest (SEWER_SHARE)
#: with urban density. Positions approx.
WASTEWATER_PLANTS = [
    ("Liede WWTP", 113.34, 23.12, 0.5, 0.25),
    ("Datansha WWTP", 113.22, 23.12, 0.5, 0.12),
    ("Lijiao WWTP", 113.31, 23.07, 0.5, 0.12),
    ("Xilang WWTP", 113.23, 23.07, 0.5, 0.08),
    ("Jingxi WWTP", 113.31, 23.18, 0.5, 0.05),
]
SEWER_SHARE = 0.38
#: Paddy weight per district (before the non-urban share); cells outside the city: RICE_OUTSIDE.
RICE_WEIGHT = {"Conghua": 1.0, "Zengcheng": 1.0, "Huadu": 0.8, "Nansha": 0.7, "Panyu": 0.4,
               "Baiyun": 0.3, "Huangpu": 0.2}
RICE_OUTSIDE = 0.5
#: Fish ponds (the Pearl River delta lowlands) with agriculture and livestock.
AQUACULTURE_WEIGHT = {"Nansha": 1.0, "Panyu": 0.8, "Zengcheng": 0.4, "Huadu": 0.3, "Conghua": 0.3,
                      "Huangpu": 0.2, "Baiyun": 0.2}
AQUACULTURE_OUTSIDE = 0.6
#: Diurnal factors by local hour (normalised to mean 1).
CH4_PROFILES = {
    "landfill": [1.0] * 24,
    "wastewater": [0.85] * 7 + [1.0, 1.1, 1.15, 1.2, 1.2, 1.2, 1.2, 1.15, 1.1, 1.1, 1.05, 1.0] + [0.9] * 5,
    "rice": [0.85] * 8 + [0.95, 1.05, 1.15, 1.25, 1.3, 1.3, 1.25, 1.15, 1.05, 0.95] + [0.9] * 6,
    "aquaculture": [0.9] * 8 + [0.95, 1.0, 1.1, 1.15, 1.2, 1.2, 1.15, 1.1, 1.0, 0.95] + [0.92] * 6,
    "gas_distribution": [0.9] * 6 + [1.0, 1.1, 1.1, 1.05, 1.05, 1.1, 1.1, 1.0, 1.0, 1.0, 1.05, 1.15,
                                     1.15, 1.1, 1.0, 0.95, 0.9, 0.9],
    "combustion": PROFILES["residential"],
}
#: Month factors (January first; normalised to mean 1): double-crop rice (transplanting Mar/Apr and
#: Jul/Aug, fallow in winter) and warm-season ponds.
CH4_MONTH_PROFILES = {
    "rice": [0.15, 0.10, 0.30, 1.00, 1.80, 2.00, 1.60, 1.70, 1.90, 1.50, 0.60, 0.35],
    "aquaculture": [0.55, 0.60, 0.80, 1.00, 1.20, 1.30, 1.40, 1.40, 1.30, 1.10, 0.85, 0.70],
}
CO_COMBUSTION_SECTORS = ("industry", "road", "residential", "power")


def _scale_kt(proxy: np.ndarray, total_kt: float, city_frac: np.ndarray, area: np.ndarray) -> np.ndarray:
    """kg m-2 s-1 ∝ ``proxy`` with ``total_kt`` kt/yr inside the districts."""
    per = (proxy * city_frac * area).sum()
    if per <= 0:
        raise ValueError("demo CH4 inventory: a proxy has no weight inside the districts (wrong grid or districts?)")
    return proxy * (total_kt * 1e6 / SECONDS_PER_YEAR) / per


def _points(grid: Grid, points) -> np.ndarray:
    """Σ share × normalised Gaussian blob of (lon, lat, sigma_km, share) points."""
    lon2d, lat2d = _centres_2d(grid)
    z = np.zeros(grid.shape)
    for lon, lat, s, share in points:
        b = _blob(lon2d, lat2d, lon, lat, s)
        b[b < 1e-4] = 0.0
        z += share * b / b.sum()
    return z


def ch4_proxies(grid: Grid, names: list[str], dmat: sp.spmatrix) -> dict[str, np.ndarray]:
    """Spatial proxy per CH4 sector (arbitrary scale)."""
    u = urban_density(grid)
    nonurban = 1.0 - np.clip(u, 0.0, 0.95)
    landfill = _points(grid, [(lon, lat, s, sh) for _, _, lon, lat, s, sh, _ in LANDFILLS])
    plants = _points(grid, [(lon, lat, s, sh) for _, lon, lat, s, sh in WASTEWATER_PLANTS])
    ww = plants / plants.sum() * (1.0 - SEWER_SHARE) + SEWER_SHARE * u / u.sum()
    rice = district_weight_map(names, dmat, grid, RICE_WEIGHT, RICE_OUTSIDE) * nonurban
    aqua = district_weight_map(names, dmat, grid, AQUACULTURE_WEIGHT, AQUACULTURE_OUTSIDE) * nonurban
    ind, road = industry_proxy(grid), road_proxy(grid)
    comb = 0.4 * ind / ind.sum() + 0.3 * road / road.sum() + 0.3 * u / u.sum()
    return {"landfill": landfill, "wastewater": ww, "rice": rice, "aquaculture": aqua,
            "gas_distribution": u, "combustion": comb}


def make_ch4_inventory(grid: Grid, names: list[str], dmat: sp.spmatrix) -> xr.Dataset:
    """The demo CH4 inventory (deterministic) in the layout of ``inventory_ch4.nc``."""
    area = grid.cell_area_m2()
    frac = city_fraction(dmat, grid)
    prox = ch4_proxies(grid, names, dmat)
    ds = xr.Dataset(coords={
        "lat": ("lat", grid.lat, {"units": "degrees_north", "standard_name": "latitude"}),
        "lon": ("lon", grid.lon, {"units": "degrees_east", "standard_name": "longitude"}),
        "hour": ("hour", np.arange(24, dtype=np.int32), {"long_name": "local hour of day", "units": "1"}),
        "month": ("month", np.arange(1, 13, dtype=np.int32), {"long_name": "month of year (local time)", "units": "1"}),
    })
    for s in CH4_SECTORS:
        ds[f"emi_{s}"] = (("lat", "lon"), _scale_kt(prox[s], CH4_TOTALS_KT[s], frac, area),
                          {"units": "kg m-2 s-1", "long_name": f"annual-mean CH4 emission flux, {s}"})
        ds[f"profile_{s}"] = (("hour",), _norm_profile(CH4_PROFILES[s]),
                              {"units": "1", "long_name": f"diurnal factor of {s} (mean 1, local time)"})
        if s in SEASONAL:
            ds[f"month_profile_{s}"] = (("month",), _norm_profile(CH4_MONTH_PROFILES[s]),
                                        {"units": "1", "long_name": f"month factor of {s} (mean 1)"})
    ds.attrs.update({
        "title": "Guangzhou demo CH4 inventory, 0.01 deg",
        "institution": "gzcarbon demo world (synthetic)",
        "source": "gzcarbon.demo.gases: proxies, landfills and totals in docs/demo.md (approx.)",
        "species": "ch4", "molar_mass_g_per_mol": MOLAR_MASS["ch4"], "utc_offset_hours": UTC_OFFSET,
        "sectors": ",".join(CH4_SECTORS), "seasonal_sectors": ",".join(SEASONAL),
        "sector_totals_city_kt_per_year": json.dumps(CH4_TOTALS_KT), "Conventions": "CF-1.8",
    })
    return ds


def local_months(times: pd.DatetimeIndex, utc_offset: int) -> np.ndarray:
    """Month (1..12) of each UTC hour in local time."""
    return np.asarray((times + pd.Timedelta(hours=int(utc_offset))).month)


def ch4_sector_hourly(emi_kg: np.ndarray, profile, month_profile, times: pd.DatetimeIndex,
                      utc_offset: int) -> np.ndarray:
    """(nt, ny, nx) nmol m-2 s-1 = emi × month factor × diurnal factor at each hour's local time."""
    fac = np.asarray(profile, float)[local_hours(times, utc_offset)]
    if month_profile is not None:
        fac = fac * np.asarray(month_profile, float)[local_months(times, utc_offset) - 1]
    return fac[:, None, None] * (np.asarray(emi_kg, float) * KG_TO_NMOL["ch4"])[None]


def gas_tonnes(flux_nmol: np.ndarray, area: np.ndarray, gas: str, weight: np.ndarray | None = None) -> float:
    """Tonnes of ``gas`` of an hourly nmol m-2 s-1 field (nt, ny, nx) over its hours (× ``weight``)."""
    s = np.asarray(flux_nmol, np.float64).sum(axis=0) * area
    if weight is not None:
        s = s * weight
    return float(s.sum() * 3600.0 * 1e-9 * MOLAR_MASS[gas] * 1e-6)


def gas_dataset(grid: Grid, times: pd.DatetimeIndex, gas: str, sectors: dict[str, np.ndarray],
                background: np.ndarray, city: np.ndarray, attrs: dict) -> xr.Dataset:
    """The layout of truth.nc for ``gas``: ``flux`` (float64 sum) and ``flux_<sector>`` (float32)
    in nmol m-2 s-1, ``background`` ppb, ``cell_area``, ``city_total_t``/``domain_total_t`` per
    sector (t of the gas over the hour axis)."""
    label = gas.upper()
    total = np.zeros((len(times), grid.ny, grid.nx))
    for arr in sectors.values():
        total += arr
    area = grid.cell_area_m2()
    ds = xr.Dataset(coords={
        "time": ("time", times.values, {"standard_name": "time", "long_name": "start of the hour (UTC)"}),
        "lat": ("lat", grid.lat, {"units": "degrees_north", "standard_name": "latitude"}),
        "lon": ("lon", grid.lon, {"units": "degrees_east", "standard_name": "longitude"}),
    })
    ds["flux"] = (("time", "lat", "lon"), total,
                  {"units": "nmol m-2 s-1", "long_name": f"{label} surface flux, all sectors (positive = emission)"})
    for name, arr in sectors.items():
        ds[f"flux_{name}"] = (("time", "lat", "lon"), np.asarray(arr, np.float32),
                              {"units": "nmol m-2 s-1", "long_name": f"{label} surface flux, {name}"})
    ds["cell_area"] = (("lat", "lon"), area, {"units": "m2", "long_name": "cell area on the WGS84 ellipsoid"})
    ds["background"] = (("time",), np.asarray(background, float),
                        {"units": "ppb", "long_name": f"{label} background mole fraction"})
    names = list(sectors)
    ds = ds.assign_coords(sector=("sector", names))
    ds["city_total_t"] = (("sector",), [gas_tonnes(sectors[s], area, gas, city) for s in names],
                          {"units": "t", "long_name": f"{label} sector total over the hour axis inside the districts"})
    ds["domain_total_t"] = (("sector",), [gas_tonnes(sectors[s], area, gas) for s in names],
                            {"units": "t", "long_name": f"{label} sector total over the hour axis on the whole grid"})
    ds.attrs.update(attrs)
    ds.attrs.update({"species": gas, "molar_mass_g_per_mol": MOLAR_MASS[gas], "sectors": ",".join(names),
                     "Conventions": "CF-1.8"})
    return ds


def _totals(ds: xr.Dataset) -> str:
    return ", ".join(f"{s} {float(t):.1f}" for s, t in zip(ds["sector"].values, ds["city_total_t"].values))


def make_ch4_truth(inventory: xr.Dataset, grid: Grid, names: list[str], dmat: sp.spmatrix,
                   hour_start, hour_end, seed: int, errors=GAS_TRUTH_ERRORS) -> xr.Dataset:
    """The demo's true CH4: the inventory with the registered errors (landfills, wastewater, the
    unreported Baiyun landfill, the seasons one month late) and a CH4 background."""
    times = hourly_times(hour_start, hour_end)
    off = int(inventory.attrs.get("utc_offset_hours", UTC_OFFSET))
    area = grid.cell_area_m2()
    city = city_fraction(dmat, grid)
    sectors: dict[str, np.ndarray] = {}
    for s in CH4_SECTORS:
        mp = inventory[f"month_profile_{s}"].values if f"month_profile_{s}" in inventory else None
        if mp is not None and s in errors.ch4_month_shift:
            mp = np.roll(mp, int(errors.ch4_month_shift[s]))
        arr = ch4_sector_hourly(inventory[f"emi_{s}"].values, inventory[f"profile_{s}"].values, mp, times, off)
        sectors[s] = arr * float(errors.ch4_sector_factor.get(s, 1.0))
    u = errors.ch4_unreported_landfill
    if u["district"] not in names:
        raise ValueError(f"demo CH4 truth: the unreported landfill's district {u['district']!r} is not a "
                         f"district of the district file ({names})")
    lon2d, lat2d = _centres_2d(grid)
    blob = _blob(lon2d, lat2d, u["lon"], u["lat"], u["sigma_km"])
    blob[blob < 1e-4] = 0.0
    rest = sum(gas_tonnes(a, area, "ch4", city) for a in sectors.values())
    share = float(u["share_of_city"])
    want_t = rest * share / (1.0 - share)
    per_unit = gas_tonnes(np.broadcast_to(blob, (len(times),) + blob.shape), area, "ch4", city)
    sectors["unreported_landfill"] = np.broadcast_to(blob * (want_t / per_unit), (len(times),) + blob.shape).copy()
    rng = np.random.default_rng([int(seed), 16])
    bg = background_series(times, rng, errors.ch4_background_ppb, errors.ch4_background_day_sigma_ppb)
    attrs = {"title": "Guangzhou demo world: true hourly CH4 flux", "institution": "gzcarbon demo world (synthetic)",
             "source": "gzcarbon.demo.gases.make_ch4_truth; differences from the prior in attribute truth_changes",
             "seed": int(seed), "utc_offset_hours": off, "truth_changes": json.dumps(errors.changes())}
    ds = gas_dataset(grid, times, "ch4", sectors, bg, city, attrs)
    log.info("CH4 truth city totals (t): %s", _totals(ds))
    return ds


def co_secondary(times: pd.DatetimeIndex, utc_offset: int, peak_ppb_per_hour: float,
                 ventilation_hours: float, spinup_hours: int = 48) -> np.ndarray:
    """Regional CO from VOC oxidation, ppb, at each hour: dS/dt = P(local hour) − S/τ stepped hourly
    (P = peak × sin(π (h − 8)/9) for 8 < h < 17 local, at the middle of each hour), started from 0
    ``spinup_hours`` before the first hour."""
    h0 = times[0] - pd.Timedelta(hours=spinup_hours)
    allt = pd.date_range(h0, times[-1], freq="h")
    lh = local_hours(allt, utc_offset) + 0.5
    prod = np.where((lh > 8) & (lh < 17), peak_ppb_per_hour * np.sin(np.pi * (lh - 8.0) / 9.0), 0.0)
    keep = np.exp(-1.0 / ventilation_hours)
    s = np.zeros(len(allt))
    level = 0.0
    for k, p in enumerate(prod):
        level = level * keep + p
        s[k] = level
    return s[spinup_hours:]


def true_co_ratios(prior_ratios, errors=GAS_TRUTH_ERRORS) -> dict[str, float]:
    """The truth's CO/CO2 ratio per combustion sector: the prior table's × (1 + registered error)."""
    r = ratio_map(prior_ratios)
    lost = [s for s in errors.co_ratio_error if s not in r]
    if lost:
        raise ValueError(f"demo CO truth: the emission-ratio table has no row for {lost}")
    return {s: r[s] * (1.0 + float(errors.co_ratio_error[s])) for s in errors.co_ratio_error}


def make_co_truth(co2_truth: xr.Dataset, prior_ratios, grid: Grid, dmat: sp.spmatrix, seed: int,
                  errors=GAS_TRUTH_ERRORS) -> xr.Dataset:
    """The demo's true CO: every combustion sector of the CO2 truth (µmol m-2 s-1, incl. the
    unreported site at the true ``co_unreported_sector`` ratio) × its true ratio × 1000, nmol m-2
    s-1; the biosphere emits none. Background: base + daily variation + secondary production."""
    times = pd.DatetimeIndex(co2_truth["time"].values)
    off = int(co2_truth.attrs.get("utc_offset_hours", UTC_OFFSET))
    true = true_co_ratios(prior_ratios, errors)
    use = {s: true[s] for s in CO_COMBUSTION_SECTORS}
    if "flux_unreported" in co2_truth:
        use["unreported"] = true[errors.co_unreported_sector]
    sectors = {}
    for s, r in use.items():
        if f"flux_{s}" not in co2_truth:
            raise ValueError(f"demo CO truth: the CO2 truth has no flux_{s}; rebuild truth.nc")
        sectors[s] = co2_truth[f"flux_{s}"].values.astype(np.float64) * (r * 1000.0)
    rng = np.random.default_rng([int(seed), 28])
    base = background_series(times, rng, errors.co_background_ppb, errors.co_background_day_sigma_ppb)
    sec = co_secondary(times, off, errors.co_secondary_peak_ppb_per_hour, errors.co_secondary_ventilation_hours)
    attrs = {"title": "Guangzhou demo world: true hourly CO flux", "institution": "gzcarbon demo world (synthetic)",
             "source": "gzcarbon.demo.gases.make_co_truth: CO2 truth combustion sectors x true CO/CO2 ratios",
             "seed": int(seed), "utc_offset_hours": off,
             "truth_changes": json.dumps(errors.changes()),
             "prior_ratios_mol_per_mol": json.dumps(ratio_map(prior_ratios)),
             "true_ratios_mol_per_mol": json.dumps(use),
             "oh_loss": "neglected (CO lifetime ~1-2 months against OH; 24 h of transport)"}
    ds = gas_dataset(grid, times, "co", sectors, base + sec, city_fraction(dmat, grid), attrs)
    ds["background_secondary"] = (("time",), sec, {"units": "ppb", "long_name": "part of the CO background "
                                                   "from regional VOC oxidation (secondary production)"})
    log.info("CO truth city totals (t): %s", _totals(ds))
    return ds
