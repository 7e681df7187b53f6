"""The joint fossil-CO2/CO inversion (`inversion.joint`) on a month's pipeline inputs: the CO2 problem
of `inversion.run` (its observations, the rows its innovation screen kept, its correlations and σ),
CO observations in the layout of ``selected.csv`` (ppb) matched to the same Jacobian, the prior's
sectors and the emission-ratio table; district and city rows of fossil and biogenic CO2 (docs/gases.md).
"""

from __future__ import annotations

import json
import logging
import resource
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from gzcarbon.names import CITY

from . import aggregate as agg
from .emission_ratios import NMOL_PER_UMOL
from .joint import (BIO, CorrelationShape, JointProblem, JointResult, OuterPrior, OuterShape, district_total_rows,
                    joint_obs_covariance, latent_blocks, sector_ratios, tonnes_co_per_row)
from .outer import hourly_state
from .factors import FactorSet, biosphere_day_factors, district_factors, profile_factors
from .run import DIFFUSE_SECTORS, InversionInputs, build_inversion_problem, period_axis, screen_observations
from .settings import inversion_config
from .state import match_observations, step_jacobian

log = logging.getLogger(__name__)


@dataclass
class JointRun:
    """A joint problem built from pipeline inputs, with what the tables need."""

    problem: JointProblem
    A: sp.csr_matrix  # (district + city) × n_flux, t CO2 over the period
    names: list
    prior_t: dict  # {"fossil", "bio"}: prior totals per row (t CO2)
    co2_obs: pd.DataFrame
    co_obs: pd.DataFrame
    ratios: dict
    settings: dict
    mask: np.ndarray
    Wall: sp.csr_matrix
    co2_problem: object = None  # the CO2 `inversion.state.Problem` (all matched rows) ...
    co2_used: np.ndarray | None = None  # ... and the rows its innovation screen kept
    extra_agg: dict | None = None  # {quantity: (n_agg × n_extra)}: what offsets and factors add (solve_joint)
    factor_names: list | None = None
    kinds: list | None = None  # per row: district, city, ring, city/region (nested state: the outer rows)


def co_prior_flux(prior_sectors: dict, ratios: dict) -> np.ndarray:
    """CO prior (nmol m-2 s-1) = Σ_k 1000 r_k × fossil sector k (µmol m-2 s-1); the biosphere emits none."""
    return sum(NMOL_PER_UMOL * ratios[k][0] * np.asarray(f, float) for k, f in prior_sectors.items() if k != BIO)


def joint_settings(inv_cfg, co_cfg, joint_cfg) -> dict:
    """The joint problem's numbers: CO2 prior σ (`inversion`), CO σ (`gases.co`: floor, mismatch,
    background offset), `inversion.joint_co`."""
    return {"prior_rel_sigma": float(inv_cfg.prior_rel_sigma), "power_rel_sigma": float(inv_cfg.power_rel_sigma),
            "prior_floor_sigma": float(inv_cfg.prior_floor_sigma), "co_floor_sigma": float(co_cfg.prior_floor_sigma),
            "co_obs_sigma_ppb": float(co_cfg.obs_sigma_ppb), "co_bg_sigma_ppb": float(co_cfg.bg_sigma_ppb),
            "ratio_corr_length_km": float(joint_cfg.ratio_corr_length_km),
            "transport_error_correlation": float(joint_cfg.transport_error_correlation)}


def _co_rows(inputs: InversionInputs, prob, co_selected: pd.DataFrame, co_prior: np.ndarray):
    """The CO observations matched to Jacobian rows on the period's days: (obs, H_hourly rows, H x_a)."""
    co_selected = co_selected.copy()
    co_selected["time"] = pd.DatetimeIndex(pd.to_datetime(co_selected["time"], utc=True)).tz_localize(None)
    co_selected["site"] = co_selected["site"].astype(str)
    co = match_observations(co_selected, inputs.receptors, inputs.missing)
    day_of = {d: i for i, d in enumerate(prob.days)}
    day = pd.DatetimeIndex(co["time"]).normalize()
    co = co[np.array([d in day_of for d in day], bool)].reset_index(drop=True)
    co["day_index"] = np.array([day_of[d] for d in pd.DatetimeIndex(co["time"]).normalize()], np.int64)
    Hh = sp.csr_matrix(inputs.H_hourly)[co["row"].to_numpy()]
    return co, Hh, Hh @ co_prior.ravel()


