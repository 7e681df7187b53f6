"""The `inversion` rule's function: pipeline files in, posterior.nc / districts.csv / modelled.csv /
diagnostics.json out (docs/formats.md, "Inversion outputs in detail").

Four public steps, each usable on its own:

* `load_inputs` reads the Jacobian, selected.csv, prior.nc, the districts (and the demo truth) into
  an `InversionInputs`;
* `build_inversion_problem` and `build_aggregation` build the operators (state, H, Q, R and the
  district/block aggregation rows);
* `inversion.solve.solve` solves (options: `SolveOptions`);
* `write_outputs` writes the four files atomically.

`invert` chains them on in-memory inputs (tested with small fakes); `run_inversion` is the rule's
function (load, invert, write). The settings are the typed ``inversion`` config section
(`gzcarbon.config.InversionConfig`): a partial mapping gets the pipeline's defaults from it, so the
Python API and `snakemake` solve the same problem.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
import xarray as xr

from gzcarbon.grid import Grid, NestedGrid, cell_area_m2, edges_from_centres
from gzcarbon.names import CITY, GASES, tonnes_per_flux_unit

from . import aggregate as agg
from . import crossval as cv
from .diagnostics import observation_losses, residuals_per_site, uncertainty_reduction
from .outer import OuterInputs
from .positivity import apply_positivity
from .screening import chi2_test, hqht_diagonal, innovation_statistics, screen_settings
from .sequential import JOINT_KEY, district_factor_index, joint_entry, split_unit_rows, with_unit_rows
from .settings import inversion_config
from .solve import InversionResult, SolveOptions, solve
from .state import Problem, build_problem, read_selected

log = logging.getLogger(__name__)

DIFFUSE_SECTORS = ("industry", "road", "residential")  # prior.nc `flux_<sector>` the profile factors modulate


@dataclass
class InversionInputs:
    """The month's inputs in memory (what `load_inputs` reads; tests build them from fakes).

    ``prior_flux``/``truth_flux``/``prior_*_flux``: (n_hours, ny, nx) µmol m-2 s-1 on ``hours``;
    ``lat``/``lon`` ascending cell centres; ``district_fractions``: (n_district × n_cells) fraction of
    each cell in each district; ``cell_area`` (ny, nx) m² (default: exact WGS84 areas of the cells);
    ``missing``: receptors without a footprint; ``prior_sector_fluxes``: {sector: field} of the diffuse
    sectors (for the profile factors); ``prior_sector_signal``: {sector: H_hourly · flux_<sector>} per
    receptor (ppm), every `flux_<sector>` of prior.nc through the Jacobian (`sector_signals`), for the
    ``prior_<sector>`` columns of modelled.csv (None: no sector columns).
    """

    H_hourly: sp.spmatrix
    receptors: pd.DataFrame
    hours: pd.DatetimeIndex
    selected: pd.DataFrame
    prior_flux: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    district_names: list
    district_fractions: object
    cell_area: np.ndarray | None = None
    truth_flux: np.ndarray | None = None
    missing: np.ndarray | None = None
    prior_power_flux: np.ndarray | None = None
    prior_bio_flux: np.ndarray | None = None
    prior_sector_fluxes: dict | None = None
    prior_sector_signal: dict | None = None
    paths: list = field(default_factory=list)
    gas: str = "co2"  # gzcarbon.names.GASES: flux units, ppm/ppb, tonnes of which gas
    outer: OuterInputs | None = None  # the nested state's outer cells (config outer_grid), None: single grid

    def __post_init__(self):
        self.hours = pd.DatetimeIndex(self.hours)
        self.lat = np.asarray(self.lat, float)
        self.lon = np.asarray(self.lon, float)
        if self.cell_area is None:
            self.cell_area = cell_area_m2(self.lat_edges, self.lon_edges)

    @property
    def lat_edges(self) -> np.ndarray:
        return edges_from_centres(self.lat, "prior latitudes")

    @property
    def lon_edges(self) -> np.ndarray:
        return edges_from_centres(self.lon, "prior longitudes")

    @property
    def shape(self) -> tuple[int, int]:
        return (self.lat.size, self.lon.size)


@dataclass
class Screening:
    """Innovation screening before the solve (`inversion.screening`)."""

    settings: dict
    innovation: np.ndarray
    sigma: np.ndarray
    z: np.ndarray
    flagged: np.ndarray
    used: np.ndarray
    seconds: float
    table: list

    def flagged_records(self) -> list[dict]:
        """The flagged observations, largest |z| first."""
        idx = np.flatnonzero(self.flagged)
        return [self.table[i] for i in idx[np.argsort(-np.abs(self.z[self.flagged]))]]


@dataclass
class Aggregation:
    """Rows the solve aggregates: district and city totals (A, t) and block/offset/factor rows (B)."""

    names: list
    Wall: sp.csr_matrix  # (district + city) × cell weights, m²
    A: sp.csr_matrix
    B: sp.csr_matrix
    mask: np.ndarray  # hours inside the period
    days: pd.DatetimeIndex  # the period's UTC days (one background offset each)
    block: int
    nby: int
    nbx: int
    outer: "OuterAggregation | None" = None  # the nested state's outer rows (after A's and B's own)

    @property
    def n_blocks(self) -> int:
        return self.nby * self.nbx


@dataclass
class OuterAggregation:
    """The outer table's rows (ring, neighbours) appended to A after the unit rows, and one row per
    outer cell appended to B; taken off the result after the solve (`inversion.outer.take_tail_rows`)."""

    names: list
    kinds: list
    W_t: sp.csr_matrix  # (n_rows × n_cells) t per (flux unit · hour) of a state field
    A: sp.csr_matrix
    B: sp.csr_matrix


@dataclass
class Posterior:
    """The solve's result on the hourly axis: flux, step correction, offsets, factors, positivity."""

    flux: np.ndarray
    correction: np.ndarray
    offsets: np.ndarray
    factor_values: np.ndarray
    positivity: str
    positivity_report: dict
    totals_t: np.ndarray
    prior_t: np.ndarray
    flux_outer: np.ndarray | None = None  # (n_hours, n_outer) posterior flux of the outer cells
    correction_outer: np.ndarray | None = None  # (n_step, n_outer)


@dataclass
class InversionOutputs:
    problem: Problem
    result: InversionResult
    districts: pd.DataFrame
    modelled: pd.DataFrame
    diagnostics: dict
    posterior: xr.Dataset
    outer: pd.DataFrame | None = None  # outer.csv (nested state)


