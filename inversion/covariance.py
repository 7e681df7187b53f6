"""Prior error covariance operators, applied without forming the matrix.

State layout (the Jacobian's, docs/formats.md): flux element ``step * n_cells + iy * nx + ix``,
followed by ``n_extra`` extra elements (e.g. daily background offsets).

``KroneckerCovariance`` is

    Q = blockdiag( D (Q_t ⊗ Q_s) D ,  diag(extra_sigma²) ),   D = diag(σ(step, iy, ix)),

with Q_s[c, c'] = exp(-d(c, c') / L) on the regular lat/lon grid and Q_t[s, s'] = exp(-|t_s - t_s'| / τ).
Distances use constant km spacings at the grid's central latitude φ0 (cells are not square in km):
dx = res_lon · 111.32 · cos φ0, dy = res_lat · 110.57. Over the Guangzhou domain (22.5–24 °N) the
true east-west spacing varies by ±0.6 % around dx.

Q_s is block-Toeplitz with Toeplitz blocks (the kernel depends only on the index offset), so Q_s·v
is an exact linear convolution: the kernel is embedded in a circulant of size ≥ (2ny−1)×(2nx−1),
v is zero-padded to that size and the product is two real FFTs and a pointwise product. No
approximation: `to_dense()` agrees to rounding error (tested). Q_t is a small dense matrix.
The exponential kernel is positive definite in any dimension, so Q is PD whenever σ > 0.

``NestedKroneckerCovariance`` is the same operator on a nested state (docs/inversion.md, "Nested
outer domain"): every step holds the inner cells (row-major) and then the outer cells that lie
outside the inner box (row-major over the outer grid, `gzcarbon.grid.NestedGrid`), and

    Q_s = blockdiag(Q_in, Q_out),

Q_in the inner kernel above, Q_out the exponential kernel of the *outer* grid (its own length,
spacings at the outer grid's central latitude) restricted to the outer cells: applied by the FFT on
the full regular outer grid with the hole under the inner box zero-padded, which is the exact
restriction of the full outer kernel. Same Q_t, so Q = D (Q_t ⊗ Q_s) D keeps its Kronecker form and
every structured builder (H Q Hᵀ, H Q Aᵀ by footprint slices, exact row variances) applies as is.
Inner and outer errors are uncorrelated (the block-diagonal coupling of issue 19).
"""

from __future__ import annotations

import os

import numpy as np
import scipy.fft as sfft


def _default_workers() -> int:
    """FFT threads: NUMBA_NUM_THREADS / OMP_NUM_THREADS if set, else the CPUs this process may use."""
    for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS"):
        if os.environ.get(var, "").isdigit() and int(os.environ[var]) > 0:
            return int(os.environ[var])
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1

KM_PER_DEG_LON_EQ = 111.32
KM_PER_DEG_LAT = 110.57


def grid_spacing_km(lat_edges, lon_edges) -> tuple[float, float]:
    """(dx_km, dy_km) of a regular grid at its central latitude."""
    lat_edges = np.asarray(lat_edges, float)
    lon_edges = np.asarray(lon_edges, float)
    res_lon = float(np.mean(np.diff(lon_edges)))
    res_lat = float(np.mean(np.diff(lat_edges)))
    lat0 = 0.5 * (lat_edges[0] + lat_edges[-1])
    return res_lon * KM_PER_DEG_LON_EQ * np.cos(np.deg2rad(lat0)), res_lat * KM_PER_DEG_LAT


def steps_per_day(step_hours: float) -> int:
    """Number of time-of-day slots of a state with ``step_hours`` steps (steps start at 00 UTC)."""
    return max(1, int(round(24.0 / float(step_hours))))


