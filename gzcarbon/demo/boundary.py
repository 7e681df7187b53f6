"""The demo's global-model boundary field: CarbonTracker-layout files built from the demo's true
background with documented model errors (docs/boundary.md, "The demo's boundary field").

The demo truth's background is one series ``b(t)`` (truth.nc ``background``): the mole fraction
of the air arriving at the city at time ``t``, the same at every site. Air that reaches the city at
``t`` was, a travel time earlier, somewhere upwind; the *true* field the demo implies is therefore
``c(t, x) = b(t + τ(x))`` with ``τ(x) = d(x) / U``, ``d`` the great-circle distance from the city
centre and ``U`` a typical transport speed (:attr:`BoundaryErrors.speed_ms`). Sampled at a
particle's exit point this gives ``b(t_obs)`` exactly when the particle travelled straight from
the city at ``U``; real trajectories do not, which is one part of the boundary error a real
model has too (timing of synoptic changes).

On top the synthetic "model" adds the errors of :class:`BoundaryErrors` (every one absent from
the truth, so all of them are errors):

* a constant bias (``bias_ppm``);
* a smooth synoptic error, a spline through N(0, ``day_sigma_ppm``) anchors at 04 UTC of every
  day, the same everywhere (a 3°×2° global model misplaces fronts by a day's worth of change);
* a north-south gradient (``north_gradient_ppm_per_1000km``: the model's continental outflow too
  strong or too weak) and a vertical gradient (``vertical_gradient_ppm_per_km``: the model's free
  troposphere lower than its boundary layer by more than the truth's, which has none);
* resolution: everything is evaluated at CarbonTracker's 3°×2° cell centres and 3-hour means
  (01:30, 04:30, ... UTC), then the sampler interpolates; a few cells span the delta.

Files: ``CT2022.molefrac_glb3x2_YYYY-MM-DD.nc``, one per UTC day, the variables, dimensions and
units of CarbonTracker's co2_total files (``co2`` micromol mol-1 on 25 levels, ``gph`` and
``pressure`` on 26 level boundaries, ``orography``, ``time_components``, ``decimal_date``),
cut to a box around the met domain (a user would download the global file; the reader does not
care).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from scipy.interpolate import CubicSpline

from gzcarbon.atomic import write_netcdf

#: city centre the travel times are measured from (Guangzhou, Yuexiu)
CITY_LON, CITY_LAT = 113.27, 23.13
#: level boundaries of the demo's 25 levels, m above ground (TM5-like spacing, thin near the ground)
BOUNDARIES_M = np.array([0, 25, 100, 250, 450, 700, 1000, 1400, 1900, 2500, 3200, 4000, 4900, 5900,
                         7000, 8200, 9500, 10800, 12100, 13500, 15000, 17000, 20000, 25000, 32000,
                         45000], dtype=np.float64)
SCALE_HEIGHT_M = 8000.0


@dataclass(frozen=True)
class BoundaryErrors:
    """Errors of the demo's model boundary against the demo's true background (approx. sizes of
    CarbonTracker/CAMS against surface sites in East Asia in winter: biases of a few tenths of a ppm
    to 1 ppm, synoptic errors of about 1 ppm; docs/boundary.md)."""

    #: constant bias of the model (ppm)
    bias_ppm: float = 0.6
    #: synoptic error: daily anchors N(0, σ) at 04 UTC, cubic spline between them (ppm)
    day_sigma_ppm: float = 0.8
    #: model's north-south gradient, ppm per 1000 km northward from the city (absent in the truth)
    north_gradient_ppm_per_1000km: float = 0.8
    #: model's vertical gradient, ppm per km above ground (absent in the truth)
    vertical_gradient_ppm_per_km: float = -0.5
    #: transport speed giving the true field's travel-time lag τ = d / U (m/s): the straight-line
    #: speed from the receptor to the exit point of the demo's particles that left the outer box
    #: (tiny demo run, 104 particles: median 8.3 m/s, IQR 8.1-8.6)
    speed_ms: float = 8.0
    #: CarbonTracker's global grid
    dlon: float = 3.0
    dlat: float = 2.0

    def as_dict(self) -> dict:
        return asdict(self)


def ct_axes(box, errors: BoundaryErrors = BoundaryErrors()):
    """CT cell centres (lon, lat) covering ``box`` (lon_min, lon_max, lat_min, lat_max) plus one cell."""
    lo0, lo1, la0, la1 = box
    lon_all = -180.0 + errors.dlon / 2 + errors.dlon * np.arange(int(round(360 / errors.dlon)))
    lat_all = -90.0 + errors.dlat / 2 + errors.dlat * np.arange(int(round(180 / errors.dlat)))
    lon = lon_all[(lon_all >= lo0 - 2 * errors.dlon) & (lon_all <= lo1 + 2 * errors.dlon)]
    lat = lat_all[(lat_all >= la0 - 2 * errors.dlat) & (lat_all <= la1 + 2 * errors.dlat)]
    return lon, lat


def distance_km(lon, lat, lon0: float = CITY_LON, lat0: float = CITY_LAT) -> np.ndarray:
    """Great-circle distance (km, sphere of 6371 km)."""
    p1, p2 = np.radians(lat0), np.radians(lat)
    dl = np.radians(np.asarray(lon) - lon0)
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * 6371.0 * np.arcsin(np.sqrt(np.clip(a, 0, 1)))


def true_field(background: pd.Series, times, lon2d, lat2d, speed_ms: float) -> np.ndarray:
    """``b(t + d(x)/U)`` (time, lat, lon): the field the demo truth implies (module doc)."""
    bt = pd.DatetimeIndex(background.index).as_unit("ns").values.astype(np.int64) / 3.6e12
    tau_h = distance_km(lon2d, lat2d) * 1000.0 / speed_ms / 3600.0
    th = pd.DatetimeIndex(times).as_unit("ns").values.astype(np.int64) / 3.6e12
    return np.interp(th[:, None, None] + tau_h[None], bt, background.to_numpy(float))


def synoptic_error(times, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Cubic spline through N(0, σ) anchors at 04 UTC of every day from the day before to the day after."""
    t = pd.DatetimeIndex(times)
    d0, d1 = t.min().normalize() - pd.Timedelta(days=1), t.max().normalize() + pd.Timedelta(days=1)
    anchors = pd.date_range(d0, d1, freq="D") + pd.Timedelta(hours=4)
    vals = rng.normal(0.0, sigma, len(anchors))
    x = anchors.as_unit("ns").values.astype(np.int64) / 3.6e12
    return CubicSpline(x, vals)(t.as_unit("ns").values.astype(np.int64) / 3.6e12)


