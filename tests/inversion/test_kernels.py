"""numba sparse kernels against their plain references and scipy."""

import numpy as np
import scipy.sparse as sp

from inversion.kernels import (SparseOperator, csr_matmat, csr_matmat_ref, csr_matvec,
                               csr_matvec_ref)


def test_kernels_match_reference_and_scipy():
    rng = np.random.default_rng(1)
    H = sp.random(37, 211, density=0.07, random_state=rng, format="csr")
    x = rng.normal(size=211)
    X = rng.normal(size=(211, 5))
    ref = csr_matvec_ref(H.indptr, H.indices, H.data, x)
    np.testing.assert_allclose(csr_matvec(H.indptr, H.indices, H.data, x), ref, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(ref, H @ x, rtol=1e-12, atol=1e-13)
    refm = csr_matmat_ref(H.indptr, H.indices, H.data, X)
    np.testing.assert_allclose(csr_matmat(H.indptr, H.indices, H.data, X), refm, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(refm, H @ X, rtol=1e-12, atol=1e-13)


def test_sparse_operator_all_products():
    rng = np.random.default_rng(2)
    H = sp.random(300, 1200, density=0.02, random_state=rng, format="coo")
    op = SparseOperator(H)
    Hc = H.tocsr()
    v = rng.normal(size=1200)
    w = rng.normal(size=300)
    np.testing.assert_allclose(op.matvec(v), Hc @ v, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(op.rmatvec(w), Hc.T @ w, rtol=1e-12, atol=1e-12)
    V = rng.normal(size=(1200, 3))
    W = rng.normal(size=(300, 4))
    np.testing.assert_allclose(op.matmat(V), Hc @ V, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(op.rmatmat(W), Hc.T @ W, rtol=1e-12, atol=1e-12)
    assert op.csr.indices.dtype == np.int32
