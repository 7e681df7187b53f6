"""Does the nested state help? The OSSE of issue 19 on a finished nested demo run.

    python tools/osse_nested.py RUN_DIR [--draws 20] [--seed 1] [--month 2025-01] [--set key=value ...]

RUN_DIR holds ``results/<month>`` and ``data/demo/<month>`` of a demo run made with ``outer_grid``
enabled (the default): the inversion's nested Jacobian, the truth's own nested Jacobian
(``truth_transport/jacobian_hourly.npz``), ``truth.nc`` and ``truth_outer.nc``. The observations are
the truth seen through the truth's transport — the city *and* the delta, ``H_truth x_truth`` over the
nested state — plus the run's background error (true background − the background the run used)
and ``--draws`` draws of the demo's transport noise (`gzcarbon.demo.signal`). The same data vectors
are inverted twice with the pipeline's own problem and settings (`inversion.run`):

* **nested**: the run's state (1 km city cells and the outer cells, prior from the coarse inventory);
* **city only**: the same problem with the outer columns dropped (the Jacobian's inner cells and the
  inner prior): the neighbours' signal is in the data but not in the model, as before issue 19.

Per case: the city total's error (posterior − truth, kt, mean and spread over the draws), the mean
posterior σ, and the share of draws within 1σ and 2σ (a Gaussian: 68 % / 95 %). Only the demo world
has a truth. The solve is the pipeline's (`inversion.solve` with ``y_ensemble``: one factorisation
per case).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
import xarray as xr


def inner_columns(H, n_hours: int, n_inner: int) -> sp.csr_matrix:
    """The columns of an hourly nested Jacobian (``hour * n_cells + cell``) that belong to the inner
    cells (``cell < n_inner``), renumbered ``hour * n_inner + cell``: the city-only Jacobian."""
    H = sp.csr_matrix(H)
    if H.shape[1] % n_hours:
        raise ValueError(f"Jacobian with {H.shape[1]} columns is not {n_hours} hours of whole cells")
    n_cells = H.shape[1] // n_hours
    if n_inner > n_cells:
        raise ValueError(f"{n_inner} inner cells but the Jacobian has {n_cells} cells per hour")
    cols = (np.arange(n_hours)[:, None] * n_cells + np.arange(n_inner)[None, :]).ravel()
    return sp.csr_matrix(H[:, cols])


def city_only_inputs(inputs):
    """`inversion.run.InversionInputs` of the same month without the outer domain: the Jacobian's
    inner columns, and every field about the outer cells (a name holding ``outer``) reset to its
    default."""
    ny, nx = len(inputs.lat), len(inputs.lon)
    n_hours = len(inputs.hours)
    changes = {"H_hourly": inner_columns(inputs.H_hourly, n_hours, ny * nx)}
    for f in dataclasses.fields(inputs):
        if "outer" in f.name:
            if f.default is not dataclasses.MISSING:
                changes[f.name] = f.default
            elif f.default_factory is not dataclasses.MISSING:
                changes[f.name] = f.default_factory()
    return dataclasses.replace(inputs, **changes)


def city_error_ensemble(inputs, inv, start, end, utc_offset, enh_true, bg_true, z, city_truth_t,
                        ring_truth_t=None):
    """(error of the city total per draw (t), posterior σ (t), prior error (t)) of the pipeline's
    problem of ``inputs``, for the data ``enh_true − H x_a + (bg_true − background) + noise``
    (``enh_true``: the true enhancement per Jacobian row; ``z``: standard normal draws (n_rows × n)
    scaled by the demo's noise σ). Also the number of observations used and the prior σ (t). With
    ``ring_truth_t`` (the outer ring's true total) on a nested state, last, the outer ring's
    ``{error (per draw), sigma, prior_error, prior_sigma}`` (else None)."""
    from gzcarbon.demo.signal import TRANSPORT_NOISE_PPM, TRANSPORT_NOISE_REL, noise_sigma
    from gzcarbon.names import CITY
    from inversion import SolveOptions, solve
    from inversion.aggregate import totals_tonnes
    from inversion.run import build_aggregation, build_inversion_problem, period_axis, screen_observations

    mask, days = period_axis(inputs.hours, start, end)
    prob = build_inversion_problem(inputs, inv, days, utc_offset)
    agg = build_aggregation(inputs, prob, mask, days, inv)
    used = screen_observations(prob, inv).used
    obs_err = prob.obs_err[np.ix_(used, used)] if np.ndim(prob.obs_err) == 2 else prob.obs_err[used]
    rows = prob.obs["row"].to_numpy()
    enh = np.asarray(enh_true, float)[rows]
    t_obs = pd.DatetimeIndex(prob.obs["time"])
    bgt = np.interp(t_obs.asi8, pd.DatetimeIndex(bg_true.index).asi8, bg_true.to_numpy(float))
    bg_err = bgt - prob.obs["background"].to_numpy(float)
    sd = noise_sigma(enh, TRANSPORT_NOISE_PPM, TRANSPORT_NOISE_REL)
    Y = (enh - prob.prior_enhancement + bg_err)[:, None] + z[rows] * sd[:, None]
    A = agg.A
    if agg.outer is not None:  # the outer ring's row too (nested state)
        A = sp.vstack([sp.csr_matrix(agg.A), sp.csr_matrix(agg.outer.A)[0]], format="csr")
    res = solve(prob.H[used], prob.y[used], prob.x_prior, prob.Q, obs_err, aggregate=A,
                options=SolveOptions(seed=1, y_ensemble=Y[used]))
    i = agg.names.index(CITY)
    city_w = sp.csr_matrix(agg.Wall[i])[:, : len(inputs.lat) * len(inputs.lon)]
    prior_t = float(totals_tonnes(inputs.prior_flux, city_w, mask)[0])
    post = prior_t + np.asarray(res.agg_post_mean_ensemble)[i]
    if agg.outer is not None and ring_truth_t is not None:
        from inversion.outer import hourly_state

        W = agg.outer.W_t[0]
        f = hourly_state(inputs.prior_flux, inputs.outer.prior).reshape(len(inputs.hours), -1)
        ring_prior = float((W @ f[np.asarray(mask, bool)].sum(axis=0))[0])
        k = A.shape[0] - 1
        ring = {"error": ring_prior + np.asarray(res.agg_post_mean_ensemble)[k] - ring_truth_t,
                "sigma": float(np.asarray(res.agg_post_sigma)[k]), "prior_error": ring_prior - ring_truth_t,
                "prior_sigma": float(np.asarray(res.agg_prior_sigma)[k])}
    else:
        ring = None
    return (post - city_truth_t, float(np.asarray(res.agg_post_sigma)[i]), prior_t - city_truth_t,
            int(used.sum()), float(np.asarray(res.agg_prior_sigma)[i]), ring)


def summary(err: np.ndarray, sigma: float) -> dict:
    z = np.asarray(err, float) / sigma
    return {"mean_error_kt": float(np.mean(err) / 1e3), "sd_error_kt": float(np.std(err) / 1e3),
            "sigma_kt": sigma / 1e3, "within_1sigma": float(np.mean(np.abs(z) < 1)),
            "within_2sigma": float(np.mean(np.abs(z) < 2))}


def load_nested_truth(D: Path, inputs, nested):
    """(true state (time, n_cells) on the run's hours, the truth's hourly nested Jacobian)."""
    from gzcarbon.demo.signal import truth_state
    from transport.jacobian import load_jacobian

    outer = None
    if nested.enabled:
        path = D / "truth_outer.nc"
        if not path.exists():
            sys.exit(f"{path}: missing — run the demo with outer_grid enabled (rule demo_delta)")
        with xr.open_dataset(path) as ds:
            outer = ds["flux_outer"].sel(time=inputs.hours.values).values
    state = truth_state(inputs.truth_flux, outer, nested)
    jac = load_jacobian(D / "truth_transport" / "jacobian_hourly.npz")
    if jac.H.shape[1] != state.size:
        sys.exit(f"{D}/truth_transport/jacobian_hourly.npz has {jac.H.shape[1]} columns, the nested truth "
                 f"{state.size} values: the truth's footprints were made without the outer grid; re-run the demo")
    return state, jac


def main(argv=None, prog: str | None = None) -> int:
    from gzcarbon.cli.osse import load_run, load_settings, run_config_file
    from gzcarbon.grid import NestedGrid
    from inversion.aggregate import totals_tonnes
    from inversion.run import build_aggregation, build_inversion_problem, period_axis

    ap = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--month", default=None)
    ap.add_argument("--draws", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--config", type=Path, default=None)
    args = ap.parse_args(argv)
    config = args.config or run_config_file(args.run_dir, args.month)
    cfg, inv = load_settings(config, args.set)
    nested = NestedGrid.from_config(cfg)
    if not nested.enabled:
        sys.exit(f"{config}: outer_grid is disabled; the comparison needs a nested run")
    inputs, R, truth_path, start, end, bg_truth = load_run(args.run_dir, args.month, cfg, inv)
    state, jac = load_nested_truth(truth_path.parent, inputs, nested)
    ids = jac.receptors["receptor_id"].astype(str).to_numpy()
    if not np.array_equal(ids, inputs.receptors["receptor_id"].astype(str).to_numpy()):
        sys.exit("the truth's Jacobian holds other receptors than the run's; re-run the demo")
    enh_true = np.asarray(jac.H @ state.ravel()).ravel()
    utc = float(cfg.stations.utc_offset_hours)
    mask, days = period_axis(inputs.hours, start, end)
    prob = build_inversion_problem(inputs, inv, days, utc)
    agg = build_aggregation(inputs, prob, mask, days, inv)
    from gzcarbon.names import CITY

    city_w = sp.csr_matrix(agg.Wall[agg.names.index(CITY)])[:, : len(inputs.lat) * len(inputs.lon)]
    city_truth = float(totals_tonnes(inputs.truth_flux, city_w, mask)[0])
    ring_truth = None
    if agg.outer is not None:
        ring_truth = float((agg.outer.W_t[0] @ state.reshape(len(inputs.hours), -1)[np.asarray(mask, bool)]
                            .sum(axis=0))[0])
    z = np.random.default_rng(args.seed).standard_normal((len(enh_true), args.draws))
    rows, ring_rows = {}, None
    for name, inp in (("nested", inputs), ("city only", city_only_inputs(inputs))):
        err, sig, prior_err, n_obs, sig_prior, ring = city_error_ensemble(
            inp, inv, start, end, utc, enh_true, bg_truth, z, city_truth, ring_truth if name == "nested" else None)
        ring_rows = ring_rows if ring is None else ring
        rows[name] = {**summary(err, sig), "prior_error_kt": prior_err / 1e3, "n_obs": n_obs,
                      "prior_sigma_kt": sig_prior / 1e3}
    print(f"run {R}: {args.draws} noise draws on the nested truth through the truth's transport; "
          f"{nested.n_outer} outer cells; true city total {city_truth / 1e3:.1f} kt")
    print(f"{'state':<10}{'obs':>5}{'prior err':>11}{'σ prior':>9}{'mean err':>10}{'sd err':>8}{'σ post':>8}"
          f"{'≤1σ':>6}{'≤2σ':>6}   (kt)")
    for name, r in rows.items():
        print(f"{name:<10}{r['n_obs']:>5}{r['prior_error_kt']:>+11.1f}{r['prior_sigma_kt']:>9.1f}{r['mean_error_kt']:>+10.1f}"
              f"{r['sd_error_kt']:>8.1f}{r['sigma_kt']:>8.1f}{r['within_1sigma']:>6.0%}{r['within_2sigma']:>6.0%}")
    if ring_rows is not None:
        g = ring_rows
        r = summary(g["error"], g["sigma"])
        print(f"outer ring of the nested state (true {ring_truth / 1e3:.0f} kt): prior error {g['prior_error'] / 1e3:+.0f} "
              f"(σ {g['prior_sigma'] / 1e3:.0f}), posterior mean error {r['mean_error_kt']:+.0f}, sd "
              f"{r['sd_error_kt']:.1f}, σ post {r['sigma_kt']:.0f} kt, within 1σ / 2σ "
              f"{r['within_1sigma']:.0%} / {r['within_2sigma']:.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