def model_field(background: pd.Series, times, lon, lat, errors: BoundaryErrors, seed: int):
    """(co2 (time, level, lat, lon) ppm, gph boundaries (time, boundary, lat, lon) m above sea
    level, orography (lat, lon) m) of the synthetic model (module doc)."""
    rng = np.random.default_rng([int(seed), 1907])
    lon2d, lat2d = np.meshgrid(lon, lat)
    base = true_field(background, times, lon2d, lat2d, errors.speed_ms)
    base = base + errors.bias_ppm + synoptic_error(times, rng, errors.day_sigma_ppm)[:, None, None]
    north_km = (lat2d - CITY_LAT) * 111.2
    base = base + errors.north_gradient_ppm_per_1000km * north_km[None] / 1000.0
    mid_km = 0.5 * (BOUNDARIES_M[1:] + BOUNDARIES_M[:-1]) / 1000.0
    co2 = base[:, None] + errors.vertical_gradient_ppm_per_km * np.minimum(mid_km, 12.0)[None, :, None, None]
    orography = np.zeros(lat2d.shape)  # the delta and the sea: CT's 3x2 mean ground is low
    gph = np.broadcast_to(BOUNDARIES_M[None, :, None, None] + orography[None, None],
                          (len(times), len(BOUNDARIES_M), *lat2d.shape)).copy()
    return co2, gph, orography


