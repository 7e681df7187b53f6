"""Fossil/biogenic CO2 split with and without CO: an OSSE of the joint CO2/CO inversion on a finished
demo run (docs/gases.md).

    python tools/gas_osse.py RUN_DIR [--draws 20] [--seed 1] [--month 2025-01] [--rho 0.5]
                             [--ratio-corr-km 50] [--transport truth|inversion] [--set key=value ...]
    python tools/gas_osse.py RUN_DIR --gas ch4 [--draws 20] ...      # CH4 city and district recovery

RUN_DIR holds ``results/<month>`` and ``data/demo/<month>`` of a finished demo run (as for
tools/osse.py). The joint problem (`inversion.joint_run.build_joint_run`) is built with the run's
configuration (`inversion`, `gases.co`, `inversion.joint_co`, the ratio table
`inputs.emission_ratios_co`), the run's prior sectors (`prior.nc`), its CO2 observations (the rows its
innovation screen kept) and a CO observation at every CO2 observation (the analyser measures both). It
is solved with and without the CO rows, and both gains are applied to

* ``--draws`` data vectors made from the demo truth through the TRUTH's own transport
  (``data/demo/<month>/truth_transport/jacobian_hourly.npz``; ``--transport inversion``: the identical
  twin): CO2 = H_truth·(true flux) + the run's background error + the demo's noise; CO = H_truth·(true
  CO flux) + a CO background error + the demo's CO noise, correlated with the CO2 noise of the same
  receptor (``gzcarbon.demo.truth_errors.GAS_TRUTH_ERRORS``), and
* the same without noise and background error (``perfect``).

The true CO flux is ``truth_co.nc`` of the demo when it exists; otherwise it is built here by the
demo's rule: the truth's CO2 sectors × the ratio table × (1 + the pre-registered ratio error of each
sector), the unreported site at the true ratio of ``co_unreported_sector``. The CO background error is
the run's CO2 background error × (CO day-to-day σ / CO2 day-to-day σ of the truths' backgrounds): the
same air mass.

It prints, per district and for the city, fossil and biogenic CO2 (prior error, posterior error with
perfect data, mean and mean |error| over the draws, σ_prior, σ_post, share of draws within 1σ / 2σ),
CO2-only and joint, the posterior correlation of fossil and biogenic CO2, and a markdown table for
docs/gases.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import scipy.sparse as sp
import xarray as xr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # a checkout without `pip install -e .`

from gzcarbon.cli.osse import load_run, load_settings, run_config_file  # noqa: E402
from inversion.joint import read_ratio_file  # noqa: E402


def read_fields(path: Path, hours, what: str) -> dict:
    """{sector: hourly field} of every `flux_<sector>` of a flux file."""
    from inversion.run import prior_sector_names, read_flux

    return {k: read_flux(path, what, hours, var=f"flux_{k}")[0] for k in prior_sector_names(path)}


def true_co_flux(D: Path, truth: dict, table, hours) -> tuple[np.ndarray, str]:
    """(true CO flux nmol m-2 s-1 (n_hours, ny, nx), where it came from)."""
    from gzcarbon.demo.truth_errors import GAS_TRUTH_ERRORS
    from inversion.run import read_flux

    path = D / "truth_co.nc"
    if path.exists():
        return read_flux(path, "truth_co", hours)[0], str(path)
    err = GAS_TRUTH_ERRORS.co_ratio_error
    r = {s: float(table.loc[s, "ratio_mol_per_mol"]) * (1.0 + float(err.get(s, 0.0))) for s in table.index}
    co = np.zeros_like(next(iter(truth.values())))
    for k, f in truth.items():
        if k == "bio":
            continue
        co += 1000.0 * r[GAS_TRUTH_ERRORS.co_unreported_sector if k == "unreported" else k] * f
    return co, ("truth CO2 sectors x ratio table x (1 + pre-registered error " +
                ", ".join(f"{s} {e:+.0%}" for s, e in err.items()) + ")")


def co_bg_scale() -> float:
    """ppb of CO background error per ppm of CO2 background error: the truths' day-to-day σ ratio."""
    from gzcarbon.demo.truth_errors import GAS_TRUTH_ERRORS, TRUTH_ERRORS

    return GAS_TRUTH_ERRORS.co_background_day_sigma_ppb / TRUTH_ERRORS.background_day_sigma_ppm