def exponential_time_corr(n_step: int, step_hours: float, corr_time_hours: float,
                          diurnal_corr: float = 1.0) -> np.ndarray:
    """Q_t[s, s'] = exp(-|s - s'| · step / τ) · (c + (1 − c) · [slot(s) = slot(s')]); identity when τ = 0.

    ``slot(s) = s mod (24 / step)`` is the time of day of step s (steps start at 00 UTC). With
    ``diurnal_corr`` c = 1 this is the plain exponential; with c < 1 errors at different times of day
    are only partly correlated (an inventory's diurnal profile is wrong in a persistent way: the same
    afternoon error every day, a different one at night). A negative c down to −1/(n − 1), n steps per
    day, describes a *shape* error: temporal profiles are normalised, so an error in them moves
    emissions between times of day and largely cancels over the day (at c = −1/(n − 1) exactly, the
    daily sum would have no variance at all). The slot kernel c + (1 − c)·δ is positive definite for
    c > −1/(n − 1), and its Schur product with the exponential kernel stays positive definite.
    """
    c = float(diurnal_corr)
    per_day = steps_per_day(step_hours)
    c_min = -1.0 / (per_day - 1) if per_day > 1 else -np.inf
    if not (c_min < c <= 1.0):
        raise ValueError(f"diurnal_corr = {c}: must lie in ({c_min:.4g}, 1] for {per_day} steps per day "
                         "(below, the slot correlation is not positive definite)")
    if corr_time_hours <= 0:
        return np.eye(n_step)
    idx = np.arange(n_step)
    lag = np.abs(idx[:, None] - idx[None, :]) * float(step_hours)
    Qt = np.exp(-lag / float(corr_time_hours))
    if c < 1.0:
        slot = idx % per_day
        Qt = Qt * (c + (1.0 - c) * (slot[:, None] == slot[None, :]))
    return Qt


def _exp_corr(iy, ix, dy_km: float, dx_km: float, L_km: float) -> np.ndarray:
    """exp(−d / L) between the cells (iy, ix) of a regular grid (identity when L <= 0)."""
    d = np.hypot((iy[:, None] - iy[None, :]) * dy_km, (ix[:, None] - ix[None, :]) * dx_km)
    if L_km <= 0:
        return (d == 0).astype(float)
    return np.exp(-d / L_km)


def exponential_space_corr_dense(ny: int, nx: int, dx_km: float, dy_km: float, L_km: float) -> np.ndarray:
    """Dense Q_s (n_cells × n_cells) — for tests and small problems only."""
    iy, ix = np.divmod(np.arange(ny * nx), nx)
    return _exp_corr(iy, ix, dy_km, dx_km, L_km)


class SpatialExpCorrFFT:
    """Q_s·V for V of shape (..., ny, nx) by exact circulant embedding (zero padding)."""

    def __init__(self, ny: int, nx: int, dx_km: float, dy_km: float, L_km: float, workers: int | None = None):
        self.ny, self.nx = int(ny), int(nx)
        workers = _default_workers() if workers is None else workers
        self.L_km = float(L_km)
        self.workers = workers
        self.identity = self.L_km <= 0 or (ny * nx == 1)
        if self.identity:
            return
        self.Ny = sfft.next_fast_len(2 * ny - 1, real=True)
        self.Nx = sfft.next_fast_len(2 * nx - 1, real=True)
        oy = np.arange(self.Ny)
        oy = np.where(oy < ny, oy, oy - self.Ny)  # signed offsets; unused middle entries harmless
        ox = np.arange(self.Nx)
        ox = np.where(ox < nx, ox, ox - self.Nx)
        d = np.hypot(oy[:, None] * dy_km, ox[None, :] * dx_km)
        self.kernel_hat = sfft.rfft2(np.exp(-d / self.L_km), workers=workers)

    def apply(self, V: np.ndarray) -> np.ndarray:
        """Exact linear convolution of every (ny, nx) plane of V with the kernel.

        Pruned 2-D FFT: the real transform along x runs only on the ny non-zero rows of the padded
        plane, and the inverse real transform only on the ny output rows that are kept (the padded
        rows ny..Ny-1 are known zeros on input and discarded on output) — the same result as
        ``irfft2(rfft2(V, s) · k̂)[:ny, :nx]`` with about a quarter less work.
        """
        if self.identity:
            return np.array(V, dtype=np.float64, copy=True)
        V = np.asarray(V, dtype=np.float64)
        w = self.workers
        F = sfft.rfft(V, n=self.Nx, axis=-1, workers=w)  # (..., ny, Nx//2+1)
        F = sfft.fft(F, n=self.Ny, axis=-2, workers=w, overwrite_x=True)  # zero-padded rows
        F *= self.kernel_hat
        F = sfft.ifft(F, axis=-2, workers=w, overwrite_x=True)[..., : self.ny, :]
        return sfft.irfft(F, n=self.Nx, axis=-1, workers=w)[..., : self.nx]


