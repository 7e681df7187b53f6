"""Cross-validation (`inversion.crossval`): leave-one-site-out and folds of days, without re-inverting.

The fast route (blocks of K⁻¹ from the solve's Cholesky factor) is checked against brute-force
re-inversions without the left-out observations; the skill statistics against numbers computed here
independently; and on a problem with a known truth drawn from the prior, the posterior predicts a
left-out site better than the prior exactly when another site sees the same fluxes.
"""

import json

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from test_run import CFG, area, fake_world, invert_world, two_districts

from gzcarbon.config import InversionConfig
from inversion import SolveOptions, solve
from gzcarbon.config import CrossValidationConfig
from inversion.crossval import cross_validation_entry, cross_validation_settings, day_folds, plan_folds, skill


def random_problem(seed=0, n_obs=40, n_state=30):
    rng = np.random.default_rng(seed)
    H = sp.csr_matrix(rng.normal(size=(n_obs, n_state)) * (rng.random((n_obs, n_state)) < 0.3))
    X = rng.normal(size=(n_state, n_state))
    Q = X @ X.T / n_state + 0.1 * np.eye(n_state)
    return H, rng.normal(size=n_obs) * 3, rng.normal(size=n_state), Q, 0.5 + rng.random(n_obs)


def correlated_R(sig, tau=3.0):
    t = np.arange(sig.size)
    return np.outer(sig, sig) * np.exp(-np.abs(t[:, None] - t[None, :]) / tau)


@pytest.mark.parametrize("full_R", [False, True])
def test_holdout_predictions_equal_brute_force_reinversions(full_R):
    """H_L x̂_S from the full solve's factor equals H_L x̂ of a separate solve on S alone, to 1e-10;
    so do the predictive σ and χ² from the dense K (diagonal R, and R correlated across the folds)."""
    H, y, xa, Q, sig = random_problem()
    n = y.size
    R = correlated_R(sig) if full_R else sig
    Kfull = (H @ Q @ H.T) + (R if full_R else np.diag(sig**2))
    block = np.zeros(n, bool)
    block[5:15] = True
    folds = {"block": block, "scattered": np.array([39, 0, 20]), "one": np.array([7]), "all": np.ones(n, bool)}
    res = solve(H, y, xa, Q, R, options=SolveOptions(holdout=folds))
    assert set(res.holdout_predictions) == set(folds)
    for name, f in folds.items():
        idx = np.flatnonzero(f) if f.dtype == bool else np.unique(f)
        rest = np.setdiff1d(np.arange(n), idx)
        p = res.holdout_predictions[name]
        np.testing.assert_array_equal(p.index, idx)
        np.testing.assert_allclose(p.y_prior, H[idx] @ xa, rtol=1e-13)
        if rest.size == 0:  # nothing left: the prediction is the prior
            np.testing.assert_allclose(p.y_pred, H @ xa, rtol=1e-10, atol=1e-12)
            continue
        brute = solve(H[rest], y[rest], xa, Q, R[np.ix_(rest, rest)] if full_R else sig[rest])
        ref = H[idx] @ brute.x_post
        np.testing.assert_allclose(p.y_pred, ref, rtol=0, atol=1e-10 * np.abs(ref).max())
        # predictive covariance of y_L given y_S and the normalised misfit, from the dense K
        KSS_inv = np.linalg.inv(Kfull[np.ix_(rest, rest)])
        C = Kfull[np.ix_(idx, idx)] - Kfull[np.ix_(idx, rest)] @ KSS_inv @ Kfull[np.ix_(rest, idx)]
        r = (y - H @ xa)[idx] - Kfull[np.ix_(idx, rest)] @ KSS_inv @ (y - H @ xa)[rest]
        np.testing.assert_allclose(p.sigma_y, np.sqrt(np.diag(C)), rtol=1e-10)
        assert p.chi2 == pytest.approx(r @ np.linalg.solve(C, r), rel=1e-10)


def test_holdout_with_pcg_is_refused_and_bad_folds_named():
    H, y, xa, Q, sig = random_problem()
    with pytest.raises(ValueError, match="holdout.*Cholesky"):
        solve(H, y, xa, Q, sig, options=SolveOptions(solver="pcg", holdout={"a": [1, 2]}))
    with pytest.raises(ValueError, match=r"holdout\['a'\].*indices"):
        solve(H, y, xa, Q, sig, options=SolveOptions(holdout={"a": [1, 99]}))
    with pytest.raises(ValueError, match=r"holdout\['m'\].*mask of shape"):
        solve(H, y, xa, Q, sig, options=SolveOptions(holdout={"m": np.ones(3, bool)}))


