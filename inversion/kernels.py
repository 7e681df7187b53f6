"""Sparse Jacobian products H·v, Hᵀ·v (and on blocks of vectors) as parallel numba kernels.

Each numba kernel sits beside the plain-Python reference it speeds up (``*_ref``: the same loops,
no compilation, used by the tests on small matrices). The kernels work on the raw CSR arrays
(``indptr, indices, data``); rows are independent, so ``prange`` over rows needs no atomics.
Hᵀ·v is a CSR product with the transpose (H stored a second time in CSR-of-Hᵀ = CSC order), so it
is also parallel over *rows of Hᵀ* (columns of H) without write conflicts.

`SparseOperator` holds both layouts and exposes ``matvec``, ``rmatvec``, ``matmat``, ``rmatmat``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numba import njit, prange


# --------------------------------------------------------------------------------------------
# y = A x  (A in CSR)
# --------------------------------------------------------------------------------------------
def csr_matvec_ref(indptr, indices, data, x):
    """Plain reference: y_i = Σ_k data[k] x[indices[k]] over the row's entries."""
    n = len(indptr) - 1
    y = np.zeros(n)
    for i in range(n):
        s = 0.0
        for k in range(indptr[i], indptr[i + 1]):
            s += data[k] * x[indices[k]]
        y[i] = s
    return y


@njit(parallel=True, cache=True, fastmath=False)
def _csr_matvec_nb(indptr, indices, data, x, out):
    n = indptr.shape[0] - 1
    for i in prange(n):
        s = 0.0
        for k in range(indptr[i], indptr[i + 1]):
            s += data[k] * x[indices[k]]
        out[i] = s


def csr_matvec(indptr, indices, data, x, out=None):
    """Parallel numba CSR matrix-vector product (same result as `csr_matvec_ref`)."""
    n = len(indptr) - 1
    if out is None:
        out = np.empty(n, dtype=np.float64)
    _csr_matvec_nb(indptr, indices, data, np.ascontiguousarray(x, dtype=np.float64), out)
    return out


# --------------------------------------------------------------------------------------------
# Y = A X  (A in CSR, X dense (n_cols, k), C order)
# --------------------------------------------------------------------------------------------
def csr_matmat_ref(indptr, indices, data, X):
    """Plain reference: Y[i, :] = Σ_k data[k] X[indices[k], :]."""
    n = len(indptr) - 1
    Y = np.zeros((n, X.shape[1]))
    for i in range(n):
        for k in range(indptr[i], indptr[i + 1]):
            Y[i, :] += data[k] * X[indices[k], :]
    return Y


@njit(parallel=True, cache=True, fastmath=False)
def _csr_matmat_nb(indptr, indices, data, X, out):
    n = indptr.shape[0] - 1
    m = X.shape[1]
    for i in prange(n):
        for j in range(m):
            out[i, j] = 0.0
        for k in range(indptr[i], indptr[i + 1]):
            a = data[k]
            c = indices[k]
            for j in range(m):
                out[i, j] += a * X[c, j]


def csr_matmat(indptr, indices, data, X, out=None):
    """Parallel numba CSR × dense block product (same result as `csr_matmat_ref`)."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    n = len(indptr) - 1
    if out is None:
        out = np.empty((n, X.shape[1]), dtype=np.float64)
    _csr_matmat_nb(indptr, indices, data, X, out)
    return out


class SparseOperator:
    """A sparse matrix H with fast parallel H·v, Hᵀ·v, H·X and Hᵀ·X.

    Keeps H in CSR and Hᵀ in CSR (i.e. H in CSC) so both products are row-parallel.
    ``data`` is float64, indices int32 when they fit (halves the index traffic).
    """

    def __init__(self, H):
        if not sp.issparse(H):
            raise TypeError("SparseOperator: H must be a scipy.sparse matrix")
        H = sp.csr_matrix(H, dtype=np.float64)
        H.sum_duplicates()
        self.shape = H.shape
        self.csr = H
        self.csr_t = H.T.tocsr()
        self.csr_t.sum_duplicates()
        self.nnz = H.nnz
        for M in (self.csr, self.csr_t):
            if M.nnz < 2**31 - 1 and max(M.shape) < 2**31 - 1:
                M.indptr = M.indptr.astype(np.int32, copy=False)
                M.indices = M.indices.astype(np.int32, copy=False)

    @property
    def nbytes(self) -> int:
        """Bytes of one CSR copy of H (what one H·v must stream)."""
        return self.csr.data.nbytes + self.csr.indices.nbytes + self.csr.indptr.nbytes

    def matvec(self, x):
        M = self.csr
        return csr_matvec(M.indptr, M.indices, M.data, x)

    def rmatvec(self, x):
        M = self.csr_t
        return csr_matvec(M.indptr, M.indices, M.data, x)

    def matmat(self, X):
        M = self.csr
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 1:
            return self.matvec(X)
        return csr_matmat(M.indptr, M.indices, M.data, X)

    def rmatmat(self, X):
        M = self.csr_t
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 1:
            return self.rmatvec(X)
        return csr_matmat(M.indptr, M.indices, M.data, X)
