"""How much can this network tell about district totals? An OSSE on a finished demo run.

`gzcarbon osse` (this module) or ``python tools/osse.py`` (the same, kept for the documented commands):

    gzcarbon osse RUN_DIR [--truth noise|prior|errors] [--draws 20] [--set key=value ...]
                         [--month 2025-01] [--transport truth|inversion]

Three modes (``--truth``):

* ``noise`` (default): **noise-only** — the spread of the posterior from measurement noise around
  one truth, not the posterior covariance (below);
* ``prior``: truths drawn from the prior covariance, x_true = x_a + Q^{1/2} ξ (flux corrections,
  background offsets and scaling factors; matrix-free: spectral square root of the spatial
  correlation on its circulant embedding, eigen-square-root of the small temporal factor), seen
  through the *truth's* transport (``data/demo/<month>/truth_transport/jacobian_hourly.npz``; with
  ``--transport inversion`` the inversion's own, the identical twin), plus noise drawn from the R
  the inversion assumes; inverted with the inversion's H. The fraction of city and district errors
  within 1σ and 2σ of the posterior σ the report publishes should be 68 % / 95 %: departures
  measure what transport error (or anything else) does to the published σ;
* ``errors``: truths from the demo's pre-registered error model (``gzcarbon.demo.truth_errors``:
  ``make_truth`` with new seeds — new texture, cloudiness and background; the same biases and
  unreported source), through the truth's transport, with the demo's noise model and the run's
  background error; the same coverage.

The noise-only mode:

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

The two ensemble modes use `inversion.solve` with the rows the run's innovation screen kept (so the
σ is the one of districts.csv) and print, per district and for the city, the mean error, its spread
and the share of draws within 1σ / 2σ, and a binomial band for 68 % / 95 % at this many draws.
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

#: the repository (config/config.yaml: the defaults of a run without a flux product)
ROOT = Path(__file__).resolve().parents[2]


def _value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def true_state(inputs) -> np.ndarray:
    """The demo truth on the run's hourly state: the inner field, then (nested run) the outer cells."""
    from inversion.outer import hourly_state

    outer = inputs.outer
    if outer is not None and outer.truth is None:
        sys.exit("the run is nested (outer_grid) but the demo's truth_outer.nc is missing: re-run rule demo_delta")
    return hourly_state(inputs.truth_flux, None if outer is None else outer.truth)


def signal_budget(Hh, obs: pd.DataFrame, truth_path: Path, prior_path: Path, hours, total_signal,
                  background_error, obs_err, outer=None) -> pd.DataFrame:
    """Per site, mean and standard deviation (ppm) of what each part of the truth's difference from the
    prior adds to the observations: H·(truth_k − prior_k) for every ``flux_<k>`` of ``truth.nc`` (a part
    the prior lacks, e.g. ``unreported``, counts whole), the background error, their sum, and the
    model-data mismatch σ the inversion assumes. ``total_signal`` is H·(truth − prior) of the whole flux
    (what the parts must add up to). A part whose signal is small against the mismatch cannot be found by
    this network, whatever the inversion does. A nested run (``outer``: `inversion.outer.OuterInputs`)
    adds the part ``outer``: H_outer·(outer truth − outer prior)."""
    from inversion.outer import split_columns
    from inversion.run import read_flux

    cols = {}
    if outer is not None:
        Hh, H_outer = split_columns(Hh, outer.nested.n_inner, outer.n_cells, len(hours))
        cols["outer"] = np.asarray(H_outer @ (np.asarray(outer.truth, float) - outer.prior).ravel()).ravel()

    with xr.open_dataset(truth_path) as ds:
        parts = [v[len("flux_"):] for v in ds.data_vars if v.startswith("flux_")]
    for k in parts:
        t = read_flux(truth_path, "truth", hours, var=f"flux_{k}")[0]
        p = read_flux(prior_path, "prior", hours, var=f"flux_{k}", optional=True)
        cols[k] = Hh @ (t - (0.0 if p is None else p[0])).ravel()
    rest = np.asarray(total_signal, float) - np.sum([cols[k] for k in cols], axis=0)  # what the parts miss (0 when they add up)
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


