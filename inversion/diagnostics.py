"""Inversion diagnostics: residual statistics per site, uncertainty reduction."""

from __future__ import annotations

import numpy as np
import pandas as pd


def residuals_per_site(modelled: pd.DataFrame) -> dict:
    """Mean and std of observed − model (prior and posterior) per site, from a modelled.csv table."""
    out = {}
    for site, g in modelled.groupby("site", sort=True):
        rp = g["observed"] - g["prior_model"]
        rq = g["observed"] - g["posterior_model"]
        out[str(site)] = {
            "n": int(len(g)),
            "prior_mean": float(rp.mean()),
            "prior_std": float(rp.std(ddof=0)),
            "posterior_mean": float(rq.mean()),
            "posterior_std": float(rq.std(ddof=0)),
        }
    return out


def uncertainty_reduction(prior_sigma: np.ndarray, posterior_sigma: np.ndarray) -> np.ndarray:
    """1 − σ_post / σ_prior (0 where the prior σ is 0)."""
    p = np.asarray(prior_sigma, float)
    q = np.asarray(posterior_sigma, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(p > 0, 1.0 - q / p, 0.0)
