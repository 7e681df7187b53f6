"""Innovation screening (CarbonTracker's practice) and the χ² test of the innovations.

Before the solve, every observation's prior residual (innovation) d_i = y_i − (H x_a)_i (y already
has the background and the prior enhancement removed) is compared with its prior-predicted standard
deviation √((H Q Hᵀ)_ii + R_ii). The daily background offsets are state elements, so their variance
is part of (H Q Hᵀ)_ii; the measurement, mismatch and background σ of ``selected.csv`` are in R_ii.
Observations with |d_i| > k √(…) (``threshold_sigma`` k, default 3) are flagged and, with
``action: exclude`` (default), left out of the solve.

``hqht_diagonal`` computes diag(H Q Hᵀ) exactly without forming H Q Hᵀ or applying Q to whole state
vectors: for a `KroneckerCovariance`, with g_{s,i} = σ_s ∘ h_{s,i} (observation i's footprint slice
on step s scaled by σ),

    (H Q Hᵀ)_ii = Σ_{s,s'} Q_t[s, s'] g_{s,i}ᵀ Q_s g_{s',i}  +  Σ_e H_ie² σ_e²,

so Q_s (FFT) is applied once per footprint slice — a footprint covers the few steps of its
back-trajectory — and only on the bounding box of the row's cells (exact: the slices vanish outside
it). Tested against the dense product.

The χ² of the innovations, dᵀ K⁻¹ d with K = H Q Hᵀ + R, follows a χ² distribution with n_obs degrees
of freedom when Q and R are right; its p-value (upper tail) is reported by `chi2_test`.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy import stats

from .covariance import KroneckerCovariance, SpatialExpCorrFFT

DEFAULT_SCREEN = {"threshold_sigma": 3.0, "action": "exclude", "chi2_p_min": 1e-3}
ACTIONS = ("exclude", "flag", "off")


def screen_settings(inv_cfg: dict | None) -> dict:
    """``inversion.innovation_screen`` with defaults, checked (``action``: exclude | flag | off)."""
    raw = (inv_cfg or {}).get("innovation_screen")
    if hasattr(raw, "model_dump"):  # the typed config (gzcarbon.config.InnovationScreenConfig)
        raw = raw.model_dump()
    out = dict(DEFAULT_SCREEN)
    if raw is not None:
        if not isinstance(raw, dict):
            raise ValueError(f"config inversion.innovation_screen = {raw!r}: must be a mapping "
                             "{threshold_sigma: 3.0, action: exclude|flag|off, chi2_p_min: 0.001}")
        unknown = sorted(set(raw) - set(DEFAULT_SCREEN))
        if unknown:
            raise ValueError(f"config inversion.innovation_screen: unknown key(s) {unknown}; "
                             f"allowed: {sorted(DEFAULT_SCREEN)}")
        out.update(raw)
    if out["action"] is False:  # YAML 1.1 reads a bare `off` as false
        out["action"] = "off"
    out["threshold_sigma"] = float(out["threshold_sigma"])
    out["chi2_p_min"] = float(out["chi2_p_min"])
    out["action"] = str(out["action"])
    if not out["threshold_sigma"] > 0:
        raise ValueError(f"config inversion.innovation_screen.threshold_sigma = {out['threshold_sigma']}: must be > 0")
    if out["action"] not in ACTIONS:
        raise ValueError(f"config inversion.innovation_screen.action = {out['action']!r}; allowed: {list(ACTIONS)}")
    if not 0 <= out["chi2_p_min"] < 1:
        raise ValueError(f"config inversion.innovation_screen.chi2_p_min = {out['chi2_p_min']}: must lie in [0, 1)")
    return out


def hqht_diagonal(Q, H, batch_bytes: float = 2.5e8) -> np.ndarray:
    """diag(H Q Hᵀ), exactly and matrix-free (see module docstring).

    ``Q``: a `KroneckerCovariance`, a dense array, or any operator with ``matmat`` (then Q is applied
    to chunks of columns of Hᵀ: small problems only). ``H``: sparse (n_obs × n_state).
    """
    H = sp.csr_matrix(H, dtype=np.float64)
    if isinstance(Q, KroneckerCovariance):
        return _diag_kronecker(Q, H, batch_bytes)
    if isinstance(Q, np.ndarray) or sp.issparse(Q):
        Qd = Q.toarray() if sp.issparse(Q) else np.asarray(Q, np.float64)
        return np.asarray((H @ Qd) * H.toarray()).sum(axis=1) if H.shape[0] else np.zeros(0)
    if hasattr(Q, "Q"):  # solve's dense wrapper
        return hqht_diagonal(Q.Q, H, batch_bytes)
    out = np.empty(H.shape[0])
    HT = H.T.tocsc()
    step = max(1, int(batch_bytes // (8.0 * max(H.shape[1], 1))))
    for j0 in range(0, H.shape[0], step):
        j1 = min(H.shape[0], j0 + step)
        Z = Q.matmat(HT[:, j0:j1].toarray())
        out[j0:j1] = np.asarray(H[j0:j1].multiply(Z.T).sum(axis=1)).ravel()
    return out


def _round_up(n: int, cap: int, m: int = 8) -> int:
    return int(min(cap, -(-n // m) * m))


def _diag_kronecker(Q: KroneckerCovariance, H: sp.csr_matrix, batch_bytes: float) -> np.ndarray:
    """Row by row: the row's slices on the bounding box of its cells (rounded up to multiples of 8,
    at most the grid), Q_s applied by FFT on that box. Exact — the slices vanish outside the box,
    and (Q_s g)ᵀ g' only needs Q_s g where g' is non-zero — and much cheaper than transforming
    whole-grid planes when footprints are compact. On a nested state (`NestedKroneckerCovariance`)
    Q_s is block-diagonal: the inner cells go through the boxes, the outer cells through the outer
    grid's FFT, and there is no cross term."""
    if H.shape[1] != Q.n:
        raise ValueError(f"hqht_diagonal: H has {H.shape[1]} columns, Q has {Q.n} elements")
    H = H.copy()
    H.sum_duplicates()
    nc, nf = Q.n_cells, Q.n_flux
    n_inner = Q.ny * Q.nx
    out = np.zeros(H.shape[0])
    sig = Q.sigma_cells
    kernels: dict[tuple[int, int], SpatialExpCorrFFT] = {(Q.ny, Q.nx): Q.space}
    indptr, indices, data = H.indptr, H.indices.astype(np.int64, copy=False), H.data
    for i in range(H.shape[0]):
        lo, hi = indptr[i], indptr[i + 1]
        col = indices[lo:hi]
        fl = col < nf
        if not fl.any():
            continue
        step, cell = np.divmod(col[fl], nc)
        val = data[lo:hi][fl] * sig[step, cell]
        inner = cell < n_inner
        if inner.any():
            out[i] = _box_quadratic(Q, kernels, step[inner], cell[inner], val[inner])
        if not inner.all():
            out[i] += _outer_quadratic(Q, step[~inner], cell[~inner] - n_inner, val[~inner])
    if Q.n_extra:
        He = H[:, nf:]
        out += np.asarray(He.multiply(He) @ (Q.extra_sigma**2)).ravel()
    return out