def test_skill_statistics():
    o = np.array([1.0, 2.0, 4.0, 3.0])
    m = np.array([1.5, 1.0, 3.0, 3.0])
    s = skill(o, m)
    assert s["n"] == 4
    assert s["bias"] == pytest.approx(np.mean(o - m), rel=1e-15)
    assert s["rmse"] == pytest.approx(np.sqrt(np.mean((o - m) ** 2)), rel=1e-15)
    assert s["corr"] == pytest.approx(pd.Series(o).corr(pd.Series(m)), rel=1e-12)
    assert skill(o[:2], m[:2])["corr"] is None and skill(o, np.ones(4))["corr"] is None


def test_day_folds_are_contiguous_blocks_of_whole_days():
    t = pd.date_range("2025-01-01 04:00", periods=31 * 4, freq="6h")  # 31 days, 4 obs a day
    folds, why = day_folds(t, 4)
    assert why is None and [len(f.days) for f in folds] == [8, 8, 8, 7]
    assert folds[0].days[0] == "2025-01-01" and folds[-1].days[-1] == "2025-01-31"
    assert sum(f.mask.sum() for f in folds) == t.size and not np.any(folds[0].mask & folds[1].mask)
    assert folds[1].label == "2025-01-09 .. 2025-01-16"
    two = pd.date_range("2025-01-02 04:00", periods=8, freq="3h")  # two days: one fold each
    assert [f.label for f in day_folds(two, 4)[0]] == ["2025-01-02", "2025-01-03"]
    assert day_folds(two, 0) == ([], "inversion.cross_validation.folds_days is 0")
    assert "at least two days" in day_folds(two[:2], 4)[1]


def test_settings_defaults_and_errors():
    default = CrossValidationConfig(enabled=True, folds_days=4)
    assert cross_validation_settings(None) == default
    assert cross_validation_settings(InversionConfig()) == default
    assert cross_validation_settings({"cross_validation": {"folds_days": 7}}).folds_days == 7
    assert cross_validation_settings({"cross_validation": False}).enabled is False
    with pytest.raises(ValueError, match="folds_days"):
        cross_validation_settings({"cross_validation": {"folds_days": -1}})
    with pytest.raises(ValueError, match="fold_days"):
        cross_validation_settings({"cross_validation": {"fold_days": 3}})
    off = plan_folds(CrossValidationConfig(enabled=False), ["A", "B"], pd.date_range("2025-01-01", periods=2),
                     n_obs=2, solver="auto", max_dense_obs=10)
    assert off.folds == [] and "enabled is false" in off.skipped["sites"]
    pcg = plan_folds(CrossValidationConfig(), ["A", "B"], pd.date_range("2025-01-01", periods=2),
                     n_obs=20, solver="auto", max_dense_obs=10)
    assert pcg.folds == [] and "PCG" in pcg.skipped["sites"] and "20 observations" in pcg.skipped["days"]


def shared_footprint_problem(seed=3, n_per_site=60, n_cells=20):
    """Three sites over two regions of ``n_cells`` cells whose prior errors are independent: A1 and A2
    see region 1 (different, overlapping footprints), B sees region 2 only. Truth drawn from the prior."""
    rng = np.random.default_rng(seed)
    d = np.arange(n_cells)
    Qr = np.exp(-np.abs(d[:, None] - d[None, :]) / 4.0)
    Q = np.zeros((2 * n_cells, 2 * n_cells))
    Q[:n_cells, :n_cells] = Q[n_cells:, n_cells:] = Qr
    x_true = np.linalg.cholesky(Q + 1e-12 * np.eye(2 * n_cells)) @ rng.normal(size=2 * n_cells)

    def rows(region, centre):
        c = rng.normal(centre, 2.0, n_per_site)[:, None]
        W = np.exp(-((d[None, :] - c) ** 2) / 8.0) * rng.uniform(0.5, 1.5, (n_per_site, 1))
        out = np.zeros((n_per_site, 2 * n_cells))
        out[:, region * n_cells:(region + 1) * n_cells] = W
        return out

    H = sp.csr_matrix(np.vstack([rows(0, 8), rows(0, 11), rows(1, 10)]))
    sites = np.repeat(["A1", "A2", "B"], n_per_site)
    sigma = np.full(sites.size, 0.3)
    y = H @ x_true + rng.normal(0, 0.3, sites.size)
    return H, y, Q, sigma, sites


