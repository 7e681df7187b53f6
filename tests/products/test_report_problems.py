"""The report's problem box and its table of what did not make it into the inversion
(products/problems.py): shown with the counts when a stage recorded a problem, absent when none."""

import html
import json
import re

import numpy as np
import pandas as pd
import xarray as xr

from products.problems import collect, station_hours_lost
from test_report import _report

BAD = {"site": "BBB", "time": "2025-01-01T05:00:00", "observed": 10000.0, "background": 420.1,
       "prior_model": 425.3, "innovation_ppm": 9574.7, "sigma_ppm": 2.3, "normalised": 4162.9,
       "screened": True, "used": False}
OK = {"site": "AAA", "time": "2025-01-01T04:00:00", "observed": 431.0, "background": 420.0,
      "prior_model": 428.0, "innovation_ppm": 3.0, "sigma_ppm": 2.0, "normalised": 1.5,
      "screened": False, "used": True}


def _hourly_dir(root, site, height, flagged_utc_hours, nan_utc_hours=()):
    """One inlet's hourly file of 2025-01-01 (qcflag 1 = low_coverage, 2 = calibration_extrapolated)."""
    d = root / "obs" / "hourly" / site
    d.mkdir(parents=True, exist_ok=True)
    t = pd.date_range("2025-01-01", periods=24, freq="h")
    v = np.full(24, 425.0)
    q = np.zeros(24, np.int64)
    q[[3]] = 2  # calibration extrapolated only: informational, not a loss
    for h in flagged_utc_hours:
        q[h] |= 1
    for h in nan_utc_hours:
        v[h] = np.nan
    ds = xr.Dataset({"value": ("time", v), "qcflag": ("time", q, {"flag_masks": [1, 2],
                     "flag_meanings": "low_coverage calibration_extrapolated"})}, coords={"time": t},
                    attrs={"site": site, "intake_height": float(height)})
    ds.to_netcdf(d / f"{site}_{height}m.nc")
    pd.DataFrame({"file": ["a.dat", "b.dat", "old.dat", "x.dat"], "status": ["read", "read", "outside_period", "read"],
                  "reason": ["", "", "", ""], "records_ambient": [100, 90, 0, 5], "flag_spike": [1, 0, 0, 0],
                  "flag_range": [0, 3 if site == "BBB" else 0, 0, 0]}).to_csv(d / "ingest_summary.csv", index=False)
    return d


def _with_problems(fake_run, tmp_path):
    R = fake_run["R"]
    diag = json.loads(fake_run["diagnostics"].read_text())
    diag.update({
        "n_obs": 6, "n_obs_matched": 7,
        "innovation_screen": {"threshold_sigma": 3.0, "action": "exclude", "chi2_p_min": 1e-3, "n_flagged": 1,
                              "n_excluded": 1, "seconds": 0.01, "flagged": [BAD]},
        "chi2_test": {"value": 1e6, "dof": 6, "reduced": 1e6 / 6, "p_value": 0.0, "p_value_lower": 1.0,
                      "p_min": 1e-3, "out_of_range": True},
        "largest_normalised_residuals": [BAD, OK],
        "observations_lost": {"n_selected": 9, "n_used": 6, "counts": {}, "observations": [
            {"site": "AAA", "time": "2025-01-01T06:00:00", "reason": "receptor without footprint",
             "receptor_id": "AAA_202501010630_100"},
            {"site": "AAA", "time": "2025-01-01T07:00:00", "reason": "receptor without footprint",
             "receptor_id": "AAA_202501010730_100"},
            {"site": "BBB", "time": "2025-01-01T02:00:00", "reason": "no receptor", "receptor_id": ""},
            {"site": "BBB", "time": "2025-01-01T05:00:00", "reason": "screened: |innovation| > 3 sigma",
             "receptor_id": ""}]},
        "receptors": {"n": 8, "n_without_footprint": 2,
                      "without_footprint": ["AAA_202501010630_100", "AAA_202501010730_100"]},
    })
    fake_run["diagnostics"].write_text(json.dumps(diag))
    (R / "footprints").mkdir(exist_ok=True)
    pd.DataFrame({"site": ["AAA"], "day": ["20250101"], "receptor_id": ["AAA_202501010630_100"],
                  "time": ["2025-01-01T06:30:00"], "error": ["SimulationError: no particles"]}).to_csv(
        R / "footprints" / "failures.csv", index=False)
    # BBB: 07 UTC (15 local) flagged low coverage, 20 UTC (outside the window) flagged too; AAA: 04-07 all selected
    dirs = [_hourly_dir(R, "AAA", 100, [20]), _hourly_dir(R, "BBB", 30, [7, 20])]
    ing = pd.read_csv(dirs[0] / "ingest_summary.csv", keep_default_na=False)
    ing.loc[3, ["status", "reason"]] = ["not_raw", "serial CFKADS9999 is not AAA's analyser"]
    ing.to_csv(dirs[0] / "ingest_summary.csv", index=False)
    return dict(failures_csv=R / "footprints" / "failures.csv", hourly_dirs=dirs, utc_offset_hours=8,
                select_hours_local=[12, 16])