def synthetic_co_selected(selected: pd.DataFrame, bg_truth: pd.Series, scale: float) -> pd.DataFrame:
    """CO rows at every CO2 observation (the analyser measures both): selected.csv columns with value
    and background 0 (the OSSE's data vectors replace the innovations), background σ = scale × CO2's,
    and ``bg_error_co2``: the run's CO2 background error at that hour (truth − estimate, ppm)."""
    co = selected.copy()
    t = pd.DatetimeIndex(co["time"])
    bgt = np.interp(t.asi8, pd.DatetimeIndex(bg_truth.index).asi8, bg_truth.to_numpy(float))
    co["bg_error_co2"] = bgt - co["background"].to_numpy(float)
    co["background_sigma"] = scale * np.nan_to_num(co["background_sigma"].to_numpy(float))
    co["value"], co["background"], co["value_std_dev"] = 0.0, 0.0, 0.0
    return co


def data_draws(n_draws: int, enh2, prior2, bg2, enh1, prior1, bg1, pair, rng):
    """Y (n2 + n1) × (1 + n_draws): [perfect | noisy] innovations of CO2 (ppm) and CO (ppb). Perfect: the
    true enhancement (truth's transport) − the prior's (inversion's); noisy: + background error + the
    demo's hourly noise, the CO noise correlated with the CO2 noise of the same receptor (``pair``)."""
    from gzcarbon.demo.truth_errors import GAS_TRUTH_ERRORS, TRUTH_ERRORS

    a1, r1, rho = GAS_TRUTH_ERRORS.noise("co")
    sd2 = np.sqrt(TRUTH_ERRORS.noise_ppm**2 + (TRUTH_ERRORS.noise_rel * enh2) ** 2)
    sd1 = np.sqrt(a1**2 + (r1 * enh1) ** 2)
    pair = np.asarray(pair, np.int64)
    e2 = rng.standard_normal((enh2.size, n_draws))
    e1 = rng.standard_normal((enh1.size, n_draws))
    p = pair >= 0
    e1[p] = rho * e2[pair[p]] + np.sqrt(1 - rho**2) * e1[p]
    d2, d1 = enh2 - prior2, enh1 - prior1
    noisy = np.vstack([(d2 + bg2)[:, None] + sd2[:, None] * e2, (d1 + bg1)[:, None] + sd1[:, None] * e1])
    return np.column_stack([np.r_[d2, d1], noisy])


NESTED_MSG = ("{run}: a nested run (config outer_grid: outer cells in the state); tools/gas_osse.py draws its "
              "noise ensembles on the single grid only. Run it on a run with --config 'outer_grid={{\"enabled\": "
              "false}}', or read one realisation of a nested run with tools/nested_gases.py (docs/gases.md)")


def _single_grid(loaded: tuple, run_dir) -> tuple:
    """``loaded`` (`gzcarbon.cli.osse.load_run`), or exit naming the run when its state is nested."""
    if getattr(loaded[0], "outer", None) is not None:
        sys.exit(NESTED_MSG.format(run=run_dir))
    return loaded


def truth_jacobian(D: Path, inputs, which: str):
    """The hourly Jacobian of every receptor in the truth's transport (``which`` = truth) or the
    inversion's (identical twin)."""
    from gzcarbon.cli.osse import load_truth_jacobian

    every_row = SimpleNamespace(obs=pd.DataFrame({"row": np.arange(len(inputs.receptors))}), H_hourly=inputs.H_hourly)
    return sp.csr_matrix(load_truth_jacobian(D, inputs, every_row, which))


def summarise(names, res, prior_t, truth_t, label):
    """Per row: errors of the posterior fossil and bio totals over the draws (t)."""
    out = {}
    for q in ("fossil", "bio"):
        post = prior_t[q][:, None] + res.agg_post_mean_ensemble[res._sl(q)]  # t
        err = post - truth_t[q][:, None]
        sig = res.sigma(q)
        z = err[:, 1:] / sig[:, None]
        out[q] = pd.DataFrame({
            "prior_err": prior_t[q] - truth_t[q], "perfect_err": err[:, 0], "mean_err": err[:, 1:].mean(axis=1),
            "mean_abs_err": np.abs(err[:, 1:]).mean(axis=1), "sd_err": err[:, 1:].std(axis=1),
            "sigma_prior": res.sigma(q, prior=True), "sigma_post": sig,
            "within1": np.mean(np.abs(z) < 1, axis=1), "within2": np.mean(np.abs(z) < 2, axis=1)}, index=names)
    out["corr"] = pd.Series(res.correlation("fossil", "bio"), index=names)
    out["label"] = label
    return out


