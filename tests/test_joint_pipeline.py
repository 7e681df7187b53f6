"""Issue 20.3 as a pipeline option: rule `joint` (config inversion.joint_co.enabled) writes
results/<month>/joint/districts.csv with fossil and biogenic CO2 per district ± σ and their
posterior correlation (docs/gases.md).

Dry runs: off by default (no `joint` job), on (with the single grid) it plans the `joint` job of the
month, on the nested grid (the default) it plans `joint` with joint/outer.csv and the CO prior's
outer cells as input, and without `co` in species the run stops before any job naming the key. Tiny run (single grid, slow): the table's fossil + biogenic
prior equals the CO2 inversion's own prior total of every district to 1e-5 (the prior's sectors
read independently by the two rules), its truth columns add up to the CO2 inversion's demo truth,
the city row is the sum of the districts, every posterior σ is at most its prior σ, and the CO
rows used are the CO observations of the month.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from pipeline_conftest import run_snakemake, tiny_config

ROOT = Path(__file__).resolve().parents[1]
ON = 'inversion={"joint_co": {"enabled": true}}'
SINGLE = 'outer_grid={"enabled": false}'


def _dry(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    workdir.mkdir(parents=True, exist_ok=True)
    return subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory",
                           str(workdir), "--cores", "1", "--dry-run", *args], capture_output=True, text=True,
                          cwd=workdir, timeout=600)


def _jobs(proc: subprocess.CompletedProcess, rule: str) -> int:
    return sum(1 for ln in proc.stdout.splitlines() if ln.strip() == f"rule {rule}:")


def test_joint_rule_is_off_by_default_and_planned_when_enabled(tmp_path):
    off = _dry(tmp_path / "off")
    assert off.returncode == 0, off.stderr[-2000:]
    assert _jobs(off, "joint") == 0 and _jobs(off, "inversion") == 1
    on = _dry(tmp_path / "on", "--config", "species=[co2,co]", ON, SINGLE)
    assert on.returncode == 0, on.stderr[-2000:]
    assert _jobs(on, "joint") == 1 and "joint/districts.csv" in on.stdout


def test_joint_without_co_stops_before_any_job_and_runs_on_the_nested_grid(tmp_path):
    proc = _dry(tmp_path / "w", "--config", ON, SINGLE)
    assert proc.returncode != 0
    assert "config key 'inversion.joint_co.enabled' is true but 'species' has no co" in proc.stderr
    assert not (tmp_path / "w" / "results").exists()
    nested = _dry(tmp_path / "n", "--config", "species=[co2,co]", ON)   # outer_grid enabled by default
    assert nested.returncode == 0, nested.stderr[-2000:]
    assert _jobs(nested, "joint") == 1
    block = nested.stdout[nested.stdout.index("rule joint:"):].split("\n\n")[0]
    assert "joint/outer.csv" in block and "co/prior.nc" in block and "truth_outer.nc" in block


@pytest.mark.slow
def test_tiny_run_joint_table_agrees_with_the_co2_inversion(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    cfg = tiny_config(run)
    c = yaml.safe_load(cfg.read_text())
    c["inversion"]["joint_co"] = {"enabled": True}
    c["outer_grid"] = {"enabled": False}
    cfg.write_text(yaml.safe_dump(c))
    proc = run_snakemake(run, cfg, timeout=3000)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "rule joint:" in proc.stdout + proc.stderr
    res = run / "results" / "2025-01"
    j = pd.read_csv(res / "joint" / "districts.csv").set_index("district")
    co2 = pd.read_csv(res / "districts.csv").set_index("district")
    assert list(j.index) == list(co2.index)
    # the prior of the joint state (four fossil sectors + biosphere) is the CO2 inversion's prior
    np.testing.assert_allclose(j["fossil_prior_t"] + j["bio_prior_t"], co2["prior_t"], rtol=1e-5)
    np.testing.assert_allclose(j["fossil_truth_t"] + j["bio_truth_t"], co2["truth_t"], rtol=1e-5)
    # the city row is the sum of the districts (means; σ need the covariances)
    for c in ("fossil_prior_t", "fossil_posterior_t", "bio_prior_t", "bio_posterior_t", "fossil_truth_t"):
        assert j.loc["Guangzhou", c] == pytest.approx(j[c].drop("Guangzhou").sum(), rel=1e-5)
    assert (j["fossil_posterior_sigma_t"] <= j["fossil_prior_sigma_t"] * (1 + 1e-9)).all()
    assert (j["bio_posterior_sigma_t"] <= j["bio_prior_sigma_t"] * (1 + 1e-9)).all()
    assert (j["fossil_posterior_sigma_t"] > 0).all() and j["posterior_correlation"].abs().max() <= 1.0
    # the data moved the fossil totals where the stations see (NST and YXU): not all equal to the prior
    assert (j["fossil_posterior_t"] - j["fossil_prior_t"]).abs().max() > 1.0
    diag = json.loads((res / "joint" / "diagnostics.json").read_text())
    co_sel = pd.read_csv(res / "co" / "obs" / "selected.csv")
    assert 0 < diag["n_obs_co"] <= len(co_sel) and 0 < diag["n_obs_co2"]
    assert diag["n_latent_blocks"] == 10 and 0 < diag["dofs"] < diag["n_obs_co2"] + diag["n_obs_co"]
