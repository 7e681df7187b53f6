"""Network design: the exact district and city posterior σ that a candidate site would give if its
observations were added to the current network (docs/network.md).

No OSSE and no re-solve: the posterior is Gaussian and its covariance does not depend on the data, so
the covariance with one more block of observations follows from the current posterior by conditioning.
Let z = [A x ; y_c] be the aggregates (district and city totals, rows A) and the candidates'
observations y_c = H_c x + e_c (e_c: their model-data mismatch, correlated between nearby candidates,
independent of the existing network's errors). Its prior covariance, and its covariance with the
existing observations y_1 = H_1 x + e_1, are

    C_zz = [[A Q Aᵀ, A Q H_cᵀ], [H_c Q Aᵀ, H_c Q H_cᵀ + R_c]],   C_z1 = [A ; H_c] Q H_1ᵀ,

and after the existing network (K_1 = H_1 Q H_1ᵀ + R_1, the inversion's own matrix)

    P = C_zz − C_z1 K_1⁻¹ C_1z                                   (P_aa = A Q̂ Aᵀ of the inversion).

Adding the observations of candidate c (indices c of y_c) is conditioning on them:

    A Q̂_c Aᵀ = P_aa − P_ac P_cc⁻¹ P_ca,                          (Schur complement: exact)

which is Sherman–Morrison–Woodbury for appending rows H_c to H: P_cc = H_c Q̂ H_cᵀ + R_c is the
innovation covariance of the new block and P_ac = A Q̂ H_cᵀ. A greedy step conditions P on the chosen
block (every remaining candidate's P, its errors included, is updated with it), so the next choice
sees what is already known — and, through the correlated errors, what a nearby site would repeat.
"""

from __future__ import annotations

import itertools
import logging
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.linalg as sla
import scipy.sparse as sp

log = logging.getLogger(__name__)

EARTH_RADIUS_KM = 6371.0


