"""Hyperparameters: scaling of the prior covariance Q and the observation covariance R from the data.

With K(a, b) = a H Q Hᵀ + b R and the innovation d = y − H x_a ~ N(0, K), the marginal
log-likelihood is

    ℓ(a, b) = −½ [ dᵀ K⁻¹ d + log det K + n log 2π ].

Whitening by R = L_R L_Rᵀ and one eigendecomposition L_R⁻¹ H Q Hᵀ L_R⁻ᵀ = U Λ Uᵀ, z = Uᵀ L_R⁻¹ d,
turns every evaluation into O(n):

    dᵀ K⁻¹ d = Σ z_i² / (a λ_i + b),     log det K = log det R + Σ log(a λ_i + b).

Methods (``tune_scaling(..., method=)``):

* ``"ml"`` — maximum likelihood in (log a, log b) (L-BFGS-B on the analytic gradient, bounds
  [1e-4, 1e4]); the approximate 1σ of log a and log b comes from the inverse Hessian of −ℓ. At the
  optimum the reduced χ² = dᵀK⁻¹d / n equals 1 (stationarity in the common scale), so this is also a
  χ² calibration, but with the split between Q and R chosen by the likelihood.
* ``"chi2"`` — Q kept (a = 1), R scaled by the b that makes χ²_r = dᵀK⁻¹d / n = 1 (a 1-D root;
  b at its bound when χ²_r = 1 cannot be reached within [1e-4, 1e4]).

Exact for any symmetric positive definite R (diagonal R is the cheap common case). Needs the explicit
H Q Hᵀ, i.e. the Cholesky solver.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np
import scipy.linalg as sla
from scipy.optimize import brentq, minimize

log = logging.getLogger(__name__)

SCALE_BOUNDS = (1e-4, 1e4)


@dataclass
class HyperResult:
    method: str
    scale_Q: float  # a: Q -> a Q (σ of the prior scaled by √a)
    scale_R: float  # b: R -> b R
    chi2_reduced_before: float  # at a = b = 1
    chi2_reduced_after: float
    loglik_before: float
    loglik_after: float
    log_scale_Q_sd: float  # approx. 1σ of ln a (ML only; nan otherwise)
    log_scale_R_sd: float

    def as_dict(self) -> dict:
        return {k: float(v) if not isinstance(v, str) else v for k, v in asdict(self).items()}


class WhitenedSpectrum:
    """λ and z of the whitened problem, and ℓ(a, b), χ²_r(a, b) from them."""

    def __init__(self, HQHt: np.ndarray, R: np.ndarray, d: np.ndarray):
        HQHt = np.asarray(HQHt, dtype=np.float64)
        R = np.asarray(R, dtype=np.float64)
        d = np.asarray(d, dtype=np.float64)
        n = d.size
        if HQHt.shape != (n, n):
            raise ValueError(f"tune_scaling: H Q Hᵀ has shape {HQHt.shape}, expected ({n}, {n})")
        if R.ndim == 1:
            if R.shape != (n,) or np.any(R <= 0):
                raise ValueError("tune_scaling: R must be positive variances of shape (n_obs,)")
            s = 1.0 / np.sqrt(R)
            M = HQHt * s[:, None] * s[None, :]
            z0 = d * s
            self.logdet_R = float(np.sum(np.log(R)))
        else:
            Lr = np.linalg.cholesky(R)
            M = sla.solve_triangular(Lr, HQHt, lower=True, check_finite=False)
            M = sla.solve_triangular(Lr, M.T, lower=True, check_finite=False)
            z0 = sla.solve_triangular(Lr, d, lower=True, check_finite=False)
            self.logdet_R = 2.0 * float(np.sum(np.log(np.diag(Lr))))
        lam, U = np.linalg.eigh(0.5 * (M + M.T))
        self.lam = np.maximum(lam, 0.0)  # H Q Hᵀ is PSD; clip rounding
        self.z2 = (U.T @ z0) ** 2
        self.n = n

    def chi2_reduced(self, a: float, b: float) -> float:
        return float(np.sum(self.z2 / (a * self.lam + b)) / self.n)

    def loglik(self, a: float, b: float) -> float:
        k = a * self.lam + b
        return float(-0.5 * (np.sum(self.z2 / k) + np.sum(np.log(k)) + self.logdet_R + self.n * np.log(2 * np.pi)))

    def _f_grad_hess(self, u: float, v: float):
        """f = −2ℓ (up to constants) in log-scales, its gradient and Hessian."""
        a, b = np.exp(u), np.exp(v)
        k = a * self.lam + b
        g1 = -self.z2 / k**2 + 1.0 / k  # d/dk of z²/k + log k
        g2 = 2.0 * self.z2 / k**3 - 1.0 / k**2
        ka, kb = a * self.lam, b * np.ones_like(k)
        f = float(np.sum(self.z2 / k + np.log(k)))
        grad = np.array([np.sum(g1 * ka), np.sum(g1 * kb)])
        hess = np.array([[np.sum(g2 * ka * ka + g1 * ka), np.sum(g2 * ka * kb)],
                         [np.sum(g2 * ka * kb), np.sum(g2 * kb * kb + g1 * kb)]])
        return f, grad, hess


def tune_scaling(HQHt: np.ndarray, R: np.ndarray, d: np.ndarray, method: str = "ml") -> HyperResult:
    """Scale factors (a for Q, b for R) from the innovations ``d`` (see module docstring).

    ``R``: variances (n,) for a diagonal R, or the (n × n) covariance.
    """
    if method not in ("ml", "chi2"):
        raise ValueError(f"tune_scaling: method={method!r}; allowed: 'ml', 'chi2'")
    sp_ = WhitenedSpectrum(HQHt, R, d)
    lo, hi = np.log(SCALE_BOUNDS[0]), np.log(SCALE_BOUNDS[1])
    sd_a = sd_b = float("nan")
    if method == "ml":
        def fun(p):
            f, g, _ = sp_._f_grad_hess(p[0], p[1])
            return f, g

        best = None
        for start in ((0.0, 0.0), (np.log(2.0), np.log(0.2)), (np.log(0.2), np.log(2.0))):
            r = minimize(fun, np.array(start), jac=True, method="L-BFGS-B", bounds=[(lo, hi), (lo, hi)],
                         options={"maxiter": 500, "ftol": 1e-14, "gtol": 1e-10})
            if best is None or r.fun < best.fun:
                best = r
        u, v = best.x
        _, _, hess = sp_._f_grad_hess(u, v)
        try:
            cov = np.linalg.inv(0.5 * hess)  # −ℓ = f/2
            if np.all(np.diag(cov) > 0):
                sd_a, sd_b = float(np.sqrt(cov[0, 0])), float(np.sqrt(cov[1, 1]))
        except np.linalg.LinAlgError:
            pass
        a, b = float(np.exp(u)), float(np.exp(v))
        for name, val in (("Q", a), ("R", b)):
            if np.isclose(np.log(val), lo) or np.isclose(np.log(val), hi):
                log.warning("tune_scaling: ML scale of %s hit its bound %.0e (data do not constrain it)", name, val)
    else:
        a = 1.0
        g = lambda lb: sp_.chi2_reduced(1.0, np.exp(lb)) - 1.0  # noqa: E731  (decreasing in b)
        if g(lo) <= 0:
            b = SCALE_BOUNDS[0]
            log.warning("tune_scaling: chi2_r < 1 even with R scaled by %.0e; kept that bound", b)
        elif g(hi) >= 0:
            b = SCALE_BOUNDS[1]
            log.warning("tune_scaling: chi2_r > 1 even with R scaled by %.0e; kept that bound", b)
        else:
            b = float(np.exp(brentq(g, lo, hi, xtol=1e-12)))
    out = HyperResult(method=method, scale_Q=a, scale_R=b,
                      chi2_reduced_before=sp_.chi2_reduced(1.0, 1.0), chi2_reduced_after=sp_.chi2_reduced(a, b),
                      loglik_before=sp_.loglik(1.0, 1.0), loglik_after=sp_.loglik(a, b),
                      log_scale_Q_sd=sd_a, log_scale_R_sd=sd_b)
    log.info("hyperparameters (%s): Q x %.3g, R x %.3g; chi2_r %.3f -> %.3f, loglik %.2f -> %.2f",
             method, a, b, out.chi2_reduced_before, out.chi2_reduced_after, out.loglik_before, out.loglik_after)
    return out