def print_summary(s) -> None:
    print(f"--- {s['label']}")
    print(f"{'':<12}{'prior err':>10}{'perfect':>9}{'mean err':>10}{'|err|':>8}{'σ prior':>9}{'σ post':>8}"
          f"{'≤1σ':>6}{'≤2σ':>6}   (kt CO2)")
    for q in ("fossil", "bio"):
        print(f"{q}")
        for name, r in s[q].iterrows():
            print(f"  {name:<10}{r.prior_err / 1e3:>+10.1f}{r.perfect_err / 1e3:>+9.1f}{r.mean_err / 1e3:>+10.1f}"
                  f"{r.mean_abs_err / 1e3:>8.1f}{r.sigma_prior / 1e3:>9.1f}{r.sigma_post / 1e3:>8.1f}"
                  f"{r.within1:>6.0%}{r.within2:>6.0%}")
    print("posterior correlation fossil/bio: " + ", ".join(f"{n} {v:+.2f}" for n, v in s["corr"].items()))


def markdown(names, with_co, without, n_draws) -> str:
    """The docs/gases.md table: district fossil CO2 without / with CO."""
    lines = ["| district | fossil prior err (kt) | without CO: mean \\|err\\| / σ_post (kt), ≤1σ / ≤2σ | "
             "with CO: mean \\|err\\| / σ_post (kt), ≤1σ / ≤2σ | corr(fossil, bio) without / with |",
             "|---|---:|---|---|---|"]
    for n in names:
        a, b = without["fossil"].loc[n], with_co["fossil"].loc[n]
        lines.append(f"| {n} | {a.prior_err / 1e3:+.1f} | {a.mean_abs_err / 1e3:.1f} / {a.sigma_post / 1e3:.1f}, "
                     f"{a.within1:.0%} / {a.within2:.0%} | {b.mean_abs_err / 1e3:.1f} / {b.sigma_post / 1e3:.1f}, "
                     f"{b.within1:.0%} / {b.within2:.0%} | {without['corr'][n]:+.2f} / {with_co['corr'][n]:+.2f} |")
    nd = len(names) - 1
    for lab, s in (("without CO", without), ("with CO", with_co)):
        f = s["fossil"].iloc[:nd]
        lines.append(f"\n{lab}: districts pooled over {n_draws} draws: fossil ≤1σ {f.within1.mean():.0%}, ≤2σ "
                     f"{f.within2.mean():.0%}; Σ mean |err| {f.mean_abs_err.sum() / 1e3:.1f} kt "
                     f"(prior {np.abs(f.prior_err).sum() / 1e3:.1f} kt); median σ_post/σ_prior "
                     f"{np.median(f.sigma_post / f.sigma_prior):.2f}")
    return "\n".join(lines)


