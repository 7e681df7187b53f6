"""The annual report and flash revisions (products.annual) on months inverted by inversion.run on
the small synthetic world of tests/inversion/test_run.py (the pipeline's own file formats)."""

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from inversion.run import write_outputs
from inversion.sequential import read_month_joint, year_estimate
from products.annual import (AnnualInputError, annual_table, covered_months, flash_revisions, flash_status,
                             write_annual, write_flash)

sys.path.insert(0, str(Path(__file__).parents[1] / "inversion"))
from test_run import CFG, area, fake_world, invert_world, two_districts  # noqa: E402

CFG_F = {**CFG, "district_scale_sigma": 0.25}


def _invert_into(base: Path, seed: int, end: str = "2025-01-04"):
    w = fake_world(seed=seed)
    sel = w["sel"].assign(time=pd.to_datetime(w["sel"]["time"], utc=True).dt.tz_localize(None))
    names, F = two_districts()
    out = invert_world(w["H"], w["rec"], w["hours"], sel, w["prior"], w["lat"], w["lon"], names, F, area(),
                       CFG_F, "2025-01-02", end, truth_flux=w["truth"])
    base.mkdir(parents=True, exist_ok=True)
    write_outputs(out, base / "posterior.nc", base / "districts.csv", base / "modelled.csv", base / "diagnostics.json")
    return out


@pytest.fixture(scope="module")
def year_dir(tmp_path_factory):
    res = tmp_path_factory.mktemp("annual") / "results"
    for i, m in enumerate(("2025-01", "2025-02", "2025-04")):  # March missing
        _invert_into(res / m, seed=i)
    # a flash of January: its first day only
    fl = res / "2025-01" / "flash" / "2025-01-02"
    _invert_into(fl, seed=0, end="2025-01-03")
    write_flash(fl / "report.html", fl / "flash.json", fl / "districts.csv", fl / "diagnostics.json",
                month="2025-01", cutoff="2025-01-02", month_days=["20250102", "20250103"], flash_days=["20250102"])
    return res


def test_annual_totals_are_the_correlated_year_and_missing_months_are_not_zero(year_dir):
    mf = covered_months(2025, year_dir, ["2025-01", "2025-02", "2025-04"])
    y = annual_table(2025, mf)
    est = year_estimate([read_month_joint(m.diagnostics_json, m.month) for m in mf])
    t = y.table.set_index("district")
    assert list(t.index) == ["West", "East", "Guangzhou"]
    assert np.allclose(t["posterior_t"], est.total_mean, rtol=1e-12)
    assert np.allclose(t["posterior_sigma_t"], est.total_sigma, rtol=1e-12)
    own = [pd.read_csv(m.districts_csv).set_index("district") for m in mf]
    assert np.allclose(t["posterior_sigma_independent_t"], np.sqrt(sum(o["posterior_sigma_t"] ** 2 for o in own)))
    # the month alone and the year differ: the year knows every month's data about the factors
    assert not np.allclose(t["posterior_sigma_t"], t["posterior_sigma_independent_t"], rtol=1e-3)
    assert np.allclose(t["truth_t"], sum(o["truth_t"] for o in own))
    assert y.missing == ["2025-03"] + [f"2025-{i:02d}" for i in range(5, 13)]
    assert set(t["months_not_covered"]) == {" ".join(y.missing)} and set(t["months_covered"]) == {3}
    assert t["covered_hours"].iloc[0] == 3 * 48  # three periods of 2 days; the year's hours are not all covered
    assert y.availability.shape == (2, 12)
    assert y.availability.loc["AAA", "2025-01"] > 0 and np.isnan(y.availability.loc["AAA", "2025-03"])
    assert y.error_model.startswith("correlated months")


