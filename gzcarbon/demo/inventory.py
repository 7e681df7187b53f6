"""The demo world's inventory and truth for Guangzhou (January, 0.01° state grid).

`make_inventory(grid, names, dmat)` builds the EDGAR-like prior inventory (docs/formats.md) from
the documented proxies below; `make_truth(...)` builds the hourly "true" flux the demo observations are
made from, which differs from the prior in the structured ways listed in `TRUTH_CHANGES`.
The numbers, and their basis, are tabulated in docs/inventory.md; they are demo values, not an
emission inventory of Guangzhou.

Spatial proxies (distances in km on the local tangent plane):
- industry: Gaussian zones `INDUSTRY_ZONES` (Huangpu, Nansha, Panyu, Zengcheng, Huadu, Baiyun) plus
  15 % spread with urban density;
- road: 55 % along the radial expressways and three ring roads of `ROADS` (Gaussian of the distance to
  the road, σ 0.6 km), 45 % with urban density;
- residential/commercial: urban density = `URBAN_CENTRES` (the old core Yuexiu/Liwan/Haizhu/Tianhe,
  the district seats, Foshan and Dongguan outside the city);
- biosphere: NEE = v · (R(h) − GPP(h)), v = district vegetation weight `VEGETATION` × (1 − urban share).
Sector annual totals `SECTOR_TOTALS_MT` hold inside the 11 districts (cell fractions of the district
matrix); cells outside the city keep the same proxies at the same scale (Foshan, Dongguan).
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import scipy.sparse as sp
import xarray as xr
from scipy.interpolate import CubicSpline
from scipy.ndimage import gaussian_filter

from gzcarbon.demo.truth_errors import TRUTH_ERRORS
from gzcarbon.grid import Grid
from inversion.inventory import KG_TO_UMOL, SECONDS_PER_YEAR, SECTORS, inventory_dataset
from inversion.prior import (
    bio_hourly,
    flux_dataset,
    grid_point_sources,
    hourly_times,
    local_hours,
    sector_hourly,
    tonnes,
)

log = logging.getLogger(__name__)

UTC_OFFSET = 8
EARTH_KM_PER_DEG = 111.195

#: Non-power annual totals inside the 11 districts, Mt CO2/yr (sum 53). Basis: city CO2 of order
#: 100 Mt/yr incl. electricity imports (shared/reference/guangzhou.md, approx.); in-city power ~15 Mt/yr
#: comes from the power stage; direct non-power emissions split industry ~47 %, road ~30 %,
#: residential/commercial ~23 % (typical for Chinese service-economy megacities; demo values).
SECTOR_TOTALS_MT = {"industry": 25.0, "road": 16.0, "residential": 12.0}

#: Industrial zones: (name, district, lon, lat, sigma_km, share of the industry sector).
INDUSTRY_ZONES = [
    ("GZ ETDZ / Guangzhou Petrochemical", "Huangpu", 113.49, 23.10, 2.5, 0.22),
    ("Yonghe / Knowledge City", "Huangpu", 113.59, 23.21, 2.0, 0.08),
    ("Huangge auto park", "Nansha", 113.53, 22.79, 2.0, 0.12),
    ("Longxue shipyards", "Nansha", 113.63, 22.71, 1.5, 0.08),
    ("Shilou / Hualong auto", "Panyu", 113.45, 23.00, 2.0, 0.10),
    ("Xintang industrial town", "Zengcheng", 113.62, 23.13, 2.5, 0.14),
    ("Zengcheng ETDZ (Ningxi)", "Zengcheng", 113.66, 23.24, 1.5, 0.06),
    ("Huadu auto city", "Huadu", 113.25, 23.37, 2.0, 0.10),
    ("Shiling leather district", "Huadu", 113.15, 23.45, 1.5, 0.04),
    ("Taihe / Jianggao industrial parks", "Baiyun", 113.28, 23.30, 2.0, 0.06),
]

#: Urban density: (name, lon, lat, sigma_km, peak weight). Core first, then district seats, then
#: the neighbouring cities inside the grid.
URBAN_CENTRES = [
    ("Yuexiu core", 113.27, 23.13, 3.0, 1.00),
    ("Tianhe CBD", 113.33, 23.13, 3.5, 1.00),
    ("Liwan", 113.24, 23.12, 2.0, 0.80),
    ("Haizhu", 113.31, 23.09, 3.0, 0.80),
    ("metropolitan area", 113.30, 23.12, 10.0, 0.30),
    ("Baiyun seat", 113.27, 23.18, 3.0, 0.50),
    ("Huangpu seat", 113.46, 23.11, 3.0, 0.40),
    ("Panyu seat (Shiqiao)", 113.37, 22.94, 3.5, 0.60),
    ("Huadu seat (Xinhua)", 113.22, 23.40, 3.0, 0.40),
    ("Nansha seat", 113.53, 22.80, 3.0, 0.30),
    ("Conghua seat (Jiekou)", 113.59, 23.55, 2.5, 0.25),
    ("Zengcheng seat (Licheng)", 113.83, 23.29, 3.0, 0.35),
    ("Foshan (Chancheng), outside the city", 113.12, 23.02, 5.0, 0.70),
    ("Dongguan centre, outside the city", 113.75, 23.02, 6.0, 0.60),
]

RING_CENTRE = (113.28, 23.13)
#: Road network: rings (name, radius_km, weight) and radial expressways (name, weight, vertices lon/lat).
RINGS = [("Inner Ring Road", 3.5, 1.2), ("Huanshi / North-South Ring", 9.0, 1.0), ("Guangzhou Ring Expressway", 17.0, 0.9)]
RADIALS = [
    ("Jingzhu G4 north to Huadu", 1.0, [(113.28, 23.13), (113.24, 23.30), (113.22, 23.45), (113.20, 23.70)]),
    ("Daguang to Conghua", 0.8, [(113.28, 23.13), (113.40, 23.30), (113.58, 23.55), (113.70, 23.80)]),
    ("Guangyuan east to Zengcheng", 0.9, [(113.28, 23.13), (113.55, 23.18), (113.83, 23.29), (114.05, 23.35)]),
    ("Guangshen to Dongguan", 1.1, [(113.28, 23.13), (113.50, 23.08), (113.75, 23.02), (114.05, 22.90)]),
    ("South China Expressway to Panyu / Nansha", 1.0, [(113.28, 23.13), (113.37, 22.94), (113.53, 22.78), (113.60, 22.60)]),
    ("Guangzhu west to Shunde", 0.8, [(113.28, 23.13), (113.15, 22.95), (113.05, 22.80)]),
    ("Guangfo to Foshan", 1.0, [(113.28, 23.13), (113.12, 23.05), (112.92, 23.02)]),
    ("Guangqing north-west", 0.7, [(113.28, 23.13), (113.10, 23.30), (112.92, 23.42)]),
]
ROAD_SIGMA_KM = 0.6

#: Vegetation weight per district (before the urban reduction); Baiyun north of 23.27 N uses 0.70.
VEGETATION = {
    "Conghua": 0.90, "Zengcheng": 0.75, "Huadu": 0.65, "Baiyun": 0.30, "Huangpu": 0.50, "Nansha": 0.35,
    "Panyu": 0.35, "Haizhu": 0.25, "Tianhe": 0.20, "Liwan": 0.10, "Yuexiu": 0.05,
}
VEGETATION_BAIYUN_NORTH = (23.27, 0.70)
VEGETATION_OUTSIDE = 0.45
#: January NEE of a fully vegetated cell: daytime GPP half-sine 07-18 local, peak 9 µmol m-2 s-1
#: (winter subtropical evergreen forest, ~2.7 gC m-2 d-1); respiration 2.6 µmol m-2 s-1 × (1 + 0.15 in
#: the afternoon warmth): the day's net is near zero, as for January in Guangdong forests.
GPP_PEAK_UMOL = 9.0
RESP_UMOL = 2.6
DAYLIGHT_LOCAL = (7.0, 18.0)

#: Diurnal factors by local hour (normalised to mean 1 when used). EDGAR/TNO-like shapes.
PROFILES = {
    "industry": [0.75, 0.73, 0.72, 0.72, 0.74, 0.80, 0.90, 1.05, 1.18, 1.22, 1.24, 1.22,
                 1.15, 1.20, 1.22, 1.20, 1.15, 1.08, 1.00, 0.95, 0.90, 0.86, 0.82, 0.78],
    "road": [0.25, 0.18, 0.15, 0.15, 0.22, 0.45, 0.95, 1.55, 1.75, 1.45, 1.25, 1.20,
             1.20, 1.22, 1.25, 1.35, 1.55, 1.80, 1.75, 1.35, 1.05, 0.85, 0.62, 0.40],
    "residential": [0.45, 0.38, 0.35, 0.35, 0.40, 0.60, 0.95, 1.30, 1.25, 1.15, 1.15, 1.25,
                    1.30, 1.15, 1.10, 1.10, 1.15, 1.35, 1.60, 1.55, 1.35, 1.10, 0.80, 0.60],
}

#: How the truth differs from the prior: the pre-registered error model of
#: gzcarbon.demo.truth_errors (docs/demo.md, docs/inventory.md), as the mapping `make_truth` takes.
TRUTH_CHANGES = TRUTH_ERRORS.changes()


# --- geometry helpers -------------------------------------------------------------------------
def _centres_2d(grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    return np.meshgrid(grid.lon, grid.lat)  # (ny, nx)


def _km(lon2d, lat2d, lon0, lat0):
    dx = (lon2d - lon0) * EARTH_KM_PER_DEG * np.cos(np.deg2rad(lat0))
    dy = (lat2d - lat0) * EARTH_KM_PER_DEG
    return dx, dy


def _blob(lon2d, lat2d, lon0, lat0, sigma_km):
    dx, dy = _km(lon2d, lat2d, lon0, lat0)
    return np.exp(-0.5 * (dx * dx + dy * dy) / sigma_km**2)


def _polyline_distance_km(lon2d, lat2d, vertices) -> np.ndarray:
    lon0, lat0 = RING_CENTRE
    px, py = _km(lon2d, lat2d, lon0, lat0)
    best = np.full(px.shape, np.inf)
    for (ax_, ay_), (bx_, by_) in zip(vertices[:-1], vertices[1:]):
        ax, ay = _km(ax_, ay_, lon0, lat0)
        bx, by = _km(bx_, by_, lon0, lat0)
        vx, vy = bx - ax, by - ay
        t = np.clip(((px - ax) * vx + (py - ay) * vy) / (vx * vx + vy * vy), 0.0, 1.0)
        best = np.minimum(best, np.hypot(px - ax - t * vx, py - ay - t * vy))
    return best


def city_fraction(dmat: sp.spmatrix, grid: Grid) -> np.ndarray:
    """(ny, nx) fraction of each cell inside any district."""
    return np.asarray(dmat.sum(axis=0)).reshape(grid.shape)


def district_weight_map(names, dmat, grid: Grid, weights: dict, outside: float) -> np.ndarray:
    """(ny, nx) Σ_d frac_d · w_d + (1 − Σ_d frac_d) · outside; districts not in ``weights`` get ``outside``."""
    w = np.array([weights.get(n, outside) for n in names], dtype=float)
    frac = city_fraction(dmat, grid)
    return (dmat.T @ w).reshape(grid.shape) + (1.0 - frac) * outside


# --- proxies ----------------------------------------------------------------------------------
def urban_density(grid: Grid) -> np.ndarray:
    lon2d, lat2d = _centres_2d(grid)
    u = np.zeros(grid.shape)
    for _, lon0, lat0, s, w in URBAN_CENTRES:
        u += w * _blob(lon2d, lat2d, lon0, lat0, s)
    return u


def industry_proxy(grid: Grid) -> np.ndarray:
    lon2d, lat2d = _centres_2d(grid)
    z = np.zeros(grid.shape)
    for _, _, lon0, lat0, s, share in INDUSTRY_ZONES:
        b = _blob(lon2d, lat2d, lon0, lat0, s)
        z += share * b / b.sum()
    u = urban_density(grid)
    return 0.85 * z / z.sum() + 0.15 * u / u.sum()


def road_proxy(grid: Grid) -> np.ndarray:
    lon2d, lat2d = _centres_2d(grid)
    lines = np.zeros(grid.shape)
    px, py = _km(lon2d, lat2d, *RING_CENTRE)
    rho = np.hypot(px, py)
    for _, radius, w in RINGS:
        lines += w * np.exp(-0.5 * ((rho - radius) / ROAD_SIGMA_KM) ** 2)
    for _, w, verts in RADIALS:
        d = _polyline_distance_km(lon2d, lat2d, verts)
        lines = np.maximum(lines, 0) + w * np.exp(-0.5 * (d / ROAD_SIGMA_KM) ** 2)
    u = urban_density(grid)
    return 0.55 * lines / lines.sum() + 0.45 * u / u.sum()


def vegetation_fraction(grid: Grid, names, dmat) -> np.ndarray:
    weights = dict(VEGETATION)
    w = district_weight_map(names, dmat, grid, weights, VEGETATION_OUTSIDE)
    if "Baiyun" in names:
        lat_n, w_n = VEGETATION_BAIYUN_NORTH
        by = np.asarray(dmat[names.index("Baiyun")].todense()).reshape(grid.shape)
        north = 1.0 / (1.0 + np.exp(-(grid.lat[:, None] - lat_n) / 0.02))
        w = w + by * north * (w_n - weights["Baiyun"])
    u = urban_density(grid)
    return np.clip(w * (1.0 - np.clip(u / 1.0, 0.0, 0.95)), 0.0, 1.0)


def _norm_profile(p) -> np.ndarray:
    p = np.asarray(p, dtype=float)
    return p / p.mean()


def bio_nee_umol(veg: np.ndarray, gpp_scale: float = 1.0) -> np.ndarray:
    """(24, ny, nx) NEE µmol m-2 s-1 by local hour (hour h covers [h, h+1): evaluated at h + 0.5)."""
    h = np.arange(24) + 0.5
    t0, t1 = DAYLIGHT_LOCAL
    light = np.where((h > t0) & (h < t1), np.sin(np.pi * (h - t0) / (t1 - t0)), 0.0)
    warm = 1.0 + 0.15 * np.sin(np.pi * np.clip((h - 8.0) / 14.0, 0.0, 1.0))
    curve = RESP_UMOL * warm - GPP_PEAK_UMOL * gpp_scale * light  # (24,)
    return curve[:, None, None] * veg[None]


def _scale_to_total(proxy: np.ndarray, total_mt: float, city_frac: np.ndarray, area: np.ndarray) -> np.ndarray:
    """kg m-2 s-1 field ∝ proxy with ``total_mt`` Mt/yr inside the city."""
    per_cell = (proxy * city_frac * area).sum()
    if per_cell <= 0:
        raise ValueError("synthetic inventory: the proxy has no weight inside the districts (wrong grid or districts?)")
    return proxy * (total_mt * 1e9 / SECONDS_PER_YEAR) / per_cell


def make_inventory(grid: Grid, names: list[str], dmat: sp.spmatrix) -> xr.Dataset:
    """The demo EDGAR-like inventory on ``grid`` (deterministic: no random draw)."""
    area = grid.cell_area_m2()
    frac = city_fraction(dmat, grid)
    proxies = {"industry": industry_proxy(grid), "road": road_proxy(grid), "residential": urban_density(grid)}
    emi = {s: _scale_to_total(proxies[s], SECTOR_TOTALS_MT[s], frac, area) for s in SECTORS}
    veg = vegetation_fraction(grid, names, dmat)
    bio = bio_nee_umol(veg) / KG_TO_UMOL
    attrs = {
        "title": "Guangzhou demo CO2 inventory (EDGAR-like), January, 0.01 deg",
        "institution": "gzcarbon demo world (synthetic)",
        "source": "gzcarbon.demo.inventory: proxies and totals in docs/inventory.md; power plants "
                  "excluded (hourly point sources from the power stage)",
        "utc_offset_hours": UTC_OFFSET,
        "sector_totals_city_mt_per_year": json.dumps(SECTOR_TOTALS_MT),
    }
    return inventory_dataset(grid, emi, {s: _norm_profile(PROFILES[s]) for s in SECTORS}, bio, attrs)


# --- truth ------------------------------------------------------------------------------------
def _texture(rng: np.random.Generator, grid: Grid, sigma: float, length_cells: float) -> np.ndarray:
    z = gaussian_filter(rng.standard_normal(grid.shape), length_cells, mode="reflect")
    z = (z - z.mean()) / z.std()
    return np.exp(sigma * z - 0.5 * sigma * sigma)


def background_series(times: pd.DatetimeIndex, rng: np.random.Generator, base: float, day_sigma: float) -> np.ndarray:
    """Smooth background (ppm): base + cubic spline through N(0, day_sigma) anchors at local noon."""
    t_h = (times - times[0]) / pd.Timedelta(hours=1)
    t_h = np.asarray(t_h, dtype=float)
    first_noon = (12 - UTC_OFFSET - times[0].hour) % 24 - 24.0
    anchors = np.arange(first_noon, t_h[-1] + 48.0, 24.0)
    vals = rng.normal(0.0, day_sigma, anchors.size)
    return base + CubicSpline(anchors, vals)(t_h)


def make_truth(
    inventory: xr.Dataset,
    point_sources: pd.DataFrame,
    grid: Grid,
    names: list[str],
    dmat: sp.spmatrix,
    hour_start,
    hour_end,
    seed: int,
    changes: dict | None = None,
) -> xr.Dataset:
    """The demo truth on the run's hour axis: ``flux(time, lat, lon)`` µmol m-2 s-1, ``background(time)``
    ppm, ``flux_<sector>`` (industry, road, residential, power, bio, unreported), ``district_factor``,
    and sector totals over the period (``city_total_t``, ``domain_total_t``)."""
    ch = dict(TRUTH_CHANGES if changes is None else changes)
    rng = np.random.default_rng(int(seed))
    times = hourly_times(hour_start, hour_end)
    area = grid.cell_area_m2()
    off = int(inventory.attrs.get("utc_offset_hours", UTC_OFFSET))

    unknown = [d for d in ch["district_bias"] if d not in names]
    if unknown:
        raise ValueError(f"demo truth: district_bias names {unknown} are not districts of the district file ({names})")
    bias = district_weight_map(names, dmat, grid, ch["district_bias"], 0.0)
    texture = _texture(rng, grid, ch["texture_sigma"], ch["texture_length_cells"])
    # rescale the texture so each district's (and the outside's) emission-weighted mean is 1: the
    # district totals then differ from the prior by exactly the documented biases
    weight = sum(inventory[f"emi_{s}"].values for s in SECTORS) * area
    frac = city_fraction(dmat, grid)
    ww = weight.ravel()
    num = dmat @ (ww * texture.ravel())
    den = dmat @ ww
    m_d = np.where(den > 0, num / np.where(den > 0, den, 1.0), 1.0)
    out_w = (1.0 - frac) * weight
    m_out = (out_w * texture).sum() / out_w.sum() if out_w.sum() > 0 else 1.0
    m_cell = (dmat.T @ m_d).reshape(grid.shape) + (1.0 - frac) * m_out
    texture = texture / m_cell
    factor = (1.0 + bias) * texture

    sectors: dict[str, np.ndarray] = {}
    for s in SECTORS:
        prof = _norm_profile(ch["road_profile"]) if s == "road" else inventory[f"profile_{s}"].values
        sectors[s] = sector_hourly(inventory[f"emi_{s}"].values * factor, prof, times, off)

    power, _ = grid_point_sources(point_sources, grid, times)
    sectors["power"] = power * float(ch["power_factor"])

    # biosphere: the inventory's NEE with the GPP part scaled by a daily cloudiness factor
    lo, hi = ch["gpp_day_factor_range"]
    local = times + pd.Timedelta(hours=off)
    days = np.asarray(local.normalize().asi8)
    uniq, day_idx = np.unique(days, return_inverse=True)
    gfac = rng.uniform(lo, hi, uniq.size)
    nee = inventory["bio_nee"].transpose("hour", "lat", "lon").values * KG_TO_UMOL  # (24, ny, nx)
    veg = vegetation_fraction(grid, names, dmat)
    resp = bio_nee_umol(veg, gpp_scale=0.0)  # respiration part
    gpp = resp - nee  # >= 0 uptake part of the inventory's NEE
    lh = local_hours(times, off)
    sectors["bio"] = resp[lh] - gfac[day_idx][:, None, None] * gpp[lh]

    ms = ch["missing_source"]
    lon2d, lat2d = _centres_2d(grid)
    blob = _blob(lon2d, lat2d, ms["lon"], ms["lat"], ms["sigma_km"])
    blob[blob < 1e-4] = 0.0
    kg_s = ms["mt_per_year"] * 1e9 / SECONDS_PER_YEAR
    emi_ms = blob * kg_s / (blob * area).sum()
    sectors["unreported"] = sector_hourly(emi_ms, inventory[f"profile_{ms['profile']}"].values, times, off)

    bg = background_series(times, rng, ch["background_ppm"], ch["background_day_sigma_ppm"])
    attrs = {
        "title": "Guangzhou demo world: true hourly CO2 flux",
        "institution": "gzcarbon demo world (synthetic)",
        "source": "gzcarbon.demo.inventory.make_truth; differences from the prior in attribute truth_changes",
        "seed": int(seed),
        "utc_offset_hours": off,
        "truth_changes": json.dumps(ch),
    }
    ds = flux_dataset(grid, times, sectors, attrs)
    ds["background"] = (("time",), bg, {"units": "ppm", "long_name": "CO2 background mole fraction"})
    ds["gpp_day_factor"] = (("local_day",), gfac, {
        "units": "1", "long_name": "truth's GPP factor of each local day (cloudiness)"})
    ds = ds.assign_coords(local_day=("local_day", pd.DatetimeIndex(uniq)))
    ds["district_factor"] = (("lat", "lon"), factor,
                             {"units": "1", "long_name": "truth / prior factor of the gridded anthropogenic sectors"})
    city = city_fraction(dmat, grid)
    snames = list(sectors)
    ds = ds.assign_coords(sector=("sector", snames))
    ds["city_total_t"] = (("sector",), [tonnes(sectors[s] * city[None], area) for s in snames],
                          {"units": "t", "long_name": "sector total over the hour axis inside the districts"})
    ds["domain_total_t"] = (("sector",), [tonnes(sectors[s], area) for s in snames],
                            {"units": "t", "long_name": "sector total over the hour axis on the whole grid"})
    log.info("truth city totals (t): %s", dict(zip(snames, np.round(ds["city_total_t"].values, 1))))
    return ds
