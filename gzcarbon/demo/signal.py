"""The demo world's true hourly signal at every site and inlet.

For each selected receptor (top inlet, well-mixed hours) the enhancement is the footprint-weighted
true flux, ``H_truth @ x_truth``, where ``H_truth`` is the Jacobian of the truth's *own* footprints
(other seed, more particles, HYSPLIT-STILT wind and mixed-layer-height errors:
:class:`gzcarbon.demo.truth_errors.TruthTransport`), not the inversion's; how much the two differ
at the receptors is measured by :func:`transport_difference` and recorded beside the signal. Hours and inlets that have no footprint (night, the tower's lower
inlet, a receptor HYSPLIT failed on) get a documented *proxy* so the raw analyser files cover whole
days as a real instrument would: the site's afternoon enhancement of that day scaled by a
boundary-layer factor (``PROXY_LAYER_FACTOR`` by local hour) and, for lower inlets, by
``LOWER_INLET_FACTOR``. Proxy hours are marked ``source = proxy``; the selection never uses them.

Transport noise (the model-data mismatch the inversion has to live with) is drawn per hour as
N(0, sqrt(TRANSPORT_NOISE_PPM² + (TRANSPORT_NOISE_REL · enhancement)²)).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from gzcarbon.demo.truth_errors import TRUTH_ERRORS

#: the random model-data mismatch of the pre-registered error model (gzcarbon.demo.truth_errors)
TRANSPORT_NOISE_PPM = TRUTH_ERRORS.noise_ppm
TRANSPORT_NOISE_REL = TRUTH_ERRORS.noise_rel
LOWER_INLET_FACTOR = 1.25

# Boundary-layer factor by local hour: shallow night layers concentrate surface emissions.
PROXY_LAYER_FACTOR = np.array(
    [3.0, 3.1, 3.2, 3.3, 3.3, 3.2, 3.0, 2.6, 2.0, 1.5, 1.2, 1.05,
     1.0, 1.0, 1.0, 1.0, 1.1, 1.4, 1.9, 2.3, 2.6, 2.8, 2.9, 3.0]
)


def receptor_enhancements(H, truth_flux: np.ndarray) -> np.ndarray:
    """Footprint-weighted truth, ppm, one value per Jacobian row.

    ``truth_flux`` is (time, lat, lon) on the Jacobian's hourly axis and grid, µmol m-2 s-1.
    """
    x = np.ascontiguousarray(truth_flux, dtype=np.float64).reshape(-1)
    if x.size != H.shape[1]:
        raise ValueError(
            f"truth flux has {x.size} elements but the Jacobian has {H.shape[1]} columns: "
            "the truth and the Jacobian must share the hourly axis and the grid"
        )
    return np.asarray(H @ x).ravel()


def truth_signal(receptors: pd.DataFrame, enhancement: np.ndarray, has_footprint: np.ndarray,
                 sites: list[dict], hours: pd.DatetimeIndex, background: pd.Series,
                 utc_offset: int, seed: int) -> pd.DataFrame:
    """Hourly background, enhancement and noise for every site, inlet and hour in ``hours``."""
    rng = np.random.default_rng(seed)
    rec = receptors.copy()
    rec["hour"] = pd.to_datetime(rec["time"]).dt.floor("h")
    rec["enh"] = enhancement
    rec["ok"] = has_footprint
    rows = []
    local_hour = ((hours.hour + utc_offset) % 24).to_numpy()
    local_day = (hours + pd.Timedelta(hours=utc_offset)).floor("D")
    bg = background.reindex(hours).interpolate(limit_direction="both").to_numpy()
    for site in sites:
        heights = sorted((inlet["height"] for inlet in site["inlets"]), reverse=True)
        top = heights[0]
        r = rec[(rec["site"] == site["id"]) & rec["ok"]].set_index("hour")["enh"]
        # Afternoon reference per local day: mean of that day's footprint-based values.
        r_day = r.groupby((r.index + pd.Timedelta(hours=utc_offset)).floor("D")).mean()
        fallback = float(r.mean()) if len(r) else 5.0
        ref = np.array([r_day.get(d, fallback) for d in local_day])
        for h in heights:
            enh = ref * PROXY_LAYER_FACTOR[local_hour]
            src = np.array(["proxy"] * len(hours), dtype=object)
            if h == top:
                idx = hours.get_indexer(r.index)
                keep = idx >= 0
                enh[idx[keep]] = r.to_numpy()[keep]
                src[idx[keep]] = "footprint"
            else:
                enh = enh * LOWER_INLET_FACTOR
            sd = np.sqrt(TRANSPORT_NOISE_PPM**2 + (TRANSPORT_NOISE_REL * np.abs(enh)) ** 2)
            noise = rng.normal(0.0, 1.0, len(hours)) * sd
            rows.append(pd.DataFrame({
                "site": site["id"], "intake_height": h, "time": hours,
                "background": bg, "enhancement": enh, "noise": noise, "source": src,
            }))
    out = pd.concat(rows, ignore_index=True)
    out["time"] = out["time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return out


def transport_difference(receptors: pd.DataFrame, enh_truth: np.ndarray, enh_inversion: np.ndarray,
                         has_truth: np.ndarray, has_inversion: np.ndarray) -> dict:
    """How far the truth's transport puts the true signal from the inversion's, per site and in all.

    Over the receptors that have both footprints: number, mean and RMS of
    ``H_truth x − H_inversion x`` (ppm), RMS of ``H_inversion x`` and the relative RMS difference
    (RMS difference / RMS enhancement). Also lists the receptors with an inversion footprint but no
    truth footprint (their hour is a proxy in the demo's files).
    """
    both = np.asarray(has_truth, bool) & np.asarray(has_inversion, bool)
    diff = np.asarray(enh_truth, float) - np.asarray(enh_inversion, float)
    site = receptors["site"].astype(str).to_numpy()

    def stats(m):
        n = int(m.sum())
        if n == 0:
            return {"n": 0}
        rms_enh = float(np.sqrt(np.mean(np.asarray(enh_inversion, float)[m] ** 2)))
        rms_diff = float(np.sqrt(np.mean(diff[m] ** 2)))
        return {"n": n, "mean_difference_ppm": float(diff[m].mean()), "rms_difference_ppm": rms_diff,
                "rms_enhancement_ppm": rms_enh,
                "relative_rms_difference": rms_diff / rms_enh if rms_enh > 0 else float("nan")}

    lost = np.asarray(has_inversion, bool) & ~np.asarray(has_truth, bool)
    return {"all": stats(both), "sites": {s: stats(both & (site == s)) for s in pd.unique(site)},
            "without_truth_footprint": receptors["receptor_id"].astype(str).to_numpy()[lost].tolist()
            if "receptor_id" in receptors else int(lost.sum())}
