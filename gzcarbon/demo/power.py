"""Demo world: power data for Guangzhou: hourly plant dispatch, district loads, external-grid intensity.

Writes the three input files of the power stage in the formats read by `power.inputs`:

    generation.csv           time, plant_id, generation_mwh        (operating plants, every hour)
    load.csv                 time, district, load_mwh
    external_intensity.csv   time, intensity_kg_per_kwh

Each file starts with `#` comment lines stating what it is. All numbers below are DEMO ASSUMPTIONS
(orders of magnitude from /work/shared/reference/guangzhou.md: > 100 TWh/yr consumed, most of it
imported; Southern grid 2022 factor 0.3869 kg/kWh); they make a plausible world, not a forecast.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from gzcarbon.atomic import atomic_write
from power.registry import DISTRICTS, read_plants

log = logging.getLogger(__name__)

#: Demo assumption: city electricity consumption, TWh per year (reference: > 100 TWh/yr).
ANNUAL_CONSUMPTION_TWH = 110.0
#: Demo assumption: share of the city load per district (population and industry, approx.).
DISTRICT_LOAD_SHARE = {
    "Baiyun": 0.16, "Huangpu": 0.14, "Panyu": 0.13, "Tianhe": 0.12, "Zengcheng": 0.10,
    "Huadu": 0.09, "Nansha": 0.08, "Haizhu": 0.07, "Liwan": 0.04, "Yuexiu": 0.04, "Conghua": 0.03,
}
#: Demo assumption: industrial (flat-profile) share of each district's load.
DISTRICT_INDUSTRY_SHARE = {
    "Baiyun": 0.35, "Huangpu": 0.6, "Panyu": 0.35, "Tianhe": 0.1, "Zengcheng": 0.55,
    "Huadu": 0.5, "Nansha": 0.65, "Haizhu": 0.1, "Liwan": 0.15, "Yuexiu": 0.05, "Conghua": 0.3,
}
#: Commercial/residential load by local hour (0..23), normalised to mean 1 below.
_URBAN_PROFILE = np.array([
    0.78, 0.72, 0.68, 0.66, 0.65, 0.68, 0.76, 0.88, 1.02, 1.12, 1.18, 1.16,
    1.06, 1.08, 1.16, 1.20, 1.18, 1.12, 1.14, 1.20, 1.22, 1.16, 1.02, 0.88,
])
_INDUSTRY_PROFILE = np.array([
    0.92, 0.90, 0.89, 0.88, 0.88, 0.90, 0.95, 1.02, 1.07, 1.09, 1.10, 1.08,
    1.02, 1.05, 1.09, 1.10, 1.09, 1.05, 1.00, 0.98, 0.97, 0.95, 0.94, 0.93,
])
#: Demo assumption: dispatch behaviour by fuel: (min, mean, max capacity factor, load-following gain).
DISPATCH = {
    "coal": (0.45, 0.66, 0.92, 0.45),
    "gas": (0.20, 0.50, 0.95, 1.10),
    "waste": (0.70, 0.82, 0.92, 0.0),
}
#: Demo assumption: relative diurnal amplitude of the external grid factor (coal at peak, nuclear/hydro at night).
EXTERNAL_DIURNAL_AMPLITUDE = 0.06
UTC_OFFSET_HOURS = 8
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"


def _ar1(rng, n, sigma, rho=0.9):
    e = rng.normal(0.0, sigma * np.sqrt(1 - rho**2), n)
    out = np.empty(n)
    x = rng.normal(0.0, sigma)
    for i in range(n):
        x = rho * x + e[i]
        out[i] = x
    return out


def make_demo(plants, start, end, seed: int, districts=None, external_factor: float = 0.3869):
    """Demo tables (generation, load, external) on the hourly axis [start, end) (UTC).

    Returns (generation_df, load_df, external_df, info) where info records the outage.
    """
    districts = list(districts) if districts is not None else list(DISTRICTS)
    unknown = [d for d in districts if d not in DISTRICT_LOAD_SHARE]
    if unknown:
        raise ValueError(f"make_demo: no demo load share for district(s) {unknown}; the demo knows "
                         f"{sorted(DISTRICT_LOAD_SHARE)}.")
    reg = read_plants(plants, districts)
    rng = np.random.default_rng([int(seed), 5])  # stream 5 = power stage
    times = pd.date_range(pd.Timestamp(start), pd.Timestamp(end), freq="h", inclusive="left")
    T = len(times)
    local = times + pd.Timedelta(hours=UTC_OFFSET_HOURS)
    hod = local.hour.to_numpy()
    doy = local.day_of_year.to_numpy()
    weekend = np.where(local.day_of_week.to_numpy() >= 5, 0.92, 1.0)
    season = 1.0 + 0.17 * np.cos(2 * np.pi * (doy - 205) / 365.25)
    urban = _URBAN_PROFILE / _URBAN_PROFILE.mean()
    indus = _INDUSTRY_PROFILE / _INDUSTRY_PROFILE.mean()
    mean_mw = ANNUAL_CONSUMPTION_TWH * 1e6 / 8760.0
    shares = np.array([DISTRICT_LOAD_SHARE[d] for d in districts])
    shares = shares / shares.sum()

    load = np.empty((T, len(districts)))
    for k, d in enumerate(districts):
        fi = DISTRICT_INDUSTRY_SHARE[d]
        shape = fi * indus[hod] + (1 - fi) * urban[hod]
        noise = 1.0 + _ar1(rng, T, 0.02)
        load[:, k] = mean_mw * shares[k] * shape * season * weekend * noise
    city_shape = load.sum(1) / load.sum(1).mean()

    ext = 1.0 + EXTERNAL_DIURNAL_AMPLITUDE * (city_shape - 1.0) / max(np.ptp(city_shape) / 2, 1e-9)
    ext = ext * (1.0 + _ar1(rng, T, 0.01))
    ext = external_factor * ext / ext.mean()

    disp = reg[reg["dispatched"]]
    gen = np.empty((T, len(disp)))
    for j, (pid, p) in enumerate(disp.iterrows()):
        lo, mu, hi, gain = DISPATCH.get(p["fuel"], DISPATCH["coal"])
        base = mu + rng.normal(0, 0.04)
        cf = base + gain * (city_shape - 1.0) * 0.5 + _ar1(rng, T, 0.03)
        gen[:, j] = p["capacity_mw"] * np.clip(cf, lo, hi)
    big = np.flatnonzero((disp["capacity_mw"] >= 300).to_numpy())
    info = {}
    if len(big) and T >= 6:
        j = int(rng.choice(big))
        dur = int(min(T // 3, rng.integers(12, 37)))
        t0 = int(rng.integers(T // 2, T - dur + 1))
        gen[t0:t0 + dur, j] = 0.0
        info = {"outage_plant": str(disp.index[j]), "outage_start": str(times[t0]),
                "outage_hours": dur}
        log.info("demo outage: plant %s off for %d h from %s", disp.index[j], dur, times[t0])

    tstr = times.strftime(TIME_FORMAT).to_numpy()
    P, N = len(disp), len(districts)
    gen_df = pd.DataFrame({"time": np.repeat(tstr, P), "plant_id": np.tile(disp.index.to_numpy(), T),
                           "generation_mwh": np.round(gen.reshape(-1), 3)})
    load_df = pd.DataFrame({"time": np.repeat(tstr, N), "district": np.tile(np.array(districts), T),
                            "load_mwh": np.round(load.reshape(-1), 3)})
    ext_df = pd.DataFrame({"time": tstr, "intensity_kg_per_kwh": np.round(ext, 5)})
    info.update({"city_load_twh_per_year_equiv": float(load.sum() / T * 8760 / 1e6),
                 "local_generation_share": float(gen.sum() / load.sum())})
    return gen_df, load_df, ext_df, info


_HEADERS = {
    "generation.csv": "# Synthetic demo: hourly generation per plant (MWh in the hour starting at `time`, UTC).\n"
                      "# Columns: time (ISO 8601 UTC), plant_id (config/power_plants.csv), generation_mwh (>= 0).\n",
    "load.csv": "# Synthetic demo: hourly electricity consumption per district (MWh in the hour starting at `time`, UTC).\n"
                "# Columns: time (ISO 8601 UTC), district (name_en), load_mwh (>= 0).\n",
    "external_intensity.csv": "# Synthetic demo: external (Southern) grid emission factor, kg CO2/kWh, hour starting at `time` (UTC).\n"
                              "# Columns: time (ISO 8601 UTC), intensity_kg_per_kwh. Mean = config power.external_factor.\n",
}


def write_demo_csv(df: pd.DataFrame, path, header: str = "") -> Path:
    """A demo CSV with its `#` comment header, through the atomic writer (gzcarbon.atomic)."""
    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            fh.write(header)
            df.to_csv(fh, index=False, lineterminator="\n")

    return atomic_write(path, write)


def write_demo(plants, out_files: dict, start, end, seed: int, districts=None,
               external_factor: float = 0.3869) -> dict:
    """Write the demo inputs. `out_files` maps generation/load/external to paths. Returns info."""
    gen_df, load_df, ext_df, info = make_demo(plants, start, end, seed, districts, external_factor)
    for key, df, name in (("generation", gen_df, "generation.csv"), ("load", load_df, "load.csv"),
                          ("external", ext_df, "external_intensity.csv")):
        write_demo_csv(df, out_files[key], _HEADERS[name])
    return info
