"""Positivity of the posterior flux: an optional lower bound applied after the Gaussian solution.

The analytical posterior is Gaussian and can put the hourly total flux below zero in cells where the
prior is small and the correction large and negative. ``inversion.positivity`` (config) chooses:

* ``"none"`` (default) — the posterior is left as the linear solution; the diagnostics still report
  how much of it lies below the bound (so the effect of ``"clip"`` is visible without turning it on).
* ``"clip"`` — truncation: posterior_flux ← max(posterior_flux, ℓ) hour by hour and cell by cell, with
  the bound ℓ = min(prior_flux, 0). Emissions may not turn negative where the prior is a source; where
  the prior itself is a net sink (biospheric uptake) the posterior may not go below the prior's uptake.
  District totals then use the truncated flux (the added tonnes are reported per district); their σ are
  the Gaussian posterior σ, unchanged (truncation of the mean only — it is not a full constrained
  posterior).

`lower_bound_effect` measures what truncation changes; `apply_positivity` applies the method.
"""

from __future__ import annotations

import numpy as np

METHODS = ("none", "clip")


def lower_bound(prior_flux: np.ndarray) -> np.ndarray:
    """ℓ = min(prior, 0) for every hour and cell."""
    return np.minimum(np.asarray(prior_flux, dtype=np.float64), 0.0)


def lower_bound_effect(prior_flux: np.ndarray, posterior_flux: np.ndarray, period_mask: np.ndarray,
                       cell_weights_m2, names: list[str]) -> tuple[np.ndarray, dict]:
    """(truncated posterior flux, report) where report holds what truncation at ℓ changes.

    ``cell_weights_m2``: (n_agg × n_cells) weights (fraction × area) whose rows are ``names``; the
    report's ``added_t`` gives, per row, the tonnes of CO2 the truncation adds over the period hours.
    """
    from .aggregate import totals_tonnes

    post = np.asarray(posterior_flux, dtype=np.float64)
    lb = lower_bound(prior_flux)
    if lb.shape != post.shape:
        raise ValueError(f"positivity: prior flux {lb.shape} and posterior flux {post.shape} differ in shape")
    clipped = np.maximum(post, lb)
    below = post < lb
    m = np.asarray(period_mask, bool)
    added = totals_tonnes(clipped - post, cell_weights_m2, m)
    n_period = int(below[m].sum())
    report = {
        "bound": "min(prior_flux, 0)",
        "cell_hours_below_bound": n_period,
        "fraction_cell_hours_below_bound": float(n_period / max(1, below[m].size)),
        "largest_violation_umol_m2_s": float((lb - post)[m].max(initial=0.0)),
        "added_t": {str(k): float(v) for k, v in zip(names, added)},
    }
    return clipped, report


def apply_positivity(method: str, prior_flux, posterior_flux, period_mask, cell_weights_m2, names):
    """(posterior flux to write, report with ``method`` and ``applied``) for ``method`` in `METHODS`."""
    if method not in METHODS:
        raise ValueError(f"config inversion.positivity = {method!r}; allowed: {', '.join(METHODS)}")
    clipped, report = lower_bound_effect(prior_flux, posterior_flux, period_mask, cell_weights_m2, names)
    report = {"method": method, "applied": method == "clip", **report}
    return (clipped if method == "clip" else np.asarray(posterior_flux, dtype=np.float64)), report
