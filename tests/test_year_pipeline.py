"""Issue 21 through Snakemake: the flash target on the tiny run, the month's revision table, a tiny
budget year of two one-day months, and a flash cut-off outside the month."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml

from inversion.sequential import read_month_joint, year_estimate
from pipeline_conftest import copy_run, run_snakemake, tiny_config


def test_flash_cutoff_outside_the_month_stops_before_any_job(tmp_path):
    cfg = tiny_config(tmp_path)
    proc = run_snakemake(tmp_path, cfg, "flash", "--dry-run", "--config", 'flash={"cutoff": "2025-02-01"}')
    assert proc.returncode != 0
    assert ("config key 'flash.cutoff': 2025-02-01 is outside the month 2025-01; give a day of 2025-01"
            in proc.stderr + proc.stdout)
    proc = run_snakemake(tmp_path, cfg, "flash", "--dry-run", "--config", 'flash={"cutoff": "2025-01-09"}')
    assert proc.returncode != 0 and "is not an inverted day of 2025-01 (2025-01-01 .. 2025-01-01" in proc.stderr
    assert not (tmp_path / "results").exists()


def test_budget_for_an_unknown_district_stops_before_any_job(tmp_path):
    cfg = tiny_config(tmp_path)
    c = yaml.safe_load(cfg.read_text())
    c.update(year=2025, budgets={"2025": {"Tianhee": 5200, "Guangzhou": 62000}})
    cfg.write_text(yaml.safe_dump(c))
    proc = run_snakemake(tmp_path, cfg, "--dry-run")
    out = proc.stderr + proc.stdout
    assert proc.returncode != 0
    assert "config key 'budgets.2025.Tianhee': unknown district; use one of" in out and "'Tianhe'" in out
    assert f"districts file {c['districts_file']}" in out
    assert "rule inversion" not in out and not (tmp_path / "results").exists()
    # the same budget with the district spelled right passes the same check
    c["budgets"]["2025"] = {"Tianhe": 5200, "Guangzhou": 62000}
    cfg.write_text(yaml.safe_dump(c))
    proc = run_snakemake(tmp_path, cfg, "--dry-run")
    assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.mark.slow
def test_flash_of_the_whole_period_equals_the_month_and_the_report_shows_revisions(tiny_reference_run, tmp_path):
    run = copy_run(tiny_reference_run, tmp_path / "run")
    cfg = tiny_config(run)
    proc = run_snakemake(run, cfg, "flash", "--config", 'flash={"cutoff": "2025-01-01"}')
    assert proc.returncode == 0, proc.stderr[-3000:]
    fl = run / "results" / "2025-01" / "flash" / "2025-01-01"
    status = json.loads((fl / "flash.json").read_text())
    assert status["status"] == "preliminary" and status["coverage"] == 1.0 and status["cutoff"] == "2025-01-01"
    assert "Preliminary" in (fl / "report.html").read_text() and "初步结果" in (fl / "report.html").read_text()
    with xr.open_dataset(fl / "flux_2025-01.nc") as ds:   # the flux product says it too
        assert ds.attrs["product_status"] == "preliminary" and ds.attrs["data_cutoff"] == "2025-01-01"
        assert ds.attrs["data_coverage"] == 1.0 and ds.attrs["title"].startswith("PRELIMINARY")
    # the tiny month has one day: the flash over it is the month's inversion (same data, same prior)
    a = pd.read_csv(fl / "districts.csv")
    b = pd.read_csv(run / "results" / "2025-01" / "districts.csv")
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9)
    # the month's report now lists the revisions (zero here); nothing else re-runs
    proc = run_snakemake(run, cfg)
    assert proc.returncode == 0, proc.stderr[-3000:]
    html = (run / "results" / "2025-01" / "report.html").read_text()
    assert "flash-revisions" in html and "2025-01-01" in html
    assert "rule inversion:" not in proc.stdout + proc.stderr


@pytest.mark.slow
def test_tiny_year_of_two_one_day_months(tmp_path):
    tmp_path.mkdir(exist_ok=True)
    cfg = tiny_config(tmp_path)
    c = yaml.safe_load(cfg.read_text())
    c.update(months=["2025-01", "2025-02"], year=2025, budgets={"2025": {"Guangzhou": 60000}})
    cfg.write_text(yaml.safe_dump(c))
    proc = run_snakemake(tmp_path, cfg, timeout=3000)
    assert proc.returncode == 0, proc.stderr[-4000:]
    res = tmp_path / "results"
    year = pd.read_csv(res / "2025" / "districts.csv").set_index("district")
    est = year_estimate([read_month_joint(res / m / "diagnostics.json", m) for m in ("2025-01", "2025-02")])
    assert np.allclose(year["posterior_t"], est.total_mean, rtol=1e-5)
    assert np.allclose(year["posterior_sigma_t"], est.total_sigma, rtol=1e-5)
    own = [pd.read_csv(res / m / "districts.csv").set_index("district") for m in ("2025-01", "2025-02")]
    assert np.allclose(year["posterior_sigma_independent_t"],
                       np.sqrt(own[0]["posterior_sigma_t"] ** 2 + own[1]["posterior_sigma_t"] ** 2), rtol=1e-5)
    assert set(year["months_covered"]) == {2}
    assert year["months_not_covered"].iloc[0].split() == [f"2025-{i:02d}" for i in range(3, 13)]
    assert year.loc["Guangzhou", "covered_hours"] == 48
    html = (res / "2025" / "report.html").read_text()
    assert "Not covered:" in html and "2025-03" in html and "Budget status" in html
    # a month removed from disk is not covered on the next call, never zero
    shutil.rmtree(res / "2025-02")
    c.update(months=["2025-01"])
    cfg.write_text(yaml.safe_dump(c))
    (res / "2025" / "districts.csv").unlink()
    proc = run_snakemake(tmp_path, cfg, "results/2025/districts.csv", timeout=3000)
    assert proc.returncode == 0, proc.stderr[-4000:]
    year1 = pd.read_csv(res / "2025" / "districts.csv").set_index("district")
    assert set(year1["months_covered"]) == {1} and year1["months_not_covered"].iloc[0].startswith("2025-02")
    assert np.allclose(year1["posterior_t"], own[0]["posterior_t"], rtol=1e-5)