def joint_factors(inputs: InversionInputs, fossil: dict, bio, ratios: dict, inv, utc_offset_hours: float):
    """The CO2 inversion's scaling factors (`inversion.factors`, σ from `inversion`) in the joint state:
    district factors on the diffuse fossil sectors and profile factors of each diffuse sector also act
    on CO, through the same factor with the field × 1000 r_k; biosphere day factors on CO2 only.
    Returns (CO2 factor set, CO factor set, bio factor set) (empty sets when switched off)."""
    diffuse = [k for k in DIFFUSE_SECTORS if k in fossil]
    co2_fs, co_fs, bio_fs = FactorSet(), FactorSet(), FactorSet()
    if inv.district_scale_sigma > 0 and diffuse:
        fields, facs = district_factors(sum(fossil[k] for k in diffuse), inputs.district_names,
                                        inputs.district_fractions, inv.district_scale_sigma)
        co2_fs.extend(fields, facs)
        co_fs.extend({"anthropogenic": sum(NMOL_PER_UMOL * ratios[k][0] * fossil[k] for k in diffuse)}, facs)
    if inv.profile_scale_sigma > 0 and diffuse:
        fields, facs = profile_factors({k: fossil[k] for k in diffuse}, inputs.hours, utc_offset_hours,
                                       inv.profile_scale_sigma)
        co2_fs.extend(fields, facs)
        co_fs.extend({f"sector {k}": NMOL_PER_UMOL * ratios[k][0] * fossil[k] for k in diffuse}, facs)
    if inv.bio_day_scale_sigma > 0:
        bio_fs.extend(*biosphere_day_factors(bio, inputs.hours, utc_offset_hours, inv.bio_day_scale_sigma))
    return co2_fs, co_fs, bio_fs


def _extras(n_days: int, obs2, co_obs, Hh2, Hh1, factor_sets, inv, st, Wall, mask):
    """(E, σ, extra_agg, names): background offsets of both gases, then the factors."""
    co2_fs, co_fs, bio_fs = factor_sets
    n2, n1 = len(obs2), len(co_obs)
    E_off = np.zeros((n2 + n1, 2 * n_days))
    E_off[np.arange(n2), obs2["day_index"].to_numpy()] = 1.0
    E_off[n2 + np.arange(n1), n_days + co_obs["day_index"].to_numpy()] = 1.0
    cols = [E_off]
    sig = [np.full(n_days, float(inv.bg_sigma_ppm)), np.full(n_days, st["co_bg_sigma_ppb"])]
    n_agg = Wall.shape[0]
    agg_rows = {q: [np.zeros((n_agg, 2 * n_days))] for q in ("fossil", "bio", "co")}
    if len(co2_fs):
        cols.append(np.vstack([co2_fs.columns(Hh2), co_fs.columns(Hh1)]))
        sig.append(co2_fs.sigma)
        agg_rows["fossil"].append(co2_fs.totals_matrix(Wall, mask))
        agg_rows["bio"].append(np.zeros((n_agg, len(co2_fs))))
        agg_rows["co"].append(co_fs.totals_matrix(Wall, mask))
    if len(bio_fs):
        cols.append(np.vstack([bio_fs.columns(Hh2), np.zeros((n1, len(bio_fs)))]))
        sig.append(bio_fs.sigma)
        agg_rows["fossil"].append(np.zeros((n_agg, len(bio_fs))))
        agg_rows["bio"].append(bio_fs.totals_matrix(Wall, mask))
        agg_rows["co"].append(np.zeros((n_agg, len(bio_fs))))
    names = ([f"background co2 day {i}" for i in range(n_days)] + [f"background co day {i}" for i in range(n_days)]
             + co2_fs.names + bio_fs.names)
    return (sp.csr_matrix(np.hstack(cols)), np.concatenate(sig), {q: np.hstack(v) for q, v in agg_rows.items()},
            names)


