"""Innovation screening in `invert`: a 10,000 ppm hour is excluded and named, the posterior equals the
solve without it, and every observation that does not reach the solve is counted with its reason."""

import numpy as np
import pandas as pd
import pytest

from inversion import SolveOptions


from test_run import CFG, area, fake_world, invert_world, two_districts

PERIOD = ("2025-01-02", "2025-01-04")


def _sel(w):
    return w["sel"].assign(time=pd.to_datetime(w["sel"]["time"], utc=True).dt.tz_localize(None))


def _run(w, sel, cfg=CFG, rec=None, missing=None):
    names, F = two_districts()
    return invert_world(w["H"], w["rec"] if rec is None else rec, w["hours"], sel, w["prior"], w["lat"], w["lon"],
                  names, F, area(), cfg, *PERIOD, truth_flux=w["truth"], missing=missing)


def test_gross_outlier_is_excluded_named_and_posterior_equals_the_solve_without_it():
    w = fake_world()
    clean = _sel(w)
    bad = clean.copy()
    k = 5
    bad.loc[k, "value"] = 10000.0  # the failure of issue 13: one hour at 10,000 ppm
    ref = _run(w, clean)
    assert ref.diagnostics["innovation_screen"]["n_flagged"] == 0  # the clean data pass the screen
    scr = _run(w, bad)
    without = _run(w, clean.drop(index=k).reset_index(drop=True))
    off = _run(w, bad, {**CFG, "innovation_screen": {"action": "off"}})
    flag = _run(w, bad, {**CFG, "innovation_screen": {"action": "flag"}})

    city = lambda o: o.districts.set_index("district").loc["Guangzhou"]  # noqa: E731
    # excluded: the posterior is the solve without that observation, to rounding
    np.testing.assert_allclose(scr.result.x_post, without.result.x_post, rtol=0, atol=1e-10 * np.abs(without.result.x_post).max())
    np.testing.assert_allclose(scr.districts[["posterior_t", "posterior_sigma_t"]].to_numpy(),
                               without.districts[["posterior_t", "posterior_sigma_t"]].to_numpy(), rtol=1e-10)
    # ... close to the clean solve (one of 16 observations less), while without screening it is not
    c_ref, c_scr, c_off = city(ref), city(scr), city(off)
    assert abs(c_scr.posterior_t - c_ref.posterior_t) < 0.5 * c_ref.posterior_sigma_t
    assert abs(c_off.posterior_t - c_ref.posterior_t) > 20 * c_ref.posterior_sigma_t
    # flag: named but kept, so the same (wrong) posterior as without screening
    np.testing.assert_allclose(flag.result.x_post, off.result.x_post, rtol=1e-12)
    assert flag.diagnostics["innovation_screen"]["n_flagged"] == 1
    assert flag.diagnostics["innovation_screen"]["n_excluded"] == 0

    d = scr.diagnostics
    s = d["innovation_screen"]
    assert (s["threshold_sigma"], s["action"], s["n_flagged"], s["n_excluded"]) == (3.0, "exclude", 1, 1)
    named = s["flagged"][0]
    assert (named["site"], named["time"]) == (bad.loc[k, "site"], bad.loc[k, "time"].strftime("%Y-%m-%dT%H:%M:%S"))
    assert named["observed"] == 10000.0 and named["normalised"] > 1000 and not named["used"]
    assert d["largest_normalised_residuals"][0] == named and len(d["largest_normalised_residuals"]) == 5
    assert d["n_obs"] == 15 and d["n_obs_matched"] == 16
    assert d["observations_lost"]["counts"] == {"screened: |innovation| > 3 sigma": 1}
    # χ²: out of range with the outlier in the solve, not once it is excluded
    assert off.diagnostics["chi2_test"]["out_of_range"] and off.diagnostics["chi2_test"]["p_value"] < 1e-100
    assert not d["chi2_test"]["out_of_range"]
    assert d["chi2_test"]["dof"] == 15
    assert d["chi2_test"]["value"] == pytest.approx(d["chi2_reduced"] * 15, rel=1e-12)
    # modelled.csv: every matched observation, the outlier marked
    m = scr.modelled
    assert len(m) == 16
    row = m[m.observed == 10000.0].iloc[0]
    assert row.screened == 1 and row.used == 0 and row.normalised_innovation > 1000
    assert m.used.sum() == 15 and m.screened.sum() == 1
    np.testing.assert_allclose(m.innovation, m.observed - m.prior_model, atol=1e-9)
    np.testing.assert_allclose(m.normalised_innovation, m.innovation / m.innovation_sigma, rtol=1e-12)
    # the residual statistics use the observations of the solve
    assert abs(d["per_site"][named["site"]]["posterior_mean"]) < 5


