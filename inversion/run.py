"""The `inversion` rule's function: pipeline files in, posterior.nc / districts.csv / modelled.csv /
diagnostics.json out (docs/formats.md, "Inversion outputs in detail").

`invert` works on in-memory pieces (tested with small fakes); `run_inversion` reads the files,
calls `invert` and writes the outputs atomically.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
import xarray as xr

from . import aggregate as agg
from .diagnostics import observation_losses, residuals_per_site, uncertainty_reduction
from .positivity import apply_positivity
from .screening import chi2_test, hqht_diagonal, innovation_statistics, screen_settings
from .solve import InversionResult, solve
from .state import Problem, build_problem, read_selected

log = logging.getLogger(__name__)

from gzcarbon.names import CITY  # noqa: E402  (one definition for every stage)
DIFFUSE_SECTORS = ("industry", "road", "residential")  # prior.nc `flux_<sector>` the profile factors modulate


@dataclass
class InversionOutputs:
    problem: Problem
    result: InversionResult
    districts: pd.DataFrame
    modelled: pd.DataFrame
    diagnostics: dict
    posterior: xr.Dataset


def _edges_from_centres(c: np.ndarray) -> np.ndarray:
    c = np.asarray(c, float)
    res = float(np.median(np.diff(c)))
    return np.round(np.concatenate([c - res / 2, [c[-1] + res / 2]]), 10)


def build_factors(inv_cfg: dict, hours, prior_flux, power=None, bio=None, district_names=None,
                  district_fractions=None, utc_offset_hours: float = 0.0, sectors: dict | None = None):
    """The scaling factors asked for by ``inv_cfg`` (`inversion.factors`), or None.

    District factors scale prior − power − bio (the parts that exist); biosphere day factors need
    ``bio`` (without it they are skipped with a warning).
    """
    from .factors import FactorSet, biosphere_day_factors, district_factors, profile_factors

    sd = float(inv_cfg.get("district_scale_sigma", 0.0) or 0.0)
    sb = float(inv_cfg.get("bio_day_scale_sigma", 0.0) or 0.0)
    sp_ = float(inv_cfg.get("profile_scale_sigma", 0.0) or 0.0)
    if sd < 0 or sb < 0 or sp_ < 0:
        raise ValueError(f"config inversion.district_scale_sigma = {sd}, bio_day_scale_sigma = {sb}, "
                         f"profile_scale_sigma = {sp_}: must be >= 0")
    fs = FactorSet()
    if sd > 0 and district_fractions is not None:
        anthro = np.array(prior_flux, dtype=np.float64, copy=True)
        for part in (power, bio):
            if part is not None:
                anthro -= part
        if power is None or bio is None:
            log.warning("the prior lacks `flux_power` and/or `flux_bio`: the district factors scale the prior "
                        "flux without those parts removed")
        fs.extend(*district_factors(anthro, district_names, district_fractions, sd))
    if sb > 0:
        if bio is None:
            log.warning("inversion.bio_day_scale_sigma > 0 but the prior has no `flux_bio`: no biosphere day factors")
        else:
            fs.extend(*biosphere_day_factors(bio, hours, utc_offset_hours, sb))
    if sp_ > 0:
        if not sectors:
            log.warning("inversion.profile_scale_sigma > 0 but the prior has no diffuse sector fields "
                        "(flux_industry, flux_road, flux_residential): no profile factors")
        else:
            fs.extend(*profile_factors(sectors, hours, utc_offset_hours, sp_))
    return fs if len(fs) else None


def invert(H_hourly, receptors: pd.DataFrame, hours, selected: pd.DataFrame, prior_flux: np.ndarray,
           lat: np.ndarray, lon: np.ndarray, district_names: list[str], district_fractions,
           cell_area: np.ndarray, inv_cfg: dict, period_start, period_end, truth_flux: np.ndarray | None = None,
           missing=None, solve_options: dict | None = None,
           prior_power_flux: np.ndarray | None = None, prior_bio_flux: np.ndarray | None = None,
           utc_offset_hours: float = 0.0, prior_sector_fluxes: dict | None = None,
           problem: Problem | None = None) -> InversionOutputs:
    """Solve the month's inversion from in-memory inputs.

    ``prior_flux``/``truth_flux``: (n_hours, ny, nx) on ``hours``; ``lat``/``lon`` ascending cell centres;
    ``district_fractions``: (n_district × n_cells) fractions of each cell in each district;
    ``cell_area``: (ny, nx) m²; ``inv_cfg``: config["inversion"]; the period is [period_start, period_end).
    ``prior_power_flux``: the prior's power-sector part (same shape as ``prior_flux``), for the sector-aware
    prior σ (``inv_cfg.get("power_rel_sigma", 0.1)``). Optional keys of ``inv_cfg`` read with defaults:
    ``power_rel_sigma`` (0.1), ``tune_hyperparameters`` (False), ``positivity`` ("none"),
    ``diurnal_corr`` (1), ``district_scale_sigma`` (0: no district factors), ``bio_day_scale_sigma`` (0: no
    biosphere day factors). ``prior_bio_flux``: the prior's biosphere part (same shape; the district factors
    scale prior − power − bio, the day factors min(bio, 0)); ``utc_offset_hours``: local time of the day factors.
    ``problem``: the `Problem` these same arguments build (`build_factors` + `build_problem`), when the
    caller has already built it (e.g. to know the observation order); it is then not built again.
    """
    t0 = time.perf_counter()
    hours = pd.DatetimeIndex(hours)
    lat_edges, lon_edges = _edges_from_centres(lat), _edges_from_centres(lon)
    ny, nx = len(lat), len(lon)
    period_start, period_end = pd.Timestamp(period_start), pd.Timestamp(period_end)
    mask = agg.period_mask(hours, period_start, period_end)
    if not mask.any():
        raise ValueError(f"the period {period_start} .. {period_end} has no hour on the Jacobian's axis "
                         f"{hours[0]} .. {hours[-1]}")
    days = pd.date_range(period_start.normalize(), period_end - pd.Timedelta("1ns"), freq="D").normalize()

    prob = problem
    if prob is None:
        factors = build_factors(inv_cfg, hours, prior_flux, prior_power_flux, prior_bio_flux, district_names,
                                district_fractions, utc_offset_hours, prior_sector_fluxes)
        prob = build_problem(H_hourly, receptors, hours, selected, prior_flux, lat_edges, lon_edges, inv_cfg,
                             days, missing=missing, prior_power=prior_power_flux, factors=factors,
                             prior_bio=prior_bio_flux)
    n_days, n_factors = prob.n_offsets, prob.n_factors
    n_extra = n_days + n_factors

    # innovation screening (inversion/screening.py) -------------------------------------------------
    scr = screen_settings(inv_cfg)
    t_scr = time.perf_counter()
    innov = prob.y - prob.H @ prob.x_prior
    innov_sigma, z = innovation_statistics(innov, hqht_diagonal(prob.Q, prob.H), prob.obs_err)
    flagged = np.abs(z) > scr["threshold_sigma"] if scr["action"] != "off" else np.zeros(z.size, bool)
    used = ~flagged if scr["action"] == "exclude" else np.ones(z.size, bool)
    scr_seconds = time.perf_counter() - t_scr
    obs_table = _obs_records(prob, innov, innov_sigma, z, flagged, used)
    if flagged.any():
        order = np.argsort(-np.abs(z[flagged]))
        recs = [obs_table[i] for i in np.flatnonzero(flagged)[order]]
        log.warning("innovation screen: %d of %d observation(s) lie beyond %.1f sigma of their prior "
                    "prediction and are %s: %s%s", int(flagged.sum()), z.size, scr["threshold_sigma"],
                    "excluded from the solve" if scr["action"] == "exclude" else "flagged (kept in the solve)",
                    "; ".join(f"{r['site']} {r['time']} observed {r['observed']:.2f} ppm, innovation "
                              f"{r['innovation_ppm']:+.2f} ppm = {r['normalised']:+.1f} sigma" for r in recs[:20]),
                    f"; and {len(recs) - 20} more (diagnostics.json)" if len(recs) > 20 else "")
    if not used.any():
        raise ValueError(f"innovation screen: all {z.size} observations lie beyond "
                         f"{scr['threshold_sigma']} sigma of their prior prediction (largest "
                         f"|observed - prior model| / sigma = {np.abs(z).max():.3g}); nothing is left to invert. "
                         "Check selected.csv (units, background) and the prior; to invert anyway set "
                         "inversion.innovation_screen.action: flag")
    if used.all():
        H_s, y_s, err_s = prob.H, prob.y, prob.obs_err
    else:
        H_s, y_s = prob.H[used], prob.y[used]
        err_s = prob.obs_cov[np.ix_(used, used)] if prob.obs_cov is not None else prob.obs_sigma[used]
    step = prob.step_hours

    # aggregation operators -----------------------------------------------------------------------
    area = np.asarray(cell_area, float).reshape(ny, nx).ravel()
    F = sp.csr_matrix(district_fractions, dtype=np.float64)
    if F.shape != (len(district_names), ny * nx):
        raise ValueError(f"district matrix has shape {F.shape}, expected ({len(district_names)}, {ny * nx})")
    Wd = F @ sp.diags(area)
    Wcity = sp.csr_matrix(np.asarray(Wd.sum(axis=0)))
    Wall = sp.vstack([Wd, Wcity], format="csr")
    names = list(district_names) + [CITY]
    nh_step = agg.hours_per_step(mask, step)
    A = agg.correction_total_matrix(Wall, nh_step, n_days)
    block = int(inv_cfg.get("coarse_block", 5))
    Wb, nby, nbx = agg.block_mean_weights(ny, nx, block, area.reshape(ny, nx))
    B = agg.period_mean_matrix(Wb, nh_step, n_days)
    if n_factors:  # factor j adds s_j g_j to the flux: its totals and block means
        sums = prob.factors.period_sums(mask)
        A = sp.hstack([A, sp.csr_matrix(prob.factors.totals_matrix(Wall, mask, sums))], format="csr")
        B = sp.hstack([B, sp.csr_matrix(prob.factors.mean_matrix(Wb, mask, sums))], format="csr")
    # plus one unit row per background offset and scaling factor: their exact posterior σ comes
    # out of the same pass
    n_state = prob.n_flux + n_extra
    E = sp.csr_matrix((np.ones(n_extra), (np.arange(n_extra), prob.n_flux + np.arange(n_extra))),
                      shape=(n_extra, n_state))
    B = sp.vstack([B, E], format="csr")
    n_blocks = nby * nbx

    opts = {"seed": int(inv_cfg.get("seed", 0)), "tune": bool(inv_cfg.get("tune_hyperparameters", False))}
    opts.update(solve_options or {})
    if not used.all():  # caller's per-observation options refer to every matched observation: keep the used rows
        if opts.get("y_ensemble") is not None:
            opts["y_ensemble"] = np.asarray(opts["y_ensemble"])[used]
        if opts.get("obs_subsets") is not None:
            full = {}
            for name, v in dict(opts["obs_subsets"]).items():
                v = np.asarray(v)
                if v.dtype != bool:
                    m = np.zeros(used.size, bool)
                    m[v.astype(np.int64)] = True
                    v = m
                full[name] = v[used]
            opts["obs_subsets"] = full
    site_of_obs = prob.obs["site"].astype(str).to_numpy()[used]
    obs_sites = sorted(set(site_of_obs))
    if bool(inv_cfg.get("station_contributions", True)) and len(obs_sites) > 1 and "obs_subsets" not in opts:
        if opts.get("solver", "auto") != "pcg" and len(site_of_obs) <= int(opts.get("max_dense_obs", 20000)):
            # each station left out, and each alone: exact district σ from the same H Q Hᵀ (cheap)
            opts["obs_subsets"] = {**{f"without {s}": site_of_obs != s for s in obs_sites},
                                   **{f"only {s}": site_of_obs == s for s in obs_sites}}
        else:
            log.info("station contributions skipped: they need the Cholesky solver (%d observations)",
                     len(site_of_obs))
    res = solve(H_s, y_s, prob.x_prior, prob.Q, err_s, aggregate=A, aggregate_var=B, **opts)
    chi2 = chi2_test(res.chi2, res.n_obs, scr["chi2_p_min"])
    (log.warning if chi2["out_of_range"] else log.info)(
        "innovation chi2 = %.1f for %d observations (chi2_r %.3f): p-value %.3g%s", chi2["value"], chi2["dof"],
        chi2["reduced"], chi2["p_value"],
        f" < {chi2['p_min']:g}: the data disagree with the prior and observation errors more than chance "
        "allows (errors too small, or bad data); see the largest normalised residuals in diagnostics.json"
        if chi2["out_of_range"] else "")

    # districts.csv ------------------------------------------------------------------------------
    prior_t = agg.totals_tonnes(prior_flux, Wall, mask)
    post_t = prior_t + res.agg_post_mean  # prior correction is 0: posterior = prior + A x̂
    # hourly posterior flux and the optional positivity bound (inversion/positivity.py)
    n_flux = prob.n_flux
    corr = res.x_post[:n_flux].reshape(prob.n_step, ny, nx)
    step_of_hour = np.arange(len(hours)) // step
    post_flux = prior_flux + corr[step_of_hour]
    factor_values = res.x_post[n_flux + n_days:]
    if n_factors:
        post_flux = post_flux + prob.factors.flux_change(factor_values)
    positivity = str(inv_cfg.get("positivity", "none"))
    post_flux, pos_report = apply_positivity(positivity, prior_flux, post_flux, mask, Wall, names)
    if pos_report["applied"]:
        post_t = post_t + np.array([pos_report["added_t"][n] for n in names])
    truth_t = agg.totals_tonnes(truth_flux, Wall, mask) if truth_flux is not None else np.full(len(names), np.nan)
    districts = pd.DataFrame({
        "district": names, "prior_t": prior_t, "posterior_t": post_t,
        "prior_sigma_t": res.agg_prior_sigma, "posterior_sigma_t": res.agg_post_sigma, "truth_t": truth_t,
    })

    # modelled.csv -------------------------------------------------------------------------------
    obs = prob.obs
    offsets = res.x_post[n_flux:n_flux + n_days]
    if pos_report["applied"]:  # the model of the truncated flux, exactly on the hourly axis
        flux_part = prob.H_hourly @ (post_flux - prior_flux).ravel()
    else:  # every state element but the background offsets
        x_flux = res.x_post.copy()
        x_flux[n_flux:n_flux + n_days] = 0.0
        flux_part = prob.H @ x_flux
    bg_post = obs["background"].to_numpy(float) + offsets[obs["day_index"].to_numpy()]
    modelled = pd.DataFrame({
        "site": obs["site"].to_numpy(), "time": pd.DatetimeIndex(obs["time"]).strftime("%Y-%m-%dT%H:%M:%S"),
        "intake_height": obs["intake_height"].to_numpy(), "observed": obs["value"].to_numpy(float),
        "background_prior": obs["background"].to_numpy(float), "background_posterior": bg_post,
        "prior_model": obs["background"].to_numpy(float) + prob.prior_enhancement,
        "posterior_model": bg_post + prob.prior_enhancement + flux_part,
        "innovation": innov, "innovation_sigma": innov_sigma, "normalised_innovation": z,
        "screened": flagged.astype(int), "used": used.astype(int),
    })

    # posterior.nc -------------------------------------------------------------------------------
    per_site = residuals_per_site(modelled[used])
    sites = sorted(per_site)
    ds = xr.Dataset(coords={
        "time": ("time", hours.values, {"long_name": "start of the hour (UTC)"}),
        "lat": ("lat", np.asarray(lat, float), {"units": "degrees_north", "standard_name": "latitude"}),
        "lon": ("lon", np.asarray(lon, float), {"units": "degrees_east", "standard_name": "longitude"}),
        "step": ("step", prob.step_times.values, {"long_name": f"start of the {step}-hour flux-correction step (UTC)"}),
        "lat_block": ("lat_block", 0.5 * (lat_edges[np.arange(nby) * block] + lat_edges[np.minimum((np.arange(nby) + 1) * block, ny)]),
                      {"units": "degrees_north", "long_name": f"centre of {block}x{block}-cell block"}),
        "lon_block": ("lon_block", 0.5 * (lon_edges[np.arange(nbx) * block] + lon_edges[np.minimum((np.arange(nbx) + 1) * block, nx)]),
                      {"units": "degrees_east", "long_name": f"centre of {block}x{block}-cell block"}),
        "day": ("day", days.values, {"long_name": "UTC day of the background offset"}),
        "site": ("site", np.array(sites, dtype=object)),
    })
    fu = {"units": "umol m-2 s-1"}
    ds["prior_flux"] = (("time", "lat", "lon"), prior_flux.astype(np.float32), {**fu, "long_name": "prior CO2 flux"})
    ds["posterior_flux"] = (("time", "lat", "lon"), post_flux.astype(np.float32),
                            {**fu, "long_name": "posterior CO2 flux = prior + correction of its step"
                             + (", truncated at min(prior, 0)" if pos_report["applied"] else "")})
    ds["correction"] = (("step", "lat", "lon"), corr.astype(np.float32), {**fu, "long_name": "posterior flux correction"})
    sd_prior = np.sqrt(np.maximum(res.var_prior, 0))
    sd_post = np.sqrt(np.maximum(res.var_post, 0))
    ds["prior_sigma_block"] = (("lat_block", "lon_block"), sd_prior[:n_blocks].reshape(nby, nbx),
                               {**fu, "long_name": "prior sigma of the period-mean flux of the block (exact)"})
    ds["posterior_sigma_block"] = (("lat_block", "lon_block"), sd_post[:n_blocks].reshape(nby, nbx),
                                   {**fu, "long_name": "posterior sigma of the period-mean flux of the block (exact)"})
    ds["background_offset"] = (("day",), offsets, {"units": "ppm", "long_name": "posterior daily background offset"})
    ds["background_offset_sigma"] = (("day",), sd_post[n_blocks:n_blocks + n_days],
                                     {"units": "ppm", "long_name": "posterior sigma of the daily background offset"})
    if n_factors:
        ds = ds.assign_coords(factor=("factor", np.array(prob.factors.names, dtype=object)),
                              factor_kind=("factor", np.array(prob.factors.kinds, dtype=object)))
        ds["factor_posterior"] = (("factor",), factor_values,
                                  {"units": "1", "long_name": "posterior relative change s of the scaled prior field "
                                   "(district: diffuse anthropogenic flux; biosphere_day: uptake), flux x (1 + s)"})
        ds["factor_prior_sigma"] = (("factor",), sd_prior[n_blocks + n_days:],
                                    {"units": "1", "long_name": "prior sigma of the scaling factor"})
        ds["factor_posterior_sigma"] = (("factor",), sd_post[n_blocks + n_days:],
                                        {"units": "1", "long_name": "posterior sigma of the scaling factor (exact)"})
    for key in ("prior_mean", "prior_std", "posterior_mean", "posterior_std"):
        ds[f"residual_{key}"] = (("site",), np.array([per_site[s][key] for s in sites]),
                                 {"units": "ppm", "long_name": f"observed - model, {key.replace('_', ' ')}"})
    ds.attrs.update({
        "title": "Posterior CO2 flux (analytical Bayesian inversion)",
        "period_start": period_start.isoformat(), "period_end": period_end.isoformat(),
        "time_step_hours": step, "solver": res.solver, "chi2_reduced": res.chi2_reduced, "dofs": res.dofs,
        "coarse_block": block, "Conventions": "CF-1.8", "positivity": positivity,
        "prior_cov_scale": res.scale_Q, "obs_cov_scale": res.scale_R,
    })

    diagnostics = {
        "n_obs": res.n_obs, "n_state": res.n_state, "chi2_reduced": res.chi2_reduced, "dofs": res.dofs,
        "dofs_stderr": res.dofs_stderr, "solver": res.solver, "seconds": time.perf_counter() - t0,
        "solve_timings": res.timings, "pcg_iterations": res.pcg_iterations,
        "per_site": per_site, "period_start": period_start.isoformat(), "period_end": period_end.isoformat(),
        "n_step": prob.n_step, "time_step_hours": step, "n_cells": ny * nx, "n_background_offsets": n_days,
        "factors": ({n: {"kind": k, "posterior": float(v), "prior_sigma": float(p), "posterior_sigma": float(e)}
                     for n, k, v, p, e in zip(prob.factors.names, prob.factors.kinds, factor_values,
                                              sd_prior[n_blocks + n_days:], sd_post[n_blocks + n_days:])}
                    if n_factors else None),
        "uncertainty_reduction": dict(zip(names, map(float, uncertainty_reduction(res.agg_prior_sigma, res.agg_post_sigma)))),
        "observations_dropped": int(len(selected) - len(obs)),
        "n_obs_matched": int(len(obs)),
        "innovation_screen": {**scr, "n_flagged": int(flagged.sum()), "n_excluded": int((flagged & ~used).sum()),
                              "seconds": scr_seconds,
                              "flagged": [obs_table[i] for i in np.flatnonzero(flagged)[np.argsort(-np.abs(z[flagged]))]]},
        "chi2_test": chi2,
        "largest_normalised_residuals": [obs_table[i] for i in np.argsort(-np.abs(z), kind="stable")[:5]],
        "observations_lost": _losses(selected, receptors, missing, days, obs_table, flagged & ~used, scr),
        "receptors": _receptor_summary(receptors, missing),
        "hyperparameters": res.hyper if res.hyper is not None else {"method": "none", "scale_Q": 1.0, "scale_R": 1.0},
        "positivity": pos_report,
        "station_contributions": station_contributions(res, names, obs_sites),
        "prior_sigma": {"power_sector": prior_power_flux is not None,
                        "power_rel_sigma": float(inv_cfg.get("power_rel_sigma", 0.1)) if prior_power_flux is not None else None},
    }
    return InversionOutputs(prob, res, districts, modelled, diagnostics, ds)


def _obs_records(prob: Problem, innov, sigma, z, flagged, used) -> list[dict]:
    """Per matched observation: what diagnostics.json says about it (innovation screening)."""
    o = prob.obs
    t = pd.DatetimeIndex(o["time"]).strftime("%Y-%m-%dT%H:%M:%S")
    return [{"site": str(s), "time": str(tt), "observed": float(v), "background": float(b),
             "prior_model": float(b + e), "innovation_ppm": float(d), "sigma_ppm": float(sg),
             "normalised": float(zz), "screened": bool(f), "used": bool(u)}
            for s, tt, v, b, e, d, sg, zz, f, u in zip(o["site"], t, o["value"].to_numpy(float),
                                                        o["background"].to_numpy(float), prob.prior_enhancement,
                                                        innov, sigma, z, flagged, used)]


def _losses(selected, receptors, missing, days, obs_table, excluded, scr) -> dict:
    """diagnostics ``observations_lost``: every selected observation that was not used, with its reason."""
    lost = observation_losses(selected, receptors, missing, days)
    recs = lost.to_dict("records")
    reason = f"screened: |innovation| > {scr['threshold_sigma']:g} sigma"
    recs += [{"site": obs_table[i]["site"], "time": obs_table[i]["time"], "reason": reason, "receptor_id": ""}
             for i in np.flatnonzero(excluded)]
    counts: dict[str, int] = {}
    for r in recs:
        counts[r["reason"]] = counts.get(r["reason"], 0) + 1
    return {"n_selected": int(len(selected)), "n_used": int(len(obs_table) - int(np.sum(excluded))),
            "counts": counts, "observations": recs}


def _receptor_summary(receptors: pd.DataFrame, missing) -> dict:
    miss = np.zeros(len(receptors), bool) if missing is None else np.asarray(missing, bool)
    ids = receptors["receptor_id"].astype(str).to_numpy() if "receptor_id" in receptors else np.array([], str)
    return {"n": int(len(receptors)), "n_without_footprint": int(miss.sum()),
            "without_footprint": [str(i) for i in ids[miss]] if ids.size else []}


def station_contributions(res: InversionResult, names: list[str], sites: list[str]) -> dict | None:
    """What each station adds: exact posterior σ (t) of every district and the city with all stations,
    with each station left out (``without``) and with each station alone (``only``), from the solve's
    option ``obs_subsets`` (None when it was not asked for)."""
    subsets = res.agg_post_cov_subsets
    if not subsets:
        return None

    def sd(C):
        return [float(v) for v in np.sqrt(np.maximum(np.diag(C), 0))]

    return {
        "aggregates": list(names), "sites": list(sites),
        "prior_sigma_t": [float(v) for v in res.agg_prior_sigma],
        "posterior_sigma_t": [float(v) for v in res.agg_post_sigma],
        "without": {s: sd(subsets[f"without {s}"]) for s in sites if f"without {s}" in subsets},
        "only": {s: sd(subsets[f"only {s}"]) for s in sites if f"only {s}" in subsets},
    }


# --------------------------------------------------------------------------------------------------
# file level
# --------------------------------------------------------------------------------------------------
def _atomic(path, write):
    """``write(tmp)`` then rename (gzcarbon.atomic: unique temporary name, I/O faults named)."""
    from gzcarbon.atomic import atomic_write

    atomic_write(path, write)


def _read_flux(path, what: str, hours: pd.DatetimeIndex | None = None, var: str = "flux", optional: bool = False):
    """(values (time, lat, lon) float64 on ``hours``, lat, lon) of ``var``; None if ``optional`` and absent."""
    try:
        ds = xr.open_dataset(path)
    except Exception as exc:  # noqa: BLE001
        raise ValueError(f"{what} {path}: cannot be opened as NetCDF ({exc}); the file is truncated "
                         f"or corrupt. Delete it and re-run with --forcerun {what}") from exc
    with ds:
        if var not in ds:
            if optional:
                return None
            raise ValueError(f"{what} {path}: variable `{var}(time, lat, lon)` is missing (docs/formats.md)")
        da = ds[var].transpose("time", "lat", "lon")
        if da.lat.size > 1 and da.lat.values[1] < da.lat.values[0]:
            da = da.isel(lat=slice(None, None, -1))
        t = pd.DatetimeIndex(da["time"].values)
        if hours is not None:
            missing = hours.difference(t)
            if len(missing):
                raise ValueError(f"{what} {path}: {len(missing)} hour(s) of the run's axis are missing "
                                 f"(first {missing[0]}); regenerate it on the hourly axis {hours[0]} .. {hours[-1]}")
            da = da.sel(time=hours)
        vals = da.values.astype(np.float64)
        if not np.all(np.isfinite(vals)):
            raise ValueError(f"{what} {path}: `{var}` has NaN/inf values")
        return vals, da.lat.values.astype(float), da.lon.values.astype(float)


def read_prior_parts(prior_path, hours, inv_cfg: dict):
    """(power, bio, sectors) of ``prior.nc`` on ``hours``: the optional `flux_power` and `flux_bio`
    (None when absent) and, when ``inv_cfg`` asks for profile factors, the diffuse sectors present
    ({name: field}, else None)."""
    power = _read_flux(prior_path, "prior", hours, var="flux_power", optional=True)
    if power is None:
        log.warning("prior %s has no `flux_power`; prior sigma = prior_rel_sigma * |flux| + floor everywhere", prior_path)
    bio = _read_flux(prior_path, "prior", hours, var="flux_bio", optional=True)
    sectors = None
    if float(inv_cfg.get("profile_scale_sigma", 0.0) or 0.0) > 0:
        sectors = {}
        for k in DIFFUSE_SECTORS:
            v = _read_flux(prior_path, "prior", hours, var=f"flux_{k}", optional=True)
            if v is not None:
                sectors[k] = v[0]
    return (None if power is None else power[0]), (None if bio is None else bio[0]), sectors


def run_inversion(jacobian_path, selected_path, prior_path, districts_path, out_posterior, out_districts,
                  out_modelled, out_diagnostics, *, inversion_cfg: dict, period_start, period_end,
                  truth_path=None, solve_options: dict | None = None, utc_offset_hours: float = 0.0) -> InversionOutputs:
    """Read the pipeline files, invert, write the four outputs (atomically)."""
    from transport.jacobian import load_jacobian

    from gzcarbon.districts import district_matrix
    from .grid import cell_area_m2

    jac = load_jacobian(jacobian_path)
    hours = pd.DatetimeIndex(jac.hours)
    prior, lat, lon = _read_flux(prior_path, "prior", hours)
    power, bio, sectors = read_prior_parts(prior_path, hours, inversion_cfg)
    g = jac.grid
    lat_edges, lon_edges = _edges_from_centres(lat), _edges_from_centres(lon)
    if not (np.isclose(lat_edges[0], g["lat_min"]) and np.isclose(lat_edges[-1], g["lat_max"])
            and np.isclose(lon_edges[0], g["lon_min"]) and np.isclose(lon_edges[-1], g["lon_max"])):
        raise ValueError(f"prior {prior_path}: grid lat {lat_edges[0]}..{lat_edges[-1]}, lon {lon_edges[0]}..{lon_edges[-1]} "
                         f"differs from the Jacobian's grid {g}; rebuild both with the same config grid")
    selected = read_selected(selected_path)
    names, frac = district_matrix(districts_path, lon_edges, lat_edges)
    area = cell_area_m2(lat_edges, lon_edges)
    truth = None
    if truth_path:
        truth, _, _ = _read_flux(truth_path, "truth", hours)
    out = invert(jac.H, jac.receptors, hours, selected, prior, lat, lon, names, frac, area, inversion_cfg,
                 period_start, period_end, truth_flux=truth, missing=getattr(jac, "missing", None),
                 solve_options=solve_options, prior_power_flux=power, prior_bio_flux=bio,
                 utc_offset_hours=utc_offset_hours, prior_sector_fluxes=sectors)
    out.diagnostics["inputs"] = [str(p) for p in (jacobian_path, selected_path, prior_path, districts_path, truth_path) if p]

    enc = {v: {"zlib": True, "complevel": 4} for v in ("prior_flux", "posterior_flux", "correction")}
    enc["time"] = {"units": "hours since 2000-01-01 00:00:00", "dtype": "int64"}
    enc["step"] = {"units": "hours since 2000-01-01 00:00:00", "dtype": "int64"}
    enc["day"] = {"units": "days since 2000-01-01", "dtype": "int64"}
    _atomic(out_posterior, lambda p: out.posterior.to_netcdf(p, encoding=enc))
    _atomic(out_districts, lambda p: out.districts.to_csv(p, index=False, float_format="%.6g"))
    _atomic(out_modelled, lambda p: out.modelled.to_csv(p, index=False, float_format="%.6f"))
    _atomic(out_diagnostics, lambda p: Path(p).write_text(json.dumps(out.diagnostics, indent=2, default=float)))
    d = out.districts.iloc[-1]
    log.info("city total: truth %s t, prior %.0f t, posterior %.0f ± %.0f t; chi2_r %.2f, DOFS %.1f",
             "n/a" if not np.isfinite(d.truth_t) else f"{d.truth_t:.0f}", d.prior_t, d.posterior_t,
             d.posterior_sigma_t, out.result.chi2_reduced, out.result.dofs)
    return out
