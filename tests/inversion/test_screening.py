"""Innovation screening: exact diag(H Q Hᵀ), the χ² p-value, and the exclusion of a gross outlier."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy import stats

from inversion import KroneckerCovariance, SolveOptions, solve
from inversion.screening import chi2_test, hqht_diagonal, innovation_statistics, screen_settings

NT, NY, NX = 6, 7, 8


def footprint_H(rng, n_obs=30, n_extra=3, width=3, density=0.4):
    """Rows like footprints: a few consecutive steps each, plus a background (extra) column."""
    nc = NY * NX
    n_flux = NT * nc
    H = sp.lil_matrix((n_obs, n_flux + n_extra))
    for i in range(n_obs):
        t0 = rng.integers(0, NT - width + 1)
        for t in range(t0, t0 + width):
            cells = np.flatnonzero(rng.random(nc) < density)
            H[i, t * nc + cells] = rng.random(cells.size) * 0.5
        H[i, n_flux + rng.integers(0, n_extra)] = 1.0
    return H.tocsr()


@pytest.mark.parametrize("diurnal,tau,L", [(1.0, 30.0, 2.5), (-0.3, 720.0, 2.5), (0.0, 0.0, 0.0)])
def test_hqht_diagonal_matches_dense(diurnal, tau, L):
    rng = np.random.default_rng(3)
    Q = KroneckerCovariance(0.3 + rng.random((NT, NY, NX)), 1.02, 1.1, L, 6.0, tau,
                            extra_sigma=np.array([2.0, 1.5, 0.7]), diurnal_corr=diurnal)
    H = footprint_H(rng)
    ref = np.diag(H.toarray() @ Q.to_dense() @ H.toarray().T)
    got = hqht_diagonal(Q, H, batch_bytes=20000)  # several batches
    assert np.max(np.abs(got - ref)) / ref.max() < 1e-12
    # the dense branch and the generic (matmat) branch agree too
    assert np.allclose(hqht_diagonal(Q.to_dense(), H), ref, rtol=1e-12)

    class Op:
        def matmat(self, V):
            return Q.matmat(V)
    assert np.allclose(hqht_diagonal(Op(), H, batch_bytes=8 * H.shape[1] * 7), ref, rtol=1e-12)


def test_hqht_diagonal_empty_rows():
    rng = np.random.default_rng(0)
    Q = KroneckerCovariance(0.3 + rng.random((NT, NY, NX)), 1.0, 1.0, 2.0, 6.0, 24.0, extra_sigma=np.ones(3))
    H = footprint_H(rng, n_obs=5).tolil()
    H[2, :] = 0
    H = H.tocsr()
    H.eliminate_zeros()
    got = hqht_diagonal(Q, H)
    assert got[2] == 0.0
    assert np.allclose(got, np.diag(H.toarray() @ Q.to_dense() @ H.toarray().T), rtol=1e-12)


def test_chi2_pvalue_matches_scipy_on_dense_quadratic_form():
    rng = np.random.default_rng(5)
    Q = KroneckerCovariance(0.3 + rng.random((NT, NY, NX)), 1.02, 1.1, 2.5, 6.0, 30.0,
                            extra_sigma=np.array([2.0, 1.5, 0.7]))
    H = footprint_H(rng, n_obs=40)
    sig = 0.5 + rng.random(40)
    xa = rng.normal(size=H.shape[1]) * 0.1
    y = H @ xa + rng.normal(size=40) * 2.0  # errors larger than assumed: χ² well above n
    Hd = H.toarray()
    K = Hd @ Q.to_dense() @ Hd.T + np.diag(sig**2)
    d = y - Hd @ xa
    chi2_dense = float(d @ np.linalg.solve(K, d))
    for solver in ("cholesky", "pcg"):
        res = solve(H, y, xa, Q, sig, options=SolveOptions(solver=solver))
        assert res.chi2 == pytest.approx(chi2_dense, rel=1e-8)
        assert res.chi2_pvalue == pytest.approx(stats.chi2.sf(chi2_dense, 40), rel=1e-6, abs=1e-300)
    t = chi2_test(chi2_dense, 40, p_min=1e-3)
    assert t["p_value"] == pytest.approx(stats.chi2.sf(chi2_dense, 40), rel=1e-12)
    assert t["p_value_lower"] == pytest.approx(stats.chi2.cdf(chi2_dense, 40), rel=1e-12)
    assert t["out_of_range"] == (stats.chi2.sf(chi2_dense, 40) < 1e-3)
    # a consistent χ² (= n) is in range; the demo's χ²_r of 0.57 is not flagged (lower tail only reported)
    assert not chi2_test(40.0, 40)["out_of_range"]
    assert not chi2_test(0.57 * 742, 742)["out_of_range"]
    assert chi2_test(2e6 * 48, 48)["out_of_range"]


def test_innovation_statistics_full_R():
    d = np.array([1.0, -6.0, 0.5])
    hqh = np.array([1.0, 2.0, 3.0])
    R = np.array([[3.0, 0.5, 0.0], [0.5, 2.0, 0.0], [0.0, 0.0, 1.0]])
    s, z = innovation_statistics(d, hqh, R)
    assert np.allclose(s, [2.0, 2.0, 2.0])
    assert np.allclose(z, [0.5, -3.0, 0.25])
    s2, _ = innovation_statistics(d, hqh, np.array([np.sqrt(3.0), np.sqrt(2.0), 1.0]))
    assert np.allclose(s2, s)


def test_screen_settings():
    assert screen_settings({}) == {"threshold_sigma": 3.0, "action": "exclude", "chi2_p_min": 1e-3}
    assert screen_settings({"innovation_screen": {"action": "flag"}})["action"] == "flag"
    with pytest.raises(ValueError, match="action"):
        screen_settings({"innovation_screen": {"action": "drop"}})
    with pytest.raises(ValueError, match="threshold_sigma"):
        screen_settings({"innovation_screen": {"threshold_sigma": 0}})
    with pytest.raises(ValueError, match="unknown key"):
        screen_settings({"innovation_screen": {"treshold_sigma": 3}})


@pytest.mark.parametrize("L", [3.0, 0.0])
def test_hqht_diagonal_compact_footprints_on_their_bounding_box(L):
    """Plumes much smaller than the grid (the FFT runs on each row's box), some at the grid's edges."""
    rng = np.random.default_rng(11)
    ny, nx, nt = 23, 29, 5
    nc = ny * nx
    Q = KroneckerCovariance(0.3 + rng.random((nt, ny, nx)), 1.02, 1.1, L, 6.0, 48.0,
                            extra_sigma=np.array([2.0]), diurnal_corr=0.2)
    H = sp.lil_matrix((12, nt * nc + 1))
    for i in range(12):
        cy, cx = [(0, 0), (ny - 1, nx - 1), (0, nx - 1)][i % 3] if i < 6 else (rng.integers(ny), rng.integers(nx))
        t0 = rng.integers(0, nt - 1)
        for b, t in enumerate(range(t0, min(nt, t0 + 3))):
            ys = np.clip(cy + rng.integers(-3, 4, 6) + b, 0, ny - 1)
            xs = np.clip(cx + rng.integers(-3, 4, 6) - b, 0, nx - 1)
            H[i, t * nc + ys * nx + xs] = rng.random(6)
        H[i, -1] = 1.0
    H = H.tocsr()
    ref = np.diag(H.toarray() @ Q.to_dense() @ H.toarray().T)
    got = hqht_diagonal(Q, H)
    assert np.max(np.abs(got - ref)) / ref.max() < 1e-12
