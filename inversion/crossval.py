"""Cross-validation on any data: leave one site out, and k folds of whole days.

Without a truth (every real run), the way to check an inversion is to hide some observations, invert
the rest, and ask how well the posterior predicts what was hidden, against how well the prior does.
Two kinds of fold:

* **leave one site out** (LOSO): every site in turn, all its inlets and hours;
* **k folds of days**: the UTC days with observations split into ``folds_days`` contiguous blocks
  (``min(folds_days, n_days)`` folds: a two-day run gets one fold per day).

No inversion is repeated. The Cholesky solver has factorised K = H Q Hᵀ + R (K = L Lᵀ) and formed
L⁻¹ already, so with P = K⁻¹ = L⁻ᵀ L⁻¹ and w = K⁻¹ d (d = y − H x_a) the posterior of the
observations S (all but a left-out set L), predicted at L, is

    H_L x̂_S = H_L x_a + (H Q Hᵀ)_LS K_SS⁻¹ d_S = y_L − P_LL⁻¹ w_L − R_LS v_S,   v_S = w_S − P_SL P_LL⁻¹ w_L

(block inversion: K_SS⁻¹ = P_SS − P_SL P_LL⁻¹ P_LS; R_LS = 0 unless the mismatch is correlated in time
across the folds, ``obs_corr_hours`` > 0 with day folds). The cost per fold is one product
(L⁻¹)_{:,L}ᵀ (L⁻¹)_{:,L} (n·|L|²) and one Cholesky factorisation of |L|³ — tested equal to a brute-force
re-inversion without the left-out observations to 1e-10. The background offsets and scaling factors
are state elements like the flux: a left-out day's background offset is predicted from its prior
(σ ``bg_sigma_ppm``) and the other days only through the prior correlations (none), so day folds also
measure how well the background is known without that day's data.

The skill of a prediction is measured on the enhancement above the prior background
(observed − background): RMSE and bias of observed − model (ppm), and Pearson's correlation of
observed and modelled enhancement; and χ²_r = w_Lᵀ P_LL⁻¹ w_L / |L|, the left-out residuals
normalised by the covariance P_LL⁻¹ = K_LL − K_LS K_SS⁻¹ K_SL that the prior and R predict for
them (≈ 1 when Q and R are right). The posterior is the linear Gaussian one (before any positivity
clipping), with the hyperparameter scales of the full data when ``tune_hyperparameters`` is on.

The PCG solver has no explicit K: above ``max_dense_obs`` observations (or with ``solver="pcg"``)
cross-validation is skipped and the reason is logged and written to ``diagnostics.json``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.linalg as sla

from gzcarbon.config import CrossValidationConfig

from .settings import inversion_config

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------------
# settings
# --------------------------------------------------------------------------------------------------
def cross_validation_settings(cfg=None) -> CrossValidationConfig:
    """The ``cross_validation`` settings (`gzcarbon.config.CrossValidationConfig`, the one source of
    their defaults) of the ``inversion`` section ``cfg``: an `InversionConfig`, a mapping of some of
    its keys, or None."""
    if isinstance(cfg, CrossValidationConfig):
        return cfg
    return inversion_config(cfg).cross_validation


# --------------------------------------------------------------------------------------------------
# folds
# --------------------------------------------------------------------------------------------------
@dataclass
class Fold:
    """A set of left-out observations: ``mask`` over the observations given to the solve."""

    name: str  # unique key of the solve's ``holdout`` option
    kind: str  # "site" | "days"
    label: str  # the site id, or "first day .. last day"
    mask: np.ndarray
    days: list = field(default_factory=list)  # "YYYY-MM-DD" of the fold (day folds)


@dataclass
class CrossValidationPlan:
    """The folds one run asks the solver for, or why there are none."""

    settings: CrossValidationConfig
    folds: list
    skipped: dict  # {"sites": reason, "days": reason} for the kinds not done

    @property
    def holdout(self) -> dict | None:
        return {f.name: f.mask for f in self.folds} or None

    def apply(self, options):
        """``options`` (a `SolveOptions`) with the plan's folds as its ``holdout``."""
        return options.replace(holdout=self.holdout) if self.folds else options


def site_folds(sites) -> tuple[list[Fold], str | None]:
    """One fold per site (all its inlets and hours); none with fewer than two sites."""
    sites = np.asarray(sites).astype(str)
    names = sorted(set(sites))
    if len(names) < 2:
        return [], f"leave-one-site-out needs at least two sites with observations ({len(names)} here)"
    return [Fold(f"site {s}", "site", s, sites == s) for s in names], None