def test_innovation_sigma_is_the_dense_prior_predicted_sigma():
    w = fake_world(seed=2)
    out = _run(w, _sel(w))
    p = out.problem
    Hd = p.H.toarray()
    ref = np.sqrt(np.diag(Hd @ p.Q.to_dense() @ Hd.T) + p.obs_sigma**2)
    np.testing.assert_allclose(out.modelled.innovation_sigma, ref, rtol=1e-11)


def test_all_observations_beyond_the_threshold_stop_with_a_message():
    w = fake_world()
    sel = _sel(w)
    sel["value"] = 10000.0
    with pytest.raises(ValueError, match="all 16 observations lie beyond 3.0 sigma.*action: flag"):
        _run(w, sel)


def test_observations_lost_are_counted_with_their_reason():
    w = fake_world()
    sel = _sel(w)
    rec = w["rec"].copy()
    missing = np.zeros(len(rec), bool)
    missing[3] = True  # HYSPLIT failed / no footprint for this receptor
    # an observation with no receptor at all, and one outside the period days
    extra = pd.concat([sel.iloc[[0]].assign(time=pd.Timestamp("2025-01-02 10:00")),
                       sel.iloc[[1]].assign(time=pd.Timestamp("2025-01-01 04:00"))], ignore_index=True)
    rec_extra = pd.concat([rec, rec.iloc[[1]].assign(time=pd.Timestamp("2025-01-01 04:30"),
                                                      receptor_id="X_early")], ignore_index=True)
    H = w["H"]
    import scipy.sparse as sp
    w2 = {**w, "H": sp.vstack([H, H[1]], format="csr")}
    out = _run(w2, pd.concat([sel, extra], ignore_index=True), rec=rec_extra, missing=np.r_[missing, False])
    lost = out.diagnostics["observations_lost"]
    assert lost["counts"] == {"receptor without footprint": 1, "no receptor": 1, "outside the period": 1}
    assert lost["n_selected"] == 18 and lost["n_used"] == 15
    assert out.diagnostics["observations_dropped"] == 3
    nf = [o for o in lost["observations"] if o["reason"] == "receptor without footprint"][0]
    assert nf["receptor_id"] == rec.loc[3, "receptor_id"]
    assert out.diagnostics["receptors"] == {"n": 17, "n_without_footprint": 1,
                                            "without_footprint": [rec.loc[3, "receptor_id"]]}


def test_per_observation_solve_options_follow_the_screen():
    """tools/osse.py passes y_ensemble (and callers obs_subsets) over every matched observation: after
    screening, the same rows as the solve are used (the actual data as a member gives the posterior)."""
    from inversion.state import build_problem
    w = fake_world()
    bad = _sel(w)
    bad.loc[5, "value"] = 10000.0
    names, F = two_districts()
    days = pd.date_range(PERIOD[0], "2025-01-03", freq="D")
    le = np.round(np.r_[w["lat"] - 0.005, w["lat"][-1] + 0.005], 10)
    lo = np.round(np.r_[w["lon"] - 0.005, w["lon"][-1] + 0.005], 10)
    prob = build_problem(w["H"], w["rec"], w["hours"], bad, w["prior"], le, lo, CFG, days)
    Y = np.column_stack([prob.y, prob.y * 0.5])
    site = prob.obs["site"].to_numpy()
    out = invert_world(w["H"], w["rec"], w["hours"], bad, w["prior"], w["lat"], w["lon"], names, F, area(), CFG,
                 *PERIOD, truth_flux=w["truth"], problem=prob,
                 solve_options=SolveOptions(y_ensemble=Y, obs_subsets={"a": site == "AAA", "b": np.flatnonzero(site == "BBB")}))
    assert out.diagnostics["innovation_screen"]["n_excluded"] == 1
    np.testing.assert_allclose(out.result.agg_post_mean_ensemble[:, 0], out.result.agg_post_mean, rtol=1e-10)
    assert set(out.result.agg_post_cov_subsets) == {"a", "b"}