class MaskedSpatialCorr:
    """Q_s of a regular grid restricted to the cells of ``mask`` (ny, nx) bool, applied to vectors over
    those cells (row-major order): scatter onto the full grid (zeros elsewhere), the exact FFT
    convolution of `SpatialExpCorrFFT`, gather. Exact: (P Q_full Pᵀ) v with P the selection."""

    def __init__(self, mask, dx_km: float, dy_km: float, L_km: float, workers: int | None = None):
        self.mask = np.asarray(mask, bool)
        if self.mask.ndim != 2:
            raise ValueError(f"MaskedSpatialCorr: mask must be 2-D (ny, nx), got shape {self.mask.shape}")
        self.ny, self.nx = self.mask.shape
        self.index = np.flatnonzero(self.mask.ravel())
        self.n = self.index.size
        self.dx_km, self.dy_km, self.L_km = float(dx_km), float(dy_km), float(L_km)
        self.fft = SpatialExpCorrFFT(self.ny, self.nx, self.dx_km, self.dy_km, self.L_km, workers)
        self.workers = self.fft.workers

    def apply(self, G: np.ndarray) -> np.ndarray:
        """(..., n) -> (..., n)."""
        G = np.asarray(G, dtype=np.float64)
        lead = G.shape[:-1]
        if self.fft.identity:
            return G.copy()
        P = np.zeros((int(np.prod(lead, dtype=np.int64)), self.ny * self.nx))
        P[:, self.index] = G.reshape(-1, self.n)
        P = self.fft.apply(P.reshape(-1, self.ny, self.nx)).reshape(-1, self.ny * self.nx)
        return P[:, self.index].reshape(*lead, self.n)

    def dense(self, cells) -> np.ndarray:
        """Dense restriction to ``cells`` (indices into the masked cells)."""
        iy, ix = np.divmod(self.index[np.asarray(cells, np.int64)], self.nx)
        return _exp_corr(iy, ix, self.dy_km, self.dx_km, self.L_km)