def test_write_annual_files(year_dir, tmp_path):
    mf = covered_months(2025, year_dir, ["2025-01", "2025-02", "2025-04"])
    out_csv, out_html = tmp_path / "2025" / "districts.csv", tmp_path / "2025" / "report.html"
    flash = {"2025-01": [str(year_dir / "2025-01" / "flash" / "2025-01-02")]}
    y = write_annual(out_csv, out_html, 2025, mf, budgets={"2025": {"West": 1e9, "Guangzhou": 1e-6}},
                     flash_dirs=flash)
    back = pd.read_csv(out_csv)
    assert np.allclose(back["posterior_sigma_t"], y.table["posterior_sigma_t"], rtol=1e-5)
    html = out_html.read_text()
    for text in ("Not covered:", "2025-03", "Budget status", "within budget", "likely over budget", "2025-01-02", "data:image/png;base64",
                 "Data availability", "correlated months"):
        assert text in html, text
    # a second year with the first as its previous year: change in % with an independence statement
    prev = tmp_path / "2024.csv"
    back.assign(posterior_t=back["posterior_t"] * 0.5).to_csv(prev, index=False)
    write_annual(tmp_path / "b.csv", tmp_path / "b.html", 2025, mf, previous_csv=prev)
    html = (tmp_path / "b.html").read_text()
    assert "100.00" in html and "correlation 0 between years" in html  # rate doubled: +100 %


def test_flash_is_marked_preliminary_and_revisions_are_rates(year_dir):
    fl = year_dir / "2025-01" / "flash" / "2025-01-02"
    status = json.loads((fl / "flash.json").read_text())
    assert status["status"] == "preliminary" and status["coverage"] == 0.5 and status["days_inverted"] == 1
    assert "Preliminary" in (fl / "report.html").read_text()
    rv = flash_revisions(year_dir / "2025-01" / "districts.csv", year_dir / "2025-01" / "diagnostics.json", [fl])
    final = pd.read_csv(year_dir / "2025-01" / "districts.csv").set_index("district")
    flash = pd.read_csv(fl / "districts.csv").set_index("district")
    r = rv.set_index("district").loc["Guangzhou"]
    assert r["flash_days"] == 1 and r["final_days"] == 2
    assert r["final_kt_per_day"] == pytest.approx(final.loc["Guangzhou", "posterior_t"] / 2 / 1e3)
    assert r["flash_kt_per_day"] == pytest.approx(flash.loc["Guangzhou", "posterior_t"] / 1e3)
    assert r["revision_pct"] == pytest.approx(100 * (r["final_kt_per_day"] / r["flash_kt_per_day"] - 1))
    assert flash_revisions(year_dir / "2025-01" / "districts.csv", year_dir / "2025-01" / "diagnostics.json",
                           []).empty


def test_bad_years_and_flashes_are_named(year_dir, tmp_path):
    with pytest.raises(AnnualInputError, match="year 2026: no month of 2026 has results"):
        annual_table(2026, covered_months(2026, year_dir, ["2025-01"]))
    with pytest.raises(Exception, match="flash 2025-01 2025-01-09: its days"):
        flash_status("2025-01", "2025-01-09", ["20250102"], ["20250109"], {})
    # a month whose districts differ from the others' (another districts file)
    odd = tmp_path / "results" / "2025-05"
    odd.mkdir(parents=True)
    pd.read_csv(year_dir / "2025-01" / "districts.csv").replace({"West": "Westside"}).to_csv(odd / "districts.csv",
                                                                                         index=False)
    (odd / "diagnostics.json").write_text((year_dir / "2025-01" / "diagnostics.json").read_text())
    mf = covered_months(2025, year_dir, ["2025-01"]) + covered_months(2025, tmp_path / "results", ["2025-05"])
    with pytest.raises(AnnualInputError, match="2025-05/districts.csv: districts"):
        annual_table(2025, mf)


def test_monthly_report_revision_table(year_dir):
    from products.annual import revision_section

    fl = year_dir / "2025-01" / "flash" / "2025-01-02"
    sec = revision_section(year_dir / "2025-01" / "districts.csv", year_dir / "2025-01" / "diagnostics.json", [fl])
    t = sec["table"]
    assert t.columns[:2] == ["cut-off", "district"] and len(t.rows) == 3
    rv = flash_revisions(year_dir / "2025-01" / "districts.csv", year_dir / "2025-01" / "diagnostics.json", [fl])
    city = dict(t.rows[-1].cells)
    assert city["district"] == "Guangzhou" and city["cut-off"] == "2025-01-02"
    assert city["revision (%)"] == f"{rv['revision_pct'].iloc[-1]:,.1f}"
    assert revision_section(year_dir / "2025-01" / "districts.csv", year_dir / "2025-01" / "diagnostics.json",
                            []) is None
