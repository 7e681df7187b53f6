"""Analytical Bayesian inversion: posterior mean, exact aggregated covariance, χ², DOFS.

    x̂ = x_a + Q Hᵀ K⁻¹ (y − H x_a),                 K = H Q Hᵀ + R
    A Q̂ Aᵀ = A Q Aᵀ − (A Q Hᵀ) K⁻¹ (H Q Aᵀ)        (exact; the full posterior covariance is never formed)
    χ²_r = (y − H x_a)ᵀ K⁻¹ (y − H x_a) / n_obs       (= 2 J(x̂) / n_obs; expected 1 when Q and R are right)
    p    = P(χ²_{n_obs} ≥ n_obs χ²_r)                  (upper-tail p-value of the innovation χ²)
    DOFS = tr(H Q Hᵀ K⁻¹) = n_obs − tr(R K⁻¹)

Two solvers, chosen automatically (``solver="auto"``):

* ``"cholesky"`` — K is formed explicitly, in chunks of observations: Z = Q Hᵀ[:, chunk] (Q applied
  matrix-free), K[:, chunk] = H Z. Then one Cholesky factorisation serves the mean, the aggregated
  covariance and the exact DOFS. Used while n_obs ≤ ``max_dense_obs`` (default 20 000).
* ``"pcg"`` — matrix-free preconditioned conjugate gradients in observation space, K·v = H(Q(Hᵀv)) + Rv,
  Jacobi preconditioner diag(R) + (H∘H)·diag(Q), several right-hand sides solved together
  (one block product per iteration). DOFS by Hutchinson's estimator with Rademacher probes
  (``dofs_probes``, seeded by ``seed``), reported with its standard error.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
from scipy import stats

from gzcarbon.logs import Progress

from .covariance import KroneckerCovariance, row_variances, steps_per_day
from .crossval import holdout_predictions
from .hyper import tune_scaling
from .kernels import SparseOperator
from .separable import hq_separable, separable_flux_rows

log = logging.getLogger(__name__)


@dataclass
class InversionResult:
    """Everything `solve` returns. Aggregates are rows of ``aggregate`` (and ``aggregate_var``)."""

    x_post: np.ndarray
    agg_prior_mean: np.ndarray | None
    agg_post_mean: np.ndarray | None
    agg_prior_cov: np.ndarray | None
    agg_post_cov: np.ndarray | None
    chi2_reduced: float
    dofs: float
    dofs_stderr: float
    solver: str
    n_obs: int
    n_state: int
    y_prior_model: np.ndarray  # H x_a
    y_post_model: np.ndarray  # H x̂
    var_prior: np.ndarray | None = None  # diag(B Q Bᵀ) for rows B of aggregate_var
    var_post: np.ndarray | None = None  # diag(B Q̂ Bᵀ)
    timings: dict = field(default_factory=dict)
    pcg_iterations: int = 0
    hqht: str = ""  # how the Cholesky solver formed H Q Hᵀ ("chunks" | "kronecker")
    hyper: dict | None = None  # hyperparameter tuning (`inversion.hyper.HyperResult.as_dict()`), if asked
    agg_post_mean_ensemble: np.ndarray | None = None  # (n_agg × k) A x̂ for every column of option y_ensemble
    agg_post_cov_subsets: dict | None = None  # {name: A Q̂ Aᵀ from that subset of observations} (option obs_subsets)
    holdout_predictions: dict | None = None  # {name: crossval.HoldoutPrediction} (option holdout)
    scale_Q: float = 1.0  # the posterior used a·Q and b·R (1, 1 without tuning)
    scale_R: float = 1.0
    chi2: float = float("nan")  # innovation χ² = dᵀ K⁻¹ d (n_obs degrees of freedom)
    chi2_pvalue: float = float("nan")  # P(χ²_n ≥ chi2): upper-tail p-value (inversion.screening.chi2_test)

    @property
    def agg_prior_sigma(self):
        return None if self.agg_prior_cov is None else np.sqrt(np.maximum(np.diag(self.agg_prior_cov), 0))

    @property
    def agg_post_sigma(self):
        return None if self.agg_post_cov is None else np.sqrt(np.maximum(np.diag(self.agg_post_cov), 0))


# ------------------------------------------------------------------------------------------------
# input checks
# ------------------------------------------------------------------------------------------------
class _DenseCov:
    def __init__(self, Q):
        self.Q = Q
        self.shape = Q.shape

    def matmat(self, V):
        return self.Q @ V

    def diagonal(self):
        return np.diag(self.Q).copy()


def _check_H(H) -> sp.csr_matrix:
    if not sp.issparse(H):
        if isinstance(H, np.ndarray) and H.ndim == 2:
            H = sp.csr_matrix(H)
        else:
            raise TypeError("solve: argument 'H' must be a scipy.sparse matrix (n_obs × n_state)")
    if H.shape[0] == 0 or H.shape[1] == 0:
        raise ValueError(f"solve: argument 'H' has shape {H.shape}; need at least one observation and state element")
    H = sp.csr_matrix(H, dtype=np.float64)
    if not np.all(np.isfinite(H.data)):
        raise ValueError(f"solve: argument 'H' contains {int((~np.isfinite(H.data)).sum())} NaN/inf entries")
    return H


def _check_vector(v, n: int, name: str, what: str) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    if v.shape != (n,):
        raise ValueError(f"solve: argument '{name}' has shape {v.shape}, expected ({n},) = {what}")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"solve: argument '{name}' contains {int((~np.isfinite(v)).sum())} NaN/inf values")
    return v


def _check_prior_cov(prior_cov, n_state: int, check_pd: bool):
    """The prior covariance as an operator with ``matmat`` and ``diagonal``."""
    if isinstance(prior_cov, KroneckerCovariance):
        if prior_cov.n != n_state:
            raise ValueError(f"solve: argument 'prior_cov' has {prior_cov.n} state elements, H has {n_state} columns")
        return prior_cov
    Qd = prior_cov.toarray() if sp.issparse(prior_cov) else np.asarray(prior_cov, dtype=np.float64)
    if Qd.shape != (n_state, n_state):
        raise ValueError(f"solve: argument 'prior_cov' has shape {Qd.shape}, expected ({n_state}, {n_state})")
    if not np.all(np.isfinite(Qd)):
        raise ValueError("solve: argument 'prior_cov' contains NaN/inf values")
    if not np.allclose(Qd, Qd.T, rtol=1e-10, atol=1e-12 * max(1.0, np.abs(Qd).max())):
        raise ValueError("solve: argument 'prior_cov' is not symmetric")
    if check_pd:
        try:
            np.linalg.cholesky(Qd)
        except np.linalg.LinAlgError:
            raise ValueError("solve: argument 'prior_cov' is not positive definite (Cholesky failed)") from None
    return _DenseCov(Qd)


def _check_obs_err(obs_err, n_obs: int) -> np.ndarray:
    """R as variances (n_obs,) or a covariance matrix (n_obs × n_obs)."""
    R = np.asarray(obs_err.toarray() if sp.issparse(obs_err) else obs_err, dtype=np.float64)
    if R.ndim == 1:
        if R.shape != (n_obs,):
            raise ValueError(f"solve: argument 'obs_err' (σ vector) has shape {R.shape}, expected ({n_obs},)")
        if not np.all(np.isfinite(R)) or np.any(R <= 0):
            raise ValueError("solve: argument 'obs_err' must hold finite σ > 0 for every observation")
        return R**2  # variances
    if R.ndim != 2:
        raise ValueError("solve: argument 'obs_err' must be a vector of σ or an (n_obs × n_obs) covariance matrix")
    if R.shape != (n_obs, n_obs):
        raise ValueError(f"solve: argument 'obs_err' (matrix) has shape {R.shape}, expected ({n_obs}, {n_obs})")
    if not np.all(np.isfinite(R)) or not np.allclose(R, R.T):
        raise ValueError("solve: argument 'obs_err' matrix must be finite and symmetric")
    try:
        np.linalg.cholesky(R)
    except np.linalg.LinAlgError:
        raise ValueError("solve: argument 'obs_err' matrix is not positive definite") from None
    return R


def _check_aggregate(A, n_state: int, name: str):
    if A is None:
        return None
    A = sp.csr_matrix(A, dtype=np.float64) if sp.issparse(A) else sp.csr_matrix(np.atleast_2d(np.asarray(A, np.float64)))
    if A.shape[1] != n_state:
        raise ValueError(f"solve: argument '{name}' has {A.shape[1]} columns, expected n_state = {n_state}")
    if not np.all(np.isfinite(A.data)):
        raise ValueError(f"solve: argument '{name}' contains NaN/inf values")
    return A


def _check_inputs(H, y, x_prior, prior_cov, obs_err, aggregate, aggregate_var, check_pd):
    H = _check_H(H)
    n_obs, n_state = H.shape
    y = _check_vector(y, n_obs, "y", "rows of H")
    x_prior = _check_vector(x_prior, n_state, "x_prior", "columns of H")
    Q = _check_prior_cov(prior_cov, n_state, check_pd)
    R = _check_obs_err(obs_err, n_obs)
    return (H, y, x_prior, Q, R, _check_aggregate(aggregate, n_state, "aggregate"),
            _check_aggregate(aggregate_var, n_state, "aggregate_var"))


# ------------------------------------------------------------------------------------------------
# building blocks
# ------------------------------------------------------------------------------------------------
def _subset_index(v, n_obs: int, name, option: str = "obs_subsets") -> np.ndarray:
    """Indices of an observation subset given as indices or a boolean mask (options obs_subsets, holdout)."""
    v = np.asarray(v)
    if v.dtype == bool:
        if v.shape != (n_obs,):
            raise ValueError(f"solve: {option}[{name!r}] is a boolean mask of shape {v.shape}, expected ({n_obs},)")
        return np.flatnonzero(v)
    if v.size and (v.dtype.kind not in "iu" or v.min() < 0 or v.max() >= n_obs):
        raise ValueError(f"solve: {option}[{name!r}] must hold observation indices in [0, {n_obs})")
    return np.unique(v.astype(np.int64))


def _chunk_size(n_state: int, budget_bytes: float) -> int:
    return int(max(1, min(4096, budget_bytes // (8.0 * 3 * max(n_state, 1)))))


def _apply_R(R, V):
    return R[:, None] * V if R.ndim == 1 else R @ V


def _quad_full(Q, Hop: SparseOperator, A: sp.csr_matrix, budget):
    """(A Q Aᵀ, H Q Aᵀ) from one pass over chunks of rows of A (Z = Q Aᵀ[:, chunk])."""
    n_a = A.shape[0]
    AQA = np.empty((n_a, n_a))
    HQA = np.empty((Hop.shape[0], n_a))
    At = A.T.tocsc()
    step = _chunk_size(A.shape[1], budget)
    for j0 in range(0, n_a, step):
        j1 = min(n_a, j0 + step)
        Z = Q.matmat(At[:, j0:j1].toarray())
        AQA[:, j0:j1] = A @ Z
        HQA[:, j0:j1] = Hop.matmat(Z)
    return 0.5 * (AQA + AQA.T), HQA


def _quad_diag(Q, B: sp.csr_matrix, budget):
    """diag(B Q Bᵀ): local exact formula for the Kronecker operator, dense product otherwise."""
    if isinstance(Q, KroneckerCovariance):
        return row_variances(Q, B)
    return np.einsum("ij,ji->i", B @ Q.Q, B.T.toarray())


def _separable_rows(Q, B):
    """(w, W, B_extra) when B's flux part is kron(w, W) and Q is a `KroneckerCovariance`, else None."""
    if B is None or not isinstance(Q, KroneckerCovariance):
        return None
    sep = separable_flux_rows(B, Q.n_step, Q.n_cells)
    return None if sep is None else (*sep, B[:, Q.n_flux:])