def outer_joint_prior(outer, co_prior_outer, co_cfg) -> OuterPrior:
    """The joint prior of the outer cells (`inversion.joint.OuterPrior`) from the CO2 inversion's
    `OuterInputs` (prior = anthropogenic + biosphere, its biosphere part) and the CO prior's outer
    cells (n_hours, n_outer) nmol m-2 s-1: the ring's effective CO:CO2 ratio r_o = Σ CO / (1000 Σ
    anthropogenic CO2) with the CO outer inventory's relative σ (``gases.co.outer_rel_sigma``)."""
    bio = None if outer.prior_bio is None else np.asarray(outer.prior_bio, float)
    anthro = np.asarray(outer.prior, float) - (0.0 if bio is None else bio)
    co = np.asarray(co_prior_outer, float)
    if co.shape != anthro.shape:
        raise ValueError(f"joint: the CO prior's outer cells {co.shape} differ from the CO2 prior's {anthro.shape}; "
                         "rebuild both priors with the same config outer_grid")
    a = float(anthro.sum())
    if not a > 0:
        raise ValueError("joint: the outer anthropogenic CO2 prior sums to <= 0; give config inputs.outer_inventory "
                         "(the nested joint inversion needs the neighbours' CO2 to relate their CO to it)")
    return OuterPrior(anthro, bio, float(co.sum()) / (NMOL_PER_UMOL * a), float(co_cfg.outer_rel_sigma))


def _padded(W, n_cells: int) -> sp.csr_matrix:
    W = sp.csr_matrix(W)
    return sp.hstack([W, sp.csr_matrix((W.shape[0], n_cells - W.shape[1]))], format="csr") if W.shape[1] < n_cells \
        else W


def _nested_prior(outer, Q, inv, co_cfg, co_prior_outer, st: dict):
    """(OuterPrior, OuterShape) of a nested state (``st`` gains the outer settings), (None, None) else."""
    if outer is None:
        return None, None
    if co_prior_outer is None:
        raise ValueError("joint: the state is nested (outer cells) but no CO prior of the outer cells was given; "
                         "the CO prior.nc needs `flux_outer` (rule prior_gas with config outer_grid)")
    oprior = outer_joint_prior(outer, co_prior_outer, co_cfg)
    st.update(outer_rel_sigma=float(inv.outer_rel_sigma), outer_bio_rel_sigma=float(inv.outer_bio_rel_sigma),
              outer_floor_sigma=float(inv.outer_floor_sigma), co_outer_floor_sigma=float(co_cfg.outer_floor_sigma),
              outer_ratio_mol_per_mol=oprior.ratio, outer_ratio_sigma_rel=oprior.ratio_sigma_rel)
    return oprior, OuterShape(Q.outer_mask, Q.outer_dx_km, Q.outer_dy_km, Q.outer_corr_length_km)


