"""Hyperparameter scaling of Q and R (inversion/hyper.py and solve(..., options=SolveOptions(tune=...)))."""

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.stats import multivariate_normal

from inversion import KroneckerCovariance, SolveOptions, solve
from inversion.hyper import WhitenedSpectrum, tune_scaling


def _spd(rng, n, cond=30.0):
    U, _ = np.linalg.qr(rng.normal(size=(n, n)))
    return (U * np.linspace(1.0, cond, n)) @ U.T


@pytest.mark.parametrize("full_R", [False, True])
def test_loglik_and_chi2_match_dense_gaussian(full_R):
    rng = np.random.default_rng(0)
    n = 40
    G = rng.normal(size=(n, 15))
    HQHt = G @ G.T
    R = _spd(rng, n) * 0.3 if full_R else rng.uniform(0.2, 2.0, n)
    Rm = R if full_R else np.diag(R)
    d = rng.normal(size=n) * 2
    ws = WhitenedSpectrum(HQHt, R, d)
    for a, b in ((1.0, 1.0), (2.5, 0.3), (0.1, 7.0)):
        K = a * HQHt + b * Rm
        assert ws.loglik(a, b) == pytest.approx(multivariate_normal(np.zeros(n), K).logpdf(d), rel=1e-10)
        assert ws.chi2_reduced(a, b) == pytest.approx(d @ np.linalg.solve(K, d) / n, rel=1e-10)


def test_ml_recovers_known_scales_and_calibrates_chi2():
    rng = np.random.default_rng(1)
    n, m = 1000, 250
    Hd = rng.normal(size=(n, m)) / np.sqrt(m)
    HQHt = Hd @ Hd.T * 4.0
    R = rng.uniform(0.5, 1.5, n)
    a_true, b_true = 3.0, 0.4
    K = a_true * HQHt + b_true * np.diag(R)
    d = np.linalg.cholesky(K) @ rng.normal(size=n)
    hp = tune_scaling(HQHt, R, d, "ml")
    assert hp.scale_Q == pytest.approx(a_true, rel=0.3)
    assert hp.scale_R == pytest.approx(b_true, rel=0.15)
    # the reported 1-sigma of the log-scales covers the truth (3 sigma) and is small (many obs)
    assert abs(np.log(hp.scale_Q / a_true)) < 3 * hp.log_scale_Q_sd < 0.5
    assert abs(np.log(hp.scale_R / b_true)) < 3 * hp.log_scale_R_sd < 0.3
    assert hp.chi2_reduced_after == pytest.approx(1.0, abs=1e-5)  # ML optimum is chi2-calibrated
    assert hp.loglik_after > hp.loglik_before
    # chi2 method: Q kept, R scaled so that chi2_r = 1 exactly
    hc = tune_scaling(HQHt, R, d, "chi2")
    assert hc.scale_Q == 1.0 and hc.chi2_reduced_after == pytest.approx(1.0, abs=1e-9)
    assert (hc.chi2_reduced_before > 1.0) == (hc.scale_R > 1.0) and hc.loglik_after != hc.loglik_before


def _small_problem(seed=2, n_obs=60):
    rng = np.random.default_rng(seed)
    ns, ny, nx = 4, 5, 6
    Q = KroneckerCovariance(0.5 + rng.random((ns, ny, nx)), 1.0, 1.1, 2.5, 3.0, 6.0, extra_sigma=np.array([1.0]))
    H = sp.random(n_obs, Q.n, density=0.15, random_state=rng, format="csr")
    x_true = np.linalg.cholesky(Q.to_dense() * 0.2 + 1e-12 * np.eye(Q.n)) @ rng.normal(size=Q.n)
    sig = np.full(n_obs, 0.8)
    y = H @ x_true + rng.normal(size=n_obs) * 0.3  # R and Q both too large: chi2_r << 1
    A = sp.csr_matrix(rng.random((3, Q.n)))
    return H, y, Q, sig, A


@pytest.mark.parametrize("method", ["ml", "chi2"])
def test_tuned_solve_equals_solve_with_scaled_covariances(method):
    H, y, Q, sig, A = _small_problem()
    x_a = np.zeros(Q.n)
    res = solve(H, y, x_a, Q, sig, aggregate=A, options=SolveOptions(tune=method, hqht="kronecker"))
    a, b = res.scale_Q, res.scale_R
    assert res.hyper["method"] == method and res.hyper["chi2_reduced_before"] < 0.5
    assert res.chi2_reduced == pytest.approx(res.hyper["chi2_reduced_after"], rel=1e-10)
    Qs = KroneckerCovariance(Q.sigma * np.sqrt(a), Q.dx_km, Q.dy_km, Q.corr_length_km, Q.step_hours,
                             Q.corr_time_hours, extra_sigma=Q.extra_sigma * np.sqrt(a))
    ref = solve(H, y, x_a, Qs.to_dense(), sig * np.sqrt(b), aggregate=A)
    np.testing.assert_allclose(res.x_post, ref.x_post, rtol=1e-9, atol=1e-12 * np.abs(ref.x_post).max())
    np.testing.assert_allclose(res.agg_post_cov, ref.agg_post_cov, rtol=1e-9)
    np.testing.assert_allclose(res.agg_prior_cov, ref.agg_prior_cov, rtol=1e-12)
    assert res.dofs == pytest.approx(ref.dofs, rel=1e-10)
    assert res.chi2_reduced == pytest.approx(ref.chi2_reduced, rel=1e-10)


def test_tune_needs_cholesky_solver():
    H, y, Q, sig, A = _small_problem()
    with pytest.raises(ValueError, match="tune"):
        solve(H, y, np.zeros(Q.n), Q, sig, options=SolveOptions(solver="pcg", tune=True))
    with pytest.raises(ValueError, match="tune"):
        solve(H, y, np.zeros(Q.n), Q, sig, options=SolveOptions(tune="maybe"))
