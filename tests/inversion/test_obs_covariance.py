"""R with the model-data mismatch correlated in time within each site."""

import numpy as np
import pandas as pd
import scipy.sparse as sp

from inversion import solve
from inversion.state import obs_error_covariance


def test_structure_of_correlated_R():
    sites = np.array(["NST", "NST", "NST", "YXU"])
    times = pd.to_datetime(["2025-01-01T04", "2025-01-01T05", "2025-01-01T09", "2025-01-01T05"])
    s = np.array([0.1, 0.2, 0.1, 0.3])
    m = np.array([1.0, 2.0, 1.5, 1.2])
    R = obs_error_covariance(sites, times, s, m, corr_hours=5.0)
    np.testing.assert_allclose(np.diag(R), s**2 + m**2, rtol=1e-15)
    np.testing.assert_allclose(R[0, 1], 1.0 * 2.0 * np.exp(-1 / 5), rtol=1e-15)
    np.testing.assert_allclose(R[0, 2], 1.0 * 1.5 * np.exp(-5 / 5), rtol=1e-15)
    assert R[1, 3] == 0 and R[3, 0] == 0  # other site: uncorrelated
    np.testing.assert_allclose(R, R.T)
    assert np.linalg.eigvalsh(R).min() > 0
    # a very short correlation time gives back the diagonal R
    R0 = obs_error_covariance(sites, times, s, m, corr_hours=1e-6)
    np.testing.assert_allclose(R0, np.diag(s**2 + m**2), atol=1e-300)


def test_solve_with_correlated_R_matches_dense_reference():
    rng = np.random.default_rng(3)
    n_obs, n = 12, 30
    H = sp.random(n_obs, n, density=0.4, random_state=4, format="csr")
    Q = np.exp(-np.abs(np.subtract.outer(np.arange(n), np.arange(n))) / 4.0) * 0.5
    sites = np.repeat(["A", "B", "C"], 4)
    times = pd.date_range("2025-01-01T04", periods=4, freq="h").append(
        pd.date_range("2025-01-01T04", periods=4, freq="h")).append(
        pd.date_range("2025-01-01T04", periods=4, freq="h"))
    R = obs_error_covariance(sites, times, np.full(n_obs, 0.2), np.full(n_obs, 1.0), 3.0)
    y = rng.normal(size=n_obs)
    xa = np.zeros(n)
    res = solve(H, y, xa, Q, R)
    Hd = H.toarray()
    G = Q @ Hd.T @ np.linalg.inv(Hd @ Q @ Hd.T + R)
    np.testing.assert_allclose(res.x_post, xa + G @ (y - Hd @ xa), rtol=1e-8, atol=1e-12)
    res_diag = solve(H, y, xa, Q, np.sqrt(np.diag(R)))
    assert np.abs(res.x_post - res_diag.x_post).max() > 1e-3  # the correlation matters
