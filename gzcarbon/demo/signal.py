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

import zlib

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


def signal_rows(receptors: pd.DataFrame, enhancement: np.ndarray, has_footprint: np.ndarray,
                sites: list[dict], hours: pd.DatetimeIndex, background: pd.Series,
                utc_offset: int) -> list[pd.DataFrame]:
    """Hourly background and enhancement (footprint or proxy) for every site and inlet in ``hours``,
    one table per site and inlet (top inlet first), without noise. Units are the signal's (ppm for
    CO2, ppb for the other gases)."""
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
            rows.append(pd.DataFrame({
                "site": site["id"], "intake_height": h, "time": hours,
                "background": bg, "enhancement": enh, "source": src,
            }))
    return rows


def noise_sigma(enhancement, absolute: float, relative: float) -> np.ndarray:
    """σ of the hourly model-data mismatch: √(absolute² + (relative · |enhancement|)²)."""
    return np.sqrt(absolute**2 + (relative * np.abs(np.asarray(enhancement, float))) ** 2)


def _finish(rows: list[pd.DataFrame]) -> pd.DataFrame:
    out = pd.concat(rows, ignore_index=True)[["site", "intake_height", "time", "background",
                                               "enhancement", "noise", "source"]]
    out["time"] = out["time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return out


def truth_signal(receptors: pd.DataFrame, enhancement: np.ndarray, has_footprint: np.ndarray,
                 sites: list[dict], hours: pd.DatetimeIndex, background: pd.Series,
                 utc_offset: int, seed: int) -> pd.DataFrame:
    """Hourly background, enhancement and noise (ppm) for every site, inlet and hour in ``hours``."""
    rng = np.random.default_rng(seed)
    rows = signal_rows(receptors, enhancement, has_footprint, sites, hours, background, utc_offset)
    for df in rows:
        sd = noise_sigma(df["enhancement"].to_numpy(), TRANSPORT_NOISE_PPM, TRANSPORT_NOISE_REL)
        df["noise"] = rng.normal(0.0, 1.0, len(df)) * sd
    return _finish(rows)


def gas_truth_signal(receptors: pd.DataFrame, enhancement: np.ndarray, has_footprint: np.ndarray,
                     sites: list[dict], hours: pd.DatetimeIndex, background: pd.Series,
                     utc_offset: int, seed: int, gas: str, co2_signal: pd.DataFrame,
                     noise: tuple[float, float, float]) -> pd.DataFrame:
    """The CO2 table's layout for another gas (ppb): ``enhancement`` = ``H_truth @ flux`` of the gas
    (nmol m-2 s-1 with the CO2 footprints), the same proxy for hours without a footprint, and a
    mismatch N(0, √(abs² + (rel · enh)²)) whose standard normal part is ``ρ z_CO2 + √(1 − ρ²) z``
    with ``z_CO2`` the CO2 mismatch of the same site, inlet and hour over its own σ.

    ``noise``: (abs ppb, relative, ρ); ``co2_signal``: the CO2 truth_signal table of the same run.
    """
    absolute, relative, rho = (float(v) for v in noise)
    if not -1.0 <= rho <= 1.0:
        raise ValueError(f"{gas} noise correlation with CO2 {rho} is not in [-1, 1]")
    rows = signal_rows(receptors, enhancement, has_footprint, sites, hours, background, utc_offset)
    out = pd.concat(rows, ignore_index=True)
    co2 = co2_signal.copy()
    co2["time"] = pd.to_datetime(co2["time"], utc=True).dt.tz_convert(None)
    co2["z"] = co2["noise"] / noise_sigma(co2["enhancement"].to_numpy(), TRANSPORT_NOISE_PPM, TRANSPORT_NOISE_REL)
    key = ["site", "intake_height", "time"]
    z_co2 = out[key].merge(co2[key + ["z"]], on=key, how="left")["z"].to_numpy()
    if np.isnan(z_co2).any():
        i = int(np.flatnonzero(np.isnan(z_co2))[0])
        raise ValueError(f"{gas} truth signal: the CO2 truth signal has no row for site "
                         f"{out['site'].iloc[i]} inlet {out['intake_height'].iloc[i]:g} m at "
                         f"{out['time'].iloc[i]}; rebuild truth_signal.csv from the same receptors")
    rng = np.random.default_rng([int(seed), zlib.crc32(gas.encode())])
    z = rho * z_co2 + np.sqrt(1.0 - rho * rho) * rng.normal(0.0, 1.0, len(out))
    out["noise"] = z * noise_sigma(out["enhancement"].to_numpy(), absolute, relative)
    return _finish([out])


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


def truth_state(inner_flux: np.ndarray, outer_flux: np.ndarray | None, nested) -> np.ndarray:
    """(time, n_cells) true flux in the nested state's cell order (`gzcarbon.grid.NestedGrid`):
    the inner (time, lat, lon) field, then the outer (time, olat, olon) field's cells outside the
    hole. Without an outer grid, the inner field alone."""
    if nested.outer is None:
        return np.asarray(inner_flux, float).reshape(len(inner_flux), -1)
    if outer_flux is None:
        raise ValueError("the nested state has outer cells but no outer truth was given (truth_outer.nc)")
    if np.asarray(outer_flux).shape[1:] != nested.outer.shape:
        raise ValueError(f"outer truth on {np.asarray(outer_flux).shape[1:]} cells, the outer grid has "
                         f"{nested.outer.shape}: rebuild truth_outer.nc with the run's outer_grid")
    return nested.state_vector(np.asarray(inner_flux, float), np.asarray(outer_flux, float))


def state_for_jacobian(inner_flux: np.ndarray, outer_flux: np.ndarray | None, nested,
                       n_columns: int):
    """``(state, nested, inner_only)``: the true state (:func:`truth_state`) for a Jacobian of
    ``n_columns`` columns. A Jacobian built without the outer grid (columns for the inner cells
    only) gets the inner state and ``NestedGrid(inner, None)``, with ``inner_only`` True (the
    caller warns: the outer truth then does not reach the signal)."""
    inner_only = bool(nested.enabled and n_columns == len(inner_flux) * nested.n_inner)
    if inner_only:
        nested = type(nested)(nested.inner, None)
    return truth_state(inner_flux, outer_flux, nested), nested, inner_only


def split_enhancement(H, state: np.ndarray, masks: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """{part: H @ (state restricted to the part's cells)} per Jacobian row (ppm). ``state`` is
    (time, n_cells) on the Jacobian's hourly axis; each mask is (n_cells,) weights in [0, 1]
    (a cell shared by the city and its neighbours counts by its area fraction)."""
    nt, nc = state.shape
    if nt * nc != H.shape[1]:
        raise ValueError(f"the truth state has {nt} hours x {nc} cells = {nt * nc} values but the "
                         f"Jacobian has {H.shape[1]} columns: the truth, the outer grid and the "
                         "Jacobian must share the hourly axis and the nested grid")
    return {k: np.asarray(H @ (state * np.asarray(m, float)[None]).ravel()).ravel() for k, m in masks.items()}


def signal_budget_table(receptors: pd.DataFrame, parts: dict[str, np.ndarray], has_footprint: np.ndarray,
                        left_domain: np.ndarray | None = None) -> pd.DataFrame:
    """Per site (and ``all``): the mean over the receptors with a footprint of each part of the true
    enhancement (ppm), the total, the shares of the total from outside the city (``outside_city_share``
    = 1 − city / total) and from the outer cells (``outer_share``), and the mean share of particles
    that left the met domain before the end of the run (``left_domain``).

    ``parts`` keys: ``city`` (district cells), ``inner_not_city`` (inner cells outside the districts),
    and any number of outer parts (``outer_*``)."""
    ok = np.asarray(has_footprint, bool)
    site = receptors["site"].astype(str).to_numpy()
    outer_keys = [k for k in parts if k.startswith("outer")]
    rows = {}
    for s in [*pd.unique(site[ok]), "all"]:
        m = ok & ((site == s) if s != "all" else True)
        if not m.any():
            continue
        r = {"n_receptors": int(m.sum())}
        r.update({f"{k}_ppm": float(np.mean(v[m])) for k, v in parts.items()})
        total = float(np.mean(sum(v[m] for v in parts.values())))
        r["total_ppm"] = total
        outer = float(np.mean(sum(parts[k][m] for k in outer_keys))) if outer_keys else 0.0
        r["outside_city_share"] = (total - r["city_ppm"]) / total if total else float("nan")
        r["outer_share"] = outer / total if total else float("nan")
        if left_domain is not None:
            ld = np.asarray(left_domain, float)[m]
            r["left_domain"] = float(np.nanmean(ld)) if np.isfinite(ld).any() else float("nan")
            r["left_domain_max"] = float(np.nanmax(ld)) if np.isfinite(ld).any() else float("nan")
        rows[s] = r
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "site"
    return out
