"""Kronecker covariance operator (FFT, circulant embedding) against the dense matrix."""

import numpy as np
import pytest

from inversion.covariance import (KroneckerCovariance, exponential_space_corr_dense,
                                  grid_spacing_km)


@pytest.mark.parametrize("shape,L,tau", [((3, 7, 5), 2.0, 12.0), ((1, 9, 13), 5.0, 0.0), ((4, 6, 6), 0.0, 6.0)])
def test_matvec_matmat_match_dense(shape, L, tau):
    rng = np.random.default_rng(0)
    sigma = 0.1 + rng.random(shape)
    Q = KroneckerCovariance(sigma, 1.02, 1.1, L, 6.0, tau, extra_sigma=[2.0, 3.0])
    Qd = Q.to_dense()
    v = rng.normal(size=Q.n)
    V = rng.normal(size=(Q.n, 6))
    np.testing.assert_allclose(Q.matvec(v), Qd @ v, rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(Q.matmat(V), Qd @ V, rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(Q.matmat(V, chunk=2), Qd @ V, rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(Q.diagonal(), np.diag(Qd), rtol=1e-14)
    np.testing.assert_allclose(Qd, Qd.T, atol=1e-14)
    assert np.linalg.eigvalsh(Qd).min() > 0


def test_dense_structure_is_exponential_in_km():
    dx, dy = grid_spacing_km([22.5, 24.0], [112.9, 114.1])
    # 0.01 deg at 23.25 N: ~1.02 km east-west, 1.1057 km north-south (cells are not square)
    lat_edges = np.linspace(22.5, 24.0, 151)
    lon_edges = np.linspace(112.9, 114.1, 121)
    dx, dy = grid_spacing_km(lat_edges, lon_edges)
    assert abs(dx - 0.01 * 111.32 * np.cos(np.deg2rad(23.25))) < 1e-9
    assert abs(dy - 1.1057) < 1e-9
    Qs = exponential_space_corr_dense(3, 4, dx, dy, 6.0)
    # cell (0,0) vs (1,2): distance hypot(dy, 2 dx)
    assert abs(Qs[0, 1 * 4 + 2] - np.exp(-np.hypot(dy, 2 * dx) / 6.0)) < 1e-14


def test_time_correlation_and_sigma_scaling():
    sigma = np.stack([np.full((2, 2), 1.0), np.full((2, 2), 3.0)])
    Q = KroneckerCovariance(sigma, 1.0, 1.0, 0.0, 3.0, 12.0)
    Qd = Q.to_dense()
    # same cell, adjacent steps: σ1 σ2 exp(-3/12)
    assert abs(Qd[0, 4] - 3.0 * np.exp(-0.25)) < 1e-14
    assert Qd[0, 1] == 0.0


def test_bad_sigma():
    with pytest.raises(ValueError, match="sigma"):
        KroneckerCovariance(-np.ones((1, 2, 2)), 1, 1, 1, 1, 1)
    with pytest.raises(ValueError, match="sigma"):
        KroneckerCovariance(np.ones((2, 2)), 1, 1, 1, 1, 1)


def test_row_variances_match_dense():
    import scipy.sparse as sp

    from inversion.covariance import row_variances

    rng = np.random.default_rng(4)
    sigma = 0.1 + rng.random((3, 8, 7))
    Q = KroneckerCovariance(sigma, 1.02, 1.1, 2.0, 6.0, 12.0, extra_sigma=[2.0, 0.5])
    Qd = Q.to_dense()
    B = sp.random(9, Q.n, density=0.05, random_state=rng, format="csr")
    B = sp.vstack([B, sp.csr_matrix(np.ones((1, Q.n)))], format="csr")  # one row with full support
    expect = np.einsum("ij,jk,ik->i", B.toarray(), Qd, B.toarray())
    np.testing.assert_allclose(row_variances(Q, B), expect, rtol=1e-11)
    np.testing.assert_allclose(row_variances(Q, B, max_support=5), expect, rtol=1e-11)  # fallback path