class KroneckerCovariance:
    """Q = blockdiag(D (Q_t ⊗ Q_s) D, diag(extra_sigma²)), applied matrix-free.

    Parameters
    ----------
    sigma : array (n_step, ny, nx)
        Prior σ of each flux element (same units as the state).
    dx_km, dy_km : float
        Grid spacings in km (see `grid_spacing_km`).
    corr_length_km : float
        e-folding length L of the exponential spatial correlation (0 = uncorrelated).
    step_hours, corr_time_hours : float
        Time step of the state and e-folding time τ of the temporal correlation (0 = uncorrelated).
    diurnal_corr : float
        Correlation between different times of day (see `exponential_time_corr`); 1 = plain exponential.
    extra_sigma : array (n_extra,), optional
        σ of uncorrelated extra elements appended after the flux elements (background offsets).
    """

    def __init__(self, sigma, dx_km, dy_km, corr_length_km, step_hours, corr_time_hours,
                 extra_sigma=None, workers: int | None = None, diurnal_corr: float = 1.0):
        sigma = np.asarray(sigma, dtype=np.float64)
        if sigma.ndim != 3:
            raise ValueError(f"KroneckerCovariance: sigma must be (n_step, ny, nx), got shape {sigma.shape}")
        if not np.all(np.isfinite(sigma)) or np.any(sigma < 0):
            raise ValueError("KroneckerCovariance: sigma must be finite and >= 0 everywhere")
        self.sigma = sigma
        self.n_step, self.ny, self.nx = sigma.shape
        self.n_cells = self.ny * self.nx
        self.n_flux = self.n_step * self.n_cells
        self.extra_sigma = np.zeros(0) if extra_sigma is None else np.asarray(extra_sigma, np.float64).ravel()
        if not np.all(np.isfinite(self.extra_sigma)) or np.any(self.extra_sigma < 0):
            raise ValueError("KroneckerCovariance: extra_sigma must be finite and >= 0")
        self.n_extra = self.extra_sigma.size
        self.n = self.n_flux + self.n_extra
        self.shape = (self.n, self.n)
        self.dx_km, self.dy_km = float(dx_km), float(dy_km)
        self.corr_length_km = float(corr_length_km)
        self.step_hours = float(step_hours)
        self.corr_time_hours = float(corr_time_hours)
        if self.corr_length_km < 0 or self.corr_time_hours < 0:
            raise ValueError("KroneckerCovariance: correlation length and time must be >= 0")
        self.diurnal_corr = float(diurnal_corr)
        self.Qt = exponential_time_corr(self.n_step, self.step_hours, self.corr_time_hours, self.diurnal_corr)
        self._time_identity = self.corr_time_hours <= 0 or self.n_step == 1
        self.space = SpatialExpCorrFFT(self.ny, self.nx, self.dx_km, self.dy_km, self.corr_length_km, workers)
        self.plane_batch = max(1, int(2e7 // max(self.n_cells * 4, 1)))  # ~0.3 GB of complex FFT planes

    @classmethod
    def from_grid(cls, sigma, lat_edges, lon_edges, corr_length_km, step_hours, corr_time_hours,
                  extra_sigma=None, workers: int | None = None, diurnal_corr: float = 1.0):
        dx, dy = grid_spacing_km(lat_edges, lon_edges)
        return cls(sigma, dx, dy, corr_length_km, step_hours, corr_time_hours, extra_sigma, workers, diurnal_corr)

    @property
    def markov_time(self) -> bool:
        """True when Q_t = ρ^|s−s'| (what `build_hqht_kronecker` exploits)."""
        return self.diurnal_corr >= 1.0 or self.corr_time_hours <= 0 or self.n_step == 1

    # ----------------------------------------------------------------------------------------
    def diagonal(self) -> np.ndarray:
        return np.concatenate([self.sigma_cells.ravel() ** 2, self.extra_sigma**2])

    @property
    def sigma_cells(self) -> np.ndarray:
        """σ of every flux element as (n_step, n_cells) (the state's order within a step)."""
        return self.sigma.reshape(self.n_step, self.n_cells)

    def apply_space(self, G: np.ndarray) -> np.ndarray:
        """Q_s applied to every row of G (..., n_cells) (FFT, exact)."""
        G = np.asarray(G, dtype=np.float64)
        return self.space.apply(G.reshape(-1, self.ny, self.nx)).reshape(G.shape)

    def space_corr(self, cells) -> np.ndarray:
        """Dense Q_s restricted to the state cells ``cells`` (indices within a step)."""
        iy, ix = np.divmod(np.asarray(cells, np.int64), self.nx)
        return _exp_corr(iy, ix, self.dy_km, self.dx_km, self.corr_length_km)

    def with_sigma(self, sigma_cells, step_hours) -> "KroneckerCovariance":
        """The same spatial correlation with other σ (n_step', n_cells), step length and the plain
        exponential time correlation (``diurnal_corr`` 1), no extra elements (the diurnal builders)."""
        s = np.asarray(sigma_cells, np.float64)
        return KroneckerCovariance(s.reshape(s.shape[0], self.ny, self.nx), self.dx_km, self.dy_km,
                                   self.corr_length_km, step_hours, self.corr_time_hours,
                                   workers=self.space.workers)

    def _apply_flux(self, V: np.ndarray) -> np.ndarray:
        """V (n_flux, k) -> D (Q_t ⊗ Q_s) D V, shape (n_flux, k)."""
        k = V.shape[1]
        s = self.sigma_cells.reshape(self.n_step, self.n_cells, 1)
        W = V.reshape(self.n_step, self.n_cells, k) * s
        # spatial: batch over (step, k) on the cells of a step
        W = np.moveaxis(W, 2, 1).reshape(self.n_step * k, self.n_cells)
        for p0 in range(0, W.shape[0], self.plane_batch):  # bounded FFT work arrays
            W[p0:p0 + self.plane_batch] = self.apply_space(W[p0:p0 + self.plane_batch])
        W = W.reshape(self.n_step, k * self.n_cells)
        if not self._time_identity:
            W = self.Qt @ W
        W = np.moveaxis(W.reshape(self.n_step, k, self.n_cells), 1, 2)
        return (W * s).reshape(self.n_flux, k)

    def matmat(self, V, chunk: int | None = None) -> np.ndarray:
        V = np.asarray(V, dtype=np.float64)
        if chunk is None:  # keep the work arrays near 50 M elements (~0.4 GB each)
            chunk = max(1, int(5e7 // max(self.n_flux, 1)))
        vec = V.ndim == 1
        if vec:
            V = V[:, None]
        if V.shape[0] != self.n:
            raise ValueError(f"KroneckerCovariance: operand has {V.shape[0]} rows, expected {self.n}")
        out = np.empty_like(V)
        for j0 in range(0, V.shape[1], chunk):
            j1 = min(V.shape[1], j0 + chunk)
            out[: self.n_flux, j0:j1] = self._apply_flux(V[: self.n_flux, j0:j1])
        out[self.n_flux:] = V[self.n_flux:] * (self.extra_sigma**2)[:, None]
        return out[:, 0] if vec else out

    def matvec(self, v) -> np.ndarray:
        return self.matmat(np.asarray(v, dtype=np.float64).ravel())

    def __matmul__(self, V):
        return self.matmat(V)

    def to_dense(self) -> np.ndarray:
        """Explicit Q (tests and small problems only)."""
        if self.n > 20000:
            raise MemoryError(f"KroneckerCovariance.to_dense: {self.n} state elements is too large to form")
        Qs = self.space_corr(np.arange(self.n_cells))
        s = self.sigma_cells.ravel()
        Q = np.zeros((self.n, self.n))
        Q[: self.n_flux, : self.n_flux] = np.kron(self.Qt, Qs) * s[:, None] * s[None, :]
        Q[self.n_flux:, self.n_flux:] = np.diag(self.extra_sigma**2)
        return Q


class NestedKroneckerCovariance(KroneckerCovariance):
    """Q = blockdiag(D (Q_t ⊗ blockdiag(Q_in, Q_out)) D, diag(extra_sigma²)) on a nested state.

    Parameters as `KroneckerCovariance` for the inner grid (``sigma`` (n_step, ny, nx)), plus
    ``sigma_outer`` (n_step, n_outer): σ of the outer cells in state order (row-major over
    ``outer_mask``, the (ny_o, nx_o) outer grid's cells outside the inner box), the outer grid's
    spacings ``outer_dx_km``, ``outer_dy_km`` (`grid_spacing_km` of the outer grid) and its own
    correlation length ``outer_corr_length_km``. Within a step the state holds the ny·nx inner cells,
    then the n_outer outer cells. ``sigma`` stays the inner (n_step, ny, nx) field; `sigma_cells` is
    the whole (n_step, n_inner + n_outer).
    """

    def __init__(self, sigma, dx_km, dy_km, corr_length_km, step_hours, corr_time_hours, sigma_outer,
                 outer_mask, outer_dx_km, outer_dy_km, outer_corr_length_km, extra_sigma=None,
                 workers: int | None = None, diurnal_corr: float = 1.0):
        super().__init__(sigma, dx_km, dy_km, corr_length_km, step_hours, corr_time_hours, extra_sigma,
                         workers, diurnal_corr)
        self.outer_space = MaskedSpatialCorr(outer_mask, outer_dx_km, outer_dy_km, outer_corr_length_km,
                                             self.space.workers)
        self.outer_mask = self.outer_space.mask
        self.n_inner = self.ny * self.nx
        self.n_outer = self.outer_space.n
        so = np.asarray(sigma_outer, dtype=np.float64)
        if so.shape != (self.n_step, self.n_outer):
            raise ValueError(f"NestedKroneckerCovariance: sigma_outer must be (n_step={self.n_step}, "
                             f"n_outer={self.n_outer}), got shape {so.shape}")
        if not np.all(np.isfinite(so)) or np.any(so < 0):
            raise ValueError("NestedKroneckerCovariance: sigma_outer must be finite and >= 0 everywhere")
        if float(outer_corr_length_km) < 0:
            raise ValueError("NestedKroneckerCovariance: the outer correlation length must be >= 0")
        self.sigma_outer = so
        self.outer_dx_km, self.outer_dy_km = float(outer_dx_km), float(outer_dy_km)
        self.outer_corr_length_km = float(outer_corr_length_km)
        self._sigma_cells = np.concatenate([self.sigma.reshape(self.n_step, self.n_inner), so], axis=1)
        self.n_cells = self.n_inner + self.n_outer
        self.n_flux = self.n_step * self.n_cells
        self.n = self.n_flux + self.n_extra
        self.shape = (self.n, self.n)
        self.plane_batch = max(1, int(2e7 // max(self.n_cells * 4, 1)))

    @property
    def sigma_cells(self) -> np.ndarray:
        return self._sigma_cells

    def apply_space(self, G: np.ndarray) -> np.ndarray:
        G = np.asarray(G, dtype=np.float64)
        out = np.empty_like(G)
        ni = self.n_inner
        out[..., :ni] = self.space.apply(G[..., :ni].reshape(-1, self.ny, self.nx)).reshape(G.shape[:-1] + (ni,))
        out[..., ni:] = self.outer_space.apply(G[..., ni:])
        return out

    def space_corr(self, cells) -> np.ndarray:
        cells = np.asarray(cells, np.int64)
        out = np.zeros((cells.size, cells.size))
        inner = cells < self.n_inner
        ii, oo = np.flatnonzero(inner), np.flatnonzero(~inner)
        if ii.size:
            out[np.ix_(ii, ii)] = super().space_corr(cells[ii])
        if oo.size:
            out[np.ix_(oo, oo)] = self.outer_space.dense(cells[oo] - self.n_inner)
        return out

    def with_sigma(self, sigma_cells, step_hours) -> "NestedKroneckerCovariance":
        s = np.asarray(sigma_cells, np.float64)
        ni = self.n_inner
        return NestedKroneckerCovariance(
            s[:, :ni].reshape(s.shape[0], self.ny, self.nx), self.dx_km, self.dy_km, self.corr_length_km,
            step_hours, self.corr_time_hours, s[:, ni:], self.outer_mask, self.outer_dx_km, self.outer_dy_km,
            self.outer_corr_length_km, workers=self.space.workers)


def row_variances(Q: "KroneckerCovariance", B, max_support: int = 4000) -> np.ndarray:
    """diag(B Q Bᵀ) for the rows of a sparse B, exactly, without applying Q to whole vectors.

    For a row b = Σ_s e_s ⊗ r_s (spatial rows r_s supported on a set S of cells):
    bᵀ Q b = Σ_{s,s'} Q_t[s,s'] (σ_s∘r_s)ᵀ Q_s|_S (σ_s'∘r_s') + Σ_e b_e² σ_e², with Q_s|_S the small
    dense restriction of the spatial correlation to S. Rows whose support exceeds ``max_support``
    cells fall back to one matrix-free product.
    """
    import scipy.sparse as sp

    B = sp.csr_matrix(B, dtype=np.float64)
    out = np.empty(B.shape[0])
    nf, nc = Q.n_flux, Q.n_cells
    sig = Q.sigma_cells
    for r in range(B.shape[0]):
        lo, hi = B.indptr[r], B.indptr[r + 1]
        idx, val = B.indices[lo:hi].astype(np.int64), B.data[lo:hi]
        fl = idx < nf
        ex = ~fl
        v = float(np.sum(val[ex] ** 2 * Q.extra_sigma[idx[ex] - nf] ** 2))
        s, c = np.divmod(idx[fl], nc)
        cells, pos = np.unique(c, return_inverse=True)
        if cells.size > max_support:
            b = np.zeros(Q.n)
            b[idx] = val
            out[r] = float(b @ Q.matvec(b))
            continue
        if cells.size:
            U = np.zeros((Q.n_step, cells.size))
            np.add.at(U, (s, pos), val[fl] * sig[s, c])
            v += float(np.sum((Q.Qt @ U @ Q.space_corr(cells)) * U))
        out[r] = v
    return out