def ct_dataset(times, lon, lat, co2, gph, orography, attrs: dict | None = None) -> xr.Dataset:
    """A dataset in CarbonTracker's co2_total ``molefrac_glb3x2`` layout (names, dims, units)."""
    t = pd.DatetimeIndex(times)
    pressure = 101325.0 * np.exp(-gph / SCALE_HEIGHT_M)
    comps = np.stack([t.year, t.month, t.day, t.hour, t.minute, t.second], axis=1).astype(np.int32)
    year_start = pd.DatetimeIndex([pd.Timestamp(y, 1, 1) for y in t.year])
    year_len = np.array([366.0 if pd.Timestamp(y, 12, 31).day_of_year == 366 else 365.0 for y in t.year])
    decimal = t.year + ((t - year_start) / pd.Timedelta(days=1)).to_numpy() / year_len
    ds = xr.Dataset(
        {"co2": (("time", "level", "latitude", "longitude"), co2.astype(np.float32),
                 {"units": "micromol mol-1", "long_name": "mole_fraction_of_carbon_dioxide_in_air"}),
         "gph": (("time", "boundary", "latitude", "longitude"), gph.astype(np.float32),
                 {"units": "m", "long_name": "geopotential_height"}),
         "pressure": (("time", "boundary", "latitude", "longitude"), pressure.astype(np.float32),
                      {"units": "Pa", "long_name": "pressure_at_boundaries"}),
         "orography": (("latitude", "longitude"), orography.astype(np.float32),
                       {"units": "m", "long_name": "surface_height"}),
         "time_components": (("time", "ncalendar"), comps,
                             {"long_name": "Calendar date components as integers. Times and dates are UTC.",
                              "order": "year, month, day, hour, minute, second"}),
         "decimal_date": (("time",), decimal.astype(np.float64),
                          {"units": "years", "long_name": "dates as decimal years"})},
        coords={"time": ("time", t.values, {"long_name": "time", "standard_name": "time",
                                            "comment": "time at the centre of the 3-hour mean"}),
                "level": ("level", np.arange(1, co2.shape[1] + 1, dtype=np.int16),
                          {"long_name": "level", "units": "1"}),
                "boundary": ("boundary", np.arange(1, gph.shape[1] + 1, dtype=np.int16),
                             {"long_name": "level boundary", "units": "1"}),
                "latitude": ("latitude", np.asarray(lat, np.float32),
                             {"units": "degrees_north", "standard_name": "latitude"}),
                "longitude": ("longitude", np.asarray(lon, np.float32),
                              {"units": "degrees_east", "standard_name": "longitude"})},
        attrs={"Conventions": "CF-1.5", "history": "gzcarbon demo world: synthetic field in "
               "CarbonTracker CT2022 molefrac_glb3x2 layout", **(attrs or {})})
    return ds


def ct_encoding() -> dict:
    return {"time": {"units": "days since 2000-01-01 00:00:00", "calendar": "standard", "dtype": "float64"}}


def write_demo_boundary(background: pd.Series, days, out_dir, box, seed: int,
                        errors: BoundaryErrors = BoundaryErrors()) -> list[Path]:
    """One CT-layout file per UTC day of ``days`` (YYYYMMDD or dates) in ``out_dir``; returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lon, lat = ct_axes(box, errors)
    days = sorted(pd.Timestamp(str(d)).normalize() for d in days)
    times = pd.DatetimeIndex([d + pd.Timedelta(hours=1.5 + 3 * k) for d in days for k in range(8)])
    co2, gph, orog = model_field(background, times, lon, lat, errors, seed)
    attrs = {f"demo_error_{k}": v for k, v in errors.as_dict().items()}
    paths = []
    for i, d in enumerate(days):
        sl = slice(8 * i, 8 * i + 8)
        ds = ct_dataset(times[sl], lon, lat, co2[sl], gph[sl], orog, attrs)
        p = out / f"CT2022.molefrac_glb3x2_{d:%Y-%m-%d}.nc"
        write_netcdf(ds, p, encoding=ct_encoding())
        paths.append(p)
    return paths