def day_folds(times, n_folds: int) -> tuple[list[Fold], str | None]:
    """``min(n_folds, n_days)`` folds of contiguous whole UTC days with observations (np.array_split
    of the sorted days: the first folds get the extra day); none with fewer than two days."""
    if n_folds == 0:
        return [], "inversion.cross_validation.folds_days is 0"
    day = pd.DatetimeIndex(pd.to_datetime(times)).normalize()
    uniq = day.unique().sort_values()
    if len(uniq) < 2:
        return [], f"folds over days need at least two days with observations ({len(uniq)} here)"
    folds = []
    for k, block in enumerate(np.array_split(np.arange(len(uniq)), min(n_folds, len(uniq)))):
        sel = uniq[block]
        label = f"{sel[0]:%Y-%m-%d}" + (f" .. {sel[-1]:%Y-%m-%d}" if len(sel) > 1 else "")
        folds.append(Fold(f"days {k + 1}: {label}", "days", label, np.asarray(day.isin(sel)),
                          [f"{d:%Y-%m-%d}" for d in sel]))
    return folds, None


def plan_folds(settings: CrossValidationConfig, sites, times, *, n_obs: int, solver: str,
               max_dense_obs: int) -> CrossValidationPlan:
    """The folds for observations at ``sites`` and ``times`` (the ones given to the solve), or the
    reasons why none: switched off, or the PCG solver (no explicit K; logged)."""
    if not settings.enabled:
        why = "inversion.cross_validation.enabled is false"
        return CrossValidationPlan(settings, [], {"sites": why, "days": why})
    if solver == "pcg" or (solver == "auto" and n_obs > max_dense_obs):
        why = (f"needs the Cholesky solver's explicit K = H Q Hᵀ + R; this solve uses PCG ({n_obs} observations, "
               f"max_dense_obs {max_dense_obs}, solver {solver!r})")
        log.info("cross-validation skipped: %s", why)
        return CrossValidationPlan(settings, [], {"sites": why, "days": why})
    sf, why_s = site_folds(sites)
    df, why_d = day_folds(times, settings.folds_days)
    skipped = {k: v for k, v in (("sites", why_s), ("days", why_d)) if v}
    for k, v in skipped.items():
        log.info("cross-validation over %s skipped: %s", k, v)
    return CrossValidationPlan(settings, sf + df, skipped)


# --------------------------------------------------------------------------------------------------
# the algebra (called by the Cholesky solver)
# --------------------------------------------------------------------------------------------------
@dataclass
class HoldoutPrediction:
    """What the posterior of the other observations predicts at the left-out ones ``index``."""

    index: np.ndarray
    y_pred: np.ndarray  # H_L x̂_S (the posterior model without the left-out data)
    y_prior: np.ndarray  # H_L x_a
    sigma_y: np.ndarray  # predictive σ of y_L given y_S: √diag(P_LL⁻¹) = √diag(K_LL − K_LS K_SS⁻¹ K_SL)
    chi2: float  # w_Lᵀ P_LL⁻¹ w_L (|L| degrees of freedom when Q and R are right)


def holdout_predictions(Linv: np.ndarray, w: np.ndarray, d: np.ndarray, R: np.ndarray, y_prior_model: np.ndarray,
                        holdout: dict) -> dict:
    """{name: `HoldoutPrediction`} for each left-out index set of ``holdout`` (see module docstring).

    ``Linv``: L⁻¹ of K = L Lᵀ (lower); ``w`` = K⁻¹ d; ``R``: variances (n,) or covariance (n × n), as
    in the factorised K (scaled when tuned)."""
    n = w.size
    out = {}
    for name, idx in holdout.items():
        idx = np.asarray(idx, dtype=np.int64)
        if idx.size == 0:
            continue
        G = Linv[:, idx]
        cf = _cho(G.T @ G, name)
        r = sla.cho_solve(cf, w[idx], check_finite=False)  # P_LL⁻¹ w_L = y_L − E[y_L | y_S]
        dy = d[idx] - r
        if R.ndim == 2:
            rest = np.setdiff1d(np.arange(n), idx, assume_unique=True)
            R_LS = R[np.ix_(idx, rest)]
            if rest.size and np.any(R_LS):
                v_S = w[rest] - Linv[:, rest].T @ (G @ r)  # K_SS⁻¹ d_S
                dy = dy - R_LS @ v_S
        var = np.diag(sla.cho_solve(cf, np.eye(idx.size), check_finite=False))
        out[name] = HoldoutPrediction(idx, y_prior_model[idx] + dy, y_prior_model[idx].copy(),
                                      np.sqrt(np.maximum(var, 0)), float(w[idx] @ r))
    return out


def _cho(M: np.ndarray, name):
    try:
        return sla.cho_factor(0.5 * (M + M.T), lower=True, check_finite=False)
    except np.linalg.LinAlgError:
        raise ValueError(f"cross-validation fold {name!r}: the block of K⁻¹ of its observations is not positive "
                         "definite (K = H Q Hᵀ + R is near singular); check obs_err and prior_cov") from None