def run_config_file(run_dir: Path, month: str | None) -> Path:
    """The configuration the run was made with: the flux product stores it (``config_yaml``), so
    the OSSE solves the run's problem (its screening action, its settings), not the defaults."""
    import tempfile

    import xarray as xr

    res = Path(run_dir) / "results"
    months = [month] if month else sorted(p.name for p in res.glob("????-??") if p.is_dir())
    for m in months:
        product = res / m / f"flux_{m}.nc"
        if product.exists():
            with xr.open_dataset(product) as ds:
                text = ds.attrs.get("config_yaml")
            if text:
                tmp = Path(tempfile.mkdtemp(prefix="osse_cfg_")) / "config.yaml"
                tmp.write_text(text)
                return tmp
    return ROOT / "config" / "config.yaml"


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
    truth_outer = D / "truth_outer.nc"  # a nested run's outer truth (rule demo_delta)
    neighbours = Path(cfg.neighbours_file) if cfg.neighbours_file else None  # the outer table's rows
    if neighbours is not None and not (neighbours if neighbours.is_absolute() else ROOT / neighbours).exists():
        sys.exit(f"config neighbours_file: {neighbours} (the run's configuration) does not exist; pass --config "
                 "with a file whose neighbours_file exists (or is empty: the outer ring only)")
    inputs = load_inputs(R / "jacobian_hourly.npz", R / "obs" / "selected.csv", R / "prior.nc",
                         districts_file if districts_file.is_absolute() else ROOT / districts_file, truth_path, inv,
                         truth_outer_path=truth_outer if truth_outer.exists() else None,
                         neighbours_path=None if neighbours is None
                         else neighbours if neighbours.is_absolute() else ROOT / neighbours)
    hours = inputs.hours
    days = int((hours[-1] + pd.Timedelta("1h") - hours[0]) / pd.Timedelta("1D")) - 1
    start = hours[0] + pd.Timedelta("1D")  # the spin-up day is not part of the period
    with xr.open_dataset(truth_path) as ds:
        bg_truth = ds["background"].to_series()
    return inputs, R, truth_path, start, start + pd.Timedelta(days=days), bg_truth


def data_vectors(prob, truth, bg_truth, draws: int, seed: int):
    """(Y = [perfect data | noise draws], H·truth, background error) in the problem's observation order."""
    from gzcarbon.demo.signal import TRANSPORT_NOISE_PPM, TRANSPORT_NOISE_REL

    enh_true = prob.H_hourly @ np.asarray(truth, float).ravel()
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
    print("noise-only: the spread of the posterior from measurement noise around one truth, not the "
          "posterior covariance")
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


# ---------------------------------------------------------------------------------------------
# truth ensembles
# ---------------------------------------------------------------------------------------------
def _embedding_spectrum(Ny: int, Nx: int, dx_km: float, dy_km: float, L_km: float):
    oy = np.arange(Ny)
    oy = np.minimum(oy, Ny - oy)
    ox = np.arange(Nx)
    ox = np.minimum(ox, Nx - ox)
    c = np.exp(-np.hypot(oy[:, None] * dy_km, ox[None, :] * dx_km) / L_km)
    lam = np.fft.fft2(c).real
    return lam, float(-lam[lam < 0].sum() / np.abs(lam).sum())


def spatial_sqrt_spectrum(ny: int, nx: int, dx_km: float, dy_km: float, L_km: float, max_pad: int = 8):
    """Eigenvalues (≥ 0) of the exponential correlation's circulant embedding on a (Ny, Nx) torus,
    Ny ≥ 2 ny, Nx ≥ 2 nx, and the share of the spectrum that is negative and clipped. The torus
    grows (up to ``max_pad`` × the grid) until no eigenvalue is negative, when the samples have
    exactly the correlation exp(−d/L); a correlation length large against the grid may leave a
    small clipped share (reported)."""
    pad = 2
    while True:
        lam, clipped = _embedding_spectrum(pad * ny, pad * nx, dx_km, dy_km, L_km)
        if clipped <= 1e-12 or pad >= max_pad:
            return np.clip(lam, 0.0, None), clipped
        pad *= 2


