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

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
from scipy import stats

from .covariance import KroneckerCovariance, row_variances, steps_per_day
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


def _check_inputs(H, y, x_prior, prior_cov, obs_err, aggregate, aggregate_var, check_pd):
    if not sp.issparse(H):
        if isinstance(H, np.ndarray) and H.ndim == 2:
            H = sp.csr_matrix(H)
        else:
            raise TypeError("solve: argument 'H' must be a scipy.sparse matrix (n_obs × n_state)")
    n_obs, n_state = H.shape
    if n_obs == 0 or n_state == 0:
        raise ValueError(f"solve: argument 'H' has shape {H.shape}; need at least one observation and state element")
    H = sp.csr_matrix(H, dtype=np.float64)
    if not np.all(np.isfinite(H.data)):
        raise ValueError(f"solve: argument 'H' contains {int((~np.isfinite(H.data)).sum())} NaN/inf entries")

    y = np.asarray(y, dtype=np.float64)
    if y.shape != (n_obs,):
        raise ValueError(f"solve: argument 'y' has shape {y.shape}, expected ({n_obs},) = rows of H")
    if not np.all(np.isfinite(y)):
        raise ValueError(f"solve: argument 'y' contains {int((~np.isfinite(y)).sum())} NaN/inf values")

    x_prior = np.asarray(x_prior, dtype=np.float64)
    if x_prior.shape != (n_state,):
        raise ValueError(f"solve: argument 'x_prior' has shape {x_prior.shape}, expected ({n_state},) = columns of H")
    if not np.all(np.isfinite(x_prior)):
        raise ValueError("solve: argument 'x_prior' contains NaN/inf values")

    if isinstance(prior_cov, KroneckerCovariance):
        if prior_cov.n != n_state:
            raise ValueError(f"solve: argument 'prior_cov' has {prior_cov.n} state elements, H has {n_state} columns")
        Q = prior_cov
    else:
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
        Q = _DenseCov(Qd)

    R = np.asarray(obs_err.toarray() if sp.issparse(obs_err) else obs_err, dtype=np.float64)
    if R.ndim == 1:
        if R.shape != (n_obs,):
            raise ValueError(f"solve: argument 'obs_err' (σ vector) has shape {R.shape}, expected ({n_obs},)")
        if not np.all(np.isfinite(R)) or np.any(R <= 0):
            raise ValueError("solve: argument 'obs_err' must hold finite σ > 0 for every observation")
        R = R**2  # variances
    elif R.ndim == 2:
        if R.shape != (n_obs, n_obs):
            raise ValueError(f"solve: argument 'obs_err' (matrix) has shape {R.shape}, expected ({n_obs}, {n_obs})")
        if not np.all(np.isfinite(R)) or not np.allclose(R, R.T):
            raise ValueError("solve: argument 'obs_err' matrix must be finite and symmetric")
        try:
            np.linalg.cholesky(R)
        except np.linalg.LinAlgError:
            raise ValueError("solve: argument 'obs_err' matrix is not positive definite") from None
    else:
        raise ValueError("solve: argument 'obs_err' must be a vector of σ or an (n_obs × n_obs) covariance matrix")

    def _agg(A, name):
        if A is None:
            return None
        A = sp.csr_matrix(A, dtype=np.float64) if sp.issparse(A) else sp.csr_matrix(np.atleast_2d(np.asarray(A, np.float64)))
        if A.shape[1] != n_state:
            raise ValueError(f"solve: argument '{name}' has {A.shape[1]} columns, expected n_state = {n_state}")
        if not np.all(np.isfinite(A.data)):
            raise ValueError(f"solve: argument '{name}' contains NaN/inf values")
        return A

    return H, y, x_prior, Q, R, _agg(aggregate, "aggregate"), _agg(aggregate_var, "aggregate_var")


# ------------------------------------------------------------------------------------------------
# building blocks
# ------------------------------------------------------------------------------------------------
def _subset_index(v, n_obs: int, name) -> np.ndarray:
    """Indices of an observation subset given as indices or a boolean mask (option obs_subsets)."""
    v = np.asarray(v)
    if v.dtype == bool:
        if v.shape != (n_obs,):
            raise ValueError(f"solve: obs_subsets[{name!r}] is a boolean mask of shape {v.shape}, expected ({n_obs},)")
        return np.flatnonzero(v)
    if v.size and (v.dtype.kind not in "iu" or v.min() < 0 or v.max() >= n_obs):
        raise ValueError(f"solve: obs_subsets[{name!r}] must hold observation indices in [0, {n_obs})")
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