# --------------------------------------------------------------------------------------------------
# operators
# --------------------------------------------------------------------------------------------------
def build_factors(inv_cfg, hours, prior_flux, power=None, bio=None, district_names=None,
                  district_fractions=None, utc_offset_hours: float = 0.0, sectors: dict | None = None):
    """The scaling factors asked for by the settings (`inversion.factors`), or None.

    District factors scale prior − power − bio (the parts that exist); biosphere day factors need
    ``bio`` (without it they are skipped with a warning).
    """
    from .factors import FactorSet, biosphere_day_factors, district_factors, profile_factors

    cfg = inversion_config(inv_cfg)
    sd, sb, sp_ = cfg.district_scale_sigma, cfg.bio_day_scale_sigma, cfg.profile_scale_sigma
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


def period_axis(hours, period_start, period_end) -> tuple[np.ndarray, pd.DatetimeIndex]:
    """(mask of the hours inside [start, end), the period's UTC days)."""
    hours = pd.DatetimeIndex(hours)
    period_start, period_end = pd.Timestamp(period_start), pd.Timestamp(period_end)
    mask = agg.period_mask(hours, period_start, period_end)
    if not mask.any():
        raise ValueError(f"the period {period_start} .. {period_end} has no hour on the Jacobian's axis "
                         f"{hours[0]} .. {hours[-1]}")
    days = pd.date_range(period_start.normalize(), period_end - pd.Timedelta("1ns"), freq="D").normalize()
    return mask, days


def build_inversion_problem(inputs: InversionInputs, config, days, utc_offset_hours: float = 0.0) -> Problem:
    """The `Problem` (state, H, y, Q, R) of ``inputs``: scaling factors (`build_factors`) + `build_problem`."""
    cfg = inversion_config(config)
    factors = build_factors(cfg, inputs.hours, inputs.prior_flux, inputs.prior_power_flux, inputs.prior_bio_flux,
                            inputs.district_names, inputs.district_fractions, utc_offset_hours,
                            inputs.prior_sector_fluxes)
    return build_problem(inputs.H_hourly, inputs.receptors, inputs.hours, inputs.selected, inputs.prior_flux,
                         inputs.lat_edges, inputs.lon_edges, cfg, days, missing=inputs.missing,
                         prior_power=inputs.prior_power_flux, factors=factors, prior_bio=inputs.prior_bio_flux,
                         outer=inputs.outer)


def build_aggregation(inputs: InversionInputs, prob: Problem, mask, days, config) -> Aggregation:
    """District + city totals (rows of A, t over the period) and block means, background offsets and
    scaling factors (rows of B, variances only) as sparse rows over the state."""
    cfg = inversion_config(config)
    ny, nx = inputs.shape
    area = np.asarray(inputs.cell_area, float).reshape(ny, nx).ravel()
    F = sp.csr_matrix(inputs.district_fractions, dtype=np.float64)
    if F.shape != (len(inputs.district_names), ny * nx):
        raise ValueError(f"district matrix has shape {F.shape}, expected ({len(inputs.district_names)}, {ny * nx})")
    Wd = F @ sp.diags(area)
    if inputs.gas != "co2":  # district totals in t of the gas (agg.* counts t CO2 per µmol)
        Wd = Wd * (tonnes_per_flux_unit(inputs.gas) / agg.T_CO2_PER_UMOL)
    Wall = sp.vstack([Wd, sp.csr_matrix(np.asarray(Wd.sum(axis=0)))], format="csr")
    nh_step = agg.hours_per_step(mask, prob.step_hours)
    n_extra = prob.n_offsets + prob.n_factors
    A = agg.correction_total_matrix(_pad_cells(Wall, prob.n_cells), nh_step, prob.n_offsets)
    block = int(cfg.coarse_block)
    Wb, nby, nbx = agg.block_mean_weights(ny, nx, block, area.reshape(ny, nx))
    B = agg.period_mean_matrix(_pad_cells(Wb, prob.n_cells), nh_step, prob.n_offsets)
    if prob.n_factors:  # factor j adds s_j g_j to the flux: its totals and block means
        sums = prob.factors.period_sums(mask)
        A = sp.hstack([A, sp.csr_matrix(prob.factors.totals_matrix(Wall, mask, sums))], format="csr")
        B = sp.hstack([B, sp.csr_matrix(prob.factors.mean_matrix(Wb, mask, sums))], format="csr")
    # plus one unit row per background offset and scaling factor: their exact posterior σ comes
    # out of the same pass
    E = sp.csr_matrix((np.ones(n_extra), (np.arange(n_extra), prob.n_flux + np.arange(n_extra))),
                      shape=(n_extra, prob.n_flux + n_extra))
    B = sp.vstack([B, E], format="csr")
    return Aggregation(list(inputs.district_names) + [CITY], Wall, A, B, mask, days, block, nby, nbx,
                       outer_aggregation(inputs, prob, mask, nh_step))


def _pad_cells(W, n_cells: int) -> sp.csr_matrix:
    """Cell weights over the inner cells, with zero columns for the outer cells of a nested state."""
    W = sp.csr_matrix(W)
    return W if W.shape[1] == n_cells else sp.hstack([W, sp.csr_matrix((W.shape[0], n_cells - W.shape[1]))],
                                                     format="csr")


def outer_aggregation(inputs: InversionInputs, prob: Problem, mask, nh_step) -> OuterAggregation | None:
    """The outer table's rows over the state (t over the period: the ring and each neighbour, their
    inner cells' part of the scaling factors included) and one period-mean row per outer cell."""
    if inputs.outer is None:
        return None
    from .outer import outer_cell_rows, outer_weights

    scale = tonnes_per_flux_unit(inputs.gas) / agg.T_CO2_PER_UMOL
    names, kinds, W = outer_weights(inputs.outer, scale)
    A = agg.correction_total_matrix(W, nh_step, prob.n_offsets)
    B = agg.period_mean_matrix(outer_cell_rows(prob.n_inner, prob.n_outer), nh_step, prob.n_offsets)
    if prob.n_factors:
        sums = prob.factors.period_sums(mask)
        A = sp.hstack([A, sp.csr_matrix(prob.factors.totals_matrix(W[:, :prob.n_inner], mask, sums))], format="csr")
        B = sp.hstack([B, sp.csr_matrix((B.shape[0], prob.n_factors))], format="csr")
    return OuterAggregation(names, kinds, W * (agg.SECONDS_PER_HOUR * agg.T_CO2_PER_UMOL), A, B)