def build_joint_run(inputs: InversionInputs, co_selected: pd.DataFrame, prior_sectors: dict, ratio_table,
                    inv_cfg, co_cfg, joint_cfg, period_start, period_end, utc_offset_hours: float = 0.0,
                    ratio_source: str = "emission-ratio table", co_prior_outer=None) -> JointRun:
    """The joint problem of a month: ``prior_sectors`` {sector: hourly µmol m-2 s-1} with ``bio``;
    ``co_selected``: CO observations (columns of selected.csv, ppb); ``inv_cfg``: the `inversion`
    settings; ``co_cfg``: `gases.co`; ``joint_cfg``: `inversion.joint_co`. Nested state
    (``inputs.outer``): ``co_prior_outer`` (n_hours, n_outer) nmol m-2 s-1, the CO prior of the
    outer cells (the CO prior.nc's ``flux_outer``); the rows then also hold the outer ring and the
    neighbours (`inversion.outer.outer_weights`)."""
    inv = inversion_config(inv_cfg)
    st = joint_settings(inv, co_cfg, joint_cfg)
    mask, days = period_axis(inputs.hours, period_start, period_end)
    prob = build_inversion_problem(inputs, inv, days, utc_offset_hours)
    used = screen_observations(prob, inv).used
    fossil = {k: v for k, v in prior_sectors.items() if k != BIO}
    ratios = sector_ratios(ratio_table, list(fossil), ratio_source)
    Q = prob.Q
    outer = inputs.outer
    oprior, oshape = _nested_prior(outer, Q, inv, co_cfg, co_prior_outer, st)
    shape = CorrelationShape(Q.dx_km, Q.dy_km, Q.corr_length_km, Q.step_hours, Q.corr_time_hours, Q.diurnal_corr,
                             oshape)
    blocks = latent_blocks(fossil, prior_sectors[BIO], ratios, shape, st, outer=oprior)

    obs2 = prob.obs[used].reset_index(drop=True)
    H2 = step_jacobian(prob.H_hourly[used], prob.n_cells, prob.step_hours)
    vsd2 = np.nan_to_num(obs2["value_std_dev"].to_numpy(float))
    bgs2 = np.nan_to_num(obs2["background_sigma"].to_numpy(float))
    m2 = np.sqrt(float(inv.obs_sigma_ppm) ** 2 + (float(inv.obs_rel_sigma) * prob.prior_enhancement[used]) ** 2)
    co_prior = co_prior_flux(prior_sectors, ratios)
    co_obs, Hh1, enh1 = _co_rows(inputs, prob, co_selected,
                                 co_prior if outer is None else hourly_state(co_prior, co_prior_outer))
    H1 = step_jacobian(Hh1, prob.n_cells, prob.step_hours)
    vsd1 = np.nan_to_num(co_obs["value_std_dev"].to_numpy(float))
    bgs1 = np.nan_to_num(co_obs["background_sigma"].to_numpy(float))
    m1 = np.sqrt(st["co_obs_sigma_ppb"] ** 2 + (float(inv.obs_rel_sigma) * enh1) ** 2)
    row2 = {int(r): i for i, r in enumerate(obs2["row"].to_numpy())}
    pair = np.array([row2.get(int(r), -1) for r in co_obs["row"].to_numpy()], np.int64)
    R = joint_obs_covariance(np.sqrt(vsd2**2 + m2**2 + bgs2**2), m2, np.sqrt(vsd1**2 + m1**2 + bgs1**2), m1, pair,
                             st["transport_error_correlation"])
    d = np.r_[prob.y[used], co_obs["value"].to_numpy(float) - co_obs["background"].to_numpy(float) - enh1]
    area = np.asarray(inputs.cell_area, float).ravel()
    Wd = sp.csr_matrix(inputs.district_fractions) @ sp.diags(area)
    Wall = sp.vstack([Wd, sp.csr_matrix(np.asarray(Wd.sum(axis=0)))], format="csr")
    names, kinds = list(inputs.district_names) + [CITY], ["district"] * len(inputs.district_names) + [MAIN_CITY]
    n_in = Wall.shape[1]
    if outer is not None:  # the outer table's rows (ring, neighbours) over the nested state, m²
        from .outer import outer_weights

        o_names, o_kinds, Wo = outer_weights(outer)
        names, kinds = names + list(o_names), kinds + list(o_kinds)
        Wall = sp.vstack([_padded(Wall, prob.n_cells), Wo], format="csr")
    factor_sets = joint_factors(inputs, fossil, prior_sectors[BIO], ratios, inv, utc_offset_hours)
    Hf2, Hf1 = prob.H_hourly[used], Hh1  # the factors act on the inner cells: the inner columns
    if outer is not None:
        from .outer import split_columns

        nh = len(inputs.hours)
        Hf2, Hf1 = (split_columns(h, n_in, prob.n_cells, nh)[0] for h in (Hf2, Hf1))
    E, sig_x, extra_agg, x_names = _extras(len(days), obs2, co_obs, Hf2, Hf1, factor_sets, inv, st,
                                           sp.csr_matrix(Wall)[:, :n_in], mask)
    jp = JointProblem(H2, H1, d, R, blocks, E, sig_x)
    co_obs["prior_enhancement"] = enh1
    obs2["prior_enhancement"] = prob.prior_enhancement[used]

    A = district_total_rows(Wall, agg.hours_per_step(mask, prob.step_hours))
    o_f = o_b = o_c = None
    if outer is not None:
        o_f, o_b, o_c = oprior.anthro, oprior.bio, co_prior_outer
    prior_t = {"fossil": state_totals(sum(fossil.values()), o_f, Wall, mask),
               "bio": state_totals(prior_sectors[BIO], o_b, Wall, mask),
               "co": tonnes_co_per_row(state_totals(co_prior, o_c, Wall, mask))}
    run = JointRun(jp, A, names, prior_t, obs2, co_obs, ratios, st, mask, Wall, prob, used, extra_agg, x_names)
    run.kinds = kinds
    return run