def _table_counts(fragment):
    rows = re.findall(r"<tr><td class=\"l\">([^<]*)</td><td class=\"l\">([^<]*)</td><td class=\"\">(\d+)</td></tr>",
                      fragment)
    return {(html.unescape(s), html.unescape(r)): int(n) for s, r, n in rows}


def test_report_shows_problem_box_with_counts(fake_run, tmp_path):
    kw = _with_problems(fake_run, tmp_path)
    page = _report(fake_run, tmp_path, **kw)
    assert page.count('class="problems"') == 1
    # the box comes first: before the city total
    assert page.index('class="problems"') < page.index("<h2>City total</h2>")
    box = page[page.index('class="problems"'):page.index("<h2>City total</h2>")]
    assert "BBB 2025-01-01T05:00:00: observed 10000.00 ppm" in box and "+4162.9 σ" in box
    assert "excluded from the solve" in box
    assert "p-value 0 &lt; 0.001" in box
    assert "1 receptor(s) HYSPLIT failed on" in box and "AAA_202501010630_100 (SimulationError: no particles)" in box
    assert "1 receptor(s) without a footprint that are not HYSPLIT failures" in box
    assert "1 hour(s) in the selection window flagged by station QC" in box and "BBB: low_coverage 1" in box
    assert "station BBB: raw records flagged as implausible (range 3)" in box
    assert "station AAA: 1 raw file(s) not read: x.dat (not_raw: serial CFKADS9999 is not AAA&#x27;s analyser)" in box
    assert "old.dat" not in box  # a file of another period is not a problem
    counts = _table_counts(box)
    assert counts == {
        ("receptors", "HYSPLIT failed"): 1,
        ("receptors", "receptor without footprint (not a HYSPLIT failure)"): 1,
        ("station hours (selection window)", "QC flag low_coverage"): 1,
        ("raw files", "not read: not_raw"): 1,
        ("observations (selected.csv → inversion)", "HYSPLIT failed (receptor)"): 1,
        ("observations (selected.csv → inversion)", "receptor without footprint (not a HYSPLIT failure)"): 1,
        ("observations (selected.csv → inversion)", "no receptor"): 1,
        ("observations (selected.csv → inversion)", "screened: |innovation| > 3 sigma"): 1,
    }
    # the same table under Data availability, and the χ² p-value and the top residuals under Diagnostics
    assert _table_counts(page[page.index("<h2>Data availability</h2>"):]) == counts
    diag_part = page[page.index("<h2>Diagnostics</h2>"):page.index("<h2>Data availability</h2>")]
    assert "Largest normalised residuals" in diag_part and "4,162.90" in diag_part and "no (screened)" in diag_part


def test_no_box_when_nothing_went_wrong(fake_run, tmp_path):
    # an old diagnostics.json without any of the new keys: no box, the table says it is not recorded
    page = _report(fake_run, tmp_path)
    assert 'class="problems"' not in page and "Problems in this run" not in page
    assert "Not recorded by this run" in page
    # a clean run: new keys, all zero; hourly files whose window hours are all selected
    diag = json.loads(fake_run["diagnostics"].read_text())
    diag.update({"innovation_screen": {"threshold_sigma": 3.0, "action": "exclude", "n_flagged": 0, "n_excluded": 0,
                                       "flagged": []},
                 "chi2_test": {"value": 5.1, "dof": 7, "reduced": 0.73, "p_value": 0.65, "p_value_lower": 0.35,
                               "p_min": 1e-3, "out_of_range": False},
                 "largest_normalised_residuals": [OK],
                 "observations_lost": {"n_selected": 7, "n_used": 7, "counts": {}, "observations": []},
                 "receptors": {"n": 7, "n_without_footprint": 0, "without_footprint": []}})
    fake_run["diagnostics"].write_text(json.dumps(diag))
    R = fake_run["R"]
    (R / "footprints").mkdir(exist_ok=True)
    pd.DataFrame(columns=["site", "day", "receptor_id", "time", "error"]).to_csv(R / "footprints" / "failures.csv",
                                                                              index=False)
    dirs = [_hourly_dir(R, "AAA", 100, [20]), _hourly_dir(R, "BBB", 30, [20])]
    pd.DataFrame({"file": ["a.dat"], "flag_range": [0]}).to_csv(dirs[1] / "ingest_summary.csv", index=False)
    page = _report(fake_run, tmp_path, failures_csv=R / "footprints" / "failures.csv", hourly_dirs=dirs,
                   utc_offset_hours=8, select_hours_local=[12, 16])
    # BBB has no 07 UTC row in selected.csv and no flag: counted as not selected, not a problem
    assert 'class="problems"' not in page
    assert _table_counts(page[page.index("<h2>Data availability</h2>"):]) == {
        ("station hours (selection window)", "not selected (no QC flag)"): 1}