def _box_quadratic(Q: KroneckerCovariance, kernels: dict, step, cell, val) -> float:
    """gᵀ (Q_t ⊗ Q_in) g of one row's inner entries (σ applied), Q_in by FFT on their bounding box."""
    ny, nx = Q.ny, Q.nx
    iy, ix = np.divmod(cell, nx)
    y0, x0 = int(iy.min()), int(ix.min())
    hy, hx = _round_up(int(iy.max()) - y0 + 1, ny), _round_up(int(ix.max()) - x0 + 1, nx)
    y0, x0 = min(y0, ny - hy), min(x0, nx - hx)  # keep the box inside the grid (cache hits)
    st, sl = np.unique(step, return_inverse=True)
    G = np.zeros((st.size, hy, hx))
    G[sl, iy - y0, ix - x0] = val  # (step, cell) pairs are unique after sum_duplicates
    k = kernels.get((hy, hx))
    if k is None:
        k = kernels[(hy, hx)] = SpatialExpCorrFFT(hy, hx, Q.dx_km, Q.dy_km, Q.corr_length_km, Q.space.workers)
    P = k.apply(G).reshape(st.size, -1)
    M = P @ G.reshape(st.size, -1).T  # g_sᵀ Q_s g_s'
    return float(np.sum(Q.Qt[np.ix_(st, st)] * M))


def _outer_quadratic(Q, step, cell, val) -> float:
    """gᵀ (Q_t ⊗ Q_out) g of one row's outer entries (σ applied; ``cell`` counted from the first outer cell)."""
    st, sl = np.unique(step, return_inverse=True)
    G = np.zeros((st.size, Q.n_outer))
    G[sl, cell] = val
    M = Q.outer_space.apply(G) @ G.T
    return float(np.sum(Q.Qt[np.ix_(st, st)] * M))


def innovation_statistics(d, hqht_diag, R) -> tuple[np.ndarray, np.ndarray]:
    """(σ_d, z): the prior-predicted σ of every innovation √((H Q Hᵀ)_ii + R_ii) and z = d / σ_d.

    ``R``: σ vector of the observations (R = diag(σ²)) or the full covariance matrix.
    """
    R = np.asarray(R, np.float64)
    r = R**2 if R.ndim == 1 else np.diag(R)
    s = np.sqrt(np.asarray(hqht_diag, np.float64) + r)
    return s, np.asarray(d, np.float64) / s


def chi2_test(chi2: float, dof: int, p_min: float = DEFAULT_SCREEN["chi2_p_min"]) -> dict:
    """p-values of the innovation χ² = dᵀ K⁻¹ d with ``dof`` = n_obs degrees of freedom.

    ``p_value`` = P(χ²_n ≥ observed) (upper tail: the data disagree with Q and R more than chance
    allows — errors too small, or bad data); ``p_value_lower`` = P(χ²_n ≤ observed) (errors
    over-estimated; the posterior σ are then conservative). ``out_of_range``: p_value < ``p_min``.
    """
    chi2 = float(chi2)
    dof = int(dof)
    p_up = float(stats.chi2.sf(chi2, dof)) if dof > 0 else float("nan")
    p_lo = float(stats.chi2.cdf(chi2, dof)) if dof > 0 else float("nan")
    return {"statistic": "innovation chi2 = d' (H Q H' + R)^-1 d of the observations used, d = y - H x_a",
            "value": chi2, "dof": dof, "reduced": chi2 / dof if dof else float("nan"),
            "p_value": p_up, "p_value_lower": p_lo, "p_min": float(p_min),
            "out_of_range": bool(dof > 0 and p_up < p_min)}