# --------------------------------------------------------------------------------------------------
# screening and solve
# --------------------------------------------------------------------------------------------------
def screen_observations(prob: Problem, config) -> Screening:
    """Normalised innovations z = d / √((H Q Hᵀ)_ii + R_ii); |z| beyond the threshold is flagged (and,
    with action ``exclude``, left out of the solve). All observations screened out is an error."""
    scr = screen_settings(inversion_config(config))
    t = time.perf_counter()
    innov = prob.y - prob.H @ prob.x_prior
    sigma, z = innovation_statistics(innov, hqht_diagonal(prob.Q, prob.H), prob.obs_err)
    flagged = np.abs(z) > scr["threshold_sigma"] if scr["action"] != "off" else np.zeros(z.size, bool)
    used = ~flagged if scr["action"] == "exclude" else np.ones(z.size, bool)
    out = Screening(scr, innov, sigma, z, flagged, used, time.perf_counter() - t,
                    _obs_records(prob, innov, sigma, z, flagged, used))
    if flagged.any():
        recs = out.flagged_records()
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
    return out


def _used_masks(subsets: dict, used: np.ndarray) -> dict:
    """{name: indices or mask over every matched observation} as masks over the used ones."""
    out = {}
    for name, v in dict(subsets).items():
        v = np.asarray(v)
        if v.dtype != bool:
            m = np.zeros(used.size, bool)
            m[v.astype(np.int64)] = True
            v = m
        out[name] = v[used]
    return out


def _keep_used_rows(opts: SolveOptions, used: np.ndarray) -> SolveOptions:
    """The caller's per-observation options refer to every matched observation: keep the used rows."""
    if used.all():
        return opts
    changes = {}
    if opts.y_ensemble is not None:
        changes["y_ensemble"] = np.asarray(opts.y_ensemble)[used]
    for key in ("obs_subsets", "holdout"):
        if getattr(opts, key) is not None:
            changes[key] = _used_masks(getattr(opts, key), used)
    return opts.replace(**changes) if changes else opts


def solve_options_for(config, solve_options: SolveOptions | None, prob: Problem, used: np.ndarray) -> SolveOptions:
    """The solve's options: the caller's (default `SolveOptions()`), hyperparameter tuning from the
    settings, and (``station_contributions``) each station left out and alone as observation subsets."""
    cfg = inversion_config(config)
    opts = solve_options or SolveOptions()
    if cfg.tune_hyperparameters and not opts.tune:
        opts = opts.replace(tune="ml")
    opts = _keep_used_rows(opts, used)
    site_of_obs = prob.obs["site"].astype(str).to_numpy()[used]
    obs_sites = sorted(set(site_of_obs))
    if cfg.station_contributions and len(obs_sites) > 1 and opts.obs_subsets is None:
        if opts.solver != "pcg" and len(site_of_obs) <= opts.max_dense_obs:
            # each station left out, and each alone: exact district σ from the same H Q Hᵀ (cheap)
            opts = opts.replace(obs_subsets={**{f"without {s}": site_of_obs != s for s in obs_sites},
                                             **{f"only {s}": site_of_obs == s for s in obs_sites}})
        else:
            log.info("station contributions skipped: they need the Cholesky solver (%d observations)",
                     len(site_of_obs))
    return opts


def cross_validation_plan(config, prob: Problem, used: np.ndarray, options: SolveOptions) -> cv.CrossValidationPlan:
    """The cross-validation folds (`inversion.crossval`) over the observations the screen kept: each
    site left out and ``folds_days`` blocks of days, unless switched off, the solve uses PCG, or the
    caller's options already hold a ``holdout`` of their own (then those are solved and no entry made)."""
    settings = cv.cross_validation_settings(config)
    if options.holdout is not None:
        why = "the caller's SolveOptions.holdout is solved instead (InversionResult.holdout_predictions)"
        return cv.CrossValidationPlan(settings, [], {"sites": why, "days": why})
    obs = prob.obs[used]
    return cv.plan_folds(settings, obs["site"].astype(str).to_numpy(), obs["time"], n_obs=int(used.sum()),
                         solver=options.solver, max_dense_obs=options.max_dense_obs)


def solve_screened(prob: Problem, scr: Screening, aggregation: Aggregation, options: SolveOptions) -> InversionResult:
    """`solve` on the observations the screen kept, with the aggregation rows; logs the χ² test."""
    used = scr.used
    if used.all():
        H_s, y_s, err_s = prob.H, prob.y, prob.obs_err
    else:
        H_s, y_s = prob.H[used], prob.y[used]
        err_s = prob.obs_cov[np.ix_(used, used)] if prob.obs_cov is not None else prob.obs_sigma[used]
    return solve(H_s, y_s, prob.x_prior, prob.Q, err_s, aggregate=aggregation.A, aggregate_var=aggregation.B,
                 options=options)


def _log_chi2(res: InversionResult, scr: Screening) -> dict:
    chi2 = chi2_test(res.chi2, res.n_obs, scr.settings["chi2_p_min"])
    (log.warning if chi2["out_of_range"] else log.info)(
        "innovation chi2 = %.1f for %d observations (chi2_r %.3f): p-value %.3g%s", chi2["value"], chi2["dof"],
        chi2["reduced"], chi2["p_value"],
        f" < {chi2['p_min']:g}: the data disagree with the prior and observation errors more than chance "
        "allows (errors too small, or bad data); see the largest normalised residuals in diagnostics.json"
        if chi2["out_of_range"] else "")
    return chi2


