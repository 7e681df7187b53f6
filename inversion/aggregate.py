"""Aggregation operators: district × period totals (t CO2) and coarse-block period means.

A flux f (µmol m-2 s-1) held for one hour on a cell of area a (m²) emits
f · a · 3600 s · 44.01e-12 t/µmol of CO2. For a correction constant within steps, the total over the
period is Σ_s n_period_hours(s) · 3600 · 44.01e-12 · Σ_c w(c) x(s, c) with w = district fraction × area.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

T_CO2_PER_UMOL = 44.01e-12
SECONDS_PER_HOUR = 3600.0


def period_mask(hours, period_start, period_end) -> np.ndarray:
    """Boolean mask of the hours inside [period_start, period_end)."""
    h = pd.DatetimeIndex(hours)
    return np.asarray((h >= pd.Timestamp(period_start)) & (h < pd.Timestamp(period_end)))


def hours_per_step(mask: np.ndarray, step_hours: int) -> np.ndarray:
    """Number of period hours in every step."""
    n_step = -(-mask.size // step_hours)
    m = np.zeros(n_step * step_hours)
    m[: mask.size] = mask
    return m.reshape(n_step, step_hours).sum(axis=1)


def totals_tonnes(flux_hourly: np.ndarray, cell_weights_m2, mask: np.ndarray) -> np.ndarray:
    """Totals (t CO2) over the masked hours of an hourly flux (n_hours, ny, nx) for every weight row.

    ``cell_weights_m2``: (n_agg × n_cells) sparse or dense (fraction × cell area, m²).
    """
    f = np.asarray(flux_hourly, dtype=np.float64)
    summed = f[np.asarray(mask, bool)].sum(axis=0).ravel()  # µmol m-2 s-1 · h summed over hours
    return np.asarray(cell_weights_m2 @ summed).ravel() * SECONDS_PER_HOUR * T_CO2_PER_UMOL


def correction_total_matrix(cell_weights_m2, n_hours_step: np.ndarray, n_extra: int) -> sp.csr_matrix:
    """A (n_agg × (n_step·n_cells + n_extra)): t CO2 over the period from the step correction."""
    W = sp.csr_matrix(cell_weights_m2, dtype=np.float64)
    scale = sp.diags(np.asarray(n_hours_step, float) * SECONDS_PER_HOUR * T_CO2_PER_UMOL)
    # kron(row-vector of step weights, W) puts step s in columns s*n_cells + c
    A = sp.kron(sp.csr_matrix(scale.diagonal()[None, :]), W, format="csr")
    if n_extra:
        A = sp.hstack([A, sp.csr_matrix((W.shape[0], n_extra))], format="csr")
    return A


def block_mean_weights(ny: int, nx: int, block: int, cell_area: np.ndarray):
    """(W, nby, nbx): rows = coarse blocks of ``block``×``block`` cells (partial at the edges), area-weighted
    mean weights (each row sums to 1), blocks row-major from the south-west."""
    iy, ix = np.divmod(np.arange(ny * nx), nx)
    nby, nbx = -(-ny // block), -(-nx // block)
    b = (iy // block) * nbx + (ix // block)
    a = np.asarray(cell_area, float).ravel()
    W = sp.csr_matrix((a, (b, np.arange(ny * nx))), shape=(nby * nbx, ny * nx))
    tot = np.asarray(W.sum(axis=1)).ravel()
    return (sp.diags(1.0 / tot) @ W).tocsr(), nby, nbx


def period_mean_matrix(cell_weights, n_hours_step: np.ndarray, n_extra: int) -> sp.csr_matrix:
    """A giving the period-mean (over the period hours) of the weighted mean correction."""
    frac = np.asarray(n_hours_step, float) / float(np.sum(n_hours_step))
    W = sp.csr_matrix(cell_weights, dtype=np.float64)
    A = sp.kron(sp.csr_matrix(frac[None, :]), W, format="csr")
    if n_extra:
        A = sp.hstack([A, sp.csr_matrix((W.shape[0], n_extra))], format="csr")
    return A