def gas_only_osse(args, gas: str) -> int:
    """District and city recovery of one gas's own inversion (``--gas ch4``): the run's
    ``results/<month>/<gas>/`` inputs, the gas's settings (`gases.<gas>` on the CO2 inversion's, as the
    pipeline's rule), ``--draws`` data vectors = the demo's true gas flux through the TRUTH's Jacobian
    + the run's background error (truth − estimate) + the demo's noise of the gas, and the perfect
    column; prints error, σ and coverage per district and for the city, and a markdown table."""
    from gzcarbon.demo.truth_errors import GAS_TRUTH_ERRORS
    from inversion import SolveOptions
    from inversion.run import build_inversion_problem, invert, load_inputs, period_axis, read_flux

    cfg, inv = load_settings(args.config, args.set)
    g = getattr(cfg.gases, gas)
    inv_gas = inv.model_copy(update={"prior_rel_sigma": g.prior_rel_sigma, "prior_floor_sigma": g.prior_floor_sigma,
                                     "obs_sigma_ppm": g.obs_sigma_ppb, "bg_sigma_ppm": g.bg_sigma_ppb})
    res_dirs = sorted(p for p in (args.run_dir / "results").glob("????-??") if (p / gas / "prior.nc").exists())
    if not res_dirs:
        sys.exit(f"{args.run_dir}/results/*/{gas}/prior.nc: no finished {gas} inversion here")
    R = res_dirs[0] if args.month is None else args.run_dir / "results" / args.month
    D = args.run_dir / "data" / "demo" / R.name
    districts = Path(cfg.districts_file)
    inputs = load_inputs(R / "jacobian_hourly.npz", R / gas / "obs" / "selected.csv", R / gas / "prior.nc",
                         districts if districts.is_absolute() else ROOT / districts, D / f"truth_{gas}.nc", inv_gas,
                         gas=gas)
    if getattr(inputs, "outer", None) is not None:
        sys.exit(NESTED_MSG.format(run=args.run_dir))
    hours = inputs.hours
    start = hours[0] + pd.Timedelta("1D")
    end = start + pd.Timedelta(days=int((hours[-1] + pd.Timedelta("1h") - hours[0]) / pd.Timedelta("1D")) - 1)
    utc = float(cfg.stations.utc_offset_hours)
    prob = build_inversion_problem(inputs, inv_gas, period_axis(hours, start, end)[1], utc)
    Ht = truth_jacobian(D, inputs, args.transport)[prob.obs["row"].to_numpy()]
    enh = Ht @ inputs.truth_flux.ravel()
    with xr.open_dataset(D / f"truth_{gas}.nc") as ds:
        bg_truth = ds["background"].to_series()
    t = pd.DatetimeIndex(prob.obs["time"])
    bg_err = np.interp(t.asi8, pd.DatetimeIndex(bg_truth.index).asi8, bg_truth.to_numpy(float)) \
        - prob.obs["background"].to_numpy(float)
    a, r, _ = GAS_TRUTH_ERRORS.noise(gas)
    rng = np.random.default_rng(args.seed)
    sd = np.sqrt(a**2 + (r * enh) ** 2)
    d = enh - prob.prior_enhancement
    Y = np.column_stack([d, (d + bg_err)[:, None] + sd[:, None] * rng.standard_normal((d.size, args.draws))])
    out = invert(inputs, inv_gas, start, end, solve_options=SolveOptions(seed=args.seed, y_ensemble=Y),
                 utc_offset_hours=utc, problem=prob)
    tab = out.districts.set_index("district")
    ens = tab["prior_t"].to_numpy()[:, None] + out.result.agg_post_mean_ensemble
    err = ens - tab["truth_t"].to_numpy()[:, None]
    sig = tab["posterior_sigma_t"].to_numpy()
    z = err[:, 1:] / sig[:, None]
    print(f"{gas} OSSE on {R}: {out.result.n_obs} observations, {args.draws} noise draws through the "
          f"{args.transport}'s transport; chi2_r of the run's data {out.diagnostics['chi2_reduced']:.2f}")
    print(f"| district | truth (t) | prior err (t) | perfect err (t) | draws: mean err / mean \\|err\\| (t) | "
          f"σ_prior / σ_post (t) | ≤1σ / ≤2σ |")
    print("|---|---:|---:|---:|---|---|---|")
    for i, n in enumerate(tab.index):
        print(f"| {n} | {tab['truth_t'].iloc[i]:.0f} | {tab['prior_t'].iloc[i] - tab['truth_t'].iloc[i]:+.0f} | "
              f"{err[i, 0]:+.0f} | {err[i, 1:].mean():+.0f} / {np.abs(err[i, 1:]).mean():.0f} | "
              f"{tab['prior_sigma_t'].iloc[i]:.0f} / {sig[i]:.0f} | {np.mean(np.abs(z[i]) < 1):.0%} / "
              f"{np.mean(np.abs(z[i]) < 2):.0%} |")
    nd = len(tab.index) - 1
    print(f"districts pooled: ≤1σ {np.mean(np.abs(z[:nd]) < 1):.0%}, ≤2σ {np.mean(np.abs(z[:nd]) < 2):.0%}; "
          f"Σ mean |err| {np.abs(err[:nd, 1:]).mean(axis=1).sum():.0f} t (prior "
          f"{np.abs(tab['prior_t'].to_numpy() - tab['truth_t'].to_numpy())[:nd].sum():.0f} t)")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--month", default=None)
    ap.add_argument("--draws", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rho", type=float, default=None, help="transport-error correlation CO2/CO in R "
                    "(default: inversion.joint_co.transport_error_correlation)")
    ap.add_argument("--ratio-corr-km", type=float, default=None,
                    help="correlation length of the ratio errors (default: inversion.joint_co.ratio_corr_length_km)")
    ap.add_argument("--transport", choices=("truth", "inversion"), default="truth")
    ap.add_argument("--gas", choices=("co", "ch4"), default="co",
                    help="co: the fossil/biogenic split with and without CO (default); ch4: recovery of the "
                         "run's own CH4 inversion")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override an inversion config key, e.g. --set bio_day_scale_sigma=0.2")
    ap.add_argument("--config", type=Path, default=None,
                    help="config file (default: the run's own configuration, stored in its flux product)")
    args = ap.parse_args(argv)
    if args.config is None:
        args.config = run_config_file(args.run_dir, args.month)
    if args.gas == "ch4":
        return gas_only_osse(args, "ch4")

    from inversion.aggregate import totals_tonnes
    from inversion.joint import solve_joint
    from inversion.joint_run import build_joint_run

    t0 = time.perf_counter()
    cfg, inv = load_settings(args.config, args.set)
    if args.rho is not None:
        inv.joint_co.transport_error_correlation = args.rho
    if args.ratio_corr_km is not None:
        inv.joint_co.ratio_corr_length_km = args.ratio_corr_km
    inputs, R, truth_path, start, end, bg_truth = _single_grid(load_run(args.run_dir, args.month, cfg, inv),
                                                               args.run_dir)
    D = truth_path.parent
    prior = read_fields(R / "prior.nc", inputs.hours, "prior")
    ratio_path = Path(cfg.inputs.emission_ratios_co or "config/emission_ratios_co.csv")
    ratio_path = ratio_path if ratio_path.is_absolute() else ROOT / ratio_path
    table = read_ratio_file(ratio_path, [k for k in prior if k != "bio"])
    scale = co_bg_scale()
    run = build_joint_run(inputs, synthetic_co_selected(inputs.selected, bg_truth, scale), prior, table, inv,
                          cfg.gases.co, inv.joint_co, start, end, float(cfg.stations.utc_offset_hours), str(ratio_path))
    jp = run.problem

    truth = read_fields(truth_path, inputs.hours, "truth")
    co_true, co_source = true_co_flux(D, truth, table, inputs.hours)
    Ht = truth_jacobian(D, inputs, args.transport)
    rows2, rows1 = run.co2_obs["row"].to_numpy(), run.co_obs["row"].to_numpy()
    t2 = pd.DatetimeIndex(run.co2_obs["time"])
    bg2 = np.interp(t2.asi8, pd.DatetimeIndex(bg_truth.index).asi8, bg_truth.to_numpy(float)) \
        - run.co2_obs["background"].to_numpy(float)
    rng = np.random.default_rng(args.seed)
    Y = data_draws(args.draws, Ht[rows2] @ inputs.truth_flux.ravel(), run.co2_obs["prior_enhancement"].to_numpy(),
                   bg2, Ht[rows1] @ co_true.ravel(), run.co_obs["prior_enhancement"].to_numpy(),
                   scale * run.co_obs["bg_error_co2"].to_numpy(float), jp_pairs(run), rng)

    truth_t = {"fossil": totals_tonnes(sum(v for k, v in truth.items() if k != "bio"), run.Wall, run.mask),
               "bio": totals_tonnes(truth["bio"], run.Wall, run.mask)}
    print(f"run {R}; {jp.n_co2} CO2 + {jp.n_co} CO observations (CO2: the rows the run's screen kept), "
          f"{len(jp.blocks)} latent blocks, {args.draws} noise draws through the {args.transport}'s transport")
    print(f"true CO: {co_source}")
    print("ratios (mol/mol, σ_rel): " + ", ".join(f"{k} {r:.3f} ± {s:.0%}" for k, (r, s) in run.ratios.items()))
    print(f"settings: {run.settings}")
    t = time.perf_counter()
    res_co = solve_joint(jp, run.A, ("fossil", "bio"), y_ensemble=Y, extra_agg=run.extra_agg)
    t_co = time.perf_counter() - t
    t = time.perf_counter()
    res_no = solve_joint(jp.without_co(), run.A, ("fossil", "bio"), y_ensemble=Y[:jp.n_co2], extra_agg=run.extra_agg)
    t_no = time.perf_counter() - t
    print(f"solve_joint: with CO {t_co:.1f} s (prior, H Q Hᵀ and H Q Aᵀ {res_co.timings['prior_and_K']:.1f} s), "
          f"without CO {t_no:.1f} s; peak memory {peak_rss_mb():.0f} MB")
    s_no = summarise(run.names, res_no, run.prior_t, truth_t, "CO2 only (same state: fossil sectors + bio)")
    s_co = summarise(run.names, res_co, run.prior_t, truth_t, "CO2 + CO (joint)")
    print_summary(s_no)
    print_summary(s_co)
    print()
    print(markdown(run.names, s_co, s_no, args.draws))
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
    return 0


def peak_rss_mb() -> float:
    """Peak resident memory of this process (MB; Linux ru_maxrss is in kB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def jp_pairs(run) -> np.ndarray:
    """Per CO row, the CO2 row of the same receptor (−1: none)."""
    row2 = {int(r): i for i, r in enumerate(run.co2_obs["row"].to_numpy())}
    return np.array([row2.get(int(r), -1) for r in run.co_obs["row"].to_numpy()], np.int64)


if __name__ == "__main__":
    sys.exit(main())
