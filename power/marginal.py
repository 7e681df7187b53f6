"""Marginal emission factors per district, estimated from hour-to-hour changes.

The average (consumption-based) factor says how clean the electricity a district uses is; the
MARGINAL factor says how much CO2 one more (or one less) MWh consumed there causes, i.e. which
sources respond when load changes. Method (regression on first differences, as Hawkes 2010,
Energy Policy 38:5977, and Siler-Evans et al. 2012, Environ. Sci. Technol. 46:4742, binned by
hour of day as the latter; applied here to the city's supply):

1. Supply response. Between hour t-1 and hour t the city's supply changes by dG_p for each
   dispatched plant p and by dN for the net import from the external grid (N = sum X - sum Y).
   The balance  sum_p G_p + N = sum_i L_i  holds every hour, so  sum_p dG_p + dN = dL_city.
   The emissions that this change causes are

       dM_t = sum_p w_p dG_p,t + w_ext,t- dN_t ,     w_ext,t- = (w_ext,t-1 + w_ext,t) / 2 ,

   the plant intensities w_p and the external grid's intensity of the two hours (its marginal unit
   is not known, its average factor stands in). A change of the external grid's own factor (its
   mix at a fixed import) is not caused by the city's load and is left out on purpose; a MWh less
   exported displaces a MWh of the external grid (credited at w_ext).

2. Hour-of-day marginal factors. The responding units differ through the day (gas ramps in the
   morning, imports at night). For each local hour of day h, a least-squares line through the origin
   (no load change, no supply change) of dM on dL_city over the hours t of that hour of day:

       m_h = sum dM dL / sum dL^2 ,   se_h = sqrt( sum (dM - m_h dL)^2 / (n_h - 1) / sum dL^2 ).

   Consecutive samples of one bin are 24 h apart, so their residuals are close to independent.
   A bin with fewer than `min_pairs` changes (or no load change) takes the all-hours value m, se.

3. District marginal factor. In the model the city's grid is one copper plate (no congestion): a
   MWh more in any district at hour t is served by the units that respond at t. District i's
   marginal factor is the hour-of-day marginal weighted by when ITS load moves:

       MEF_i = sum_h W_ih m_h ,   W_ih = sum_{t in h} dL_i,t^2 / sum_t dL_i,t^2 ,
       se_i = sqrt( sum_h W_ih^2 se_h^2 )      (bins estimated from disjoint hours);

   bins that fell back on the all-hours value share one estimate, so their weights add before
   squaring: se_i^2 = sum_{h fitted} W_ih^2 se_h^2 + (sum_{h fallback} W_ih)^2 se^2. With fewer
   than `min_pairs` days every bin falls back and MEF_i = m, se_i = se for every district.

   Districts whose load swings at the morning ramp get the ramping units' intensity, districts
   with evening or night swings those of the evening/night. A district whose load never changes
   has no marginal factor (NaN).

The city value (`Guangzhou` row) is the all-hours line through the origin of dM on dL_city, with
its standard error; the marginal mix gives the share of the load change taken by each fuel and by
the external grid (slopes of their dG on dL_city; they add up to 1 because of the balance).

"Hours used" is the number of hour-to-hour changes (pairs of consecutive hours) in the fit.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import xarray as xr

from .settings import UTC_OFFSET_HOURS

log = logging.getLogger(__name__)

#: Fewest changes per hour-of-day bin before the bin falls back to the all-hours estimate.
MIN_PAIRS_PER_HOUR = 5


def _origin_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares slope through the origin of y on x and its standard error (NaN if undefined)."""
    n = len(x)
    sxx = float(x @ x)
    if n < 2 or not sxx > 0:
        return np.nan, np.nan
    b = float(x @ y) / sxx
    r = y - b * x
    return b, float(np.sqrt((r @ r) / (n - 1) / sxx))


def supply_response(plant_gen, plant_intensity, net_import, external_intensity, times=None):
    """Hour-to-hour supply response.

    plant_gen (T, P) MWh, plant_intensity (P,) t/MWh, net_import (T,) MWh (imports - exports of the
    city to the external grid), external_intensity (T,) t/MWh; times (T,) optional: only pairs of
    hours exactly 1 h apart are kept. Returns (dM (K,) t CO2, dG (K, P), dN (K,), keep (T-1,) bool):
    the emissions caused by the change, the per-plant and net-import changes.
    """
    g = np.asarray(plant_gen, float)
    n = np.asarray(net_import, float)
    w = np.asarray(external_intensity, float)
    keep = np.ones(max(len(n) - 1, 0), bool)
    if times is not None and len(keep):
        keep = np.diff(pd.DatetimeIndex(times).as_unit("ns").asi8) == 3_600_000_000_000
    dG = np.diff(g, axis=0)[keep]
    dN = np.diff(n)[keep]
    w_mid = (0.5 * (w[1:] + w[:-1]))[keep]
    dM = dG @ np.asarray(plant_intensity, float) + w_mid * dN
    return dM, dG, dN, keep


def hourly_marginal(dM, dL_city, hour, min_pairs: int = MIN_PAIRS_PER_HOUR):
    """Per hour-of-day (0..23) marginal factor, its standard error and pair count.

    Bins with fewer than `min_pairs` pairs or no load change take the all-hours estimate.
    Returns (m (24,), se (24,), n (24,), fitted (24,) bool: False where the bin fell back, m_all, se_all).
    """
    m_all, se_all = _origin_fit(dL_city, dM)
    m = np.full(24, m_all)
    se = np.full(24, se_all)
    n = np.zeros(24, dtype=np.int64)
    fitted = np.zeros(24, bool)
    for h in range(24):
        k = hour == h
        n[h] = int(k.sum())
        if n[h] >= min_pairs:
            b, s = _origin_fit(dL_city[k], dM[k])
            if np.isfinite(b):
                m[h], se[h], fitted[h] = b, s, True
    return m, se, n, fitted, m_all, se_all