def sample_spatial(ny, nx, dx_km, dy_km, L_km, n: int, rng) -> np.ndarray:
    """``n`` samples (n, ny, nx) of a unit-variance field with correlation exp(−d/L) (circulant
    embedding: two real samples from each complex FFT)."""
    if L_km <= 0 or ny * nx == 1:
        return rng.standard_normal((n, ny, nx))
    lam, _ = spatial_sqrt_spectrum(ny, nx, dx_km, dy_km, L_km)
    Ny, Nx = lam.shape
    m = (n + 1) // 2
    eps = rng.standard_normal((m, Ny, Nx)) + 1j * rng.standard_normal((m, Ny, Nx))
    f = np.fft.fft2(np.sqrt(lam / (Ny * Nx)) * eps)[:, :ny, :nx]
    return np.concatenate([f.real, f.imag])[:n]


def temporal_sqrt(Qt: np.ndarray) -> np.ndarray:
    """A square root S (S Sᵀ = Q_t) of the small temporal correlation (eigen-decomposition; tiny
    negative eigenvalues of a nearly singular Q_t are clipped)."""
    w, V = np.linalg.eigh(np.asarray(Qt, float))
    return V * np.sqrt(np.clip(w, 0.0, None))


def sample_prior(Q, n: int, rng) -> np.ndarray:
    """``n`` draws (n_state × n) from N(0, Q) of a `inversion.covariance.KroneckerCovariance`,
    Q = blockdiag(D (Q_t ⊗ Q_s) D, diag(extra σ²)), without forming Q. A nested state
    (`inversion.covariance.NestedKroneckerCovariance`): Q_s = blockdiag(Q_in, Q_out), the outer
    cells' field drawn on the full outer grid with its own correlation length and kept outside the
    hole (the restriction of a field with correlation exp(−d/L) has exactly the masked Q_out)."""
    Zs = sample_spatial(Q.ny, Q.nx, Q.dx_km, Q.dy_km, Q.corr_length_km, n * Q.n_step, rng)
    Zs = Zs.reshape(n, Q.n_step, Q.ny * Q.nx)
    sigma = Q.sigma.reshape(Q.n_step, Q.ny * Q.nx)
    if getattr(Q, "n_outer", 0):
        m = Q.outer_mask
        Zo = sample_spatial(m.shape[0], m.shape[1], Q.outer_dx_km, Q.outer_dy_km, Q.outer_corr_length_km,
                            n * Q.n_step, rng).reshape(n, Q.n_step, m.size)[:, :, m.ravel()]
        Zs = np.concatenate([Zs, Zo], axis=2)
        sigma = Q.sigma_cells
    St = np.eye(Q.n_step) if Q.corr_time_hours <= 0 or Q.n_step == 1 else temporal_sqrt(Q.Qt)
    X = np.einsum("st,ktc->sck", St, Zs) * sigma.reshape(Q.n_step, Q.n_cells, 1)
    extra = Q.extra_sigma[:, None] * rng.standard_normal((Q.n_extra, n))
    return np.vstack([X.reshape(Q.n_flux, n), extra])


def draw_noise(obs_err, n: int, rng) -> np.ndarray:
    """``n`` draws (n_obs × n) from N(0, R): R = diag(σ²) for a vector, else the matrix."""
    obs_err = np.asarray(obs_err, float)
    if obs_err.ndim == 1:
        return obs_err[:, None] * rng.standard_normal((obs_err.size, n))
    return np.linalg.cholesky(obs_err) @ rng.standard_normal((obs_err.shape[0], n))


def coverage(errors: np.ndarray, sigma: np.ndarray) -> dict:
    """Share of |error| within 1σ and 2σ per row (aggregate) of ``errors`` (n_agg × draws)."""
    z = np.asarray(errors, float) / np.asarray(sigma, float)[:, None]
    return {"z": z, "within1": np.mean(np.abs(z) < 1, axis=1), "within2": np.mean(np.abs(z) < 2, axis=1)}


def prior_draw_ensemble(H, H_truth, Q, obs_err, A, n: int, rng, options=None):
    """Truths x ~ N(0, Q) seen through ``H_truth``, noise from R, inverted with ``H``: (A x̂ − A x
    per draw (n_agg × n), posterior σ of A x, prior σ of A x). ``H``/``H_truth``: the full state
    Jacobians (flux steps, offsets, factors) of the same observations."""
    from inversion import SolveOptions, solve

    X = sample_prior(Q, n, rng)
    Y = np.asarray(H_truth @ X) + draw_noise(obs_err, n, rng)
    opts = (options or SolveOptions()).replace(y_ensemble=Y)
    res = solve(H, np.zeros(H.shape[0]), np.zeros(H.shape[1]), Q, obs_err, aggregate=A, options=opts)
    err = res.agg_post_mean_ensemble - np.asarray(A @ X)
    return err, np.asarray(res.agg_post_sigma), np.asarray(res.agg_prior_sigma)


