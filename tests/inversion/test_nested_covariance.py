"""Prior covariance of the nested state (inner 1 km cells + coarse outer cells, issue 19) against a
dense NumPy Q built here from its definition: D (Q_t ⊗ blockdiag(Q_in, Q_out|ring)) D, extras."""

import numpy as np
import pytest
import scipy.sparse as sp

from gzcarbon.grid import Grid, NestedGrid
from inversion.covariance import (NestedKroneckerCovariance, exponential_time_corr, grid_spacing_km,
                                  row_variances)
from inversion.screening import hqht_diagonal
from inversion.separable import hq_separable
from inversion.solve import build_hqht, build_hqht_kronecker
from inversion.kernels import SparseOperator


def small_nested():
    """Inner 0.1-degree cells on 113.0-113.6 x 23.0-23.4 inside 0.2-degree outer cells on
    112.6-114.0 x 22.6-23.8 (7 x 6 outer cells, a 3 x 2 hole): 24 inner + 36 outer cells."""
    inner = Grid(113.0, 113.6, 23.0, 23.4, 0.1)
    outer = Grid(112.6, 114.0, 22.6, 23.8, 0.2)
    return NestedGrid(inner, outer)


def dense_reference(ng, sig_in, sig_out, L_in, L_out, step, tau, diurnal, extra):
    """Q written out element by element from the definition (no operator code)."""
    n_step = sig_in.shape[0]
    dx_i, dy_i = grid_spacing_km(ng.inner.lat_edges, ng.inner.lon_edges)
    dx_o, dy_o = grid_spacing_km(ng.outer.lat_edges, ng.outer.lon_edges)
    iy, ix = np.divmod(np.arange(ng.n_inner), ng.inner.nx)
    d_in = np.hypot((iy[:, None] - iy[None]) * dy_i, (ix[:, None] - ix[None]) * dx_i)
    oy, ox = ng.outer_cells()
    d_out = np.hypot((oy[:, None] - oy[None]) * dy_o, (ox[:, None] - ox[None]) * dx_o)
    Qs = np.zeros((ng.n_cells, ng.n_cells))
    Qs[:ng.n_inner, :ng.n_inner] = np.exp(-d_in / L_in)
    Qs[ng.n_inner:, ng.n_inner:] = np.exp(-d_out / L_out)
    per_day = 24 // step
    t = np.arange(n_step)
    slot = t % per_day
    Qt = np.exp(-np.abs(t[:, None] - t[None]) * step / tau) * (diurnal + (1 - diurnal) * (slot[:, None] == slot[None]))
    s = np.concatenate([sig_in.reshape(n_step, -1), sig_out], axis=1).ravel()
    n_flux = s.size
    Q = np.zeros((n_flux + len(extra),) * 2)
    Q[:n_flux, :n_flux] = np.kron(Qt, Qs) * s[:, None] * s[None, :]
    Q[n_flux:, n_flux:] = np.diag(np.asarray(extra) ** 2)
    return Q


def make_Q(ng, rng, n_step=5, L_in=15.0, L_out=60.0, step=6, tau=30.0, diurnal=-0.2, extra=(2.0, 1.5)):
    sig_in = 0.1 + rng.random((n_step, ng.inner.ny, ng.inner.nx))
    sig_out = 0.05 + rng.random((n_step, ng.n_outer))
    dx, dy = grid_spacing_km(ng.inner.lat_edges, ng.inner.lon_edges)
    dxo, dyo = grid_spacing_km(ng.outer.lat_edges, ng.outer.lon_edges)
    Q = NestedKroneckerCovariance(sig_in, dx, dy, L_in, step, tau, sig_out, ng.outer_mask, dxo, dyo, L_out,
                                  extra_sigma=list(extra), diurnal_corr=diurnal)
    Qd = dense_reference(ng, sig_in, sig_out, L_in, L_out, step, tau, diurnal, extra)
    return Q, Qd


def test_small_nested_grid_sizes():
    ng = small_nested()
    assert (ng.n_inner, ng.n_outer, ng.outer.shape) == (24, 36, (6, 7))