def test_posterior_beats_the_prior_at_a_left_out_site_only_where_another_site_sees_its_fluxes():
    H, y, Q, sigma, sites = shared_footprint_problem()
    times = pd.Timestamp("2025-01-01") + pd.to_timedelta(np.tile(np.arange(60), 3), "h")
    plan = plan_folds(CrossValidationConfig(folds_days=0), sites, times, n_obs=y.size, solver="auto",
                      max_dense_obs=20000)
    assert [f.name for f in plan.folds] == ["site A1", "site A2", "site B"]
    res = solve(H, y, np.zeros(H.shape[1]), Q, sigma, options=plan.apply(SolveOptions()))
    prior_enh = H @ np.full(H.shape[1], 2.0)  # the prior's modelled enhancement (y is relative to it)
    entry = json.loads(json.dumps(cross_validation_entry(plan, res.holdout_predictions, y, prior_enh)))
    s = entry["sites"]
    for site in ("A1", "A2"):  # the other A-site constrains the same region
        assert s[site]["posterior_rmse"] < 0.6 * s[site]["prior_rmse"]
        assert s[site]["posterior_corr"] > s[site]["prior_corr"]
    # B shares no footprint and no prior correlation with A1/A2: without it the posterior there is the
    # prior, so the left-out skill cannot improve
    assert s["B"]["posterior_rmse"] == pytest.approx(s["B"]["prior_rmse"], rel=1e-9)
    assert s["B"]["posterior_rmse"] >= s["B"]["prior_rmse"] * (1 - 1e-9)
    assert s["B"]["posterior_corr"] == pytest.approx(s["B"]["prior_corr"], rel=1e-9)
    # consistent error model (truth drawn from Q, noise from R): χ²_r of the left-out data near 1
    for site in ("A1", "A2", "B"):
        assert 0.5 < s[site]["chi2_reduced"] < 1.6
        assert s[site]["n"] == 60
    summ = entry["summary"]["sites"]
    assert summ["n"] == 180 and summ["n_folds"] == 3 and summ["n_folds_improved"] == 2
    assert entry["summary"]["days"] is None and entry["days"] == []


def test_invert_cross_validation_equals_reinversions_without_the_fold():
    """invert's diagnostics ``cross_validation``: every site's and every day's posterior skill equals
    the skill of a separate inversion on the other observations, predicted at the left-out ones."""
    w = fake_world()
    names, F = two_districts()
    sel = w["sel"].assign(time=pd.to_datetime(w["sel"]["time"], utc=True).dt.tz_localize(None))
    args = (w["H"], w["rec"], w["hours"])
    rest = (w["prior"], w["lat"], w["lon"], names, F, area(), CFG, "2025-01-02", "2025-01-04")
    out = invert_world(*args, sel, *rest)
    cv = out.diagnostics["cross_validation"]
    assert set(cv["sites"]) == {"AAA", "BBB"} and [d["fold"] for d in cv["days"]] == ["2025-01-02", "2025-01-03"]
    assert cv["skipped"] == {} and cv["folds_days"] == 4
    prob = out.problem
    obs_time = pd.DatetimeIndex(prob.obs["time"])
    enh = prob.y + prob.prior_enhancement
    cases = [(cv["sites"][s], (prob.obs["site"] == s).to_numpy(), sel["site"] != s) for s in ("AAA", "BBB")]
    for rec in cv["days"]:
        day = pd.Timestamp(rec["fold"])
        cases.append((rec, (obs_time.normalize() == day), pd.DatetimeIndex(sel["time"]).normalize() != day))
    for rec, left, keep in cases:
        brute = invert_world(*args, sel[np.asarray(keep)], *rest).result.x_post
        pred = prob.prior_enhancement[left] + prob.H[np.flatnonzero(left)] @ brute
        o = enh[left]
        assert rec["n"] == int(left.sum())
        assert rec["posterior_rmse"] == pytest.approx(np.sqrt(np.mean((o - pred) ** 2)), rel=1e-9)
        assert rec["posterior_bias"] == pytest.approx(np.mean(o - pred), rel=1e-9, abs=1e-12)
        assert rec["posterior_corr"] == pytest.approx(np.corrcoef(o, pred)[0, 1], rel=1e-9)
        assert rec["prior_rmse"] == pytest.approx(np.sqrt(np.mean(prob.y[left] ** 2)), rel=1e-12)
    # the entry is plain JSON
    json.dumps(cv, allow_nan=False)
    off = invert_world(*args, sel, *rest[:6], {**CFG, "cross_validation": {"enabled": False}}, *rest[7:])
    assert off.diagnostics["cross_validation"]["sites"] == {} and off.result.holdout_predictions is None
    # cross-validation changes no product: the same posterior, districts and modelled series
    np.testing.assert_array_equal(off.result.x_post, out.result.x_post)
    pd.testing.assert_frame_equal(off.districts, out.districts, check_exact=True)
    pd.testing.assert_frame_equal(off.modelled, out.modelled, check_exact=True)


def test_invert_with_pcg_skips_cross_validation_with_the_reason():
    w = fake_world()
    names, F = two_districts()
    sel = w["sel"].assign(time=pd.to_datetime(w["sel"]["time"], utc=True).dt.tz_localize(None))
    out = invert_world(w["H"], w["rec"], w["hours"], sel, w["prior"], w["lat"], w["lon"], names, F, area(), CFG,
                       "2025-01-02", "2025-01-04", solve_options=SolveOptions(solver="pcg"))
    cv = out.diagnostics["cross_validation"]
    assert cv["sites"] == {} and cv["days"] == [] and "PCG" in cv["skipped"]["sites"]