# --------------------------------------------------------------------------------------------------
# the month's inversion
# --------------------------------------------------------------------------------------------------
def invert(inputs: InversionInputs, config, period_start, period_end, *, solve_options: SolveOptions | None = None,
           utc_offset_hours: float = 0.0, problem: Problem | None = None, extra=None) -> InversionOutputs:
    """Solve the month's inversion from in-memory inputs; the period is [period_start, period_end).

    ``config``: the ``inversion`` settings (an `InversionConfig` or a mapping of some of its keys; the
    rest are the pipeline's defaults). ``utc_offset_hours``: local time of the day and profile factors.
    ``problem``: the `Problem` `build_inversion_problem` gives for these inputs, when the caller has
    already built it (e.g. to know the observation order); it is then not built again.
    ``extra``: column and mobile rows (`inversion.extra_obs.ExtraObservations`, their own R per
    type) added to y, H and R; None: the in-situ sites only.
    """
    t0 = time.perf_counter()
    cfg = inversion_config(config)
    mask, days = period_axis(inputs.hours, period_start, period_end)
    if extra is not None:
        from .extra_obs import augment_inputs

        inputs = augment_inputs(inputs, extra)
    prob = problem if problem is not None else build_inversion_problem(inputs, cfg, days, utc_offset_hours)
    if extra is not None and problem is None:
        from .extra_obs import apply_type_errors

        prob = apply_type_errors(prob, extra)
    scr = screen_observations(prob, cfg)
    aggregation = build_aggregation(inputs, prob, mask, days, cfg)
    opts = solve_options_for(cfg, solve_options, prob, scr.used)
    cv_plan = cross_validation_plan(cfg, prob, scr.used, opts)
    # the district factors as extra aggregate rows: their joint covariance with the totals carries
    # them to the next month (inversion.sequential); taken off again before any other output
    f_index, f_names = district_factor_index(prob)
    res = solve_screened(prob, scr, _solve_rows(aggregation, f_index), cv_plan.apply(opts))
    tail = _take_outer_rows(res, aggregation)
    joint = split_unit_rows(res, len(aggregation.names))
    chi2 = _log_chi2(res, scr)
    post = posterior_fields(inputs, prob, res, aggregation, cfg)
    districts = districts_table(inputs, res, aggregation, post)
    modelled = modelled_table(inputs, prob, res, scr, post)
    per_site = residuals_per_site(modelled[scr.used])
    ds = posterior_dataset(inputs, prob, res, aggregation, post, per_site, (period_start, period_end))
    diagnostics = diagnostics_dict(inputs, prob, res, aggregation, scr, post, per_site, chi2, cfg,
                                   (period_start, period_end))
    outer_csv = None
    if tail is not None:
        from .outer import add_outer_posterior, outer_diagnostics

        outer_csv = outer_table_of(inputs, aggregation, post, tail)
        ds = add_outer_posterior(ds, inputs.outer, prob, post, tail, inputs.gas)
        diagnostics.update(outer_diagnostics(outer_csv, prob, modelled, scr.used))
    diagnostics["cross_validation"] = cv.timed_entry(cv_plan, res, prob.y[scr.used],
                                                     prob.prior_enhancement[scr.used])
    diagnostics["aggregate_covariance"] = aggregate_covariance(res, aggregation.names)
    diagnostics[JOINT_KEY] = joint_entry(joint, aggregation.names, f_names, post.prior_t,
                                         post.prior_t + res.agg_post_mean)
    diagnostics["seconds"] = time.perf_counter() - t0
    return InversionOutputs(prob, res, districts, modelled, diagnostics, ds, outer_csv)


def _solve_rows(aggregation: Aggregation, f_index) -> Aggregation:
    """The rows the solve aggregates: A with the district factors' unit rows, then (nested state) the
    outer table's rows; B with the outer cells' rows at the end."""
    A = with_unit_rows(aggregation.A, f_index)
    if aggregation.outer is None:
        return dataclasses.replace(aggregation, A=A)
    o = aggregation.outer
    return dataclasses.replace(aggregation, A=sp.vstack([A, o.A], format="csr"),
                               B=sp.vstack([aggregation.B, o.B], format="csr"))


def _take_outer_rows(res: InversionResult, aggregation: Aggregation) -> dict | None:
    """The outer rows of the solve (`_solve_rows`) taken off ``res`` (in place): their totals and
    covariance (`inversion.outer.take_tail_rows`) and the outer cells' variances."""
    if aggregation.outer is None:
        return None
    from .outer import take_tail_rows

    o = aggregation.outer
    tail = take_tail_rows(res, res.agg_post_cov.shape[0] - o.A.shape[0])
    n = o.B.shape[0]
    tail["cell_var_prior"] = np.asarray(res.var_prior[-n:], float).copy()
    tail["cell_var_post"] = np.asarray(res.var_post[-n:], float).copy()
    res.var_prior, res.var_post = res.var_prior[:-n], res.var_post[:-n]
    return tail


def outer_table_of(inputs: InversionInputs, aggregation: Aggregation, post: Posterior, tail: dict) -> pd.DataFrame:
    """outer.csv (`inversion.outer.outer_table`) of the run: prior, posterior (the written fields) and
    truth over the period on the nested state."""
    from .outer import hourly_state, outer_table

    o, nh = aggregation.outer, len(inputs.hours)
    oi = inputs.outer

    def state(inner, outer_f):
        return hourly_state(inner, outer_f).reshape(nh, -1)

    truth = (state(inputs.truth_flux, oi.truth) if inputs.truth_flux is not None and oi.truth is not None
             else None)
    return outer_table(o.names, o.kinds, o.W_t, state(inputs.prior_flux, oi.prior),
                       state(post.flux, post.flux_outer), truth, aggregation.mask, tail)


# --------------------------------------------------------------------------------------------------
# output tables
# --------------------------------------------------------------------------------------------------
def posterior_fields(inputs: InversionInputs, prob: Problem, res: InversionResult, aggregation: Aggregation,
                     config) -> Posterior:
    """Hourly posterior flux = prior + correction of its step (+ scaling factors), the optional
    positivity bound (`inversion.positivity`), and the district totals (t) it implies."""
    cfg = inversion_config(config)
    ny, nx = inputs.shape
    prior_t = agg.totals_tonnes(inputs.prior_flux, aggregation.Wall, aggregation.mask)
    totals = prior_t + res.agg_post_mean  # prior correction is 0: posterior = prior + A x̂
    n_flux, n_days = prob.n_flux, prob.n_offsets
    cells = res.x_post[:n_flux].reshape(prob.n_step, prob.n_cells)
    corr = cells[:, :ny * nx].reshape(prob.n_step, ny, nx)
    step_of_hour = np.arange(len(inputs.hours)) // prob.step_hours
    flux = inputs.prior_flux + corr[step_of_hour]
    factor_values = res.x_post[n_flux + n_days:]
    if prob.n_factors:
        flux = flux + prob.factors.flux_change(factor_values)
    flux, report = apply_positivity(cfg.positivity, inputs.prior_flux, flux, aggregation.mask, aggregation.Wall,
                                    aggregation.names)
    if report["applied"]:
        totals = totals + np.array([report["added_t"][n] for n in aggregation.names])
    post = Posterior(flux, corr, res.x_post[n_flux:n_flux + n_days], factor_values, cfg.positivity, report,
                     totals, prior_t)
    if prob.n_outer:  # the outer cells: prior + correction of the step (no factor, no positivity bound)
        post.correction_outer = cells[:, ny * nx:].copy()
        post.flux_outer = np.asarray(inputs.outer.prior, float) + post.correction_outer[step_of_hour]
    return post