def test_nested_Qv_matches_dense_numpy_Q():
    rng = np.random.default_rng(19)
    ng = small_nested()
    Q, Qd = make_Q(ng, rng)
    assert Q.n == Qd.shape[0] == 5 * 60 + 2
    v = rng.normal(size=Q.n)
    V = rng.normal(size=(Q.n, 7))
    scale = np.abs(Qd).max()
    np.testing.assert_allclose(Q.matvec(v), Qd @ v, rtol=0, atol=1e-10 * scale)
    np.testing.assert_allclose(Q.matmat(V, chunk=3), Qd @ V, rtol=0, atol=1e-10 * scale)
    np.testing.assert_allclose(Q.to_dense(), Qd, rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(Q.diagonal(), np.diag(Qd), rtol=1e-14)
    # block-diagonal in space: no inner-outer covariance at any lag
    n_c = ng.n_cells
    blk = Qd[:n_c, n_c:2 * n_c]
    assert np.all(blk[:24, 24:] == 0) and np.all(blk[24:, :24] == 0)
    assert np.linalg.eigvalsh(Qd).min() > 0


def test_nested_structured_builders_match_dense():
    """H Q Hᵀ (structured and chunked), diag(H Q Hᵀ), diag(B Q Bᵀ) and H Q Mᵀ by footprint slices:
    all against the dense reference, with footprints that touch the inner and the outer cells."""
    rng = np.random.default_rng(7)
    ng = small_nested()
    Q, Qd = make_Q(ng, rng)
    n_obs, n_c = 9, ng.n_cells
    H = np.zeros((n_obs, Q.n))
    for i in range(n_obs):  # each footprint: 2 steps back, a few inner and outer cells
        last = 1 + i % 4
        for s in (last - 1, last):
            cells = rng.choice(n_c, size=8, replace=False)
            H[i, s * n_c + cells] = rng.random(8)
        H[i, Q.n_flux + i % 2] = 1.0
    Hs = sp.csr_matrix(H)
    K_ref = H @ Qd @ H.T
    scale = np.abs(K_ref).max()
    np.testing.assert_allclose(build_hqht_kronecker(Q, Hs), K_ref, rtol=0, atol=1e-10 * scale)
    np.testing.assert_allclose(build_hqht(Q, SparseOperator(Hs)), K_ref, rtol=0, atol=1e-10 * scale)
    np.testing.assert_allclose(hqht_diagonal(Q, Hs), np.diag(K_ref), rtol=1e-10)
    B = sp.csr_matrix(rng.random((4, Q.n)) * (rng.random((4, Q.n)) < 0.2))
    np.testing.assert_allclose(row_variances(Q, B), np.diag(B @ Qd @ B.T), rtol=1e-10)
    # separable rows kron(w, W): the outer ring's total and one inner block
    w = rng.random(Q.n_step)
    W = np.zeros((2, n_c))
    W[0, ng.n_inner:] = 1.0
    W[1, :6] = 1.0
    M = np.hstack([np.kron(w[None, :], W), np.zeros((2, Q.n_extra))])
    np.testing.assert_allclose(hq_separable(Q, Hs, w, W), H @ Qd @ M.T, rtol=0, atol=1e-10 * scale)


@pytest.mark.parametrize("tau", [0.0, 30.0])
def test_nested_plain_time_kernels(tau):
    """The Markov (plain exponential, diurnal_corr 1) and time-uncorrelated (tau 0) builders."""
    ng = small_nested()
    rng = np.random.default_rng(3)
    dx, dy = grid_spacing_km(ng.inner.lat_edges, ng.inner.lon_edges)
    dxo, dyo = grid_spacing_km(ng.outer.lat_edges, ng.outer.lon_edges)
    sig_in, sig_out = 0.1 + rng.random((4, 4, 6)), 0.1 + rng.random((4, 36))
    Q = NestedKroneckerCovariance(sig_in, dx, dy, 15.0, 6, tau, sig_out, ng.outer_mask, dxo, dyo, 60.0,
                                  extra_sigma=[2.0])
    Qd = dense_reference(ng, sig_in, sig_out, 15.0, 60.0, 6, tau or 1.0, 1.0, [2.0])
    if tau == 0.0:  # no time correlation: only the same step is correlated
        Qd = Qd * np.kron(np.eye(5), np.ones((60, 60)))[:Qd.shape[0], :Qd.shape[0]]
        Qd[-1, -1] = 4.0
    np.testing.assert_allclose(Q.to_dense(), Qd, rtol=0, atol=1e-12)
    H = sp.random(6, Q.n, density=0.1, random_state=1, format="csr")
    K = H @ Qd @ H.T
    np.testing.assert_allclose(build_hqht_kronecker(Q, H), K, rtol=0, atol=1e-10 * np.abs(K).max())


def test_nested_sigma_outer_shape_is_checked():
    ng = small_nested()
    with pytest.raises(ValueError, match="sigma_outer"):
        NestedKroneckerCovariance(np.ones((2, 4, 6)), 1, 1, 1, 6, 10, np.ones((2, 35)), ng.outer_mask, 2, 2, 5)
    with pytest.raises(ValueError, match="sigma_outer"):
        NestedKroneckerCovariance(np.ones((2, 4, 6)), 1, 1, 1, 6, 10, -np.ones((2, 36)), ng.outer_mask, 2, 2, 5)


def test_time_kernel_is_shared():
    ng = small_nested()
    Q, _ = make_Q(ng, np.random.default_rng(0), n_step=8, step=6, tau=30.0, diurnal=-0.2)
    np.testing.assert_array_equal(Q.Qt, exponential_time_corr(8, 6, 30.0, -0.2))