def district_marginal(dL, hour, m_h, se_h, fitted=None, se_all=np.nan):
    """District marginal factor = hour-of-day marginal weighted by the district's squared load changes.

    dL (K, N) load changes, hour (K,) local hour of each change, m_h/se_h (24,); `fitted` (24,) False
    for bins that hold the all-hours estimate (standard error `se_all`, one shared estimate).
    Returns (mef (N,), se (N,)).
    """
    dL = np.asarray(dL, float)
    W = np.zeros((24, dL.shape[1]))
    np.add.at(W, hour, dL**2)
    tot = W.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        W = np.where(tot > 0, W / tot, np.nan)
    fitted = np.ones(24, bool) if fitted is None else np.asarray(fitted, bool)
    var = (W[fitted] ** 2).T @ se_h[fitted] ** 2
    if (~fitted).any():
        var = var + W[~fitted].sum(0) ** 2 * float(se_all) ** 2
    return W.T @ m_h, np.sqrt(var)


def marginal_factors(ds: xr.Dataset, utc_offset_hours: int = UTC_OFFSET_HOURS,
                     min_pairs: int = MIN_PAIRS_PER_HOUR) -> xr.Dataset:
    """Marginal emission factors of the hours of `ds` (a Dataset from `power.emission_factors`).

    Returns a Dataset with `marginal_factor(district)`, `marginal_factor_se(district)`,
    `marginal_hours` (pairs used), `city_marginal_factor`, `city_marginal_factor_se`,
    `city_marginal_r2`, `marginal_factor_by_hour(hour)`, `marginal_factor_by_hour_se(hour)`,
    `marginal_pairs_by_hour(hour)` (local hour of the later hour of each pair) and
    `marginal_mix(source)` (share of the load change taken by each fuel and `external`).
    Units kg CO2/kWh. See the module docstring for the method.
    """
    times = pd.DatetimeIndex(ds["time"].to_numpy())
    net = (ds["external_import_mwh"] - ds["external_export_mwh"]).sum("district").to_numpy()
    gp = ds["plant_generation_mwh"].transpose("time", "plant").to_numpy()
    dM, dG, dN, keep = supply_response(gp, ds["plant_intensity"].to_numpy(), net,
                                       ds["external_intensity"].to_numpy(), times)
    dL = np.diff(ds["load_mwh"].transpose("time", "district").to_numpy(), axis=0)[keep]
    dLc = dL.sum(1)
    hour = np.asarray(((times[1:][keep] + pd.Timedelta(hours=int(utc_offset_hours))).hour), dtype=np.int64)
    K = len(dM)
    m_h, se_h, n_h, fitted, m_all, se_all = hourly_marginal(dM, dLc, hour, min_pairs)
    mef, se = district_marginal(dL, hour, m_h, se_h, fitted, se_all)
    with np.errstate(invalid="ignore", divide="ignore"):
        ss = float(dM @ dM)
        r2 = 1.0 - float(((dM - m_all * dLc) ** 2).sum()) / ss if K and ss > 0 and np.isfinite(m_all) else np.nan
    fuels = ds["plant_fuel"].to_numpy().astype(str)
    sources = sorted(set(fuels)) + ["external"]
    mix = [_origin_fit(dLc, dG[:, fuels == f].sum(1))[0] for f in sources[:-1]] + [_origin_fit(dLc, dN)[0]]
    log.info("marginal factor from %d hour-to-hour changes: city %.4f +- %.4f kg/kWh (R2 %.3f)",
             K, m_all, se_all, r2)
    hrs = np.arange(24)
    return xr.Dataset(
        {
            "marginal_factor": (("district",), mef, {
                "long_name": "marginal emission factor: CO2 caused per extra MWh consumed in the district "
                             "(hour-of-day marginal of the city supply weighted by the district's load changes)",
                "units": "kg CO2/kWh"}),
            "marginal_factor_se": (("district",), se, {"long_name": "standard error of marginal_factor (regression)",
                                                       "units": "kg CO2/kWh"}),
            "marginal_hours": ((), np.int64(K), {"long_name": "hour-to-hour changes used in the marginal fit", "units": "1"}),
            "city_marginal_factor": ((), m_all, {"long_name": "city marginal emission factor (all hours)", "units": "kg CO2/kWh"}),
            "city_marginal_factor_se": ((), se_all, {"long_name": "standard error of city_marginal_factor", "units": "kg CO2/kWh"}),
            "city_marginal_r2": ((), r2, {"long_name": "share of the variance of the supply-emission change explained "
                                                       "by the city load change (line through the origin)", "units": "1"}),
            "marginal_factor_by_hour": (("hour",), m_h, {"long_name": "city marginal factor by local hour of day",
                                                         "units": "kg CO2/kWh"}),
            "marginal_factor_by_hour_se": (("hour",), se_h, {"long_name": "standard error of marginal_factor_by_hour",
                                                             "units": "kg CO2/kWh"}),
            "marginal_pairs_by_hour": (("hour",), n_h, {"long_name": "hour-to-hour changes per local hour of day", "units": "1"}),
            "marginal_mix": (("source",), np.asarray(mix, float), {
                "long_name": "share of the city load change taken by each source (sums to 1)", "units": "1"}),
        },
        coords={"district": ds["district"].to_numpy(), "hour": ("hour", hrs, {"long_name": f"local hour of day (UTC{int(utc_offset_hours):+d})"}),
                "source": ("source", np.array(sources, dtype=object))},
    )
