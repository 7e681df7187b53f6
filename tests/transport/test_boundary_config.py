"""Parse-time checks of the model boundary (workflow/rules/functions.smk::_check_boundary_config):
a dry run stops before any job, naming the setting, when the exit points cannot exist."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _dry(tmp_path, *config):
    cmd = [sys.executable, "-m", "snakemake", "-n", "--directory", str(tmp_path), "--config", *config]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)


def test_model_boundary_dry_run_plans_the_rules(tmp_path):
    p = _dry(tmp_path, 'stations={"background": {"method": "model"}}')
    assert p.returncode == 0, p.stderr[-2000:]
    for rule in ("demo_boundary", "boundary_background", "select_obs"):
        assert f"rule {rule}:" in p.stdout or f"{rule} " in p.stdout


@pytest.mark.parametrize("extra, message", [
    ('outer_grid={"enabled": false}', "needs the particles' exit points from the outer domain: set outer_grid.enabled: true"),
])
def test_model_boundary_without_exit_points_or_files_stops(tmp_path, extra, message):
    p = _dry(tmp_path, 'stations={"background": {"method": "model"}}', extra)
    assert p.returncode != 0
    assert message in p.stdout + p.stderr
