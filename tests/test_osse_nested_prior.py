"""tools/osse.py --truth prior on a nested state (issue 19): truths drawn from the nested prior
covariance (inner cells, outer cells outside the hole, offsets) on a small dense problem.

The draws must have the dense Q's covariance, and when the truth is seen through the inversion's
own transport the posterior errors of the district, city and outer-ring totals are Gaussian with
exactly the σ the solve reports: 68 % / 95 % within 1σ / 2σ up to binomial error.
"""

import importlib.util
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from gzcarbon.grid import Grid, NestedGrid
from inversion.covariance import NestedKroneckerCovariance, grid_spacing_km

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("osse_tool_nested", ROOT / "tools" / "osse.py")
osse = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(osse)

#: 0.1-degree inner cells (6 x 4) in 0.2-degree outer cells (7 x 6, a 3 x 2 hole): 24 + 36 cells
NG = NestedGrid(Grid(113.0, 113.6, 23.0, 23.4, 0.1), Grid(112.6, 114.0, 22.6, 23.8, 0.2))


def nested_Q(n_step=2, L_in=15.0, L_out=60.0, tau=30.0, diurnal=1.0, extra=(2.0,), seed=0):
    rng = np.random.default_rng(seed)
    sig_in = 0.1 + rng.random((n_step, NG.inner.ny, NG.inner.nx))
    sig_out = 0.05 + rng.random((n_step, NG.n_outer))
    dx, dy = grid_spacing_km(NG.inner.lat_edges, NG.inner.lon_edges)
    dxo, dyo = grid_spacing_km(NG.outer.lat_edges, NG.outer.lon_edges)
    return NestedKroneckerCovariance(sig_in, dx, dy, L_in, 6, tau, sig_out, NG.outer_mask, dxo, dyo, L_out,
                                     extra_sigma=list(extra), diurnal_corr=diurnal, workers=1)


def test_nested_prior_draws_have_the_dense_covariance():
    """20 000 draws: every element of the empirical covariance (inner, outer, inner-outer zero
    block, time lags, the offset) within 5.5 standard errors of Q.to_dense()."""
    Q = nested_Q()
    n = 20000
    X = osse.sample_prior(Q, n, np.random.default_rng(1))
    assert X.shape == (Q.n, n)
    C = X @ X.T / n
    D = Q.to_dense()
    se = np.sqrt((D**2 + np.outer(np.diag(D), np.diag(D))) / n)
    assert np.max(np.abs(C - D) / se) < 5.5
    # the outer block is not the inner one's: a spatial correlation of 60 km between neighbours
    i, j = NG.n_inner, NG.n_inner + 1  # two adjacent outer cells in the first row
    assert D[i, j] / np.sqrt(D[i, i] * D[j, j]) > 0.6 and abs(C[i, j] / np.sqrt(C[i, i] * C[j, j]) - 0.7) < 0.1


def _problem(Q, n_obs=40, seed=2):
    """Footprint-like H over the nested flux steps (inner and outer columns) + the offset column;
    rows of A: two inner 'districts' (west, east), the city, the outer ring (t-like weights)."""
    rng = np.random.default_rng(seed)
    Hf = sp.random(n_obs, Q.n_flux, density=0.15, random_state=seed, data_rvs=lambda k: rng.uniform(0.0, 1.0, k))
    H = sp.hstack([Hf * 0.3, sp.csr_matrix(np.ones((n_obs, Q.n_extra)))], format="csr")
    west = np.zeros((NG.inner.ny, NG.inner.nx))
    west[:, : NG.inner.nx // 2] = 1
    w = np.concatenate([west.ravel(), np.zeros(NG.n_outer)])
    inner = np.concatenate([np.ones(NG.n_inner), np.zeros(NG.n_outer)])
    rows = np.vstack([w, inner - w, inner, 1.0 - inner])
    A = np.hstack([np.tile(rows, (1, Q.n_step)) * 3600 * 6, np.zeros((4, Q.n_extra))])
    return H, sp.csr_matrix(A), rng.uniform(0.5, 1.0, n_obs)


def test_nested_prior_draw_coverage_is_68_95_for_districts_city_and_ring():
    """3000 truths from the exact nested prior through the inversion's transport: the shares within
    1σ and 2σ of the two districts, the city and the outer ring are 0.6827 / 0.9545 within 3
    binomial standard errors (0.025 / 0.011), the mean error is 0 within 4/√n σ; a σ wrong by 2×
    either way is far outside that band (the check can fail)."""
    Q = nested_Q(n_step=3, diurnal=-0.3)
    H, A, obs_err = _problem(Q)
    n = 3000
    err, s_post, s_prior = osse.prior_draw_ensemble(H, H, Q, obs_err, A, n, np.random.default_rng(3))
    assert err.shape == (4, n) and np.all(s_post < s_prior)
    band = 3 * np.sqrt(0.6827 * 0.3173 / n), 3 * np.sqrt(0.9545 * 0.0455 / n)
    cov = osse.coverage(err, s_post)
    np.testing.assert_allclose(cov["within1"], 0.6827, atol=band[0])
    np.testing.assert_allclose(cov["within2"], 0.9545, atol=band[1])
    np.testing.assert_allclose(err.mean(axis=1) / s_post, 0.0, atol=4 / np.sqrt(n))
    for wrong in (2.0, 0.5):
        assert np.all(np.abs(osse.coverage(err, wrong * s_post)["within1"] - 0.6827) > 5 * band[0])
    # drawing the outer cells from the inner prior's covariance instead (the ring's truth with the
    # wrong σ) breaks the ring's coverage: the test sees the outer block
    Qbad = nested_Q(n_step=3, diurnal=-0.3)
    Qbad.sigma_outer = Qbad.sigma_outer * 3.0
    Qbad._sigma_cells = np.concatenate([Qbad.sigma.reshape(Qbad.n_step, -1), Qbad.sigma_outer], axis=1)
    X = osse.sample_prior(Qbad, n, np.random.default_rng(4))
    assert abs(np.std(np.asarray(A[3] @ X).ravel()) / s_prior[3] - 3.0) < 0.15