def state_totals(inner_hourly, outer_hourly, W, mask) -> np.ndarray:
    """t CO2-equivalent-units totals over the masked hours for every row of W (n_rows × n_cells) of an
    hourly field on the (nested) state: inner (n_hours, ny, nx), outer (n_hours, n_outer) or None
    (zero when the state is nested)."""
    m = np.asarray(mask, bool)
    f = np.asarray(inner_hourly, float)
    s = f[m].sum(axis=0).ravel()
    if W.shape[1] > s.size:
        o = np.zeros(W.shape[1] - s.size) if outer_hourly is None else np.asarray(outer_hourly, float)[m].sum(axis=0)
        s = np.concatenate([s, o])
    return np.asarray(sp.csr_matrix(W) @ s).ravel() * agg.SECONDS_PER_HOUR * agg.T_CO2_PER_UMOL


def _quantity_columns(out: pd.DataFrame, run: JointRun, res: JointResult, rows: slice, quantities) -> pd.DataFrame:
    for q in quantities:
        scale = tonnes_co_per_row if q == "co" else np.asarray  # CO rows: t CO
        out[f"{q}_prior_t"] = run.prior_t[q][rows]
        out[f"{q}_posterior_t"] = run.prior_t[q][rows] + scale(res.mean(q))[rows]
        out[f"{q}_prior_sigma_t"] = scale(res.sigma(q, prior=True))[rows]
        out[f"{q}_posterior_sigma_t"] = scale(res.sigma(q))[rows]
    out["posterior_correlation"] = res.correlation("fossil", "bio")[rows]
    return out


#: kind of the city-total row (the outer rows' kinds are ring, city (a neighbouring city) and region)
MAIN_CITY = "city total"


def _main_rows(run: JointRun) -> slice:
    """The districts and the city total (the rows before the outer ring's and the neighbours')."""
    kinds = run.kinds or ["district"] * len(run.names)
    return slice(0, sum(k in ("district", MAIN_CITY) for k in kinds))


def fossil_bio_table(run: JointRun, res: JointResult, truth_sectors: dict | None = None,
                     truth_outer: dict | None = None) -> pd.DataFrame:
    """Per district and the city: prior, posterior and σ of fossil and biogenic CO2 (t), their
    posterior correlation, and (demo) the truth: fossil = every non-``bio`` sector of the truth
    (nested state: ``truth_outer`` {"fossil", "bio"} of the outer cells, zero in the districts)."""
    rows = _main_rows(run)
    out = _quantity_columns(pd.DataFrame({"district": run.names[rows]}), run, res, rows, ("fossil", "bio"))
    if truth_sectors is not None:
        for q, t in _truth_totals(run, truth_sectors, truth_outer).items():
            out[f"{q}_truth_t"] = t[rows]
    return out