def _hq_of_rows(Q, Hop: SparseOperator, B: sp.csr_matrix, budget, separable=None):
    """H Q Bᵀ (n_obs × n_rows): by footprint slices when B is separable (`inversion.separable`),
    else by chunks of rows of B (Q applied to each row)."""
    if separable is not None:
        w, W, B_extra = separable
        return hq_separable(Q, Hop.csr, w, W, B_extra)
    n_b = B.shape[0]
    HQB = np.empty((Hop.shape[0], n_b))
    Bt = B.T.tocsc()
    step = _chunk_size(B.shape[1], budget)
    for j0 in range(0, n_b, step):
        j1 = min(n_b, j0 + step)
        HQB[:, j0:j1] = Hop.matmat(Q.matmat(Bt[:, j0:j1].toarray()))
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
    for j0 in range(0, n_obs, step):
        j1 = min(n_obs, j0 + step)
        Z = Q.matmat(HT[:, j0:j1].toarray())
        K[:, j0:j1] = Hop.matmat(Z)
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
    workers = Q.space.workers

    def plain(sigma, step_hours):
        return KroneckerCovariance(sigma, Q.dx_km, Q.dy_km, Q.corr_length_km, step_hours, Q.corr_time_hours,
                                   workers=workers)

    Hf = sp.coo_matrix(H[:, :nf])
    K = c * build_hqht_kronecker(plain(Q.sigma, Q.step_hours), Hf.tocsr()) if c != 0 else np.zeros((H.shape[0],) * 2)
    step, cell = np.divmod(Hf.col.astype(np.int64), nc)
    for k in range(per_day):
        steps = np.arange(k, Q.n_step, per_day)
        on = step % per_day == k
        if steps.size == 0 or not on.any():
            continue
        Hk = sp.csr_matrix((Hf.data[on], (Hf.row[on], (step[on] // per_day) * nc + cell[on])),
                           shape=(H.shape[0], steps.size * nc))
        K += (1.0 - c) * build_hqht_kronecker(plain(Q.sigma[steps], Q.step_hours * per_day), Hk)
    if Q.n_extra:
        He = H[:, nf:]
        K += (He @ sp.diags(Q.extra_sigma**2) @ He.T).toarray()
    return 0.5 * (K + K.T)


def _hqht_kronecker_sorted(Q: KroneckerCovariance, H: sp.csr_matrix, row_block: int = 512) -> np.ndarray:
    """`build_hqht_kronecker` on rows already sorted by their first step (sorted, summed CSR)."""
    n_obs = H.shape[0]
    nc, nf, ny, nx = Q.n_cells, Q.n_flux, Q.ny, Q.nx
    rho = 0.0 if Q.corr_time_hours <= 0 else float(np.exp(-Q.step_hours / Q.corr_time_hours))
    sig = Q.sigma.reshape(Q.n_step, nc)
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
        t_start = time.perf_counter()
        for t in range(t_lo, t_hi + 1):
            if (t - t_lo) % 50 == 49:
                log.info("H Q Ht (structured): step %d/%d, %.1f s", t - t_lo + 1, t_hi - t_lo + 1,
                         time.perf_counter() - t_start)
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
            W = Q.space.apply(G.reshape(-1, ny, nx)).reshape(-1, nc)
            P[J] += W
            N[J] += np.power(rho, t - first[J])[:, None] * G
            D0[np.ix_(J, J)] += G @ W.T
            I = np.flatnonzero(has & (first <= t) & (last >= t - wmax + 1))
            blk = G @ P[I].T
            blk *= np.power(rho, np.maximum(0, t - last[I]))[None, :]
            blk *= last[I][None, :] >= first[J][:, None]  # near pairs only
            L[np.ix_(J, I)] += blk
        # far pairs (first_i > last_j): rows are sorted by first, and last_j >= first_j, so the
        # columns of a block of rows lie in the prefix of rows with first_j < max first of the block
        G = W = None  # free the last step's work arrays
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
        K = L + L.T - D0
    if Q.n_extra:
        He = H[:, nf:]
        K += (He @ sp.diags(Q.extra_sigma**2) @ He.T).toarray()
    return 0.5 * (K + K.T)


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
    for it in range(1, maxiter + 1):
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
# public entry point
# ------------------------------------------------------------------------------------------------
def solve(H, y, x_prior, prior_cov, obs_err, aggregate=None, **options) -> InversionResult:
    """Analytical Bayesian inversion (see module docstring).

    Parameters
    ----------
    H : scipy.sparse (n_obs × n_state)
    y, x_prior : vectors (n_obs,), (n_state,)
    prior_cov : dense (n_state × n_state) array or `KroneckerCovariance`
    obs_err : vector of σ (n_obs,) or covariance matrix (n_obs × n_obs)
    aggregate : (n_agg × n_state) sparse or dense, optional — full posterior covariance of A x
    **options :
        solver ("auto" | "cholesky" | "pcg"), max_dense_obs (20000), aggregate_var (matrix whose rows
        get prior/posterior variances only, e.g. coarse blocks), pcg_tol (1e-10), pcg_maxiter (2000),
        dofs_probes (64), seed (0), memory_budget_bytes (1.5e9), check_pd (True), hqht ("auto" |
        "chunks" | "kronecker": how the Cholesky solver forms H Q Hᵀ; "kronecker" = `build_hqht_kronecker`,
        chosen automatically for a KroneckerCovariance when n_obs exceeds the rows of ``aggregate_var`` or
        when those rows are time weights ⊗ spatial rows, whose H Q Bᵀ then comes from footprint slices,
        `inversion.separable`),
        tune (False | True | "ml" | "chi2": scale Q and R from the data before solving, see
        `inversion.hyper`; True = "ml"; Cholesky solver only), y_ensemble (n_obs × k: further data
        vectors, e.g. noise draws of an OSSE, whose aggregated posterior means A x̂_k are returned in
        ``agg_post_mean_ensemble``; they share K, so k members cost little more than one solve),
        obs_subsets ({name: indices or boolean mask of observations}: the exact posterior covariance of
        A that each subset of the observations alone would give, from the same H Q Hᵀ and H Q Aᵀ —
        one small Cholesky factorisation per subset; returned in ``agg_post_cov_subsets``; Cholesky
        solver only; for observing-system design, e.g. each station left out).
    """
    t0 = time.perf_counter()
    solver = options.pop("solver", "auto")
    max_dense_obs = int(options.pop("max_dense_obs", 20000))
    aggregate_var = options.pop("aggregate_var", None)
    tol = float(options.pop("pcg_tol", 1e-10))
    maxiter = int(options.pop("pcg_maxiter", 2000))
    n_probe = int(options.pop("dofs_probes", 64))
    seed = int(options.pop("seed", 0))
    budget = float(options.pop("memory_budget_bytes", 1.5e9))
    check_pd = bool(options.pop("check_pd", True))
    hqht = options.pop("hqht", "auto")
    tune = options.pop("tune", False)
    y_ens = options.pop("y_ensemble", None)
    subsets = options.pop("obs_subsets", None)
    if tune is True:
        tune = "ml"
    if tune not in (False, None, "ml", "chi2"):
        raise ValueError(f"solve: option tune={tune!r}; allowed: False, True, 'ml', 'chi2'")
    if hqht not in ("auto", "chunks", "kronecker"):
        raise ValueError(f"solve: option hqht={hqht!r}; allowed: 'auto', 'chunks', 'kronecker'")
    if options:
        raise TypeError(f"solve: unknown option(s) {sorted(options)}")
    if solver not in ("auto", "cholesky", "pcg"):
        raise ValueError(f"solve: option solver={solver!r}; allowed: 'auto', 'cholesky', 'pcg'")

    H, y, x_prior, Q, R, A, B = _check_inputs(H, y, x_prior, prior_cov, obs_err, aggregate, aggregate_var, check_pd)
    n_obs, n_state = H.shape
    if y_ens is not None:
        y_ens = np.asarray(y_ens, dtype=np.float64)
        if y_ens.ndim != 2 or y_ens.shape[0] != n_obs or not np.all(np.isfinite(y_ens)):
            raise ValueError(f"solve: option 'y_ensemble' must be a finite (n_obs={n_obs} × k) array, got shape {y_ens.shape}")
        if A is None:
            raise ValueError("solve: option 'y_ensemble' needs 'aggregate' (its result is A x̂ per member)")
    if solver == "auto":
        solver = "cholesky" if n_obs <= max_dense_obs else "pcg"
    if subsets is not None:
        if A is None:
            raise ValueError("solve: option 'obs_subsets' needs 'aggregate' (its result is a covariance of A x)")
        subsets = {str(k): _subset_index(v, n_obs, k) for k, v in dict(subsets).items()}
        if solver != "cholesky":
            raise ValueError("solve: option 'obs_subsets' needs the explicit H Q Hᵀ of the Cholesky solver "
                             f"(n_obs = {n_obs} > max_dense_obs or solver='pcg')")
    if tune and solver != "cholesky":
        raise ValueError(f"solve: option tune={tune!r} needs the explicit H Q Hᵀ of the Cholesky solver "
                         f"(n_obs = {n_obs} > max_dense_obs or solver='pcg'); raise max_dense_obs or drop tune")
    timings = {"checks": time.perf_counter() - t0}

    t = time.perf_counter()
    Hop = SparseOperator(H)
    y_prior_model = Hop.matvec(x_prior)
    d = y - y_prior_model
    timings["setup"] = time.perf_counter() - t

    # prior covariance of the aggregates and H Q Aᵀ (both solvers)
    t = time.perf_counter()
    AQA, HQA = _quad_full(Q, Hop, A, budget) if A is not None else (None, None)
    varB = _quad_diag(Q, B, budget) if B is not None else None
    timings["aggregate_prior"] = time.perf_counter() - t

    dofs_stderr = 0.0
    iterations = 0
    hyper, scale_Q, scale_R = None, 1.0, 1.0
    if solver == "cholesky":
        t = time.perf_counter()
        n_side = B.shape[0] if B is not None else 0
        sepB = _separable_rows(Q, B)
        if hqht == "auto":  # chunks: H Q Bᵀ comes from the same Q applications as K (cheap while n_obs is small)
            hqht = ("kronecker" if isinstance(Q, KroneckerCovariance) and (n_obs > n_side or sepB is not None)
                    else "chunks")
        if hqht == "kronecker":
            if not isinstance(Q, KroneckerCovariance):
                raise ValueError("solve: option hqht='kronecker' needs prior_cov to be a KroneckerCovariance")
            K = build_hqht_kronecker(Q, Hop.csr)
            timings["build_HQHt"] = time.perf_counter() - t
            t = time.perf_counter()
            HQB = _hq_of_rows(Q, Hop, B, budget, sepB) if B is not None else None
            timings["aggregate_HQ"] = time.perf_counter() - t
        else:
            K, *MQH = build_hqht(Q, Hop, budget, side=[B] if B is not None else [])
            HQB = MQH[0].T if B is not None else None
            timings["build_HQHt"] = time.perf_counter() - t

        if tune:
            t = time.perf_counter()
            hp = tune_scaling(K, R, d, method=tune)
            hyper, scale_Q, scale_R = hp.as_dict(), hp.scale_Q, hp.scale_R
            K *= scale_Q
            R = R * scale_R
            if A is not None:
                AQA, HQA = AQA * scale_Q, HQA * scale_Q
            if B is not None:
                varB, HQB = varB * scale_Q, HQB * scale_Q
            timings["tune"] = time.perf_counter() - t

        t = time.perf_counter()
        K += np.diag(R) if R.ndim == 1 else R
        K_subsets = K.copy() if subsets else None  # the factorisation below overwrites K
        try:
            cf = sla.cho_factor(K, lower=True, overwrite_a=True, check_finite=False)
        except np.linalg.LinAlgError:
            raise ValueError("solve: H Q Hᵀ + R is not positive definite; check 'prior_cov' and 'obs_err'") from None
        w = sla.cho_solve(cf, d, check_finite=False)
        L = np.tril(cf[0])
        Linv = sla.solve_triangular(L, np.eye(n_obs), lower=True, check_finite=False)
        if R.ndim == 1:
            # (K⁻¹)_ii = Σ_k (L⁻¹)_ki²  since K⁻¹ = L⁻ᵀ L⁻¹
            dofs = n_obs - float(np.sum((Linv**2).sum(axis=0) * R))
        else:
            Kinv = Linv.T @ Linv
            dofs = n_obs - float(np.sum(Kinv * R))
        solveK = lambda M: sla.cho_solve(cf, M, check_finite=False)  # noqa: E731
        timings["factor"] = time.perf_counter() - t
    else:
        t = time.perf_counter()
        HQB = _hq_of_rows(Q, Hop, B, budget, _separable_rows(Q, B)) if B is not None else None
        timings["aggregate_HQ"] = time.perf_counter() - t
        t = time.perf_counter()

        def apply_K(V):
            return Hop.matmat(Q.matmat(Hop.rmatmat(V))) + _apply_R(R, V)

        Rdiag = R if R.ndim == 1 else np.diag(R)
        H2 = Hop.csr.multiply(Hop.csr)
        precond = Rdiag + np.asarray(H2 @ Q.diagonal()).ravel()
        info = {"it": 0}

        def solveK(M):
            X, it = pcg_solve(apply_K, M, precond, tol, maxiter)
            info["it"] += it
            return X

        w = solveK(d)
        rng = np.random.default_rng(seed)
        Z = rng.choice([-1.0, 1.0], size=(n_obs, n_probe))
        if R.ndim == 1:
            S = np.sqrt(R)[:, None] * Z
        else:
            S = np.linalg.cholesky(R) @ Z
        est = np.einsum("ij,ij->j", S, solveK(S))  # zᵀ R½ K⁻¹ R½ z
        dofs = n_obs - float(est.mean())
        dofs_stderr = float(est.std(ddof=1) / np.sqrt(n_probe)) if n_probe > 1 else float("nan")
        iterations = info["it"]
        timings["pcg"] = time.perf_counter() - t

    t = time.perf_counter()
    x_post = x_prior + scale_Q * Q.matmat(Hop.rmatvec(w))
    y_post_model = Hop.matvec(x_post)
    chi2_total = float(d @ w)
    chi2 = chi2_total / n_obs
    agg_prior_mean = agg_post_mean = agg_post_cov = agg_ens = None
    if A is not None:
        agg_prior_mean = A @ x_prior
        agg_post_mean = A @ x_post
        KiHQA = solveK(HQA)
        agg_post_cov = AQA - HQA.T @ KiHQA
        agg_post_cov = 0.5 * (agg_post_cov + agg_post_cov.T)
        if y_ens is not None:  # A x̂_k = A x_a + (H Q Aᵀ)ᵀ K⁻¹ (y_k − H x_a), K⁻¹ symmetric
            agg_ens = agg_prior_mean[:, None] + KiHQA.T @ (y_ens - y_prior_model[:, None])
    agg_cov_subsets = None
    if subsets:
        agg_cov_subsets = {}
        for name, idx in subsets.items():
            if idx.size == 0:
                agg_cov_subsets[name] = AQA.copy()
                continue
            Ls = sla.cholesky(K_subsets[np.ix_(idx, idx)], lower=True, check_finite=False)
            V = sla.solve_triangular(Ls, HQA[idx], lower=True, check_finite=False)
            cov = AQA - V.T @ V
            agg_cov_subsets[name] = 0.5 * (cov + cov.T)
        K_subsets = None
    var_post = None
    if B is not None:
        if solver == "cholesky":
            V = sla.solve_triangular(L, HQB, lower=True, check_finite=False)
            var_post = varB - (V**2).sum(axis=0)
        else:
            var_post = varB - np.einsum("ij,ij->j", HQB, solveK(HQB))
    if solver == "pcg":
        iterations = info["it"]
    timings["posterior"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    log.info("solve: %s, n_obs=%d, n_state=%d, chi2_r=%.3f (p=%.3g), DOFS=%.2f, %.2f s",
             solver, n_obs, n_state, chi2, float(stats.chi2.sf(chi2_total, n_obs)), dofs, timings["total"])
    return InversionResult(
        x_post=x_post, agg_prior_mean=agg_prior_mean, agg_post_mean=agg_post_mean,
        agg_prior_cov=AQA, agg_post_cov=agg_post_cov, chi2_reduced=chi2, dofs=dofs,
        dofs_stderr=dofs_stderr, solver=solver, n_obs=n_obs, n_state=n_state,
        y_prior_model=y_prior_model, y_post_model=y_post_model, var_prior=varB, var_post=var_post,
        timings=timings, pcg_iterations=iterations, hqht=hqht if solver == "cholesky" else "",
        hyper=hyper, scale_Q=scale_Q, scale_R=scale_R, agg_post_mean_ensemble=agg_ens,
        agg_post_cov_subsets=agg_cov_subsets, chi2=chi2_total,
        chi2_pvalue=float(stats.chi2.sf(chi2_total, n_obs)),
    )
