"""Carbon budgets: pro-rated comparison numbers, independent-month σ, errors, report section."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from products.budgets import (
    BudgetConfigError,
    CoveredMonth,
    budget_table,
    missing_months,
    parse_budgets,
    year_hours,
)
from products.inputs import load_districts_table
from products.report import build_report


def _table(rows):
    return pd.DataFrame(rows, columns=["district", "prior_t", "posterior_t", "prior_sigma_t",
                                       "posterior_sigma_t", "truth_t"]).set_index("district")


JAN = CoveredMonth("2025-01", _table([["Liwan", 12000, 13000.4, 5000, 2000, np.nan],
                                      ["Guangzhou", 70000, 70001.5, 11000, 4100, np.nan]]),
                   pd.Timestamp("2025-01-01"), pd.Timestamp("2025-01-02"))
FEB = CoveredMonth("2025-02", _table([["Liwan", 19000, 20000.0, 6000, 1500, np.nan],
                                      ["Guangzhou", 120000, 118000.0, 15000, 5000, np.nan]]),
                   pd.Timestamp("2025-02-01"), pd.Timestamp("2025-02-03"))


def test_prorated_numbers_by_hand():
    bt = budget_table({"2025": {"Liwan": 4000, "Guangzhou": 15000}}, [JAN, FEB], "2025-02")
    assert list(bt.index) == ["Liwan", "Guangzhou"]
    r = bt.loc["Liwan"]
    assert year_hours(2025) == 8760 and year_hours(2024) == 8784
    assert r["covered_hours"] == 72
    assert r["emitted_kt"] == pytest.approx(33.0004)
    assert r["emitted_sigma_kt"] == pytest.approx(2.5)            # sqrt(2^2 + 1.5^2)
    assert r["budget_covered_kt"] == pytest.approx(4000 * 72 / 8760)
    assert r["used_pct"] == pytest.approx(100 * 33.0004 / (4000 * 72 / 8760))
    assert r["used_sigma_pct"] == pytest.approx(100 * 2.5 / (4000 * 72 / 8760))
    # to date: 1 Jan 00 UTC -> 3 Feb 00 UTC = 33 days
    assert r["budget_to_date_kt"] == pytest.approx(4000 * 792 / 8760)
    assert r["to_date_kt"] == pytest.approx(33.0004 * 792 / 72)
    assert r["coverage_to_date"] == pytest.approx(72 / 792)
    proj, sp = 33.0004 * 8760 / 72, 2.5 * 8760 / 72
    assert r["projected_year_kt"] == pytest.approx(proj)
    z = (proj - 4000) / sp
    assert r["p_exceed"] == pytest.approx(0.5 * (1 + math.erf(z / math.sqrt(2))))
    assert r["status"] == "uncertain" and r["months"] == "2025-01, 2025-02"
    c = bt.loc["Guangzhou"]                                          # 22.9 Mt/yr ± 0.8 vs 15 Mt
    assert c["projected_year_kt"] == pytest.approx(188.0015 * 8760 / 72)
    assert c["p_exceed"] > 0.999 and c["status"] == "likely over budget"


def test_sigma_and_exceedance_agree_with_monte_carlo():
    rng = np.random.default_rng(3)
    n = 400_000
    jan = rng.normal(13000.4, 2000, n)
    feb = rng.normal(20000.0, 1500, n)
    year = (jan + feb) / 1e3 * 8760 / 72
    bt = budget_table({2025: {"Liwan": 4000}}, [JAN, FEB], "2025-02").loc["Liwan"]
    assert bt["projected_year_sigma_kt"] == pytest.approx(year.std(), rel=5e-3)
    assert bt["p_exceed"] == pytest.approx((year > 4000).mean(), abs=3e-3)


def test_within_budget_and_later_months_ignored():
    late = CoveredMonth("2025-03", FEB.table, pd.Timestamp("2025-03-01"), pd.Timestamp("2025-03-02"))
    bt = budget_table({2025: {"Liwan": 9000}}, [JAN, late], "2025-01").loc["Liwan"]
    assert bt["months"] == "2025-01" and bt["covered_hours"] == 24
    assert bt["status"] == "within budget" and bt["p_exceed"] < 0.16
    assert missing_months("2025-03", [JAN, late]) == ["2025-02"]


def test_no_budget_for_the_year_is_empty():
    assert budget_table({2024: {"Liwan": 1.0}}, [JAN], "2025-01").empty
    assert budget_table({}, [JAN], "2025-01").empty


@pytest.mark.parametrize("budgets, match", [
    ({"2025": {"Nowhere": 10}}, r"budgets\.2025\.Nowhere.*unknown district"),
    ({"2025": {"Liwan": -3}}, r"budgets\.2025\.Liwan.*positive"),
    ({"2025": {"Liwan": "lots"}}, r"budgets\.2025\.Liwan.*not a number"),
    ({"25": {"Liwan": 3}}, r"budgets\.25.*four digits"),
    ({"2025": 5}, r"budgets\.2025.*must map"),
])
def test_bad_budget_config_names_the_key(budgets, match):
    with pytest.raises(BudgetConfigError, match=match):
        parse_budgets(budgets, known={"Liwan", "Guangzhou"})


def _maps(fake_run, tmp_path):
    """An empty maps directory: the budget section does not depend on the figures (fast)."""
    maps = tmp_path / "maps"
    maps.mkdir()
    return maps


def _args(fake_run, maps, **kw):
    a = dict(month="2025-01", districts_csv=fake_run["districts"],
             diagnostics_json=fake_run["diagnostics"], modelled_csv=fake_run["modelled"],
             selected_csv=fake_run["selected"], stations_yaml=fake_run["stations"],
             maps_dir=maps, power_heatmap=fake_run["heatmap"], power_summary=fake_run["summary"],
             days=["20250101"], hours_per_day=4, language="en")
    a.update(kw)
    return a


def test_report_budget_section(fake_run, tmp_path):
    maps = _maps(fake_run, tmp_path)
    html = build_report(**_args(fake_run, maps, budgets={"2025": {"Liwan": 4000, "Guangzhou": 30000}}))
    sec = html.split("<h2>Carbon budgets</h2>")[1].split("<h2>")[0]
    # Liwan: 13.0004 kt in 24 h vs 4000*24/8760 = 10.959 kt -> 118.6 %; sigma 2 kt -> 18 %
    assert "13.00 ± 2.00" in sec and "10.96" in sec and "119 ± 18" in sec
    assert "24 h (100 %)" in sec
    assert sec.count("data:image/png;base64,") == 1
    assert 'download="budgets_2025-01.csv"' in sec
    # budget chart + power heat map + station contributions (the map figures are not made here:
    # listed as missing)
    assert html.count("data:image/png;base64,") == 3
    # district CSV download in the district section
    assert 'download="districts_2025-01.csv"' in html
    # no budgets -> no section
    assert "Carbon budgets" not in build_report(**_args(fake_run, maps))
    assert "Carbon budgets" not in build_report(**_args(fake_run, maps, budgets={2024: {"Liwan": 1}}))


def test_report_budget_sums_earlier_months(fake_run, tmp_path):
    maps = _maps(fake_run, tmp_path)
    # an earlier report month: the fake January becomes history of a February report
    feb = tmp_path / "results" / "2025-02"
    feb.mkdir(parents=True)
    t = fake_run["table"].copy()
    t[["prior_t", "posterior_t"]] *= 2
    t.to_csv(feb / "districts.csv", index=False)
    d = json.loads(fake_run["diagnostics"].read_text())
    d.update(period_start="2025-02-01T00:00:00+00:00", period_end="2025-02-03T00:00:00+00:00")
    (feb / "diagnostics.json").write_text(json.dumps(d))
    html = build_report(**_args(
        fake_run, maps, month="2025-02", districts_csv=feb / "districts.csv",
        diagnostics_json=feb / "diagnostics.json", days=["20250201", "20250202"],
        budgets={"2025": {"Liwan": 4000}},
        budget_history=[(fake_run["districts"], fake_run["diagnostics"])]))
    sec = html.split("<h2>Carbon budgets</h2>")[1].split("<h2>")[0]
    # 13.0004 + 26.0008 kt over 72 h; sigma sqrt(2^2 + 2^2) = 2.83 kt
    assert "39.00 ± 2.83" in sec and "72 h (9 %)" in sec and "2025-01, 2025-02" in sec
    assert str(fake_run["districts"]) in html  # history listed in provenance


def test_report_budget_lists_uncovered_months(fake_run, tmp_path):
    maps = _maps(fake_run, tmp_path)
    mar = tmp_path / "results" / "2025-03"
    mar.mkdir(parents=True)
    fake_run["table"].to_csv(mar / "districts.csv", index=False)
    d = json.loads(fake_run["diagnostics"].read_text())
    d.update(period_start="2025-03-01T00:00:00", period_end="2025-03-02T00:00:00")
    (mar / "diagnostics.json").write_text(json.dumps(d))
    html = build_report(**_args(fake_run, maps, month="2025-03", districts_csv=mar / "districts.csv",
                                diagnostics_json=mar / "diagnostics.json", days=["20250301"],
                                budgets={"2025": {"Guangzhou": 30000}},
                                budget_history=[(fake_run["districts"], fake_run["diagnostics"])]))
    missing = html.split("<h2>Missing</h2>")[1].split("<h2>")[0]
    assert "budget: no inversion results for 2025-02" in missing


def test_district_csv_product(fake_run, tmp_path):
    from products.report import write_district_csv

    out = write_district_csv(fake_run["districts"], tmp_path / "district_table.csv")
    df = pd.read_csv(out).set_index("district")
    t = load_districts_table(fake_run["districts"])
    np.testing.assert_allclose(df["posterior_kt"], t["posterior_t"] / 1e3, rtol=1e-6)
    np.testing.assert_allclose(df.loc["Liwan", "change_pct"], 100 * (13000.4 - 12345.6) / 12345.6,
                               rtol=1e-5)
    np.testing.assert_allclose(df.loc["Guangzhou", "sigma_reduction_pct"], 100 * (1 - 4100 / 11000),
                               rtol=1e-5)