# --------------------------------------------------------------------------------------------------
# errors of the candidates
# --------------------------------------------------------------------------------------------------
def distance_km(lon1, lat1, lon2, lat2) -> np.ndarray:
    """Great-circle distance (km) between every pair (broadcast) of points (haversine)."""
    lo1, la1, lo2, la2 = (np.radians(np.asarray(v, float)) for v in (lon1, lat1, lon2, lat2))
    a = np.sin((la2 - la1) / 2) ** 2 + np.cos(la1) * np.cos(la2) * np.sin((lo2 - lo1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def candidate_error_covariance(lon, lat, times, value_std_dev, mismatch_sigma, corr_length_km: float,
                               corr_hours: float) -> np.ndarray:
    """R_c of the candidates' observations.

    R_ij = δ_ij s_i² + m_i m_j exp(−d_ij / L) ρ_t(t_i − t_j), s: measurement σ, m: model-data mismatch σ,
    d: distance between the two observations' sites (km), L = ``corr_length_km`` (0: only the same
    site correlates), ρ_t = exp(−|Δt| / ``corr_hours``) (0 hours: only the same hour). Within one site
    this is the inversion's R (`inversion.state.obs_error_covariance`); both factors are positive
    definite kernels, so R_c is too.
    """
    lon, lat = np.asarray(lon, float), np.asarray(lat, float)
    d = distance_km(lon[:, None], lat[:, None], lon[None, :], lat[None, :])
    if corr_length_km > 0:
        rho_s = np.exp(-d / float(corr_length_km))
    else:
        rho_s = (d < 1e-6).astype(float)
    t = np.asarray((pd.DatetimeIndex(times) - pd.Timestamp("2000-01-01")) / pd.Timedelta(hours=1), float)
    dt = np.abs(t[:, None] - t[None, :])
    rho_t = np.exp(-dt / float(corr_hours)) if corr_hours > 0 else (dt < 1e-9).astype(float)
    m = np.asarray(mismatch_sigma, float)
    return np.diag(np.asarray(value_std_dev, float) ** 2) + m[:, None] * m[None, :] * rho_s * rho_t


# --------------------------------------------------------------------------------------------------
# the algebra
# --------------------------------------------------------------------------------------------------
class _Dense:
    """A dense prior covariance with ``matmat`` (what `inversion.solve.build_hqht` applies)."""

    def __init__(self, Q):
        self.Q = np.asarray(Q, float)
        self.shape = self.Q.shape

    def matmat(self, V):
        return self.Q @ V


@dataclass
class Design:
    """The current network's posterior covariance P of z = [A x ; y_c] and the candidates' blocks."""

    P: np.ndarray
    names: list  # aggregates (rows of A)
    blocks: dict  # {candidate id: indices of its observations in y_c}
    prior_sigma: np.ndarray  # √diag(A Q Aᵀ)
    chosen: list = field(default_factory=list)

    @property
    def n_agg(self) -> int:
        return len(self.names)

    @property
    def sigma(self) -> np.ndarray:
        """Posterior σ of the aggregates with the current network (and the chosen candidates)."""
        return np.sqrt(np.maximum(np.diag(self.P[:self.n_agg, :self.n_agg]), 0.0))

    def _obs(self, ids) -> np.ndarray:
        return self.n_agg + np.concatenate([np.asarray(self.blocks[i], np.int64) for i in ids])

    def covariance_with(self, ids) -> np.ndarray:
        """A Q̂ Aᵀ with the observations of candidates ``ids`` added (exact: Schur complement)."""
        if not ids:
            return self.P[:self.n_agg, :self.n_agg].copy()
        c = self._obs(ids)
        a = np.arange(self.n_agg)
        try:
            L = sla.cholesky(self.P[np.ix_(c, c)], lower=True, check_finite=False)
        except np.linalg.LinAlgError:
            raise ValueError(f"network design: the innovation covariance of candidate(s) {list(ids)} is not "
                             "positive definite (two candidates at the same place with no measurement error?); "
                             "give network_design.insitu.value_std_dev_ppm > 0 or drop the duplicate") from None
        V = sla.solve_triangular(L, self.P[np.ix_(c, a)], lower=True, check_finite=False)
        cov = self.P[:self.n_agg, :self.n_agg] - V.T @ V
        return 0.5 * (cov + cov.T)

    def sigma_with(self, ids) -> np.ndarray:
        return np.sqrt(np.maximum(np.diag(self.covariance_with(list(ids))), 0.0))

    def add(self, cid: str) -> None:
        """Condition P on candidate ``cid``'s observations (a greedy step): every remaining candidate's
        block, errors included, now sees it."""
        c = self._obs([cid])
        L = sla.cholesky(self.P[np.ix_(c, c)], lower=True, check_finite=False)
        V = sla.solve_triangular(L, self.P[c], lower=True, check_finite=False)
        P = self.P - V.T @ V
        self.P = 0.5 * (P + P.T)
        self.chosen.append(cid)


def design_covariance(Q, H1, R1, A, Hc, Rc, blocks: dict, names: list, scale_Q: float = 1.0,
                      scale_R: float = 1.0, budget_bytes: float = 1.5e9) -> Design:
    """The `Design` of the current network (rows ``H1``, errors ``R1``: σ vector or covariance) and the
    candidates (rows ``Hc``, error covariance ``Rc``), aggregates ``A``. ``Q``: a
    `inversion.covariance.KroneckerCovariance` (or its nested variant) or a dense matrix. ``scale_Q``,
    ``scale_R``: the inversion's tuned hyperparameters (1 without tuning; they scale Q and every R)."""
    from .kernels import SparseOperator
    from .solve import build_hqht

    Qop = Q if hasattr(Q, "matmat") and not isinstance(Q, np.ndarray) else _Dense(Q)
    A = sp.csr_matrix(A, dtype=np.float64)
    H1, Hc = sp.csr_matrix(H1, dtype=np.float64), sp.csr_matrix(Hc, dtype=np.float64)
    n1, nc, na = H1.shape[0], Hc.shape[0], A.shape[0]
    Hall = sp.vstack([H1, Hc], format="csr")
    K, AQH = build_hqht(Qop, SparseOperator(Hall), budget_bytes, side=[A])
    AQA = A @ Qop.matmat(A.T.toarray())
    AQA = 0.5 * (AQA + AQA.T) * scale_Q
    K, AQH = K * scale_Q, AQH * scale_Q
    R1 = np.asarray(R1, float)
    K11 = K[:n1, :n1] + (np.diag(R1**2) if R1.ndim == 1 else R1) * scale_R
    # z = [A x ; y_c]: prior covariance and covariance with y_1
    Czz = np.block([[AQA, AQH[:, n1:]], [AQH[:, n1:].T, K[n1:, n1:] + np.asarray(Rc, float) * scale_R]])
    Cz1 = np.vstack([AQH[:, :n1], K[n1:, :n1]])
    try:
        L = sla.cholesky(K11, lower=True, check_finite=False)
    except np.linalg.LinAlgError:
        raise ValueError("network design: H Q Hᵀ + R of the current network is not positive definite") from None
    V = sla.solve_triangular(L, Cz1.T, lower=True, check_finite=False)
    P = Czz - V.T @ V
    P = 0.5 * (P + P.T)
    assert P.shape == (na + nc, na + nc)
    return Design(P, list(names), {k: np.asarray(v, np.int64) for k, v in blocks.items()},
                  np.sqrt(np.maximum(np.diag(AQA), 0.0)))


def candidate_sigmas(design: Design) -> dict:
    """{candidate id: posterior σ of every aggregate with that candidate alone added}."""
    return {cid: design.sigma_with([cid]) for cid in design.blocks}


def greedy(design: Design, k: int, objective: int) -> list[dict]:
    """k greedy steps: each adds the remaining candidate that gives the smallest posterior σ of
    aggregate row ``objective``; returns [{id, sigma (all aggregates after the step)}]. ``design`` is
    not changed (a copy is conditioned)."""
    d = Design(design.P.copy(), design.names, design.blocks, design.prior_sigma, list(design.chosen))
    steps = []
    for _ in range(min(int(k), len(d.blocks))):
        left = [c for c in d.blocks if c not in d.chosen]
        s = {c: d.sigma_with([c])[objective] for c in left}
        best = min(left, key=lambda c: (s[c], c))
        d.add(best)
        steps.append({"id": best, "sigma": d.sigma.copy()})
    return steps


def brute_force(design: Design, k: int, objective: int) -> tuple[tuple, float]:
    """The best set of k candidates by exhaustive search (small cases only: C(n, k) Schur complements)."""
    best, best_s = None, math.inf
    for ids in itertools.combinations(sorted(design.blocks), k):
        s = float(design.sigma_with(list(ids))[objective])
        if s < best_s:
            best, best_s = ids, s
    return best, best_s
