"""The report's cross-validation section, from the `cross_validation` entry the inversion writes."""

import json
import re

import numpy as np
import pandas as pd
import scipy.sparse as sp

from inversion import SolveOptions, solve
from gzcarbon.config import CrossValidationConfig
from inversion.crossval import cross_validation_entry, plan_folds
from products.sections import cross_validation_section, fmt_num
from test_report import _report


def crossval_entry():
    """The entry of a small inversion with two sites (AAA, BBB) over two days (inversion.crossval)."""
    rng = np.random.default_rng(7)
    n = 24
    H = sp.csr_matrix(rng.random((n, 10)))
    sites = np.array(["AAA", "BBB"] * (n // 2))
    times = pd.Timestamp("2025-01-01") + pd.to_timedelta(np.arange(n) * 2, "h")
    plan = plan_folds(CrossValidationConfig(), sites, times, n_obs=n, solver="auto", max_dense_obs=100)
    y = H @ rng.normal(size=10) + rng.normal(0, 0.3, n)
    res = solve(H, y, np.zeros(10), np.eye(10), np.full(n, 0.3), options=plan.apply(SolveOptions()))
    return json.loads(json.dumps(cross_validation_entry(plan, res.holdout_predictions, y, np.full(n, 5.0))))


def test_report_shows_the_cross_validation_tables(fake_run, tmp_path):
    cv = crossval_entry()
    diag = json.loads(fake_run["diagnostics"].read_text())
    diag["cross_validation"] = cv
    fake_run["diagnostics"].write_text(json.dumps(diag))
    html = _report(fake_run, tmp_path)
    assert "Cross-validation: predicting observations the inversion did not see" in html
    for site, lost in (("AAA", "17.3"), ("BBB", "8.2")):  # city σ points lost (station_contributions)
        r = cv["sites"][site]
        row = (rf">{site}</td><td class=\"\">{r['n']}</td>"
               rf"<td class=\"\">{fmt_num(r['prior_rmse'])} → {fmt_num(r['posterior_rmse'])}</td>"
               rf"<td class=\"\">{fmt_num(r['prior_bias'])} → {fmt_num(r['posterior_bias'])}</td>"
               rf"<td class=\"\">{fmt_num(r['prior_corr'])} → {fmt_num(r['posterior_corr'])}</td>"
               rf"<td class=\"\">{fmt_num(r['chi2_reduced'])}</td><td class=\"\">{lost}</td>")
        assert re.search(row, html), site
    for d in cv["days"]:
        assert f">{d['fold']}</td><td class=\"\">{d['n']}</td>" in html
    s = cv["summary"]["sites"]
    assert f">every site (pooled)</td><td class=\"\">{s['n']}</td>" in html
    assert f"{s['n_folds_improved']} of 2 sites" in html and "blocks of days" in html


def test_cross_validation_section_skipped_and_absent():
    assert cross_validation_section({}) is None
    why = "needs the Cholesky solver's explicit K"
    sec = cross_validation_section({"cross_validation": {"sites": {}, "days": [], "summary": {},
                                                         "skipped": {"sites": why, "days": why}}})
    assert sec["sites"] is None and sec["days"] is None and sec["skipped"] == [f"sites: {why}", f"days: {why}"]