def test_station_hours_lost_reads_flag_meanings_and_wrapping_window(tmp_path):
    d = _hourly_dir(tmp_path, "CCC", 50, [22, 23], nan_utc_hours=[0, 1])
    sel = pd.DataFrame({"site": ["CCC"], "time": ["2025-01-01T23:00:00Z"]})
    # window 06-10 local = 22-02 UTC (wraps midnight); 23 selected, 22 flagged, 00 and 01 without value
    st = station_hours_lost([d], sel, ["20250101"], 8, [6, 10])
    assert dict(zip(st["reason"], st["count"])) == {"QC flag low_coverage": 1,
                                                     "no hourly value (no usable raw data)": 2}
    # missing inputs are simply not shown
    out = collect({"n_obs": 1}, sel, tmp_path / "nope.csv", [tmp_path / "none"], ["20250101"])
    assert out["problems"] == [] and out["losses"].empty


def test_availability_counts_only_observations_used(fake_run, tmp_path):
    m = pd.read_csv(fake_run["modelled"])
    m["used"] = 1
    m["screened"] = 0
    m.loc[m.index[m.site == "BBB"][0], ["used", "screened"]] = [0, 1]
    m.to_csv(fake_run["modelled"], index=False)
    page = _report(fake_run, tmp_path)
    av = page[page.index("<h2>Data availability</h2>"):]
    row = re.search(r'<td class="l">BBB</td><td class="l">[^<]*</td>(.*?)</tr>', av).group(1)
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", row)
    assert cells[0] == "3" and cells[3] == "2"  # 3 selected hours, 2 used (one screened)


def test_identical_twin_demo_is_a_problem_of_the_run():
    """issue 18, bad input: a truth made with the inversion's own footprints is named at the top."""
    from products.problems import collect

    twin = collect({"truth_transport": {"identical_twin": True, "numpar": 100, "seed": 7}})
    assert any(p["en"].startswith("identical-twin demo") for p in twin["problems"])
    assert any(p["zh"].startswith("同卵双胞胎式演示") for p in twin["problems"])
    honest = collect({"truth_transport": {"identical_twin": False, "numpar": 150, "seed": 1007}})
    assert not any("identical-twin" in p["en"] for p in honest["problems"])


def test_problem_box_in_chinese(fake_run, tmp_path):
    """The same problems in the Chinese report: every sentence of the box in Chinese with the same
    numbers (1 observation beyond 3 σ, χ² 1e+06 for 6 observations, 2 receptors, 3 lost observations)."""
    from test_report_language import visible_text

    kw = _with_problems(fake_run, tmp_path)
    page = _report(fake_run, tmp_path, language="zh", districts_geojson=fake_run["geojson"], **kw)
    box = visible_text(page.split('class="problems"')[1].split("</ul>")[0])
    assert "1 个观测偏离其先验预测超过 3 σ，已从求解中剔除" in box
    assert "观测 10000.00 ppm，先验模拟 425.30 ppm (+4162.9 σ)" in box
    assert "6 个观测的新息 χ² = 1e+06" in box and "p 值 0 < 0.001" in box
    assert "HYSPLIT 在 1 个受体上运行失败" in box and "AAA_202501010630_100 (SimulationError: no particles)" in box
    assert "个选定的观测未用于反演" in box and "选择窗口内有 1 个小时被站点质控标记而未使用" in box
    assert "站点 AAA：1 个原始文件未读取" in box and "站点 BBB：原始记录被标记为不合理（range 3）" in box
    for en in ("observation(s)", "receptor(s)", "HYSPLIT failed on", "selection window", "raw file",
               "not used", "innovation"):
        assert en not in box, en
