"""tools/osse.py truth ensembles on small synthetic problems (issue 18, item 3).

When the truth's transport is the inversion's, truths drawn from the prior and noise drawn from R
make the posterior errors of every aggregate Gaussian with exactly the posterior σ the solve
reports: the shares within 1σ and 2σ must be 68 % and 95 % within binomial error. A posterior σ
wrong by 2× (either way) lies far outside that band, so the check can fail.
"""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from inversion.covariance import KroneckerCovariance

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("osse_tool", ROOT / "tools" / "osse.py")
osse = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(osse)


def _covariance(n_step=3, ny=6, nx=8, L=3.0, tau=12.0, diurnal=1.0, extra=(2.0,), seed=0):
    rng = np.random.default_rng(seed)
    sigma = rng.uniform(0.5, 1.5, (n_step, ny, nx))
    return KroneckerCovariance(sigma, 1.0, 1.2, L, 6, tau, extra_sigma=np.array(extra),
                               diurnal_corr=diurnal, workers=1)


@pytest.mark.parametrize("kw", [{}, {"diurnal": -0.3, "n_step": 4}, {"L": 0.0}, {"tau": 0.0}])
def test_prior_samples_have_the_prior_covariance(kw):
    """Empirical covariance of 20 000 draws equals Q.to_dense() to sampling error (5 s.e.)."""
    Q = _covariance(**{"n_step": 2, "ny": 4, "nx": 5, **kw})
    n = 20000
    X = osse.sample_prior(Q, n, np.random.default_rng(1))
    C = X @ X.T / n
    D = Q.to_dense()
    se = np.sqrt((D**2 + np.outer(np.diag(D), np.diag(D))) / n)  # s.e. of a Gaussian sample covariance
    assert np.max(np.abs(C - D) / se) < 5.5
    if Q.corr_length_km > 0:
        _, clipped = osse.spatial_sqrt_spectrum(Q.ny, Q.nx, Q.dx_km, Q.dy_km, Q.corr_length_km)
        assert clipped < 1e-12  # the exponential kernel's embedding is non-negative here: exact


def _problem(Q, n_obs=25, seed=2):
    """A sparse footprint-like H over the flux steps plus one background-offset column, and
    aggregation rows (two 'districts' and their sum, over every step)."""
    rng = np.random.default_rng(seed)
    Hf = sp.random(n_obs, Q.n_flux, density=0.15, random_state=seed, data_rvs=lambda k: rng.uniform(0.0, 1.0, k)) * 0.3
    H = sp.hstack([Hf, sp.csr_matrix(np.ones((n_obs, Q.n_extra)))], format="csr")
    half = np.zeros((Q.ny, Q.nx))
    half[:, : Q.nx // 2] = 1
    west = np.tile(half.ravel(), Q.n_step)
    A = np.vstack([west, 1 - west, np.ones(Q.n_flux)]) * 3600 * 6
    A = sp.csr_matrix(np.hstack([A, np.zeros((3, Q.n_extra))]))
    obs_err = rng.uniform(0.5, 1.0, n_obs)
    return H, A, obs_err


def test_prior_draw_coverage_matches_68_95_when_transport_is_the_inversions():
    Q = _covariance()
    H, A, obs_err = _problem(Q)
    n = 3000
    err, s_post, s_prior = osse.prior_draw_ensemble(H, H, Q, obs_err, A, n, np.random.default_rng(3))
    assert err.shape == (3, n) and np.all(s_post < s_prior)
    band = 3 * np.sqrt(0.6827 * 0.3173 / n), 3 * np.sqrt(0.9545 * 0.0455 / n)
    cov = osse.coverage(err, s_post)
    np.testing.assert_allclose(cov["within1"], 0.6827, atol=band[0])
    np.testing.assert_allclose(cov["within2"], 0.9545, atol=band[1])
    np.testing.assert_allclose(err.mean(axis=1) / s_post, 0.0, atol=4 / np.sqrt(n))
    # the check has teeth: a σ twice too large or too small is far outside the band
    for wrong in (2.0, 0.5):
        bad = osse.coverage(err, wrong * s_post)
        assert np.all(np.abs(bad["within1"] - 0.6827) > 5 * band[0])


def test_prior_draw_coverage_drops_when_the_truth_has_other_transport():
    """Truth seen through a perturbed H (a transport error the inversion does not know): the
    published σ no longer covers the errors."""
    Q = _covariance()
    H, A, obs_err = _problem(Q)
    rng = np.random.default_rng(4)
    Ht = H.copy()
    Ht.data = Ht.data * np.exp(0.8 * rng.standard_normal(Ht.data.size))  # 80 % log-normal errors
    Ht = Ht.tolil()
    Ht[:, Q.n_flux:] = 1.0  # the background offset is seen as it is
    n = 2000
    err, s_post, _ = osse.prior_draw_ensemble(H, Ht.tocsr(), Q, obs_err, A, n, np.random.default_rng(5))
    cov = osse.coverage(err, s_post)
    assert cov["within1"][2] < 0.6827 - 3 * np.sqrt(0.6827 * 0.3173 / n)


def test_noise_draws_with_a_correlated_R():
    R = np.array([[1.0, 0.5], [0.5, 2.0]])
    E = osse.draw_noise(R, 50000, np.random.default_rng(6))
    np.testing.assert_allclose(E @ E.T / 50000, R, atol=0.05)


def test_binomial_band():
    lo, hi = osse.binomial_band(0.6827, 20)
    assert lo == pytest.approx(0.6827 - 2 * np.sqrt(0.6827 * 0.3173 / 20))
    assert hi == pytest.approx(0.6827 + 2 * np.sqrt(0.6827 * 0.3173 / 20))
