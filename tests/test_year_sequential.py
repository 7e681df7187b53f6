"""Correlated months (issue 21.3): the district factors carried from month to month
(inversion.sequential) against one dense solve of all months, and the month's joint entry."""

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.linalg as sla
import scipy.sparse as sp

from inversion import solve
from inversion.sequential import (JOINT_KEY, MonthJoint, SequentialInputError, condition, filter_months,
                                  joint_reference, months_of_case, read_month_joint, small_case,
                                  with_unit_rows, year_estimate)

sys.path.insert(0, str(Path(__file__).parent / "inversion"))
from test_run import CFG, area, fake_world, invert_world, two_districts  # noqa: E402


def test_sequential_filter_and_smoother_equal_one_dense_solve_of_all_months():
    case = small_case(n_months=5, seed=3)
    months = months_of_case(case)
    est = year_estimate(months)
    na = months[0].n_agg
    u, C, s_mean, s_cov = joint_reference(case["H_c"], case["G"], case["y"], case["R"], case["Q_c"],
                                          case["a_c"], case["b"], case["s0"], case["S0"])
    monthly = np.array(case["prior_t"]) + u.reshape(5, na)
    assert np.allclose(est.monthly_mean, monthly, rtol=0, atol=1e-9)
    assert np.allclose(est.monthly_cov, C, rtol=0, atol=1e-9)  # every month × month block
    assert np.allclose(est.factor_mean, s_mean, atol=1e-12) and np.allclose(est.factor_cov, s_cov, atol=1e-12)
    S = np.kron(np.ones((1, 5)), np.eye(na))
    assert np.allclose(est.total_cov, S @ C @ S.T, atol=1e-9)
    # the months are correlated a posteriori: the cross blocks are not zero, and summing
    # independent σ² (today's budget) differs from the correlated σ by more than 5 % somewhere
    assert np.abs(C[:na, na:2 * na]).max() > 0.01 * np.abs(C[:na, :na]).max()
    assert np.max(np.abs(est.independent_total_sigma / est.total_sigma - 1)) > 0.05


def test_changing_the_factor_prior_equals_solving_the_month_with_that_prior():
    case = small_case(n_months=1, seed=7)
    (mj,) = months_of_case(case)
    rng = np.random.default_rng(1)
    nf, nc = case["S0"].shape[0], case["Q_c"][0].shape[0]
    mu = rng.normal(0, 0.1, nf)
    L = rng.normal(0, 0.08, (nf, nf))
    P = L @ L.T + np.eye(nf) * 0.01  # correlated, narrower than S0 in some directions, wider in others
    f = condition(mj, mu, P)
    H = np.hstack([case["H_c"][0], case["G"][0]])
    A = np.hstack([case["a_c"][0], case["b"][0]])
    res = solve(sp.csr_matrix(H), case["y"][0], np.concatenate([np.zeros(nc), mu]),
                sla.block_diag(case["Q_c"][0], P), case["R"][0], aggregate=with_unit_rows(A, nc + np.arange(nf)))
    na = A.shape[0]
    assert np.allclose(f.mean_t, case["prior_t"][0] + res.agg_post_mean[:na], atol=1e-10)
    assert np.allclose(f.mean_s, res.agg_post_mean[na:], atol=1e-12)
    assert np.allclose(f.cov, res.agg_post_cov, atol=1e-10)


def test_prior_of_the_year_shares_the_factors():
    """Prior σ of the sum: Σ_m a Q_c aᵀ + (Σ_m b_m) S0 (Σ_m b_m)ᵀ, not Σ_m (a Q_c aᵀ + b_m S0 b_mᵀ)."""
    case = small_case(n_months=3, seed=5)
    est = year_estimate(months_of_case(case))
    S0 = case["S0"]
    shared = sum(a @ q @ a.T for a, q in zip(case["a_c"], case["Q_c"])) + sum(case["b"]) @ S0 @ sum(case["b"]).T
    indep = sum(a @ q @ a.T + b @ S0 @ b.T for a, q, b in zip(case["a_c"], case["Q_c"], case["b"]))
    assert np.allclose(est.prior_total_cov, shared, rtol=1e-10)
    assert np.all(est.prior_total_sigma > np.sqrt(np.diag(indep)) * 1.05)


def test_one_month_is_its_own_inversion_and_the_filter_chains_the_prior():
    case = small_case(n_months=3, seed=2)
    months = months_of_case(case)
    est1 = year_estimate(months[:1])
    assert np.allclose(est1.total_mean, months[0].posterior_t, atol=1e-10)
    assert np.allclose(est1.total_sigma, np.sqrt(np.diag(months[0].post_cov)[:4]), atol=1e-10)
    filt = filter_months(months)
    na = months[0].n_agg
    assert np.allclose(filt[1].prior_s_mean, filt[0].mean_s) and np.allclose(filt[2].prior_s_cov,
                                                                              filt[1].cov[na:, na:])
    # the factor σ shrinks month after month (more data on one persistent bias)
    sd = [np.sqrt(np.diag(f.cov[na:, na:])) for f in filt]
    assert np.all(sd[2] < sd[1]) and np.all(sd[1] < sd[0])


