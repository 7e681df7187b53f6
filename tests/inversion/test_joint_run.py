"""inversion.joint_run: the joint CO2/CO problem from a month's pipeline inputs (the tiny synthetic
world of test_run.py), and what CO adds to the fossil/biogenic split."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from gzcarbon.config import load_config
from inversion.joint import solve_joint
from inversion.joint_run import build_joint_run, co_prior_flux, fossil_bio_table
from inversion.run import InversionInputs

from test_run import CFG, area, fake_world, two_districts

RATIOS = pd.DataFrame({"ratio_mol_per_mol": [0.012, 0.015], "sigma_rel": [0.05, 0.05], "source": ["t", "t"]},
                      index=pd.Index(["industry", "road"], name="sector"))


def world(seed=0):
    w = fake_world(seed)
    hours = w["hours"]
    prior = w["prior"]
    ny, nx = prior.shape[1:]
    yy, xx = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
    day = np.clip(np.sin(2 * np.pi * (hours.hour.to_numpy() - 0) / 24), 0, None)
    bio = -4.0 * day[:, None, None] * (1 + 0.5 * np.cos(xx / 2.0))[None]
    sectors = {"industry": 0.6 * prior, "road": 0.4 * prior, "bio": bio}
    truth = {"industry": 1.3 * sectors["industry"], "road": 1.3 * sectors["road"], "bio": 0.8 * bio}
    H, rec = w["H"], w["rec"]
    rng = np.random.default_rng(seed + 1)
    co2_true = H @ sum(truth.values()).ravel()
    sel = w["sel"].copy()
    sel["time"] = pd.to_datetime(sel["time"], utc=True).dt.tz_localize(None)  # as read_selected gives it
    sel["value"] = 420.0 + co2_true + rng.normal(0, 0.3, len(rec))
    co_true = co_prior_flux(truth, {"industry": (0.012, 0), "road": (0.015, 0)})
    co = sel.copy()
    co["value"] = 300.0 + H @ co_true.ravel() + rng.normal(0, 2.0, len(rec))
    co["background"], co["background_sigma"], co["value_std_dev"] = 300.0, 2.0, 1.0
    names, F = two_districts()
    inputs = InversionInputs(H, rec, hours, sel, sum(sectors.values()), w["lat"], w["lon"], names, F, area())
    return inputs, co, sectors, truth


def test_joint_run_from_pipeline_inputs_and_what_co_adds():
    inputs, co, sectors, truth = world()
    cfg = load_config({"inversion": {**CFG, "station_contributions": False}, "gases": {"co": {"obs_sigma_ppb": 3.0}}})
    start, end = inputs.hours[24], inputs.hours[-1] + pd.Timedelta("1h")
    run = build_joint_run(inputs, co, sectors, RATIOS, cfg.inversion, cfg.gases.co, cfg.inversion.joint_co, start, end)
    jp = run.problem
    assert jp.n_co2 == jp.n_co == 16
    # CO innovations: observed − background − H x_a of the CO prior (1000 · r · sector), by hand
    co_prior = 1000 * (0.012 * sectors["industry"] + 0.015 * sectors["road"])
    Hh = sp.csr_matrix(inputs.H_hourly)[run.co_obs["row"].to_numpy()]
    np.testing.assert_allclose(jp.d[16:], run.co_obs["value"] - 300.0 - Hh @ co_prior.ravel(), rtol=1e-12)
    # each CO row pairs with the CO2 row of its receptor: R's cross terms are ρ m_CO2 m_CO there only
    m2 = np.sqrt(0.3**2)
    m1 = 3.0
    cross = jp.R[:16, 16:]
    same = run.co2_obs["row"].to_numpy()[:, None] == run.co_obs["row"].to_numpy()[None, :]
    np.testing.assert_allclose(cross[same], 0.5 * m2 * m1)
    assert np.all(cross[~same] == 0)

    with_co = solve_joint(jp, run.A, ("fossil", "bio"), extra_agg=run.extra_agg)
    no_co = solve_joint(jp.without_co(), run.A, ("fossil", "bio"), extra_agg=run.extra_agg)
    t_with, t_no = fossil_bio_table(run, with_co, truth), fossil_bio_table(run, no_co, truth)
    city = t_with.index[-1]
    err_with = t_with.fossil_posterior_t - t_with.fossil_truth_t
    err_no = t_no.fossil_posterior_t - t_no.fossil_truth_t
    # CO tells fossil from biogenic CO2 where the stations see: the fossil and biogenic σ of every row
    # shrink (measured 0.81-0.84 and 0.73-0.76 of the CO2-only σ) and their posterior anti-correlation
    # weakens (city −0.49 → −0.22); the unseen part of the city keeps its prior σ, so the gain is partial
    assert np.all(t_with.fossil_posterior_sigma_t < 0.9 * t_no.fossil_posterior_sigma_t)
    assert np.all(t_with.bio_posterior_sigma_t < 0.9 * t_no.bio_posterior_sigma_t)
    assert np.all(np.abs(t_with.posterior_correlation) < 0.6 * np.abs(t_no.posterior_correlation))
    assert np.all(t_no.posterior_correlation < 0)
    assert np.all(np.abs(err_with) < 2 * t_with.fossil_posterior_sigma_t)
    assert np.all(np.abs(err_no) < 2 * t_no.fossil_posterior_sigma_t)
    # the table's columns add up: prior totals of the sectors, city = sum of the two districts
    assert t_with.fossil_prior_t[city] == pytest.approx(t_with.fossil_prior_t[:2].sum(), rel=1e-12)
    assert np.all(t_with.posterior_correlation.between(-1, 1))


def test_district_factors_act_on_co2_and_co_through_the_ratios():
    inputs, co, sectors, truth = world(seed=2)
    cfg = load_config({"inversion": {**CFG, "station_contributions": False, "district_scale_sigma": 0.25}})
    start, end = inputs.hours[24], inputs.hours[-1] + pd.Timedelta("1h")
    run = build_joint_run(inputs, co, sectors, RATIOS, cfg.inversion, cfg.gases.co, cfg.inversion.joint_co, start, end)
    jp, n_days = run.problem, 2
    j = [run.factor_names.index(n) for n in ("West", "East")]
    assert run.factor_names[:2 * n_days] == [f"background {g} day {i}" for g in ("co2", "co") for i in range(2)]
    np.testing.assert_allclose(jp.offset_sigma[j], 0.25)
    # a unit district factor adds the district's whole diffuse fossil prior (industry + road) ...
    np.testing.assert_allclose(run.extra_agg["fossil"][:2, j].diagonal(), run.prior_t["fossil"][:2], rtol=1e-12)
    assert np.all(run.extra_agg["bio"][:, j] == 0)
    # ... and its CO column is the CO of that flux: 1000 Σ r_k f_k in the district, through the footprints
    _, F = two_districts()
    west = np.asarray(F[0].todense()).ravel()
    co_west = 1000 * (0.012 * sectors["industry"] + 0.015 * sectors["road"]) * west.reshape(sectors["road"].shape[1:])
    Hh1 = sp.csr_matrix(inputs.H_hourly)[run.co_obs["row"].to_numpy()]
    np.testing.assert_allclose(jp.E.toarray()[jp.n_co2:, j[0]], Hh1 @ co_west.ravel(), rtol=1e-10)
    res = solve_joint(jp, run.A, ("fossil", "bio", "co"), extra_agg=run.extra_agg)
    assert np.all(res.sigma("fossil") < res.sigma("fossil", prior=True))
