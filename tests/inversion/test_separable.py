"""H Q Mᵀ by footprint slices for separable aggregation rows (inversion.separable) against dense products."""

import numpy as np
import pytest
import scipy.sparse as sp

from inversion import KroneckerCovariance, SolveOptions, solve
from inversion.separable import hq_separable, separable_flux_rows

NY, NX, NT, NE = 7, 6, 12, 3
NC = NY * NX


def separable_rows(rng, n_rows=5, zero_steps=2):
    w = rng.random(NT) + 0.1
    w[:zero_steps] = 0.0  # spin-up steps outside the period
    W = sp.random(n_rows, NC, density=0.3, random_state=rng, format="csr")
    Me = sp.random(n_rows, NE, density=0.5, random_state=rng, format="csr")
    M = sp.hstack([sp.kron(sp.csr_matrix(w[None, :]), W), Me], format="csr")
    return M, w, W


def footprint_rows(rng, n_obs=25):
    """Rows covering a few consecutive steps each (like back-trajectories), plus extra columns."""
    rows, cols, vals = [], [], []
    for i in range(n_obs):
        last = rng.integers(2, NT)
        for s in range(max(0, last - 3), last + 1):
            cells = rng.choice(NC, 10, replace=False)
            rows += [i] * 10
            cols += list(s * NC + cells)
            vals += list(rng.random(10))
        rows.append(i)
        cols.append(NT * NC + rng.integers(0, NE))
        vals.append(1.0)
    return sp.csr_matrix((vals, (rows, cols)), shape=(n_obs, NT * NC + NE))


@pytest.mark.parametrize("diurnal, tau", [(1.0, 30.0), (0.0, 30.0), (-0.2, 30.0), (1.0, 0.0)])
def test_hq_separable_matches_dense(diurnal, tau):
    rng = np.random.default_rng(3)
    Q = KroneckerCovariance(0.5 + rng.random((NT, NY, NX)), 1.0, 1.1, 2.0, 6.0, tau,
                            extra_sigma=rng.random(NE) + 0.5, diurnal_corr=diurnal)
    H = footprint_rows(rng)
    M, w, W = separable_rows(rng)
    sep = separable_flux_rows(M, NT, NC)
    assert sep is not None
    ref = H @ Q.to_dense() @ M.T.toarray()
    # a tiny batch forces many batches, some splitting an observation's slices from the next one's
    got = hq_separable(Q, H, *sep, M_extra=M[:, Q.n_flux:], batch_bytes=8 * NC * 4 * 3)
    assert np.abs(got - ref).max() <= 1e-12 * np.abs(ref).max()
    got_big = hq_separable(Q, H, *sep, M_extra=M[:, Q.n_flux:])
    assert np.abs(got_big - got).max() <= 1e-13 * np.abs(ref).max()


def test_separable_detection():
    rng = np.random.default_rng(4)
    M, w, W = separable_rows(rng)
    ws, Ws = separable_flux_rows(M, NT, NC)
    rebuilt = sp.kron(sp.csr_matrix(ws[None, :]), Ws).toarray()
    assert np.abs(rebuilt - M[:, :NT * NC].toarray()).max() < 1e-14
    bad = M.tolil()
    bad[0, 5 * NC + int(W[0].indices[0])] *= 1.001  # one entry off by 0.1 %
    assert separable_flux_rows(bad.tocsr(), NT, NC) is None
    extra = M.tolil()
    extra[1, 0 * NC + 3] = 1.0  # an entry on a step whose weight is zero
    assert separable_flux_rows(extra.tocsr(), NT, NC) is None
    # the usual non-separable case: a random sparse matrix
    assert separable_flux_rows(sp.random(4, NT * NC, density=0.2, random_state=1), NT, NC) is None
    # no flux entries at all (rows on the extra elements only) is separable with zero weights
    w0, W0 = separable_flux_rows(sp.hstack([sp.csr_matrix((2, NT * NC)), sp.eye(2)]).tocsr(), NT, NC)
    assert not w0.any() and W0.nnz == 0


@pytest.mark.parametrize("solver", ["cholesky", "pcg"])
def test_solve_with_separable_aggregate_var(solver):
    """The posterior variances of separable rows agree between the slice route and the chunked one."""
    rng = np.random.default_rng(5)
    Q = KroneckerCovariance(0.5 + rng.random((NT, NY, NX)), 1.0, 1.1, 2.0, 6.0, 30.0,
                            extra_sigma=np.full(NE, 1.5), diurnal_corr=-0.2)
    H = footprint_rows(rng, n_obs=15)
    y = rng.normal(size=H.shape[0])
    xa = np.zeros(Q.n)
    B, _, _ = separable_rows(rng, n_rows=30)  # more rows than observations
    A = sp.random(3, Q.n, density=0.3, random_state=rng, format="csr")
    fast = solve(H, y, xa, Q, np.full(H.shape[0], 0.7), aggregate=A, aggregate_var=B, options=SolveOptions(solver=solver, pcg_tol=1e-13))
    ref = solve(H, y, xa, Q.to_dense(), np.full(H.shape[0], 0.7), aggregate=A, aggregate_var=B.toarray(), options=SolveOptions(solver="cholesky"))
    if solver == "cholesky":
        assert fast.hqht == "kronecker"  # chosen because B is separable, although n_B > n_obs
    assert np.abs(fast.var_post - ref.var_post).max() <= 1e-9 * np.abs(ref.var_post).max()
    assert np.abs(fast.x_post - ref.x_post).max() <= 1e-8 * np.abs(ref.x_post).max()