def _truth_totals(run: JointRun, truth_sectors: dict, truth_outer: dict | None) -> dict:
    to = truth_outer or {}
    return {"fossil": state_totals(sum(v for k, v in truth_sectors.items() if k != BIO), to.get("fossil"), run.Wall,
                                   run.mask),
            "bio": state_totals(truth_sectors[BIO], to.get("bio"), run.Wall, run.mask)}


def outer_joint_table(run: JointRun, res: JointResult, truth_sectors: dict | None = None,
                      truth_outer: dict | None = None) -> pd.DataFrame:
    """joint/outer.csv of a nested state: the outer ring and each neighbour (`inversion.outer.outer_weights`:
    ring = the outer cells, a neighbour = its cells inner and outer), fossil and biogenic CO2 (t CO2)
    and CO (t CO): prior, posterior, σ, the fossil/biogenic posterior correlation, and the demo's
    truth of fossil and biogenic CO2."""
    rows = slice(_main_rows(run).stop, len(run.names))
    out = pd.DataFrame({"name": run.names[rows], "kind": (run.kinds or [])[rows]})
    out = _quantity_columns(out, run, res, rows, ("fossil", "bio", "co"))
    if truth_sectors is not None:
        for q, t in _truth_totals(run, truth_sectors, truth_outer).items():
            out[f"{q}_truth_t"] = t[rows]
    return out


def read_sector_fields(path, hours) -> dict:
    """{sector: hourly field (n_hours, ny, nx)} of every ``flux_<sector>(time, lat, lon)`` of a flux
    file (the CO2 prior.nc, the demo's truth.nc) on the Jacobian's ``hours``."""
    from .run import prior_sector_names, read_flux

    names = prior_sector_names(path)
    if BIO not in names:
        raise ValueError(f"{path}: no `flux_bio(time, lat, lon)`; the joint fossil/biogenic inversion needs the "
                         "CO2 prior's sectors with the biosphere (docs/formats.md, prior.nc)")
    return {k: read_flux(path, "prior", hours, var=f"flux_{k}")[0] for k in names}