def hq_of_rows(Q, Hop: SparseOperator, B: sp.csr_matrix, budget, separable=None):
    """H Q Bᵀ (n_obs × n_rows): by footprint slices when B is separable (`inversion.separable`),
    else by chunks of rows of B (Q applied to each row)."""
    if separable is not None:
        w, W, B_extra = separable
        return hq_separable(Q, Hop.csr, w, W, B_extra)
    n_b = B.shape[0]
    HQB = np.empty((Hop.shape[0], n_b))
    Bt = B.T.tocsc()
    step = _chunk_size(B.shape[1], budget)
    progress = Progress(log, -(-n_b // step), "H Q Bt (aggregates)")
    for j0 in range(0, n_b, step):
        j1 = min(n_b, j0 + step)
        HQB[:, j0:j1] = Hop.matmat(Q.matmat(Bt[:, j0:j1].toarray()))
        progress.step(j0 // step + 1, f"rows {j0 + 1}-{j1} of {n_b}")
    return HQB


def build_hqht(Q, Hop: SparseOperator, budget_bytes=1.5e9, side=None):
    """Explicit H Q Hᵀ (n_obs × n_obs), in chunks of observations (Z = Q Hᵀ[:, chunk]).

    ``side``: list of extra sparse matrices M; then returns (K, *[M Q Hᵀ for each M]) (from the same Z).
    """
    n_obs, n_state = Hop.shape
    K = np.empty((n_obs, n_obs))
    MQH = [np.empty((M.shape[0], n_obs)) for M in (side or [])]
    HT = Hop.csr_t.tocsc()  # columns of Hᵀ = observations
    step = _chunk_size(n_state, budget_bytes)
    progress = Progress(log, -(-n_obs // step), "H Q Ht")
    for j0 in range(0, n_obs, step):
        j1 = min(n_obs, j0 + step)
        Z = Q.matmat(HT[:, j0:j1].toarray())
        K[:, j0:j1] = Hop.matmat(Z)
        progress.step(j0 // step + 1, f"observations {j0 + 1}-{j1} of {n_obs}")
        for M, out in zip(side or [], MQH):
            out[:, j0:j1] = M @ Z
    K = 0.5 * (K + K.T)
    return K if side is None else (K, *MQH)


def build_hqht_kronecker(Q: KroneckerCovariance, H: sp.csr_matrix) -> np.ndarray:
    """Exact H Q Hᵀ for a `KroneckerCovariance`, exploiting that footprints are short in time.

    With G_t = H_t D_t (the rows' slices on step t, scaled by σ) and Q_t[t,t'] = ρ^|t−t'|
    (ρ = exp(−step/τ), the exponential temporal correlation on uniform steps):

        H Q Hᵀ = L + Lᵀ − D0,   L = Σ_t G_t Q_s C_tᵀ,  C_t = Σ_{t'≤t} ρ^(t−t') G_t',  D0 = Σ_t G_t Q_s G_tᵀ.

    Q_s is applied (FFT) once per (observation, step) slice, never to whole state vectors. Pairs of
    observations whose windows [first, last] are far apart (first_j > last_i) factor exactly as
    ρ^(first_j − last_i) · n_jᵀ (Q_s c_i), n_j = Σ_t ρ^(t−first_j) g_{t,j}, c_i = Σ_t ρ^(last_i−t) g_{t,i}:
    one dense GEMM. Near pairs are accumulated step by step. Extra (diagonal) elements are added
    as H_e diag(σ_e²) H_eᵀ. Agrees with `build_hqht` to rounding (tested).

    The observations are processed in the order of their first step (rows permuted, K permuted back),
    so the far pairs of a block of rows lie among a prefix of the earlier rows and their GEMM
    skips the (near and reversed) half that is not needed.
    """
    if not Q.markov_time:
        return _hqht_kronecker_diurnal(Q, H)
    H = sp.csr_matrix(H, dtype=np.float64)
    H.sum_duplicates()
    H.indptr, H.indices = H.indptr.astype(np.int64), H.indices.astype(np.int64)
    nc, nf = Q.n_cells, Q.n_flux
    n_obs = H.shape[0]
    first = np.full(n_obs, -1, np.int64)  # first step of every row (-1: no flux entry)
    ok = np.diff(H.indptr) > 0
    fi = H.indices[H.indptr[:-1][ok]]
    first[ok] = np.where(fi < nf, fi // nc, -1)
    perm = np.argsort(first, kind="stable")
    if np.array_equal(perm, np.arange(n_obs)):
        return _hqht_kronecker_sorted(Q, H)
    K = _hqht_kronecker_sorted(Q, H[perm])
    inv = np.argsort(perm)
    return K[np.ix_(inv, inv)]


def _hqht_kronecker_diurnal(Q: KroneckerCovariance, H) -> np.ndarray:
    """`build_hqht_kronecker` for Q_t = E ∘ (c + (1 − c) S) (``diurnal_corr`` c, see
    `covariance.exponential_time_corr`): E = ρ^|Δs| is Markov, and E ∘ S restricted to the steps of one
    time of day k is again Markov (ρ^n per day, n steps a day), so

        H Q Hᵀ = c · H D (E ⊗ Q_s) D Hᵀ + (1 − c) · Σ_k H_k D_k (E_k ⊗ Q_s) D_k H_kᵀ + extras,

    each term by the structured Markov builder (H_k: the columns of the steps of slot k, re-indexed).
    About twice the cost of the plain case; exact (tested against the dense product).
    """
    H = sp.csr_matrix(H, dtype=np.float64)
    nf, nc = Q.n_flux, Q.n_cells
    c = Q.diurnal_corr
    per_day = steps_per_day(Q.step_hours)
    sig = Q.sigma_cells

    Hf = sp.coo_matrix(H[:, :nf])
    K = (c * build_hqht_kronecker(Q.with_sigma(sig, Q.step_hours), Hf.tocsr()) if c != 0
         else np.zeros((H.shape[0],) * 2))
    step, cell = np.divmod(Hf.col.astype(np.int64), nc)
    for k in range(per_day):
        steps = np.arange(k, Q.n_step, per_day)
        on = step % per_day == k
        if steps.size == 0 or not on.any():
            continue
        Hk = sp.csr_matrix((Hf.data[on], (Hf.row[on], (step[on] // per_day) * nc + cell[on])),
                           shape=(H.shape[0], steps.size * nc))
        K += (1.0 - c) * build_hqht_kronecker(Q.with_sigma(sig[steps], Q.step_hours * per_day), Hk)
    if Q.n_extra:
        He = H[:, nf:]
        K += (He @ sp.diags(Q.extra_sigma**2) @ He.T).toarray()
    return 0.5 * (K + K.T)


def _hqht_kronecker_sorted(Q: KroneckerCovariance, H: sp.csr_matrix, row_block: int = 512) -> np.ndarray:
    """`build_hqht_kronecker` on rows already sorted by their first step (sorted, summed CSR)."""
    n_obs = H.shape[0]
    nc, nf = Q.n_cells, Q.n_flux
    rho = 0.0 if Q.corr_time_hours <= 0 else float(np.exp(-Q.step_hours / Q.corr_time_hours))
    sig = Q.sigma_cells
    indptr, indices, data = H.indptr.astype(np.int64, copy=False), H.indices.astype(np.int64, copy=False), H.data
    # flux entries come first in every row (sorted indices)
    nflux = np.array([np.searchsorted(indices[indptr[i]:indptr[i + 1]], nf) for i in range(n_obs)], np.int64)
    has = nflux > 0
    first = np.full(n_obs, -1, np.int64)
    last = np.full(n_obs, -1, np.int64)
    first[has] = indices[indptr[:-1][has]] // nc
    last[has] = indices[indptr[:-1][has] + nflux[has] - 1] // nc
    K = np.zeros((n_obs, n_obs))
    if has.any():
        wmax = int((last - first)[has].max()) + 1
        cur = indptr[:-1].copy()
        P = np.zeros((n_obs, nc))  # running Q_s C_t rows; frozen at last_i (= Q_s c_i)
        N = np.zeros((n_obs, nc))
        L = np.zeros((n_obs, n_obs))
        D0 = np.zeros((n_obs, n_obs))
        t_lo, t_hi = int(first[has].min()), int(last[has].max())
        progress = Progress(log, t_hi - t_lo + 1, "H Q Ht (structured), time steps")
        for t in range(t_lo, t_hi + 1):
            progress.step(t - t_lo + 1)
            run = has & (first < t) & (last >= t)
            P[run] *= rho
            act = np.flatnonzero(has & (first <= t) & (last >= t))
            J, segs = [], []
            for i in act:
                e = indptr[i] + nflux[i]
                k1 = cur[i] + np.searchsorted(indices[cur[i]:e], (t + 1) * nc)
                if k1 > cur[i]:
                    J.append(i)
                    segs.append((cur[i], k1))
                    cur[i] = k1
            if not J:
                continue
            J = np.asarray(J)
            G = np.zeros((J.size, nc))
            for r, (k0, k1) in enumerate(segs):
                c = indices[k0:k1] - t * nc
                G[r, c] = data[k0:k1] * sig[t, c]
            W = Q.apply_space(G)
            P[J] += W
            N[J] += np.power(rho, t - first[J])[:, None] * G
            D0[np.ix_(J, J)] += G @ W.T
            I = np.flatnonzero(has & (first <= t) & (last >= t - wmax + 1))
            blk = G @ P[I].T
            blk *= np.power(rho, np.maximum(0, t - last[I]))[None, :]
            blk *= last[I][None, :] >= first[J][:, None]  # near pairs only
            L[np.ix_(J, I)] += blk
        G = W = None  # free the last step's work arrays
        _add_far_pairs(L, N, P, first, last, has, rho, row_block)
        K = L + L.T - D0
    if Q.n_extra:
        He = H[:, nf:]
        K += (He @ sp.diags(Q.extra_sigma**2) @ He.T).toarray()
    return 0.5 * (K + K.T)


def _add_far_pairs(L, N, P, first, last, has, rho, row_block) -> None:
    """Add the far pairs (first_i > last_j) of `_hqht_kronecker_sorted` to L, one block of rows at a time.

    Rows are sorted by first, and last_j >= first_j, so the columns of a block of rows lie in the
    prefix of rows with first_j < max first of the block."""
    n_obs = L.shape[0]
    fsort = np.where(has, first, -1)  # sorted: rows without flux entries come first
    for i0 in range(0, n_obs, row_block):
        i1 = min(n_obs, i0 + row_block)
        if not has[i0:i1].any():
            continue
        jmax = int(np.searchsorted(fsort, first[i0:i1][has[i0:i1]].max(), side="left"))
        if jmax == 0:
            continue
        F = N[i0:i1] @ P[:jmax].T
        gap = first[i0:i1, None] - last[None, :jmax]
        far = (gap > 0) & has[i0:i1, None] & has[None, :jmax]
        L[i0:i1, :jmax] += np.where(far, F * np.power(rho, np.where(far, gap, 0)), 0.0)


def pcg_solve(apply_K, B, precond_diag, tol=1e-10, maxiter=2000):
    """Jacobi-preconditioned CG for SPD K on every column of B together.

    Stops when every column has ‖r‖ ≤ tol ‖b‖. Returns (X, iterations).
    """
    B = np.asarray(B, dtype=np.float64)
    vec = B.ndim == 1
    if vec:
        B = B[:, None]
    X = np.zeros_like(B)
    Rr = B.copy()
    Minv = 1.0 / precond_diag[:, None]
    Zr = Minv * Rr
    P = Zr.copy()
    rz = np.einsum("ij,ij->j", Rr, Zr)
    bnorm = np.linalg.norm(B, axis=0)
    bnorm[bnorm == 0] = 1.0
    active = np.ones(B.shape[1], bool)
    it = 0
    progress = Progress(log, maxiter, "PCG iterations (at most)")
    for it in range(1, maxiter + 1):
        progress.step(it, f"{int(active.sum())} of {B.shape[1]} right-hand sides not converged")
        idx = np.flatnonzero(active)
        KP = apply_K(P[:, idx])
        pKp = np.einsum("ij,ij->j", P[:, idx], KP)
        alpha = rz[idx] / pKp
        X[:, idx] += alpha * P[:, idx]
        Rr[:, idx] -= alpha * KP
        rn = np.linalg.norm(Rr[:, idx], axis=0) / bnorm[idx]
        done = rn <= tol
        Zi = Minv * Rr[:, idx]
        rz_new = np.einsum("ij,ij->j", Rr[:, idx], Zi)
        beta = rz_new / rz[idx]
        P[:, idx] = Zi + beta * P[:, idx]
        rz[idx] = rz_new
        active[idx[done]] = False
        if not active.any():
            break
    else:
        log.warning("pcg: %d of %d right-hand sides did not reach tol=%g in %d iterations",
                    int(active.sum()), B.shape[1], tol, maxiter)
    return (X[:, 0] if vec else X), it


# ------------------------------------------------------------------------------------------------
# public entry points
# ------------------------------------------------------------------------------------------------
SOLVERS = ("auto", "cholesky", "pcg")
HQHT_METHODS = ("auto", "chunks", "kronecker")
TUNE_METHODS = (False, None, "ml", "chi2")


@dataclass(frozen=True)
class SolveOptions:
    """How `solve` works (not what it solves). Every field has the default the pipeline uses.

    solver: "auto" (Cholesky while n_obs ≤ ``max_dense_obs``, else PCG) | "cholesky" | "pcg".
    pcg_tol, pcg_maxiter: stopping rule of the PCG solver (‖r‖ ≤ tol ‖b‖ per right-hand side).
    dofs_probes, seed: Hutchinson probes of the PCG solver's DOFS estimate and their seed.
    memory_budget_bytes: size of the dense work blocks (chunks of Q Hᵀ).
    check_pd: check that a dense ``prior_cov`` is positive definite.
    hqht: how the Cholesky solver forms H Q Hᵀ: "chunks" (`build_hqht`), "kronecker"
        (`build_hqht_kronecker`), or "auto" ("kronecker" for a KroneckerCovariance when n_obs exceeds
        the rows of ``aggregate_var`` or when those rows are time weights ⊗ spatial rows, whose H Q Bᵀ
        then comes from footprint slices, `inversion.separable`).
    tune: False | True | "ml" | "chi2": scale Q and R from the data before solving
        (`inversion.hyper`; True = "ml"; Cholesky solver only).
    y_ensemble: (n_obs × k) further data vectors (e.g. noise draws of an OSSE) whose aggregated
        posterior means A x̂_k are returned in ``agg_post_mean_ensemble`` (they share K).
    obs_subsets: {name: indices or boolean mask}: the exact posterior covariance of A that each
        subset of the observations alone would give, from the same H Q Hᵀ and H Q Aᵀ (returned in
        ``agg_post_cov_subsets``; Cholesky solver only; e.g. each station left out).
    holdout: {name: indices or boolean mask}: cross-validation folds. For each, the posterior of the
        *other* observations predicted at the left-out ones, H_L x̂_S, exactly and without a new solve
        (`inversion.crossval`; returned in ``holdout_predictions``; Cholesky solver only).
    """

    solver: str = "auto"
    max_dense_obs: int = 20000
    pcg_tol: float = 1e-10
    pcg_maxiter: int = 2000
    dofs_probes: int = 64
    seed: int = 0
    memory_budget_bytes: float = 1.5e9
    check_pd: bool = True
    hqht: str = "auto"
    tune: bool | str = False
    y_ensemble: np.ndarray | None = None
    obs_subsets: dict | None = None
    holdout: dict | None = None

    def __post_init__(self):
        if self.tune is True:
            object.__setattr__(self, "tune", "ml")
        if self.tune not in TUNE_METHODS:
            raise ValueError(f"solve: option tune={self.tune!r}; allowed: False, True, 'ml', 'chi2'")
        if self.hqht not in HQHT_METHODS:
            raise ValueError(f"solve: option hqht={self.hqht!r}; allowed: 'auto', 'chunks', 'kronecker'")
        if self.solver not in SOLVERS:
            raise ValueError(f"solve: option solver={self.solver!r}; allowed: 'auto', 'cholesky', 'pcg'")

    def replace(self, **changes) -> "SolveOptions":
        return dataclasses.replace(self, **changes)


@dataclass
class Prepared:
    """A checked problem and what both solvers need: d = y − H x_a, A Q Aᵀ, H Q Aᵀ, diag(B Q Bᵀ)."""

    Hop: SparseOperator
    y: np.ndarray
    x_prior: np.ndarray
    Q: object  # KroneckerCovariance or a dense operator (matmat, diagonal)
    R: np.ndarray  # variances (n_obs,) or covariance (n_obs × n_obs)
    A: sp.csr_matrix | None
    B: sp.csr_matrix | None
    d: np.ndarray
    y_prior_model: np.ndarray
    AQA: np.ndarray | None
    HQA: np.ndarray | None
    varB: np.ndarray | None
    y_ensemble: np.ndarray | None
    subsets: dict | None
    timings: dict
    t0: float
    holdout: dict | None = None

    @property
    def n_obs(self) -> int:
        return self.Hop.shape[0]

    @property
    def n_state(self) -> int:
        return self.Hop.shape[1]


def prepare(H, y, x_prior, prior_cov, obs_err, aggregate=None, aggregate_var=None,
            options: SolveOptions | None = None) -> Prepared:
    """Check the inputs (one clear error per bad argument) and compute what both solvers share."""
    opts = options or SolveOptions()
    t0 = time.perf_counter()
    H, y, x_prior, Q, R, A, B = _check_inputs(H, y, x_prior, prior_cov, obs_err, aggregate, aggregate_var,
                                              opts.check_pd)
    n_obs = H.shape[0]
    y_ens = opts.y_ensemble
    if y_ens is not None:
        y_ens = np.asarray(y_ens, dtype=np.float64)
        if y_ens.ndim != 2 or y_ens.shape[0] != n_obs or not np.all(np.isfinite(y_ens)):
            raise ValueError(f"solve: option 'y_ensemble' must be a finite (n_obs={n_obs} × k) array, got shape {y_ens.shape}")
        if A is None:
            raise ValueError("solve: option 'y_ensemble' needs 'aggregate' (its result is A x̂ per member)")
    holdout = None
    if opts.holdout is not None:
        holdout = {str(k): _subset_index(v, n_obs, k, "holdout") for k, v in dict(opts.holdout).items()}
    subsets = None
    if opts.obs_subsets is not None:
        if A is None:
            raise ValueError("solve: option 'obs_subsets' needs 'aggregate' (its result is a covariance of A x)")
        subsets = {str(k): _subset_index(v, n_obs, k) for k, v in dict(opts.obs_subsets).items()}
    timings = {"checks": time.perf_counter() - t0}

    t = time.perf_counter()
    Hop = SparseOperator(H)
    y_prior_model = Hop.matvec(x_prior)
    timings["setup"] = time.perf_counter() - t
    # prior covariance of the aggregates and H Q Aᵀ (both solvers)
    t = time.perf_counter()
    budget = opts.memory_budget_bytes
    AQA, HQA = _quad_full(Q, Hop, A, budget) if A is not None else (None, None)
    varB = _quad_diag(Q, B, budget) if B is not None else None
    timings["aggregate_prior"] = time.perf_counter() - t
    return Prepared(Hop, y, x_prior, Q, R, A, B, y - y_prior_model, y_prior_model, AQA, HQA, varB, y_ens,
                    subsets, timings, t0, holdout)


def solve(H, y, x_prior, prior_cov, obs_err, aggregate=None, aggregate_var=None,
          options: SolveOptions | None = None) -> InversionResult:
    """Analytical Bayesian inversion (see module docstring).

    Parameters
    ----------
    H : scipy.sparse (n_obs × n_state)
    y, x_prior : vectors (n_obs,), (n_state,)
    prior_cov : dense (n_state × n_state) array or `KroneckerCovariance`
    obs_err : vector of σ (n_obs,) or covariance matrix (n_obs × n_obs)
    aggregate : (n_agg × n_state) sparse or dense, optional — full posterior covariance of A x
    aggregate_var : matrix whose rows get prior/posterior variances only (e.g. coarse blocks)
    options : `SolveOptions` (defaults: the pipeline's)

    Dispatches to `solve_cholesky` or `solve_pcg` (both return an `InversionResult`).
    """
    opts = options or SolveOptions()
    if not isinstance(opts, SolveOptions):
        raise TypeError(f"solve: options must be a SolveOptions, got {type(opts).__name__}")
    prep = prepare(H, y, x_prior, prior_cov, obs_err, aggregate, aggregate_var, opts)
    solver = opts.solver
    if solver == "auto":
        solver = "cholesky" if prep.n_obs <= opts.max_dense_obs else "pcg"
    if solver == "pcg":
        if prep.subsets is not None:
            raise ValueError("solve: option 'obs_subsets' needs the explicit H Q Hᵀ of the Cholesky solver "
                             f"(n_obs = {prep.n_obs} > max_dense_obs or solver='pcg')")
        if prep.holdout is not None:
            raise ValueError("solve: option 'holdout' needs the explicit H Q Hᵀ of the Cholesky solver "
                             f"(n_obs = {prep.n_obs} > max_dense_obs or solver='pcg')")
        if opts.tune:
            raise ValueError(f"solve: option tune={opts.tune!r} needs the explicit H Q Hᵀ of the Cholesky solver "
                             f"(n_obs = {prep.n_obs} > max_dense_obs or solver='pcg'); raise max_dense_obs or drop tune")
        return solve_pcg(prep, opts)
    return solve_cholesky(prep, opts)


def _hqht_method(prep: Prepared, method: str, sepB) -> str:
    if method == "auto":  # chunks: H Q Bᵀ comes from the same Q applications as K (cheap while n_obs is small)
        n_side = prep.B.shape[0] if prep.B is not None else 0
        return ("kronecker" if isinstance(prep.Q, KroneckerCovariance) and (prep.n_obs > n_side or sepB is not None)
                else "chunks")
    if method == "kronecker" and not isinstance(prep.Q, KroneckerCovariance):
        raise ValueError("solve: option hqht='kronecker' needs prior_cov to be a KroneckerCovariance")
    return method


def _build_K(prep: Prepared, method: str, sepB, budget):
    """(H Q Hᵀ, H Q Bᵀ or None) by the chosen method; timings added to ``prep.timings``."""
    t = time.perf_counter()
    B, Q, Hop = prep.B, prep.Q, prep.Hop
    if method == "kronecker":
        K = build_hqht_kronecker(Q, Hop.csr)
        prep.timings["build_HQHt"] = time.perf_counter() - t
        t = time.perf_counter()
        HQB = hq_of_rows(Q, Hop, B, budget, sepB) if B is not None else None
        prep.timings["aggregate_HQ"] = time.perf_counter() - t
        return K, HQB
    K, *MQH = build_hqht(Q, Hop, budget, side=[B] if B is not None else [])
    prep.timings["build_HQHt"] = time.perf_counter() - t
    return K, (MQH[0].T if B is not None else None)


def _tune(prep: Prepared, K, HQB, method):
    """Scale Q and R by maximum likelihood / χ² (`inversion.hyper`); returns (K, HQB, hyper, a, b)."""
    t = time.perf_counter()
    hp = tune_scaling(K, prep.R, prep.d, method=method)
    K *= hp.scale_Q
    prep.R = prep.R * hp.scale_R
    if prep.A is not None:
        prep.AQA, prep.HQA = prep.AQA * hp.scale_Q, prep.HQA * hp.scale_Q
    if prep.B is not None:
        prep.varB, HQB = prep.varB * hp.scale_Q, HQB * hp.scale_Q
    prep.timings["tune"] = time.perf_counter() - t
    return K, HQB, hp.as_dict(), hp.scale_Q, hp.scale_R


def solve_cholesky(prep: Prepared, options: SolveOptions | None = None) -> InversionResult:
    """Dense solver: K = H Q Hᵀ + R formed explicitly and factorised once (Cholesky); exact DOFS,
    aggregated covariances, station subsets and hyperparameter tuning."""
    opts = options or SolveOptions()
    sepB = _separable_rows(prep.Q, prep.B)
    method = _hqht_method(prep, opts.hqht, sepB)
    K, HQB = _build_K(prep, method, sepB, opts.memory_budget_bytes)
    hyper, scale_Q, scale_R = None, 1.0, 1.0
    if opts.tune:
        K, HQB, hyper, scale_Q, scale_R = _tune(prep, K, HQB, opts.tune)
    t = time.perf_counter()
    R, n_obs = prep.R, prep.n_obs
    K += np.diag(R) if R.ndim == 1 else R
    K_subsets = K.copy() if prep.subsets else None  # the factorisation below overwrites K
    try:
        cf = sla.cho_factor(K, lower=True, overwrite_a=True, check_finite=False)
    except np.linalg.LinAlgError:
        raise ValueError("solve: H Q Hᵀ + R is not positive definite; check 'prior_cov' and 'obs_err'") from None
    w = sla.cho_solve(cf, prep.d, check_finite=False)
    L = np.tril(cf[0])
    Linv = sla.solve_triangular(L, np.eye(n_obs), lower=True, check_finite=False)
    if R.ndim == 1:
        # (K⁻¹)_ii = Σ_k (L⁻¹)_ki²  since K⁻¹ = L⁻ᵀ L⁻¹
        dofs = n_obs - float(np.sum((Linv**2).sum(axis=0) * R))
    else:
        Kinv = Linv.T @ Linv
        dofs = n_obs - float(np.sum(Kinv * R))
    prep.timings["factor"] = time.perf_counter() - t
    holdout = None
    if prep.holdout:
        t = time.perf_counter()
        holdout = holdout_predictions(Linv, w, prep.d, R, prep.y_prior_model, prep.holdout)
        prep.timings["holdout"] = time.perf_counter() - t

    t = time.perf_counter()
    res = _posterior(prep, w, lambda M: sla.cho_solve(cf, M, check_finite=False), scale_Q)
    res.agg_post_cov_subsets = _subset_covariances(prep, K_subsets)
    res.holdout_predictions = holdout
    if prep.B is not None:
        V = sla.solve_triangular(L, HQB, lower=True, check_finite=False)
        res.var_post = prep.varB - (V**2).sum(axis=0)
    prep.timings["posterior"] = time.perf_counter() - t
    return _finish(prep, res, "cholesky", dofs, 0.0, 0, method, hyper, scale_Q, scale_R)


def solve_pcg(prep: Prepared, options: SolveOptions | None = None) -> InversionResult:
    """Matrix-free solver: K v = H(Q(Hᵀv)) + R v by Jacobi-preconditioned conjugate gradients; DOFS by
    Hutchinson's estimator (``dofs_probes`` Rademacher probes, seeded), with its standard error."""
    opts = options or SolveOptions()
    Q, Hop, R, B, n_obs = prep.Q, prep.Hop, prep.R, prep.B, prep.n_obs
    t = time.perf_counter()
    HQB = hq_of_rows(Q, Hop, B, opts.memory_budget_bytes, _separable_rows(Q, B)) if B is not None else None
    prep.timings["aggregate_HQ"] = time.perf_counter() - t
    t = time.perf_counter()

    def apply_K(V):
        return Hop.matmat(Q.matmat(Hop.rmatmat(V))) + _apply_R(R, V)

    Rdiag = R if R.ndim == 1 else np.diag(R)
    H2 = Hop.csr.multiply(Hop.csr)
    precond = Rdiag + np.asarray(H2 @ Q.diagonal()).ravel()
    info = {"it": 0}

    def solveK(M):
        X, it = pcg_solve(apply_K, M, precond, opts.pcg_tol, opts.pcg_maxiter)
        info["it"] += it
        return X

    w = solveK(prep.d)
    rng = np.random.default_rng(opts.seed)
    Z = rng.choice([-1.0, 1.0], size=(n_obs, opts.dofs_probes))
    S = np.sqrt(R)[:, None] * Z if R.ndim == 1 else np.linalg.cholesky(R) @ Z
    est = np.einsum("ij,ij->j", S, solveK(S))  # zᵀ R½ K⁻¹ R½ z
    dofs = n_obs - float(est.mean())
    n_probe = opts.dofs_probes
    dofs_stderr = float(est.std(ddof=1) / np.sqrt(n_probe)) if n_probe > 1 else float("nan")
    prep.timings["pcg"] = time.perf_counter() - t

    t = time.perf_counter()
    res = _posterior(prep, w, solveK, 1.0)
    if B is not None:
        res.var_post = prep.varB - np.einsum("ij,ij->j", HQB, solveK(HQB))
    prep.timings["posterior"] = time.perf_counter() - t
    return _finish(prep, res, "pcg", dofs, dofs_stderr, info["it"], "", None, 1.0, 1.0)


def _posterior(prep: Prepared, w, solveK, scale_Q: float) -> InversionResult:
    """Posterior mean, modelled observations and aggregates from w = K⁻¹ d (a partial result)."""
    x_post = prep.x_prior + scale_Q * prep.Q.matmat(prep.Hop.rmatvec(w))
    chi2_total = float(prep.d @ w)
    res = InversionResult(
        x_post=x_post, agg_prior_mean=None, agg_post_mean=None, agg_prior_cov=prep.AQA, agg_post_cov=None,
        chi2_reduced=chi2_total / prep.n_obs, dofs=float("nan"), dofs_stderr=0.0, solver="",
        n_obs=prep.n_obs, n_state=prep.n_state, y_prior_model=prep.y_prior_model,
        y_post_model=prep.Hop.matvec(x_post), var_prior=prep.varB, chi2=chi2_total)
    if prep.A is not None:
        res.agg_prior_mean = prep.A @ prep.x_prior
        res.agg_post_mean = prep.A @ x_post
        KiHQA = solveK(prep.HQA)
        cov = prep.AQA - prep.HQA.T @ KiHQA
        res.agg_post_cov = 0.5 * (cov + cov.T)
        if prep.y_ensemble is not None:  # A x̂_k = A x_a + (H Q Aᵀ)ᵀ K⁻¹ (y_k − H x_a), K⁻¹ symmetric
            res.agg_post_mean_ensemble = res.agg_prior_mean[:, None] + KiHQA.T @ (
                prep.y_ensemble - prep.y_prior_model[:, None])
    return res


def _subset_covariances(prep: Prepared, K_full) -> dict | None:
    """{name: A Q̂ Aᵀ} from each observation subset alone (one small Cholesky factorisation each)."""
    if not prep.subsets:
        return None
    out = {}
    for name, idx in prep.subsets.items():
        if idx.size == 0:
            out[name] = prep.AQA.copy()
            continue
        Ls = sla.cholesky(K_full[np.ix_(idx, idx)], lower=True, check_finite=False)
        V = sla.solve_triangular(Ls, prep.HQA[idx], lower=True, check_finite=False)
        cov = prep.AQA - V.T @ V
        out[name] = 0.5 * (cov + cov.T)
    return out


def _finish(prep: Prepared, res: InversionResult, solver, dofs, dofs_stderr, iterations, hqht, hyper,
            scale_Q, scale_R) -> InversionResult:
    res.solver, res.dofs, res.dofs_stderr, res.pcg_iterations, res.hqht = solver, dofs, dofs_stderr, iterations, hqht
    res.hyper, res.scale_Q, res.scale_R = hyper, scale_Q, scale_R
    res.chi2_pvalue = float(stats.chi2.sf(res.chi2, res.n_obs))
    prep.timings["total"] = time.perf_counter() - prep.t0
    res.timings = prep.timings
    log.info("solve: %s, n_obs=%d, n_state=%d, chi2_r=%.3f (p=%.3g), DOFS=%.2f, %.2f s",
             solver, res.n_obs, res.n_state, res.chi2_reduced, res.chi2_pvalue, dofs, prep.timings["total"])
    return res