def test_invert_writes_the_joint_entry_consistent_with_its_other_outputs(tmp_path):
    w = fake_world()
    w["sel"] = w["sel"].assign(time=pd.to_datetime(w["sel"]["time"], utc=True).dt.tz_localize(None))
    names, F = two_districts()
    cfg = {**CFG, "district_scale_sigma": 0.25}
    out = invert_world(w["H"], w["rec"], w["hours"], w["sel"], w["prior"], w["lat"], w["lon"], names, F, area(),
                       cfg, "2025-01-02", "2025-01-04")
    j = out.diagnostics[JOINT_KEY]
    assert j["aggregates"] == ["West", "East", "Guangzhou"] and j["factors"] == ["West", "East"]
    post = np.array(j["posterior_cov"])
    agg = out.diagnostics["aggregate_covariance"]
    assert np.allclose(post[:3, :3], np.array(agg["posterior"]), rtol=1e-10)
    assert np.allclose(np.array(j["prior_cov"])[:3, :3], np.array(agg["prior"]), rtol=1e-10)
    assert np.allclose(j["posterior_t"], out.districts["posterior_t"], rtol=1e-12)
    fac = out.diagnostics["factors"]
    assert np.allclose(np.sqrt(np.diag(post)[3:]), [fac[n]["posterior_sigma"] for n in names], rtol=1e-8)
    assert np.allclose(j["factor_posterior_mean"], [fac[n]["posterior"] for n in names], rtol=1e-10)
    assert np.allclose(np.diag(np.array(j["prior_cov"]))[3:], 0.25**2)
    # the district totals move with their own factor: positive prior covariance total-factor
    assert np.array(j["prior_cov"])[0, 3] > 0 and np.array(j["prior_cov"])[1, 4] > 0
    path = tmp_path / "diagnostics.json"
    path.write_text(json.dumps(out.diagnostics, default=float))
    mj = read_month_joint(path, "2025-01")
    assert isinstance(mj, MonthJoint) and np.allclose(mj.post_cov, post)
    # without district factors: no entry, and the totals are what they were
    out0 = invert_world(w["H"], w["rec"], w["hours"], w["sel"], w["prior"], w["lat"], w["lon"], names, F, area(),
                        {**cfg, "district_scale_sigma": 0.0}, "2025-01-02", "2025-01-04")
    assert out0.diagnostics[JOINT_KEY] is None
    assert pd.Series(out0.districts["posterior_sigma_t"]).notna().all()


def test_bad_month_entries_are_named(tmp_path):
    case = small_case(n_months=2, seed=1)
    months = months_of_case(case)
    other = MonthJoint(**{**months[1].__dict__, "factors": ["a", "b", "c"]})
    with pytest.raises(SequentialInputError, match="2025-02: its districts/factors"):
        filter_months([months[0], other])
    bad = tmp_path / "diagnostics.json"
    bad.write_text(json.dumps({JOINT_KEY: {"aggregates": ["x"], "factors": ["x"], "prior_t": [1.0]}}))
    with pytest.raises(SequentialInputError, match=r"diagnostics.json: `district_factors_joint` is malformed"):
        read_month_joint(bad, "2025-03")
    bad.write_text(json.dumps({JOINT_KEY: {"aggregates": ["x"], "factors": ["x"], "prior_t": [1.0],
                                           "posterior_t": [1.0], "factor_prior_mean": [0.0],
                                           "factor_posterior_mean": [0.0], "prior_cov": [[1.0]],
                                           "posterior_cov": [[1.0]]}}))
    with pytest.raises(SequentialInputError, match=r"prior_cov` has shape \(1, 1\)"):
        read_month_joint(bad, "2025-03")
    bad.write_text("{not json")
    with pytest.raises(SequentialInputError, match="cannot be read as JSON"):
        read_month_joint(bad, "2025-03")


def test_budget_year_to_date_sigma_uses_the_correlated_months():
    from products.budgets import CoveredMonth, budget_table

    case = small_case(n_months=3, seed=4)
    names = ["West", "East", "Mid", "Guangzhou"]
    months = [MonthJoint(**{**m.__dict__, "aggregates": names}) for m in months_of_case(case)]
    covered = []
    for i, m in enumerate(months):
        sd = np.sqrt(np.diag(m.post_cov)[:4])
        table = pd.DataFrame({"prior_t": m.prior_t, "posterior_t": m.posterior_t, "prior_sigma_t": sd * 2,
                              "posterior_sigma_t": sd, "truth_t": np.nan}, index=pd.Index(names, name="district"))
        start = pd.Timestamp(f"2025-{i + 1:02d}-01")
        covered.append(CoveredMonth(m.month, table, start, start + pd.Timedelta(days=1), m))
    bt = budget_table({"2025": {"West": 1.0, "Guangzhou": 2.0}}, covered, "2025-03")
    est = year_estimate(months)
    for name, i in (("West", 0), ("Guangzhou", 3)):
        r = bt.loc[name]
        assert r["error_model"] == "correlated months"
        assert r["emitted_kt"] == pytest.approx(est.total_mean[i] / 1e3, rel=1e-12)
        assert r["emitted_sigma_kt"] == pytest.approx(est.total_sigma[i] / 1e3, rel=1e-12)
        assert r["emitted_independent_sigma_kt"] == pytest.approx(
            np.sqrt(sum(m.post_cov[i, i] for m in months)) / 1e3, rel=1e-12)
    # one month without the entry (an older run): every month summed as independent, said so
    covered[1] = CoveredMonth(covered[1].month, covered[1].table, covered[1].start, covered[1].end)
    bt = budget_table({"2025": {"West": 1.0}}, covered, "2025-03")
    assert bt.loc["West", "error_model"] == "independent months"
    assert bt.loc["West", "emitted_sigma_kt"] == pytest.approx(bt.loc["West", "emitted_independent_sigma_kt"])


def test_the_table_of_docs_year_is_what_the_check_prints():
    from inversion.sequential import check_table

    doc = (Path(__file__).parents[1] / "docs" / "year.md").read_text()
    table = check_table()
    assert table.split("\n\nlargest")[0] in doc
    assert float(table.rsplit(": ", 1)[1]) < 1e-9  # sequential = joint