def run_joint_inversion(jacobian_path, selected_path, prior_path, districts_path, co_selected_path, ratios_path,
                        out_districts, out_diagnostics, *, inversion_cfg=None, co_cfg=None, period_start, period_end,
                        utc_offset_hours: float = 0.0, truth_path=None, co_prior_path=None, neighbours_path=None,
                        truth_outer_path=None, out_outer=None) -> pd.DataFrame:
    """The pipeline's joint fossil-CO2/CO inversion of a month (rule ``joint``; docs/gases.md).

    Reads the CO2 inversion's files (Jacobian, ``selected.csv``, ``prior.nc`` with its sectors,
    districts), the CO observations (``co/obs/selected.csv``, ppb) and the CO:CO2 ratio table, builds
    the problem with `build_joint_run` and solves it with `solve_joint`; writes ``out_districts``
    (`fossil_bio_table`: per district and the city the prior, posterior and σ of fossil and biogenic
    CO2 in t, their posterior correlation, and in the demo the truth from ``truth_path``) and
    ``out_diagnostics`` (observations, DOFS, χ²_r, settings, timings, peak memory), atomically.
    ``inversion_cfg``: the ``inversion`` section (with ``joint_co``); ``co_cfg``: ``gases.co``.

    Nested state (a Jacobian with outer columns, config ``outer_grid``): the CO prior of the outer
    cells from ``co_prior_path`` (the CO prior.nc's ``flux_outer``), the neighbours of
    ``neighbours_path``, (demo) the outer truth of ``truth_outer_path`` (truth_outer.nc); writes
    ``out_outer`` (`outer_joint_table`: the ring and each neighbour, fossil/biogenic CO2 and CO)."""
    from gzcarbon.atomic import atomic_write, write_text
    from gzcarbon.config import GasConfig

    from .joint import read_ratio_file, solve_joint
    from .run import load_inputs, read_selected

    t0 = time.perf_counter()
    inv = inversion_config(inversion_cfg)
    co = co_cfg if isinstance(co_cfg, GasConfig) else GasConfig(**dict(co_cfg or {}))
    inputs = load_inputs(jacobian_path, selected_path, prior_path, districts_path, None, inv,
                         neighbours_path=neighbours_path)
    nested = getattr(inputs, "outer", None) is not None
    co_outer = None
    if nested:
        from .outer import read_outer_flux

        if not co_prior_path:
            raise ValueError(f"{jacobian_path}: the Jacobian has outer columns (config outer_grid) but the joint "
                             "inversion got no CO prior of the outer cells; give the CO prior.nc (rule prior_gas)")
        co_outer = read_outer_flux(co_prior_path, "prior_gas", inputs.hours, inputs.outer.nested)
    prior = read_sector_fields(prior_path, inputs.hours)
    table = read_ratio_file(ratios_path, [k for k in prior if k != BIO])
    run = build_joint_run(inputs, read_selected(co_selected_path), prior, table, inv, co, inv.joint_co,
                          period_start, period_end, float(utc_offset_hours), str(ratios_path), co_outer)
    t1 = time.perf_counter()
    res = solve_joint(run.problem, run.A, ("fossil", "bio", "co") if nested else ("fossil", "bio"),
                      extra_agg=run.extra_agg)
    t2 = time.perf_counter()
    truth = read_sector_fields(truth_path, inputs.hours) if truth_path else None
    truth_outer = None
    if nested and truth_path and truth_outer_path:
        from .outer import read_outer_flux

        tf = read_outer_flux(truth_outer_path, "demo_delta", inputs.hours, inputs.outer.nested)
        tb = read_outer_flux(truth_outer_path, "demo_delta", inputs.hours, inputs.outer.nested, var="flux_outer_bio")
        truth_outer = {"fossil": tf - tb, "bio": tb}
    table_out = fossil_bio_table(run, res, truth, truth_outer)
    if nested and out_outer:
        outer_out = outer_joint_table(run, res, truth, truth_outer)
        atomic_write(out_outer, lambda p: outer_out.to_csv(p, index=False, float_format="%.6g"))
    jp = run.problem
    diag = {"n_obs_co2": int(jp.n_co2), "n_obs_co": int(jp.n_co), "n_latent_blocks": len(jp.blocks),
            "dofs": float(res.dofs), "chi2_reduced": float(res.chi2_reduced),
            "ratios_mol_per_mol": {k: {"ratio": r, "sigma_rel": s} for k, (r, s) in run.ratios.items()},
            "settings": run.settings, "ratio_table": str(ratios_path),
            "seconds": {"read_and_build": round(t1 - t0, 2), "solve_joint": round(t2 - t1, 2),
                        **{f"solve_joint_{k}": round(float(v), 2) for k, v in res.timings.items()}},
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
            "n_outer_cells": int(inputs.outer.n_outer) if nested else 0,
            "inputs": [str(p) for p in (jacobian_path, selected_path, prior_path, districts_path, co_selected_path,
                                        ratios_path, truth_path, co_prior_path if nested else None,
                                        neighbours_path if nested else None, truth_outer_path if nested else None)
                       if p]}
    atomic_write(out_districts, lambda p: table_out.to_csv(p, index=False, float_format="%.6g"))
    write_text(out_diagnostics, json.dumps(diag, indent=2, default=float))
    city = table_out.iloc[-1]
    log.info("joint CO2/CO: %d CO2 + %d CO obs; city fossil %.0f ± %.0f t (prior %.0f ± %.0f), biogenic %.0f ± %.0f t, "
             "correlation %.2f; DOFS %.1f, chi2_r %.2f; solve %.1f s", jp.n_co2, jp.n_co, city.fossil_posterior_t,
             city.fossil_posterior_sigma_t, city.fossil_prior_t, city.fossil_prior_sigma_t, city.bio_posterior_t,
             city.bio_posterior_sigma_t, city.posterior_correlation, res.dofs, res.chi2_reduced, t2 - t1)
    return table_out