def districts_table(inputs: InversionInputs, res: InversionResult, aggregation: Aggregation,
                    post: Posterior) -> pd.DataFrame:
    """districts.csv: prior, posterior, their σ and (demo) the truth, t CO2 over the period."""
    names = aggregation.names
    truth_t = (agg.totals_tonnes(inputs.truth_flux, aggregation.Wall, aggregation.mask)
               if inputs.truth_flux is not None else np.full(len(names), np.nan))
    return pd.DataFrame({
        "district": names, "prior_t": post.prior_t, "posterior_t": post.totals_t,
        "prior_sigma_t": res.agg_prior_sigma, "posterior_sigma_t": res.agg_post_sigma, "truth_t": truth_t,
    })


def modelled_table(inputs: InversionInputs, prob: Problem, res: InversionResult, scr: Screening,
                   post: Posterior) -> pd.DataFrame:
    """modelled.csv: every matched observation with its prior and posterior model and its screening."""
    obs = prob.obs
    n_flux, n_days = prob.n_flux, prob.n_offsets
    if post.positivity_report["applied"]:  # the model of the truncated flux, exactly on the hourly axis
        from .outer import hourly_state

        flux_part = prob.H_hourly @ hourly_state(post.flux - inputs.prior_flux, post.correction_outer[
            np.arange(len(inputs.hours)) // prob.step_hours] if prob.n_outer else None)
    else:  # every state element but the background offsets
        x_flux = res.x_post.copy()
        x_flux[n_flux:n_flux + n_days] = 0.0
        flux_part = prob.H @ x_flux
    bg = obs["background"].to_numpy(float)
    bg_post = bg + prob.H[:, n_flux:n_flux + n_days] @ post.offsets  # daily offset, or the boundary bias by side
    return pd.DataFrame({
        "site": obs["site"].to_numpy(), "time": pd.DatetimeIndex(obs["time"]).strftime("%Y-%m-%dT%H:%M:%S"),
        "intake_height": obs["intake_height"].to_numpy(), "observed": obs["value"].to_numpy(float),
        "background_prior": bg, "background_posterior": bg_post,
        "prior_model": bg + prob.prior_enhancement,
        "posterior_model": bg_post + prob.prior_enhancement + flux_part,
        "innovation": scr.innovation, "innovation_sigma": scr.sigma, "normalised_innovation": scr.z,
        "screened": scr.flagged.astype(int), "used": scr.used.astype(int),
        **_outer_columns(prob, res),
        **sector_columns(inputs.prior_sector_signal, obs["row"].to_numpy(), prob.prior_enhancement),
    })


def _outer_columns(prob: Problem, res: InversionResult) -> dict:
    """modelled.csv ``prior_outer`` and ``posterior_outer`` (nested state): the outer cells' part of the
    prior and posterior enhancement, H_outer x_a and H_outer (x_a + x̂) (ppm); {} on the single grid."""
    if not prob.n_outer:
        return {}
    from .outer import outer_columns

    cols = outer_columns(prob.H.shape[1], prob.n_flux, prob.n_cells, prob.n_inner)
    return {f"{SECTOR_PREFIX}{OUTER_SECTOR}": prob.prior_enhancement_outer,
            "posterior_outer": prob.prior_enhancement_outer + prob.H[:, cols] @ res.x_post[cols]}


SECTOR_PREFIX = "prior_"
UNATTRIBUTED = "unattributed"
OUTER_SECTOR = "outer"  # modelled.csv prior_outer: the outer cells' part of H x_a (nested state)


def sector_signals(H_hourly, sector_fluxes, outer: OuterInputs | None = None) -> dict:
    """{sector: H_hourly · flux_<sector>} per receptor (ppm): each prior sector through the Jacobian.
    ``sector_fluxes``: an iterable of (name, field (n_hours, ny, nx)) — read one at a time, so a month
    of five sectors never sits in memory at once. Nested state (``outer``): the sectors through the
    inner columns, and ``outer``: the outer cells' prior through the outer columns."""
    H = sp.csr_matrix(H_hourly)
    if outer is None:
        return {str(name): H @ np.asarray(f, dtype=np.float64).ravel() for name, f in sector_fluxes}
    from .outer import split_columns

    n_hours = outer.prior.shape[0]
    Hi, Ho = split_columns(H, outer.nested.n_inner, outer.n_cells, n_hours)
    out = {str(name): Hi @ np.asarray(f, dtype=np.float64).ravel() for name, f in sector_fluxes}
    out[OUTER_SECTOR] = Ho @ np.asarray(outer.prior, np.float64).ravel()
    return out


def sector_columns(signal: dict | None, rows: np.ndarray, prior_enhancement: np.ndarray) -> dict:
    """modelled.csv's ``prior_<sector>`` columns (ppm): the prior enhancement H x_a split by the prior's
    sectors (the receptor rows ``rows`` of `sector_signals`), plus ``prior_unattributed`` = H x_a − Σ
    sectors (the part of the prior flux in no `flux_<sector>` field: the float32 rounding of the stored
    sectors, or sectors the file does not split out), so the columns add up to H x_a exactly."""
    if not signal:
        return {}
    cols = {f"{SECTOR_PREFIX}{k}": np.asarray(v, float)[rows] for k, v in signal.items()}
    total = np.sum(list(cols.values()), axis=0) if cols else 0.0
    cols[f"{SECTOR_PREFIX}{UNATTRIBUTED}"] = np.asarray(prior_enhancement, float) - total
    return cols


def aggregate_covariance(res: InversionResult, names: list[str]) -> dict | None:
    """diagnostics ``aggregate_covariance``: the exact prior and posterior covariance of the district
    and city totals (t², rows/columns ``aggregates``), A Q Aᵀ and A Q̂ Aᵀ of the solve (the report's
    district correlation matrix). None when the solve gave no aggregate covariance."""
    if res.agg_post_cov is None or res.agg_prior_cov is None:
        return None
    return {"aggregates": list(names), "units": "t2",
            "prior": np.asarray(res.agg_prior_cov, float).tolist(),
            "posterior": np.asarray(res.agg_post_cov, float).tolist()}


def _block_centres(edges: np.ndarray, n_blocks: int, block: int, n: int) -> np.ndarray:
    return 0.5 * (edges[np.arange(n_blocks) * block] + edges[np.minimum((np.arange(n_blocks) + 1) * block, n)])


def posterior_dataset(inputs: InversionInputs, prob: Problem, res: InversionResult, aggregation: Aggregation,
                      post: Posterior, per_site: dict, period) -> xr.Dataset:
    """posterior.nc: hourly prior and posterior flux, step corrections, exact block σ, background
    offsets, scaling factors and per-site residuals (docs/formats.md)."""
    ny, nx = inputs.shape
    step, block, nby, nbx, nb = prob.step_hours, aggregation.block, aggregation.nby, aggregation.nbx, aggregation.n_blocks
    n_days = prob.n_offsets
    sites = sorted(per_site)
    blk = {"units": None, "long_name": f"centre of {block}x{block}-cell block"}
    ds = xr.Dataset(coords={
        "time": ("time", inputs.hours.values, {"long_name": "start of the hour (UTC)"}),
        "lat": ("lat", inputs.lat, {"units": "degrees_north", "standard_name": "latitude"}),
        "lon": ("lon", inputs.lon, {"units": "degrees_east", "standard_name": "longitude"}),
        "step": ("step", prob.step_times.values, {"long_name": f"start of the {step}-hour flux-correction step (UTC)"}),
        "lat_block": ("lat_block", _block_centres(inputs.lat_edges, nby, block, ny), {**blk, "units": "degrees_north"}),
        "lon_block": ("lon_block", _block_centres(inputs.lon_edges, nbx, block, nx), {**blk, "units": "degrees_east"}),
        "day": ("day", aggregation.days.values, {"long_name": "UTC day of the background offset"}),
        "site": ("site", np.array(sites, dtype=object)),
    })
    gas = GASES[inputs.gas]
    fu, label, ou = {"units": gas["flux_units"]}, gas["label"], gas["obs_units"]
    applied = post.positivity_report["applied"]
    ds["prior_flux"] = (("time", "lat", "lon"), inputs.prior_flux.astype(np.float32), {**fu, "long_name": f"prior {label} flux"})
    ds["posterior_flux"] = (("time", "lat", "lon"), post.flux.astype(np.float32),
                            {**fu, "long_name": f"posterior {label} flux = prior + correction of its step"
                             + (", truncated at min(prior, 0)" if applied else "")})
    ds["correction"] = (("step", "lat", "lon"), post.correction.astype(np.float32),
                        {**fu, "long_name": "posterior flux correction"})
    sd_prior = np.sqrt(np.maximum(res.var_prior, 0))
    sd_post = np.sqrt(np.maximum(res.var_post, 0))
    ds["prior_sigma_block"] = (("lat_block", "lon_block"), sd_prior[:nb].reshape(nby, nbx),
                               {**fu, "long_name": "prior sigma of the period-mean flux of the block (exact)"})
    ds["posterior_sigma_block"] = (("lat_block", "lon_block"), sd_post[:nb].reshape(nby, nbx),
                                   {**fu, "long_name": "posterior sigma of the period-mean flux of the block (exact)"})
    if prob.sides:  # the model boundary's bias per UTC day and inflow side (docs/boundary.md)
        shape, dims = (len(prob.days), len(prob.sides)), ("day", "side")
        ds = ds.assign_coords(side=("side", np.array(prob.sides, dtype=object),
                                    {"long_name": "inflow side of the outer domain"}))
        what = "boundary bias per UTC day and inflow side"
    else:
        shape, dims, what = (n_days,), ("day",), "daily background offset"
    ds["background_offset"] = (dims, post.offsets.reshape(shape), {"units": ou, "long_name": f"posterior {what}"})
    ds["background_offset_sigma"] = (dims, sd_post[nb:nb + n_days].reshape(shape),
                                     {"units": ou, "long_name": f"posterior sigma of the {what}"})
    if prob.n_factors:
        ds = _factor_variables(ds, prob, post, sd_prior[nb + n_days:], sd_post[nb + n_days:])
    for key in ("prior_mean", "prior_std", "posterior_mean", "posterior_std"):
        ds[f"residual_{key}"] = (("site",), np.array([per_site[s][key] for s in sites]),
                                 {"units": ou, "long_name": f"observed - model, {key.replace('_', ' ')}"})
    ds.attrs.update({
        "title": f"Posterior {label} flux (analytical Bayesian inversion)", "gas": inputs.gas,
        "period_start": pd.Timestamp(period[0]).isoformat(), "period_end": pd.Timestamp(period[1]).isoformat(),
        "time_step_hours": step, "solver": res.solver, "chi2_reduced": res.chi2_reduced, "dofs": res.dofs,
        "coarse_block": block, "Conventions": "CF-1.8", "positivity": post.positivity,
        "prior_cov_scale": res.scale_Q, "obs_cov_scale": res.scale_R,
    })
    return ds


def _factor_variables(ds: xr.Dataset, prob: Problem, post: Posterior, sd_prior, sd_post) -> xr.Dataset:
    ds = ds.assign_coords(factor=("factor", np.array(prob.factors.names, dtype=object)),
                          factor_kind=("factor", np.array(prob.factors.kinds, dtype=object)))
    ds["factor_posterior"] = (("factor",), post.factor_values,
                              {"units": "1", "long_name": "posterior relative change s of the scaled prior field "
                               "(district: diffuse anthropogenic flux; biosphere_day: uptake), flux x (1 + s)"})
    ds["factor_prior_sigma"] = (("factor",), sd_prior, {"units": "1", "long_name": "prior sigma of the scaling factor"})
    ds["factor_posterior_sigma"] = (("factor",), sd_post,
                                    {"units": "1", "long_name": "posterior sigma of the scaling factor (exact)"})
    return ds


def diagnostics_dict(inputs: InversionInputs, prob: Problem, res: InversionResult, aggregation: Aggregation,
                     scr: Screening, post: Posterior, per_site: dict, chi2: dict, config, period) -> dict:
    """diagnostics.json (docs/formats.md): fit, DOFS, screening, losses, factors, station contributions."""
    cfg = inversion_config(config)
    nb, n_days, names = aggregation.n_blocks, prob.n_offsets, aggregation.names
    sd_prior = np.sqrt(np.maximum(res.var_prior, 0))[nb + n_days:]
    sd_post = np.sqrt(np.maximum(res.var_post, 0))[nb + n_days:]
    obs_sites = sorted(set(prob.obs["site"].astype(str).to_numpy()[scr.used]))
    factors = ({n: {"kind": k, "posterior": float(v), "prior_sigma": float(p), "posterior_sigma": float(e)}
                for n, k, v, p, e in zip(prob.factors.names, prob.factors.kinds, post.factor_values, sd_prior, sd_post)}
               if prob.n_factors else None)
    has_power = inputs.prior_power_flux is not None
    return {
        "n_obs": res.n_obs, "n_state": res.n_state, "chi2_reduced": res.chi2_reduced, "dofs": res.dofs,
        "dofs_stderr": res.dofs_stderr, "solver": res.solver, "seconds": float("nan"),
        "solve_timings": res.timings, "pcg_iterations": res.pcg_iterations,
        "per_site": per_site, "period_start": pd.Timestamp(period[0]).isoformat(),
        "period_end": pd.Timestamp(period[1]).isoformat(),
        "n_step": prob.n_step, "time_step_hours": prob.step_hours, "n_cells": prob.n_cells,
        "n_outer_cells": int(prob.n_outer), "outer_signal_share": None,  # nested state: inversion.outer
        "n_background_offsets": n_days, "factors": factors,
        "uncertainty_reduction": dict(zip(names, map(float, uncertainty_reduction(res.agg_prior_sigma,
                                                                                  res.agg_post_sigma)))),
        "observations_dropped": int(len(inputs.selected) - len(prob.obs)),
        "n_obs_matched": int(len(prob.obs)),
        "innovation_screen": {**scr.settings, "n_flagged": int(scr.flagged.sum()),
                              "n_excluded": int((scr.flagged & ~scr.used).sum()), "seconds": scr.seconds,
                              "flagged": scr.flagged_records()},
        "chi2_test": chi2,
        "largest_normalised_residuals": [scr.table[i] for i in np.argsort(-np.abs(scr.z), kind="stable")[:5]],
        "observations_lost": _losses(inputs.selected, inputs.receptors, inputs.missing, aggregation.days,
                                     scr.table, scr.flagged & ~scr.used, scr.settings),
        "receptors": _receptor_summary(inputs.receptors, inputs.missing),
        "hyperparameters": res.hyper if res.hyper is not None else {"method": "none", "scale_Q": 1.0, "scale_R": 1.0},
        "positivity": post.positivity_report,
        "station_contributions": station_contributions(res, names, obs_sites),
        "prior_sigma": {"power_sector": has_power, "power_rel_sigma": cfg.power_rel_sigma if has_power else None},
    }


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
def read_flux(path, what: str, hours: pd.DatetimeIndex | None = None, var: str = "flux", optional: bool = False):
    """(values (time, lat, lon) float64 on ``hours``, lat, lon) of ``var`` in a flux NetCDF (prior.nc,
    truth.nc); None if ``optional`` and absent. ``what`` names the file's rule in the errors."""
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




def read_prior_parts(prior_path, hours, config=None):
    """(power, bio, sectors) of ``prior.nc`` on ``hours``: the optional `flux_power` and `flux_bio`
    (None when absent) and, when the settings ask for profile factors, the diffuse sectors present
    ({name: field}, else None)."""
    power = read_flux(prior_path, "prior", hours, var="flux_power", optional=True)
    if power is None:
        log.warning("prior %s has no `flux_power`; prior sigma = prior_rel_sigma * |flux| + floor everywhere", prior_path)
    bio = read_flux(prior_path, "prior", hours, var="flux_bio", optional=True)
    sectors = None
    if inversion_config(config).profile_scale_sigma > 0:
        sectors = {}
        for k in DIFFUSE_SECTORS:
            v = read_flux(prior_path, "prior", hours, var=f"flux_{k}", optional=True)
            if v is not None:
                sectors[k] = v[0]
    return (None if power is None else power[0]), (None if bio is None else bio[0]), sectors


def prior_sector_names(prior_path) -> list[str]:
    """The sectors of prior.nc: every `flux_<sector>(time, lat, lon)` variable, in file order."""
    with xr.open_dataset(prior_path) as ds:
        return [str(v)[len("flux_"):] for v in ds.data_vars
                if str(v).startswith("flux_") and set(ds[v].dims) == {"time", "lat", "lon"}]


def load_inputs(jacobian_path, selected_path, prior_path, districts_path, truth_path=None,
                config=None, gas: str = "co2", truth_outer_path=None, neighbours_path=None) -> InversionInputs:
    """Read the pipeline files of one month into an `InversionInputs` (prior on the Jacobian's hours
    and grid, else a ValueError naming the file and the fix). A Jacobian with outer columns (config
    ``outer_grid``) makes the state nested: ``flux_outer`` of prior.nc (and of ``truth_outer_path``,
    the demo's truth of the outer cells), the neighbours of ``neighbours_path`` (a
    `gzcarbon.neighbours` file; None: the outer ring's total only)."""
    from transport.jacobian import load_jacobian

    from gzcarbon.districts import district_matrix

    jac = load_jacobian(jacobian_path)
    hours = pd.DatetimeIndex(jac.hours)
    prior, lat, lon = read_flux(prior_path, "prior", hours)
    power, bio, sectors = read_prior_parts(prior_path, hours, config)
    grid = Grid.from_config(jac.grid)
    if not grid.matches(lon, lat):
        raise ValueError(f"prior {prior_path}: grid {Grid.describe_centres(lon, lat)} differs from the Jacobian's "
                         f"grid ({grid.describe()}); rebuild both with the same config grid")
    names, frac = district_matrix(districts_path, edges_from_centres(lon), edges_from_centres(lat))
    truth = read_flux(truth_path, "truth", hours)[0] if truth_path else None
    outer = load_outer_inputs(jac, grid, prior_path, truth_outer_path, neighbours_path, gas)
    signal = sector_signals(jac.H, ((k, read_flux(prior_path, "prior", hours, var=f"flux_{k}")[0])
                                    for k in prior_sector_names(prior_path)), outer)
    return InversionInputs(
        H_hourly=jac.H, receptors=jac.receptors, hours=hours, selected=read_selected(selected_path),
        prior_flux=prior, lat=lat, lon=lon, district_names=names, district_fractions=frac, truth_flux=truth,
        missing=getattr(jac, "missing", None), prior_power_flux=power, prior_bio_flux=bio,
        prior_sector_fluxes=sectors, prior_sector_signal=signal or None, gas=gas, outer=outer,
        paths=[str(p) for p in (jacobian_path, selected_path, prior_path, districts_path, truth_path,
                                truth_outer_path if outer is not None else None,
                                neighbours_path if outer is not None else None) if p])


def jacobian_nesting(jac, grid: Grid) -> NestedGrid:
    """The nested grid of a loaded Jacobian (its ``nested``, else the inner grid alone); a Jacobian
    whose columns are not n_hours × its cells stops naming the mismatch."""
    nested = getattr(jac, "nested", None) or NestedGrid(grid, None)
    n_hours = len(jac.hours)
    if jac.H.shape[1] != n_hours * nested.n_cells:
        raise ValueError(f"Jacobian: {jac.H.shape[1]} columns are not n_hours ({n_hours}) x n_cells "
                         f"({nested.n_cells}: {nested.describe()}); rebuild it with rule jacobian")
    return nested


def load_outer_inputs(jac, grid: Grid, prior_path, truth_outer_path=None, neighbours_path=None,
                      gas: str = "co2") -> OuterInputs | None:
    """The outer cells' inputs (`inversion.outer.OuterInputs`) of a nested Jacobian, else None. A gas
    prior (CH4, CO) without ``flux_outer`` reduces ``jac.H`` to its inner columns (warned)."""
    nested = jacobian_nesting(jac, grid)
    if not nested.enabled:
        return None
    from .outer import read_outer_flux

    hours = pd.DatetimeIndex(jac.hours)
    with xr.open_dataset(prior_path) as ds:
        has_outer = "flux_outer" in ds and ds.attrs.get("gas", "co2") == gas  # CH4/CO: docs/gases.md
    if not has_outer and gas != "co2":  # the gas priors have no outer cells yet: inner columns only
        log.warning("prior %s (%s) has no `flux_outer`: the %s inversion uses the Jacobian's %d inner cells only; "
                    "the outer cells' signal is left unmodelled (docs/inversion.md, 'Nested outer domain')",
                    prior_path, gas, gas, nested.n_inner)
        from .outer import split_columns

        jac.H = split_columns(jac.H, nested.n_inner, nested.n_cells, len(hours))[0]
        return None
    prior = read_outer_flux(prior_path, "prior", hours, nested)
    with xr.open_dataset(prior_path) as ds:
        has_bio = "flux_outer_bio" in ds
    prior_bio = read_outer_flux(prior_path, "prior", hours, nested, var="flux_outer_bio") if has_bio else None
    truth = read_outer_flux(truth_outer_path, "demo_delta", hours, nested) if truth_outer_path else None
    names, kinds, frac = [], [], None
    if neighbours_path:
        from gzcarbon.neighbours import neighbour_matrix

        neigh, frac = neighbour_matrix(neighbours_path, nested)
        names, kinds = [n.name_en for n in neigh], [n.kind for n in neigh]
    return OuterInputs(nested, prior, truth, names, kinds, frac, prior_bio=prior_bio)


def write_outputs(out: InversionOutputs, posterior, districts, modelled, diagnostics, outer=None) -> None:
    """Write posterior.nc, districts.csv, modelled.csv and diagnostics.json (each atomically:
    `gzcarbon.atomic`, unique temporary names, I/O faults named), and ``outer`` (outer.csv) when the
    state is nested. A nested run without ``outer``, or ``outer`` without a nested state, is an error."""
    from gzcarbon.atomic import atomic_write

    if (out.outer is None) != (outer is None):
        raise ValueError("write_outputs: outer.csv " + ("has no path" if outer is None else "asked for but the state "
                                                         "has no outer cells (config outer_grid disabled)"))
    enc = {v: {"zlib": True, "complevel": 4} for v in ("prior_flux", "posterior_flux", "correction")}
    enc.update({v: {"zlib": True, "complevel": 4} for v in ("prior_flux_outer", "posterior_flux_outer")
                if v in out.posterior})
    enc["time"] = {"units": "hours since 2000-01-01 00:00:00", "dtype": "int64"}
    enc["step"] = {"units": "hours since 2000-01-01 00:00:00", "dtype": "int64"}
    enc["day"] = {"units": "days since 2000-01-01", "dtype": "int64"}
    atomic_write(posterior, lambda p: out.posterior.to_netcdf(p, encoding=enc))
    atomic_write(districts, lambda p: out.districts.to_csv(p, index=False, float_format="%.6g"))
    atomic_write(modelled, lambda p: out.modelled.to_csv(p, index=False, float_format="%.6f"))
    atomic_write(diagnostics, lambda p: Path(p).write_text(json.dumps(out.diagnostics, indent=2, default=float)))
    if outer is not None:
        atomic_write(outer, lambda p: out.outer.to_csv(p, index=False, float_format="%.6g"))


def run_inversion(jacobian_path, selected_path, prior_path, districts_path, out_posterior, out_districts,
                  out_modelled, out_diagnostics, *, inversion_cfg=None, period_start, period_end,
                  truth_path=None, solve_options: SolveOptions | None = None,
                  utc_offset_hours: float = 0.0, gas: str = "co2", out_outer=None, truth_outer_path=None,
                  neighbours_path=None, extra_paths=()) -> InversionOutputs:
    """Read the pipeline files, invert, write the four outputs (atomically), and outer.csv
    (``out_outer``) when the Jacobian is nested. ``extra_paths``: column and mobile rows
    (``inversion.extra_obs.save_extra`` files; docs/columns.md) inverted with the sites.
    ``gas``: the gas of the selected observations and the prior (their units: gzcarbon.names.GASES; one Jacobian for all)."""
    cfg = inversion_config(inversion_cfg)
    inputs = load_inputs(jacobian_path, selected_path, prior_path, districts_path, truth_path, cfg, gas=gas,
                         truth_outer_path=truth_outer_path, neighbours_path=neighbours_path)
    extra = None
    if extra_paths:
        from .extra_obs import concat_extra, load_extra

        extra = concat_extra([load_extra(p) for p in extra_paths])
    out = invert(inputs, cfg, period_start, period_end, solve_options=solve_options,
                 utc_offset_hours=utc_offset_hours, extra=extra)
    out.diagnostics["inputs"] = list(inputs.paths) + [str(p) for p in extra_paths]
    write_outputs(out, out_posterior, out_districts, out_modelled, out_diagnostics, out_outer)
    d = out.districts.iloc[-1]
    log.info("%s city total: truth %s t, prior %.0f t, posterior %.0f ± %.0f t; chi2_r %.2f, DOFS %.1f",
             GASES[gas]["label"], "n/a" if not np.isfinite(d.truth_t) else f"{d.truth_t:.0f}", d.prior_t, d.posterior_t,
             d.posterior_sigma_t, out.result.chi2_reduced, out.result.dofs)
    return out