def truth_full_jacobian(prob, Ht_hourly):
    """The state Jacobian of ``Ht_hourly`` (rows: the problem's observations) laid out as
    ``prob.H``: flux steps, the background offsets (unchanged), the scaling factors' columns."""
    import scipy.sparse as sp

    from inversion.state import step_jacobian

    blocks = [step_jacobian(Ht_hourly, prob.n_cells, prob.step_hours),
              prob.H[:, prob.n_flux:prob.n_flux + prob.n_offsets]]
    if prob.factors is not None:  # the factors scale inner fields: the inner columns (nested state)
        Hf = Ht_hourly
        if prob.n_outer:
            from inversion.outer import split_columns

            Hf = split_columns(Ht_hourly, prob.n_inner, prob.n_cells, Ht_hourly.shape[1] // prob.n_cells)[0]
        blocks.append(sp.csr_matrix(prob.factors.columns(Hf)))
    return sp.hstack(blocks, format="csr")


def load_truth_jacobian(D: Path, inputs, prob, which: str):
    """The truth's hourly Jacobian rows of the problem's observations (``which``: ``truth`` reads
    ``D/truth_transport/jacobian_hourly.npz``, ``inversion`` uses the inversion's)."""
    import scipy.sparse as sp

    if which == "inversion":
        return prob.H_hourly
    from transport.jacobian import load_jacobian

    path = D / "truth_transport" / "jacobian_hourly.npz"
    if not path.exists():
        sys.exit(f"{path}: missing — a run made before the truth had its own transport; re-run the "
                 "demo, or pass --transport inversion (identical twin)")
    jac = load_jacobian(path)
    ids = jac.receptors["receptor_id"].astype(str).to_numpy()
    if not np.array_equal(ids, inputs.receptors["receptor_id"].astype(str).to_numpy()):
        sys.exit(f"{path}: other receptors than the run's Jacobian; re-run the demo")
    return sp.csr_matrix(jac.H)[prob.obs["row"].to_numpy()]


def binomial_band(p: float, n: int) -> tuple[float, float]:
    """± 2 binomial standard errors around ``p`` for ``n`` independent draws."""
    half = 2 * np.sqrt(p * (1 - p) / max(n, 1))
    return max(0.0, p - half), min(1.0, p + half)


def print_coverage(names, err, sigma_post, sigma_prior, title: str) -> dict:
    """Per aggregate: mean error, its spread, share within 1σ / 2σ; the city line and the pooled
    district line against the binomial band of 68 % / 95 %."""
    cov = coverage(err, sigma_post)
    n = err.shape[1]
    print(title)
    print(f"{'district':<12}{'mean err':>10}{'sd err':>9}{'σ post':>9}{'σ prior':>9}{'≤1σ':>7}{'≤2σ':>7}   (kt)")
    for i, name in enumerate(names):
        print(f"{name:<12}{err[i].mean() / 1e3:>+10.2f}{err[i].std() / 1e3:>9.2f}{sigma_post[i] / 1e3:>9.2f}"
              f"{sigma_prior[i] / 1e3:>9.2f}{cov['within1'][i]:>7.0%}{cov['within2'][i]:>7.0%}")
    b1, b2 = binomial_band(0.6827, n), binomial_band(0.9545, n)
    nd = len(names) - 1
    d1, d2 = float(np.mean(cov["within1"][:nd])), float(np.mean(cov["within2"][:nd]))
    print(f"coverage over {n} draws (a Gaussian: 68 % within 1σ, 95 % within 2σ; ±2 binomial s.e. at "
          f"{n} draws: {b1[0]:.0%}–{b1[1]:.0%} / {b2[0]:.0%}–{b2[1]:.0%}): city "
          f"{cov['within1'][nd]:.0%} / {cov['within2'][nd]:.0%}; districts (pooled) {d1:.0%} / {d2:.0%}; "
          f"spread of the error / σ_post: city {err[nd].std() / sigma_post[nd]:.2f}, districts (median) "
          f"{np.median(err[:nd].std(axis=1) / sigma_post[:nd]):.2f}")
    return {"city": (float(cov["within1"][nd]), float(cov["within2"][nd])), "districts": (d1, d2)}


def _used_problem(prob, inv):
    """The rows the run's innovation screen kept (the σ of districts.csv is that solve's)."""
    from inversion.run import screen_observations

    used = screen_observations(prob, inv).used
    err = prob.obs_err
    err = err[np.ix_(used, used)] if np.ndim(err) == 2 else err[used]
    return used, err


def outer_rows(agg):
    """(rows of A over the state, names) of the outer table of a nested run (none: empty)."""
    import scipy.sparse as sp

    if getattr(agg, "outer", None) is None:
        return sp.csr_matrix((0, agg.A.shape[1])), []
    return sp.csr_matrix(agg.outer.A), list(agg.outer.names)


def print_outer_coverage(names, err, sigma_post, sigma_prior) -> dict:
    """The outer ring and the neighbours: mean error, spread, σ, shares within 1σ / 2σ; the ring
    line and the pooled neighbour line against the binomial band."""
    cov = coverage(err, sigma_post)
    n = err.shape[1]
    print(f"{'outer':<16}{'mean err':>10}{'sd err':>9}{'σ post':>9}{'σ prior':>9}{'≤1σ':>7}{'≤2σ':>7}   (kt)")
    for i, name in enumerate(names):
        print(f"{name[:16]:<16}{err[i].mean() / 1e3:>+10.1f}{err[i].std() / 1e3:>9.1f}{sigma_post[i] / 1e3:>9.1f}"
              f"{sigma_prior[i] / 1e3:>9.1f}{cov['within1'][i]:>7.0%}{cov['within2'][i]:>7.0%}")
    nb1 = float(np.mean(cov["within1"][1:])) if len(names) > 1 else float("nan")
    nb2 = float(np.mean(cov["within2"][1:])) if len(names) > 1 else float("nan")
    print(f"coverage over {n} draws: outer ring {cov['within1'][0]:.0%} / {cov['within2'][0]:.0%}; neighbours "
          f"(pooled) {nb1:.0%} / {nb2:.0%}; spread of the error / σ_post: ring {err[0].std() / sigma_post[0]:.2f}")
    return {"ring": (float(cov["within1"][0]), float(cov["within2"][0])), "neighbours": (nb1, nb2)}


def run_prior_mode(args, inputs, prob, inv, D, start, end) -> dict:
    """Truths drawn from the prior covariance (the outer cells too on a nested run)."""
    import scipy.sparse as sp

    from inversion.run import build_aggregation, period_axis

    mask, days = period_axis(inputs.hours, start, end)
    agg = build_aggregation(inputs, prob, mask, days, inv)
    Ao, onames = outer_rows(agg)
    A = sp.vstack([sp.csr_matrix(agg.A), Ao], format="csr")
    used, obs_err = _used_problem(prob, inv)
    Ht = truth_full_jacobian(prob, load_truth_jacobian(D, inputs, prob, args.transport))
    rng = np.random.default_rng(args.seed)
    err, sp_, sq = prior_draw_ensemble(prob.H[used], Ht[used], prob.Q, obs_err, A, args.draws, rng)
    _, clipped = spatial_sqrt_spectrum(prob.ny, prob.nx, prob.Q.dx_km, prob.Q.dy_km, prob.Q.corr_length_km) \
        if prob.Q.corr_length_km > 0 else (None, 0.0)
    print(f"prior-draw OSSE: {args.draws} truths x = x_a + Q^1/2 ξ through the {args.transport}'s transport, "
          f"{int(used.sum())} observations, noise from R (circulant spectrum clipped: {abs(clipped):.1e})"
          + (f"; nested: {prob.n_outer} outer cells drawn from the outer prior covariance" if onames else ""))
    k = len(agg.names)
    out = print_coverage(agg.names, err[:k], sp_[:k], sq[:k], "errors of A x̂ − A x_true:")
    if onames:
        out.update(print_outer_coverage(onames, err[k:], sp_[k:], sq[k:]))
    return out


def run_errors_mode(args, cfg, inputs, prob, inv, R: Path, D: Path, start, end, bg_err) -> dict:
    """Truths from the pre-registered error model (make_truth with new seeds; a nested run's outer
    cells from make_outer_truth with the same seeds)."""
    from gzcarbon.demo.inventory import make_truth
    from gzcarbon.demo.signal import TRANSPORT_NOISE_PPM, TRANSPORT_NOISE_REL
    from gzcarbon.districts import district_matrix
    from gzcarbon.grid import Grid
    from inversion import SolveOptions, solve
    from inversion.aggregate import totals_tonnes
    from inversion.prior import read_point_sources
    from inversion.run import build_aggregation, period_axis

    import scipy.sparse as sp

    from inversion.outer import hourly_state

    mask, days = period_axis(inputs.hours, start, end)
    agg = build_aggregation(inputs, prob, mask, days, inv)
    Ao, onames = outer_rows(agg)
    A = sp.vstack([sp.csr_matrix(agg.A), Ao], format="csr")
    outer = inputs.outer
    draw_outer = outer_truth_drawer(cfg, inputs, D) if outer is not None else None
    used, obs_err = _used_problem(prob, inv)
    Hth = load_truth_jacobian(D, inputs, prob, args.transport)
    grid = Grid.from_centres(inputs.lon, inputs.lat)
    districts_file = Path(cfg.districts_file)
    names, dmat = district_matrix(districts_file if districts_file.is_absolute() else ROOT / districts_file,
                                  grid.lon_edges, grid.lat_edges)
    with xr.open_dataset(D / "inventory.nc") as ds:
        inventory = ds.load()
    points = read_point_sources(R / "power" / "point_sources.csv")
    h0, h1 = inputs.hours[0], inputs.hours[-1] + pd.Timedelta("1h")
    rng = np.random.default_rng(args.seed)
    Y, T = [], []
    for k in range(args.draws):
        seed = int(args.seed) * 1000 + k + 1
        truth = make_truth(inventory, points, grid, names, dmat, h0, h1, seed=seed)
        flux = truth["flux"].values
        t_outer = None if outer is None else draw_outer(seed, truth)
        state = hourly_state(flux, t_outer)
        enh = np.asarray(Hth @ state)
        sd = np.sqrt(TRANSPORT_NOISE_PPM**2 + (TRANSPORT_NOISE_REL * enh) ** 2)
        Y.append(enh - prob.prior_enhancement + bg_err + rng.standard_normal(enh.size) * sd)
        T.append(np.concatenate([totals_tonnes(flux, agg.Wall, mask), outer_totals(agg, state, mask)]))
    Y, T = np.column_stack(Y)[used], np.column_stack(T)
    res = solve(prob.H[used], prob.y[used], prob.x_prior, prob.Q, obs_err, aggregate=A,
                options=SolveOptions(seed=args.seed, y_ensemble=Y))
    prior_state = hourly_state(inputs.prior_flux, None if outer is None else outer.prior)
    prior_t = np.concatenate([totals_tonnes(inputs.prior_flux, agg.Wall, mask), outer_totals(agg, prior_state, mask)])
    err = prior_t[:, None] + res.agg_post_mean_ensemble - T
    print(f"error-model OSSE: {args.draws} truths from gzcarbon.demo.truth_errors (make_truth, new seeds"
          + ("; the outer cells from make_outer_truth with the same seeds" if onames else "")
          + f") through the {args.transport}'s transport, {int(used.sum())} observations, the demo's noise, "
          "the run's background error")
    k = len(agg.names)
    print(f"prior error of the city (mean over draws): {(prior_t[k - 1] - T[k - 1]).mean() / 1e3:+.2f} kt")
    sp_, sq = np.asarray(res.agg_post_sigma), np.asarray(res.agg_prior_sigma)
    out = print_coverage(agg.names, err[:k], sp_[:k], sq[:k], "errors of the posterior totals − true totals:")
    if onames:
        print(f"prior error of the outer ring (mean over draws): {(prior_t[k] - T[k]).mean() / 1e3:+.1f} kt")
        out.update(print_outer_coverage(onames, err[k:], sp_[k:], sq[k:]))
    return out


def outer_totals(agg, state: np.ndarray, mask) -> np.ndarray:
    """t over the period of the outer table's rows (ring, neighbours) of an hourly state vector
    (hour · n_cells + cell); none without outer rows."""
    if getattr(agg, "outer", None) is None:
        return np.zeros(0)
    W = agg.outer.W_t
    f = np.asarray(state, float).reshape(-1, W.shape[1])
    return np.asarray(W @ f[np.asarray(mask, bool)].sum(axis=0)).ravel()


def outer_truth_drawer(cfg, inputs, D: Path):
    """A function (seed, inner truth) -> (n_hours, n_outer) true outer flux in state order drawn by
    `gzcarbon.demo.delta.make_outer_truth` (the pre-registered delta errors, the inner truth's GPP
    day factors) with that seed, on the run's nesting and neighbours file."""
    from gzcarbon.demo.delta import make_outer_truth
    from gzcarbon.neighbours import read_neighbours

    nested = inputs.outer.nested
    path = Path(cfg.neighbours_file) if cfg.neighbours_file else None  # checked by load_run
    if path is None:
        sys.exit("--truth errors on a nested run needs config neighbours_file (the delta's sources live on it)")
    path = path if path.is_absolute() else ROOT / path
    neighbours = read_neighbours(path)
    h0, h1 = inputs.hours[0], inputs.hours[-1] + pd.Timedelta("1h")

    def draw(seed: int, truth) -> np.ndarray:
        gfac = truth["gpp_day_factor"].to_series() if "gpp_day_factor" in truth else None
        if gfac is not None:
            gfac.index = pd.DatetimeIndex(gfac.index)
        ds = make_outer_truth(nested, neighbours, path, (h0, h1), seed, gpp_day_factor=gfac)
        return nested.outer_to_state(ds["flux_outer"].sel(time=inputs.hours).values)

    return draw


def main(argv=None, prog: str | None = None) -> int:
    ap = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--month", default=None, help="month directory under results/ (default: the first)")
    ap.add_argument("--truth", choices=("noise", "prior", "errors"), default="noise",
                    help="noise: noise-only draws around the run's truth (the spread of the posterior from "
                         "measurement noise, not the posterior covariance); prior: truths drawn from the prior "
                         "covariance; errors: truths from the demo's pre-registered error model")
    ap.add_argument("--transport", choices=("truth", "inversion"), default="truth",
                    help="whose footprints the drawn truths are seen through (--truth prior|errors)")
    ap.add_argument("--draws", type=int, default=20, help="draws (default 20)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override an inversion config key, e.g. --set corr_length_km=20")
    ap.add_argument("--config", type=Path, default=None,
                    help="config file (default: the run's own configuration, stored in its flux "
                         "product's config_yaml attribute; else config/config.yaml)")
    args = ap.parse_args(argv)
    if args.config is None:
        args.config = run_config_file(args.run_dir, args.month)

    from inversion import SolveOptions
    from inversion.run import build_inversion_problem, invert, period_axis

    cfg, inv = load_settings(args.config, args.set)
    inputs, R, truth_path, start, end, bg_truth = load_run(args.run_dir, args.month, cfg, inv)
    utc_offset = float(cfg.stations.utc_offset_hours)
    # the problem, built once: its observation order fixes the data vectors, and invert reuses it
    prob = build_inversion_problem(inputs, inv, period_axis(inputs.hours, start, end)[1], utc_offset)
    Y, enh_true, bg_err = data_vectors(prob, true_state(inputs), bg_truth, args.draws, args.seed)
    if args.truth != "noise":
        D = truth_path.parent  # data/demo/<month>
        print(f"run {R}")
        if args.truth == "prior":
            run_prior_mode(args, inputs, prob, inv, D, start, end)
        else:
            run_errors_mode(args, cfg, inputs, prob, inv, R, D, start, end, bg_err)
        return 0
    out = invert(inputs, inv, start, end, solve_options=SolveOptions(seed=args.seed, y_ensemble=Y),
                 utc_offset_hours=utc_offset, problem=prob)
    print(f"run {R}")
    print_districts(out, inv, args.draws)
    print()
    print_signal_budget(signal_budget(prob.H_hourly, prob.obs, truth_path, R / "prior.nc", inputs.hours,
                                      enh_true - prob.prior_enhancement, bg_err, prob.obs_err, outer=inputs.outer))
    return 0


if __name__ == "__main__":
    sys.exit(main())