# --------------------------------------------------------------------------------------------------
# skill and the diagnostics.json entry
# --------------------------------------------------------------------------------------------------
def skill(observed, model) -> dict:
    """RMSE and bias of observed − model, Pearson correlation of observed and model (None with fewer
    than three values or a constant series), n."""
    o, m = np.asarray(observed, float), np.asarray(model, float)
    r = o - m
    corr = None
    scale = 1e-10 * (np.std(o) + np.abs(m).max(initial=0.0))  # a model equal to the prior up to rounding is constant
    if o.size >= 3 and np.std(o) > scale and np.std(m) > scale:
        corr = float(np.corrcoef(o, m)[0, 1])
    return {"rmse": float(np.sqrt(np.mean(r**2))), "bias": float(np.mean(r)), "corr": corr, "n": int(o.size)}


def _fold_record(observed, prior_model, post_model, pred: HoldoutPrediction) -> dict:
    p, q = skill(observed, prior_model), skill(observed, post_model)
    n = p["n"]
    return {"n": n, "prior_rmse": p["rmse"], "posterior_rmse": q["rmse"], "prior_bias": p["bias"],
            "posterior_bias": q["bias"], "prior_corr": p["corr"], "posterior_corr": q["corr"],
            "predicted_sigma": float(np.sqrt(np.mean(pred.sigma_y**2))), "chi2_reduced": pred.chi2 / n}


def _summary(records: list[dict], observed, prior_model, post_model) -> dict | None:
    """Pooled skill over every left-out observation of one kind of fold (each is left out once)."""
    if not records:
        return None
    p, q = skill(observed, prior_model), skill(observed, post_model)
    return {"n": p["n"], "n_folds": len(records), "prior_rmse": p["rmse"], "posterior_rmse": q["rmse"],
            "prior_bias": p["bias"], "posterior_bias": q["bias"], "prior_corr": p["corr"], "posterior_corr": q["corr"],
            "n_folds_improved": int(sum(r["posterior_rmse"] < r["prior_rmse"] * (1 - 1e-9) for r in records)),
            "chi2_reduced": float(sum(r["chi2_reduced"] * r["n"] for r in records) / p["n"])}


def cross_validation_entry(plan: CrossValidationPlan, predictions: dict | None, y, offset, seconds: float = 0.0) -> dict:
    """diagnostics.json ``cross_validation`` (docs/formats.md).

    ``y``: the solve's data (observed − background − prior enhancement), ``offset``: the prior
    enhancement of the same observations; skill is computed on observed − background = y + offset
    against the modelled enhancement (prior: offset + H x_a; posterior without the fold: offset + H x̂_S).
    """
    y, offset = np.asarray(y, float), np.asarray(offset, float)
    out = {"method": "exact: the posterior without each fold's observations, from the solve's factorised "
                     "K = H Q Hᵀ + R (no re-inversion)",
           "quantity": "enhancement above the prior background (observed - background), ppm; bias = mean of "
                       "observed - model",
           "enabled": plan.settings.enabled, "folds_days": plan.settings.folds_days,
           "sites": {}, "days": [], "summary": {}, "skipped": dict(plan.skipped), "seconds": float(seconds)}
    pooled = {"site": ([], [], []), "days": ([], [], [])}
    for f in plan.folds:
        pred = (predictions or {}).get(f.name)
        if pred is None:
            continue
        obs = y[pred.index] + offset[pred.index]
        prior, post = pred.y_prior + offset[pred.index], pred.y_pred + offset[pred.index]
        rec = _fold_record(obs, prior, post, pred)
        for acc, v in zip(pooled[f.kind], (obs, prior, post)):
            acc.append(v)
        if f.kind == "site":
            out["sites"][f.label] = rec
        else:
            out["days"].append({"fold": f.label, "days": f.days, **rec})
    for key, kind, recs in (("sites", "site", list(out["sites"].values())), ("days", "days", out["days"])):
        o, p, q = (np.concatenate(a) if a else np.array([]) for a in pooled[kind])
        out["summary"][key] = _summary(recs, o, p, q)
    return out


def log_summary(entry: dict) -> None:
    for key, what in (("sites", "left-out sites"), ("days", "left-out days")):
        s = entry["summary"].get(key)
        if s:
            log.info("cross-validation, %s: RMSE prior %.3f -> posterior %.3f ppm, bias %+.3f -> %+.3f ppm "
                     "(%d observations, %d of %d folds improved, chi2_r %.2f)", what, s["prior_rmse"],
                     s["posterior_rmse"], s["prior_bias"], s["posterior_bias"], s["n"], s["n_folds_improved"],
                     s["n_folds"], s["chi2_reduced"])


def timed_entry(plan: CrossValidationPlan, result, y, offset) -> dict:
    """`cross_validation_entry` from an `InversionResult` (its ``holdout_predictions`` and the time
    the solver spent on them), logged."""
    t = time.perf_counter()
    entry = cross_validation_entry(plan, getattr(result, "holdout_predictions", None), y, offset)
    entry["seconds"] = float(result.timings.get("holdout", 0.0) + time.perf_counter() - t)
    log_summary(entry)
    return entry
