"""How much can this network tell about district totals? An OSSE on a finished demo run.

    python tools/osse.py RUN_DIR [--draws 20] [--set key=value ...] [--month 2025-01]

RUN_DIR holds ``results/<month>`` and ``data/demo/<month>`` of a finished demo run (e.g. the
directory ``snakemake --directory RUN_DIR`` ran in, or the repository for the default run). The
inversion (`inversion.run.invert`, the pipeline's configuration read through `gzcarbon.config` with
its defaults, plus ``--set`` overrides) is solved once; the same posterior gain is applied to

* the run's actual observations,
* *perfect* data: the true flux seen through the Jacobian, with the true background (no noise), and
* ``--draws`` new realisations of the demo's transport noise (``gzcarbon.demo.signal``: N(0, 0.5 ppm ⊕
  15 % of the enhancement)) on the true signal, keeping the run's estimated background,

(`inversion.solve` option ``y_ensemble``). It prints, per district, the prior error, the posterior
error for the actual and perfect data, and over the noise draws the mean absolute error and the share
of draws in which the district's error shrinks; then how many districts improve per draw and where
the city total falls in σ, and the coverage of the district σ (share of district errors within 1σ and
2σ over the draws, against the Gaussian 68 % / 95 %). Last, a signal budget: per site, the mean and spread (ppm) of what each
part of the truth's difference from the prior (sector by sector, the unreported source, the background
error) adds to the observations, beside the model-data mismatch σ. Only the demo world has a truth,
so this is a network-design tool.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def signal_budget(Hh, obs: pd.DataFrame, truth_path: Path, prior_path: Path, hours, total_signal,
                  background_error, obs_err) -> pd.DataFrame:
    """Per site, mean and standard deviation (ppm) of what each part of the truth's difference from the
    prior adds to the observations: H·(truth_k − prior_k) for every ``flux_<k>`` of ``truth.nc`` (a part
    the prior lacks, e.g. ``unreported``, counts whole), the background error, their sum, and the
    model-data mismatch σ the inversion assumes. ``total_signal`` is H·(truth − prior) of the whole flux
    (what the parts must add up to). A part whose signal is small against the mismatch cannot be found by
    this network, whatever the inversion does."""
    from inversion.run import read_flux

    with xr.open_dataset(truth_path) as ds:
        parts = [v[len("flux_"):] for v in ds.data_vars if v.startswith("flux_")]
    cols = {}
    for k in parts:
        t = read_flux(truth_path, "truth", hours, var=f"flux_{k}")[0]
        p = read_flux(prior_path, "prior", hours, var=f"flux_{k}", optional=True)
        cols[k] = Hh @ (t - (0.0 if p is None else p[0])).ravel()
    rest = np.asarray(total_signal, float) - np.sum([cols[k] for k in parts], axis=0)  # what the parts miss (0 when they add up)
    cols["background"] = np.asarray(background_error, float)
    cols["sum"] = np.sum([cols[k] for k in cols], axis=0) + rest
    site = obs["site"].to_numpy()
    rows = {}
    for s in pd.unique(site):
        m = site == s
        r = {(k, stat): f(v[m]) for k, v in cols.items() for stat, f in (("mean", np.mean), ("std", np.std))}
        r[("mismatch", "sigma")] = float(np.sqrt(np.mean(np.asarray(obs_err, float)[m] ** 2)))
        r[("rest", "max")] = float(np.abs(rest[m]).max())
        rows[s] = r
    return pd.DataFrame.from_dict(rows, orient="index")


def print_signal_budget(b: pd.DataFrame) -> None:
    parts = [k for k in dict.fromkeys(b.columns.get_level_values(0)) if k not in ("mismatch", "rest")]
    print("signal at the sites, ppm: mean ± std over the observations of H·(truth − prior) by part "
          "(prior lacks 'unreported'), background error, their sum; mismatch σ assumed")
    print(f"{'site':<6}" + "".join(f"{k[:11]:>13}" for k in parts) + f"{'mismatch σ':>12}")
    for s, r in b.iterrows():
        print(f"{s:<6}" + "".join(f"{r[(k, 'mean')]:>+7.2f}±{r[(k, 'std')]:<5.2f}" for k in parts)
              + f"{r[('mismatch', 'sigma')]:>12.2f}")
    print(f"the parts add up to H·(truth − prior) within {b[('rest', 'max')].max():.2g} ppm")


def load_settings(config_path: Path, overrides: list[str]):
    """(typed pipeline config, inversion settings with the ``--set key=value`` overrides): the config
    file read through `gzcarbon.config` (the schema's defaults, as the pipeline reads it)."""
    from gzcarbon.config import load_config
    from inversion.settings import inversion_config

    cfg = load_config(yaml.safe_load(config_path.read_text()) or {})
    inv = cfg.inversion.model_dump()
    for kv in overrides:
        k, _, v = kv.partition("=")
        inv[k.strip()] = _value(v.strip())
    return cfg, inversion_config(inv)


def load_run(run_dir: Path, month: str | None, cfg, inv):
    """The run's inputs (`inversion.run.InversionInputs`, truth included), its period and the truth's
    background series."""
    from inversion.run import load_inputs

    months = sorted(p.name for p in (run_dir / "results").glob("*") if (p / "jacobian_hourly.npz").exists())
    if not months:
        sys.exit(f"{run_dir}/results/*/jacobian_hourly.npz: no finished run here")
    month = month or months[0]
    R, D = run_dir / "results" / month, run_dir / "data" / "demo" / month
    truth_path = D / "truth.nc"
    if not truth_path.exists():
        sys.exit(f"{truth_path}: missing — the OSSE needs a demo run (it knows the truth)")
    districts_file = Path(cfg.districts_file)
    inputs = load_inputs(R / "jacobian_hourly.npz", R / "obs" / "selected.csv", R / "prior.nc",
                         districts_file if districts_file.is_absolute() else ROOT / districts_file, truth_path, inv)
    hours = inputs.hours
    days = int((hours[-1] + pd.Timedelta("1h") - hours[0]) / pd.Timedelta("1D")) - 1
    start = hours[0] + pd.Timedelta("1D")  # the spin-up day is not part of the period
    with xr.open_dataset(truth_path) as ds:
        bg_truth = ds["background"].to_series()
    return inputs, R, truth_path, start, start + pd.Timedelta(days=days), bg_truth


def data_vectors(prob, truth, bg_truth, draws: int, seed: int):
    """(Y = [perfect data | noise draws], H·truth, background error) in the problem's observation order."""
    from gzcarbon.demo.signal import TRANSPORT_NOISE_PPM, TRANSPORT_NOISE_REL

    enh_true = prob.H_hourly @ truth.ravel()
    enh_prior = prob.prior_enhancement
    t_obs = pd.DatetimeIndex(prob.obs["time"])
    bgt = np.interp(t_obs.asi8, pd.DatetimeIndex(bg_truth.index).asi8, bg_truth.to_numpy(float))
    bg_err = bgt - prob.obs["background"].to_numpy(float)
    perfect = enh_true - enh_prior  # true background known: no background error, no noise
    rng = np.random.default_rng(seed)
    sd = np.sqrt(TRANSPORT_NOISE_PPM**2 + (TRANSPORT_NOISE_REL * enh_true) ** 2)
    noisy = (bg_err + enh_true - enh_prior)[:, None] + rng.normal(size=(len(sd), draws)) * sd[:, None]
    return np.column_stack([perfect, noisy]), enh_true, bg_err


def print_districts(out, inv, n_draws: int) -> None:
    """Per district: prior error, posterior error (actual, perfect, draws), σ; then the summary lines."""
    d = out.districts.set_index("district")
    ens = d["prior_t"].to_numpy()[:, None] + out.result.agg_post_mean_ensemble  # t
    truth_t, prior_t = d["truth_t"].to_numpy(), d["prior_t"].to_numpy()
    err_prior = prior_t - truth_t
    err_actual = d["posterior_t"].to_numpy() - truth_t
    err_perfect = ens[:, 0] - truth_t
    err_draw = ens[:, 1:] - truth_t[:, None]
    better = np.abs(err_draw) < np.abs(err_prior)[:, None]
    print(f"OSSE on {out.problem.obs.shape[0]} observations, {n_draws} noise draws; "
          f"chi2_r {out.diagnostics['chi2_reduced']:.2f}, DOFS {out.diagnostics['dofs']:.1f}")
    print(f"inversion settings: {json.dumps(inv.model_dump(mode='json'), sort_keys=True)}")
    print(f"{'district':<12}{'prior err':>11}{'actual':>10}{'perfect':>10}{'draws |err|':>13}{'improves':>10}"
          f"{'σ prior':>10}{'σ post':>9}   (kt)")
    for i, n in enumerate(d.index):
        print(f"{n:<12}{err_prior[i] / 1e3:>+11.1f}{err_actual[i] / 1e3:>+10.1f}{err_perfect[i] / 1e3:>+10.1f}"
              f"{np.abs(err_draw[i]).mean() / 1e3:>13.1f}{better[i].mean():>10.0%}"
              f"{d['prior_sigma_t'].iloc[i] / 1e3:>10.1f}{d['posterior_sigma_t'].iloc[i] / 1e3:>9.1f}")
    nd = len(d.index) - 1  # districts (without the city row)
    n_better = better[:nd].sum(axis=0)
    z = err_draw[nd] / d["posterior_sigma_t"].iloc[nd]
    sum_prior = np.abs(err_prior[:nd]).sum()
    print(f"districts improved: actual {int((np.abs(err_actual[:nd]) < np.abs(err_prior[:nd])).sum())}/{nd}, "
          f"perfect {int((np.abs(err_perfect[:nd]) < np.abs(err_prior[:nd])).sum())}/{nd}, draws median "
          f"{np.median(n_better):.0f}/{nd} (range {n_better.min()}–{n_better.max()}; ≥ {nd // 2 + 1} in "
          f"{np.mean(n_better >= nd // 2 + 1):.0%} of draws)")
    print(f"sum of |district error|: prior {sum_prior / 1e3:.1f} kt, actual {np.abs(err_actual[:nd]).sum() / 1e3:.1f}, "
          f"perfect {np.abs(err_perfect[:nd]).sum() / 1e3:.1f}, draws mean {np.abs(err_draw[:nd]).sum(axis=0).mean() / 1e3:.1f}")
    print(f"city (post − truth)/σ_post over draws: mean {z.mean():+.2f}, |z| < 2 in {np.mean(np.abs(z) < 2):.0%}")
    zd = err_draw[:nd] / d["posterior_sigma_t"].to_numpy()[:nd, None]
    zp = err_prior[:nd] / d["prior_sigma_t"].to_numpy()[:nd]
    print(f"coverage of the district σ (a Gaussian puts 68 % within 1σ, 95 % within 2σ): posterior over "
          f"districts × draws {np.mean(np.abs(zd) < 1):.0%} / {np.mean(np.abs(zd) < 2):.0%}; "
          f"prior {np.mean(np.abs(zp) < 1):.0%} / {np.mean(np.abs(zp) < 2):.0%} of {nd} districts")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--month", default=None, help="month directory under results/ (default: the first)")
    ap.add_argument("--draws", type=int, default=20, help="noise realisations (default 20)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override an inversion config key, e.g. --set corr_length_km=20")
    ap.add_argument("--config", type=Path, default=ROOT / "config" / "config.yaml")
    args = ap.parse_args(argv)

    from inversion import SolveOptions
    from inversion.run import build_inversion_problem, invert, period_axis

    cfg, inv = load_settings(args.config, args.set)
    inputs, R, truth_path, start, end, bg_truth = load_run(args.run_dir, args.month, cfg, inv)
    utc_offset = float(cfg.stations.utc_offset_hours)
    # the problem, built once: its observation order fixes the data vectors, and invert reuses it
    prob = build_inversion_problem(inputs, inv, period_axis(inputs.hours, start, end)[1], utc_offset)
    Y, enh_true, bg_err = data_vectors(prob, inputs.truth_flux, bg_truth, args.draws, args.seed)
    out = invert(inputs, inv, start, end, solve_options=SolveOptions(seed=args.seed, y_ensemble=Y),
                 utc_offset_hours=utc_offset, problem=prob)
    print(f"run {R}")
    print_districts(out, inv, args.draws)
    print()
    print_signal_budget(signal_budget(prob.H_hourly, prob.obs, truth_path, R / "prior.nc", inputs.hours,
                                      enh_true - prob.prior_enhancement, bg_err, prob.obs_err))
    return 0


if __name__ == "__main__":
    sys.exit(main())
