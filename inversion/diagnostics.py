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


LOSS_NO_RECEPTOR = "no receptor"
LOSS_NO_FOOTPRINT = "receptor without footprint"
LOSS_OUTSIDE_PERIOD = "outside the period"


def observation_losses(selected: pd.DataFrame, receptors: pd.DataFrame, missing=None, days=None) -> pd.DataFrame:
    """The observations of ``selected.csv`` that do not reach the inversion, one row each, with the
    reason — the same matching as `inversion.state.match_observations` (receptor released in the
    observation's hour at its site, with a footprint) and the period days of `build_problem`.

    Columns ``site, time, reason, receptor_id``; reasons: ``no receptor``, ``receptor without
    footprint`` (HYSPLIT failed or no footprint file: the Jacobian's ``missing`` flag; the receptor id
    is given so the report can tell the two apart with footprints/failures.csv), ``outside the
    period``.
    """
    cols = ["site", "time", "reason", "receptor_id"]
    if selected is None or len(selected) == 0:
        return pd.DataFrame(columns=cols)
    rt = pd.DatetimeIndex(pd.to_datetime(receptors["time"], utc=True)).tz_localize(None).floor("h")
    rec = pd.DataFrame({"site": receptors["site"].astype(str).to_numpy(), "hour": rt,
                        "receptor_id": (receptors["receptor_id"].astype(str).to_numpy()
                                        if "receptor_id" in receptors else np.arange(len(receptors)).astype(str)),
                        "has_foot": ~(np.zeros(len(receptors), bool) if missing is None
                                      else np.asarray(missing, bool))})
    # per (site, hour): any receptor with a footprint? else the first receptor's id
    g = rec.sort_values("has_foot", ascending=False, kind="stable").drop_duplicates(["site", "hour"])
    ot = pd.DatetimeIndex(pd.to_datetime(selected["time"], utc=True)).tz_localize(None)
    obs = pd.DataFrame({"site": selected["site"].astype(str).to_numpy(), "hour": ot.floor("h"), "time": ot})
    m = obs.merge(g, on=["site", "hour"], how="left")
    reason = np.full(len(m), "", dtype=object)
    reason[m["receptor_id"].isna().to_numpy()] = LOSS_NO_RECEPTOR
    reason[(m["has_foot"] == False).to_numpy()] = LOSS_NO_FOOTPRINT  # noqa: E712 (NaN stays)
    if days is not None:
        dayset = set(pd.DatetimeIndex(pd.to_datetime(list(days))).normalize())
        out_p = np.array([t.normalize() not in dayset for t in ot])
        reason[(reason == "") & out_p] = LOSS_OUTSIDE_PERIOD
    lost = reason != ""
    out = pd.DataFrame({"site": m["site"].to_numpy()[lost],
                        "time": pd.DatetimeIndex(m["time"].to_numpy()[lost]).strftime("%Y-%m-%dT%H:%M:%S"),
                        "reason": reason[lost],
                        "receptor_id": m["receptor_id"].where(m["receptor_id"].notna(), "").to_numpy()[lost]})
    return out[cols].reset_index(drop=True)
