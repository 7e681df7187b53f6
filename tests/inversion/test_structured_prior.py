"""Structured prior covariance: time-of-day correlation (``diurnal_corr``) and district factors
(``district_scale_sigma``) — against dense references and a known truth."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from inversion import KroneckerCovariance, SolveOptions, solve
from inversion.covariance import exponential_time_corr
from inversion.factors import FactorSet, biosphere_day_factors, district_factors

from test_run import CFG, area, fake_world, invert_world, two_districts
from test_solve import dense_reference, rel


def test_diurnal_time_correlation_structure():
    Qt1 = exponential_time_corr(12, 6, 48.0)
    np.testing.assert_array_equal(exponential_time_corr(12, 6, 48.0, 1.0), Qt1)
    Qt = exponential_time_corr(12, 6, 48.0, 0.25)
    # same time of day (4 steps per day apart): plain exponential; other times of day: x 0.25
    assert Qt[0, 4] == pytest.approx(np.exp(-24 / 48))
    assert Qt[0, 1] == pytest.approx(0.25 * np.exp(-6 / 48))
    assert Qt[1, 6] == pytest.approx(0.25 * np.exp(-30 / 48))
    np.testing.assert_allclose(np.diag(Qt), 1.0)
    for c in (-0.3, 0.0, 0.25, 0.9):
        assert np.linalg.eigvalsh(exponential_time_corr(40, 6, 720.0, c)).min() > 0
    # a shape error (c -> -1/3 with 4 steps a day): the daily sum of a persistent error nearly vanishes
    Qs = exponential_time_corr(8, 6, 1e9, -0.33)
    day = np.r_[np.ones(4), np.zeros(4)]
    assert day @ Qs @ day < 0.02 * (day @ exponential_time_corr(8, 6, 1e9, 1.0) @ day)
    for bad in (1.5, -1 / 3):
        with pytest.raises(ValueError, match="diurnal_corr"):
            exponential_time_corr(4, 6, 48.0, bad)


def test_diurnal_covariance_matmat_and_solve_match_dense():
    rng = np.random.default_rng(3)
    n_step, ny, nx, n_extra, n_obs = 8, 5, 4, 2, 30
    sigma = 0.2 + rng.random((n_step, ny, nx))
    Q = KroneckerCovariance(sigma, 1.0, 1.1, 2.0, 6.0, 240.0, extra_sigma=np.full(n_extra, 2.0), diurnal_corr=0.3)
    assert not Q.markov_time
    Qd = Q.to_dense()
    V = rng.normal(size=(Q.n, 3))
    assert rel(Q.matmat(V), Qd @ V) < 1e-12
    n_state = Q.n
    H = sp.random(n_obs, n_state, density=0.3, random_state=rng, format="csr")
    y = rng.normal(size=n_obs)
    A = sp.random(4, n_state, density=0.5, random_state=rng, format="csr")
    sig = 0.5 + rng.random(n_obs)
    ref = dense_reference(H, y, np.zeros(n_state), Qd, sig, A.toarray())
    res = solve(H, y, np.zeros(n_state), Q, sig, aggregate=A)  # auto: the generic H Q Hᵀ
    assert rel(res.x_post, ref["x_post"]) < 1e-8
    assert rel(res.agg_post_cov, ref["agg_post_cov"]) < 1e-8
    k = solve(H, y, np.zeros(n_state), Q, sig, aggregate=A, options=SolveOptions(hqht="kronecker"))  # structured builder, per time of day
    assert rel(k.x_post, ref["x_post"]) < 1e-8 and rel(k.agg_post_cov, ref["agg_post_cov"]) < 1e-8


def test_factor_columns_totals_and_flux_change_match_dense():
    rng = np.random.default_rng(1)
    hours = pd.date_range("2025-01-01", periods=30, freq="h")
    n_hours, ny, nx = len(hours), 2, 3
    H = sp.random(4, n_hours * ny * nx, density=0.4, random_state=rng, format="csr")
    f = rng.random((n_hours, ny, nx))
    bio = rng.normal(size=(n_hours, ny, nx))
    F = sp.csr_matrix(np.array([[1, 1, 0.5, 0, 0, 0], [0, 0, 0.5, 1, 1, 1.0]]))
    fs = FactorSet().extend(*district_factors(f, ["A", "B"], F, 0.2)).extend(*biosphere_day_factors(bio, hours, 8, 0.1))
    # local days (UTC+8) of 30 UTC hours from 00 UTC: 2025-01-01 (16 h) and 2025-01-02 (14 h)
    assert fs.names == ["A", "B", "biosphere 2025-01-01", "biosphere 2025-01-02"]
    np.testing.assert_allclose(fs.sigma, [0.2, 0.2, 0.1, 0.1])
    day1 = np.arange(n_hours) < 16
    g = [(f.reshape(n_hours, -1) * F.toarray()[0]), (f.reshape(n_hours, -1) * F.toarray()[1]),
         np.minimum(bio, 0).reshape(n_hours, -1) * day1[:, None],
         np.minimum(bio, 0).reshape(n_hours, -1) * ~day1[:, None]]
    dense = np.stack([H.toarray() @ gj.ravel() for gj in g], 1)
    np.testing.assert_allclose(fs.columns(H), dense, rtol=1e-13)
    s = np.array([0.3, -0.1, 0.2, 0.05])
    np.testing.assert_allclose(fs.flux_change(s).reshape(n_hours, -1), sum(sj * gj for sj, gj in zip(s, g)), rtol=1e-13)
    W = sp.csr_matrix(rng.random((3, ny * nx)))
    mask = np.arange(n_hours) >= 6
    tot = fs.totals_matrix(W, mask)
    ref = np.stack([W @ gj[mask].sum(0) for gj in g], 1) * 3600 * 44.01e-12
    np.testing.assert_allclose(tot, ref, rtol=1e-13)
    np.testing.assert_allclose(fs.mean_matrix(W, mask), np.stack([W @ gj[mask].mean(0) for gj in g], 1), rtol=1e-13)


def _with_west_bias(w, bias):
    """Truth = prior with the West district x (1 + bias); observations noise-free on the truth."""
    names, F = two_districts()
    west = F.toarray()[0].reshape(w["prior"].shape[1:])
    truth = w["prior"] * (1.0 + bias * west)[None]
    sel = w["sel"].assign(time=pd.to_datetime(w["sel"]["time"], utc=True).dt.tz_localize(None))
    sel = sel.assign(value=np.asarray(w["H"] @ truth.ravel()) + 420.0)
    return names, F, truth, sel


def test_district_factor_recovers_a_district_bias_and_outputs_stay_consistent():
    w = fake_world(seed=2, n_days=3)
    names, F, truth, sel = _with_west_bias(w, 0.3)
    cfg = {**CFG, "district_scale_sigma": 0.3, "prior_rel_sigma": 0.05, "prior_floor_sigma": 0.01,
           "obs_sigma_ppm": 0.05, "bg_sigma_ppm": 0.05}
    out = invert_world(w["H"], w["rec"], w["hours"], sel, w["prior"], w["lat"], w["lon"], names, F, area(), cfg,
                 "2025-01-02", "2025-01-05", truth_flux=truth)
    ds = out.posterior
    s = ds["factor_posterior"].to_series()
    e = ds["factor_posterior_sigma"].to_series()
    assert list(s.index) == names and list(ds["factor_kind"].values) == ["district", "district"]
    assert abs(s["West"] - 0.3) < 0.03 and abs(s["West"] - 0.3) < 3 * e["West"] + 0.01
    assert abs(s["East"]) < 0.03
    assert np.all(e.values < ds["factor_prior_sigma"].values)
    d = out.districts.set_index("district")
    # the West total is recovered; East stays at its (true) prior
    assert abs(d.loc["West", "posterior_t"] - d.loc["West", "truth_t"]) < 0.1 * abs(d.loc["West", "prior_t"] - d.loc["West", "truth_t"])
    # linear aggregation: district totals of the written posterior flux map equal posterior_t
    from inversion.aggregate import period_mask, totals_tonnes
    a = area().ravel()
    W = sp.vstack([F @ sp.diags(a), sp.csr_matrix(a[None])])
    mask = period_mask(w["hours"], "2025-01-02", "2025-01-05")
    np.testing.assert_allclose(totals_tonnes(ds["posterior_flux"].values.astype(float), W, mask),
                               d["posterior_t"].to_numpy(), rtol=1e-5)
    # the modelled series is the written flux map seen through the Jacobian
    m = out.modelled
    H = w["H"][out.problem.obs["row"].to_numpy()]
    recon = H @ ds["posterior_flux"].values.astype(float).ravel() + m.background_posterior.to_numpy()
    np.testing.assert_allclose(recon, m.posterior_model, atol=1e-3)
    assert out.diagnostics["factors"]["West"]["posterior"] == pytest.approx(s["West"])


def test_district_factors_off_by_default_and_equal_dense_prior():
    """σ_d → the state gains n_d elements whose prior is σ_d² g_d g_dᵀ; with a dense Q the same
    problem solved on the cell state alone (Q_cell + Σ σ_d² g g ᵀ, g the step-mean field) is identical
    when the scaled field is constant within steps."""
    w = fake_world(seed=5)
    names, F = two_districts()
    sel = w["sel"].assign(time=pd.to_datetime(w["sel"]["time"], utc=True).dt.tz_localize(None))
    common = (w["H"], w["rec"], w["hours"], sel, w["prior"], w["lat"], w["lon"], names, F, area())
    off = invert_world(*common, CFG, "2025-01-02", "2025-01-04")
    assert "factor_posterior" not in off.posterior and off.diagnostics["factors"] is None
    # step-constant scaled field: then the factors are exactly a low-rank term of the cell covariance
    step = CFG["time_step_hours"]
    nh = w["prior"].shape[0]
    g = np.repeat(w["prior"].reshape(nh // step, step, -1).mean(axis=1), step, axis=0).reshape(w["prior"].shape)
    # the district factors scale prior − power − bio: with bio = prior − g and no power they scale g
    on = invert_world(*common, {**CFG, "district_scale_sigma": 0.2}, "2025-01-02", "2025-01-04", prior_bio_flux=w["prior"] - g)
    prob = on.problem
    n_flux, n_days = prob.n_flux, prob.n_offsets
    Qd = prob.Q.to_dense()
    # map the augmented state onto cells: x_cell = x_flux + Σ_d s_d g_step ⊙ frac_d
    gs = g[::step].reshape(-1)
    M = np.zeros((Qd.shape[0], n_flux + n_days))
    M[:n_flux, :n_flux] = np.eye(n_flux)
    M[n_flux:n_flux + n_days, n_flux:] = np.eye(n_days)
    Fd = F.toarray()
    for d in range(2):
        M[n_flux + n_days + d, :n_flux] = gs * np.tile(Fd[d], nh // step)
    Q_cell = M.T @ Qd @ M
    Hcell = sp.csr_matrix(prob.H[:, :n_flux + n_days])
    ref = dense_reference(Hcell, prob.y, np.zeros(n_flux + n_days), Q_cell, prob.obs_sigma, np.eye(n_flux + n_days)[:1])
    x_cell = on.result.x_post @ M
    assert rel(x_cell, ref["x_post"]) < 1e-8


def test_prior_sigma_day_basis_and_separate_biosphere():
    from inversion.state import prior_sigma

    rng = np.random.default_rng(7)
    nh, step = 48, 6
    anthro = rng.random((nh, 2, 3)) * np.r_[np.full(12, 0.2), np.full(12, 2.0)].repeat(2)[:nh, None, None]
    bio = rng.normal(0, 1, (nh, 2, 3))
    power = np.zeros_like(anthro)
    power[:, 0, 0] = 30.0
    tot = anthro + bio + power
    m = lambda a: a.reshape(nh // step, step, 2, 3).mean(axis=1)  # noqa: E731
    day = np.repeat(anthro.reshape(2, 24, 2, 3).mean(axis=1), 24 // step, axis=0)
    s = prior_sigma(tot, step, 0.6, 0.5, power_flux=power, power_rel=0.1, bio_flux=bio, anthro_basis="day")
    np.testing.assert_allclose(s, 0.6 * (np.abs(day) + np.abs(m(bio))) + 0.1 * np.abs(m(power)) + 0.5, rtol=1e-13)
    # within a day, every step gets the same anthropogenic σ (the night is not smaller than the afternoon)
    s_no_bio = prior_sigma(anthro + power, step, 0.6, 0.5, power_flux=power, bio_flux=np.zeros_like(bio), anthro_basis="day")
    assert np.ptp(s_no_bio[:4], axis=0).max() < 1e-12
    step_basis = prior_sigma(tot, step, 0.6, 0.5, power_flux=power, bio_flux=bio, anthro_basis="step")
    np.testing.assert_allclose(step_basis, 0.6 * (np.abs(m(anthro)) + np.abs(m(bio))) + 0.1 * np.abs(m(power)) + 0.5, rtol=1e-13)
    with pytest.raises(ValueError, match="sigma_basis"):
        prior_sigma(tot, step, 0.6, 0.5, power_flux=power, bio_flux=bio, anthro_basis="hour")


def test_profile_factors_conserve_daily_totals():
    from inversion.factors import profile_factors

    rng = np.random.default_rng(9)
    hours = pd.date_range("2025-01-01 16:00", periods=72, freq="h")  # 3 whole local days at UTC+8
    prof = 0.3 + rng.random(24)
    lh = (hours.hour + 8) % 24
    road = prof[lh][:, None, None] * rng.random((1, 3, 4))
    fields, facs = profile_factors({"road": road}, hours, 8, 0.3)
    assert len(facs) == 4 and all(f.kind == "profile" for f in facs)
    fs = FactorSet().extend(fields, facs)
    for f in facs:
        g = fs._g(f).reshape(road.shape)
        daily = g.reshape(3, 24, -1).sum(axis=1)  # per local day and cell
        assert np.abs(daily).max() < 1e-12 * np.abs(g).max() * 24
        assert np.abs(g).max() > 0.05 * road.max()  # a real modulation, not zero
    # the modulation of a unit factor is the harmonic (minus its profile-weighted mean) times the flux
    b = np.cos(2 * np.pi * np.arange(24) / 24)
    b = b - (prof * b).sum() / prof.sum()
    np.testing.assert_allclose(fs._g(facs[0]).reshape(road.shape), road * b[lh][:, None, None], rtol=1e-12)
    assert len(fields) == 1  # one stored field per sector, the harmonics are hour weights
