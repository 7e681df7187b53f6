"""Issue 22.6: progress of long steps on the terminal, not only in the log files.

Rule scripts log through ``gzcarbon.logs.script_logging``: records starting with ``[i/n]`` (one per
HYSPLIT receptor from the STILT driver; periodic counts of the inversion's long loops through
``gzcarbon.logs.Progress``) also go to the job's stderr, which Snakemake shows on the terminal.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from gzcarbon.logs import Progress

ROOT = Path(__file__).resolve().parents[1]


def _script(tmp_path: Path, body: str, **env) -> subprocess.CompletedProcess:
    path = tmp_path / "job.py"
    path.write_text(textwrap.dedent(body))
    return subprocess.run([sys.executable, str(path)], capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, **env}, timeout=600)


def test_a_rule_script_shows_progress_lines_on_stderr(tmp_path):
    proc = _script(tmp_path, """
        import logging
        from gzcarbon.logs import Progress, script_logging
        script_logging("logs/2025-01/footprints_NST_20250101.log")
        log = logging.getLogger("transport.stilt_driver")
        log.info("a plain line stays in the log")
        p = Progress(log, 3, "receptors", every_seconds=0)
        for i in range(1, 4):
            p.step(i, f"receptor {i}")
        log.warning("a warning stays in the log too")
    """)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 3, proc.stderr
    for i, line in enumerate(lines, 1):
        assert re.fullmatch(rf"\d\d:\d\d:\d\d footprints_NST_20250101 \[{i}/3\] receptors: receptor {i}, "
                            r"\d+\.\d s", line), line
    log = (tmp_path / "logs/2025-01/footprints_NST_20250101.log").read_text()
    assert "a plain line stays in the log" in log and "[3/3] receptors" in log and "a warning" in log


def test_progress_is_periodic(caplog, monkeypatch):
    """One line per interval and the last item; a loop shorter than the interval stays quiet."""
    import gzcarbon.logs as logs

    caplog.set_level(logging.INFO)
    clock = iter(np.arange(0.0, 1000.0, 4.0))           # the items take 4 s each
    monkeypatch.setattr(logs.time, "monotonic", lambda: float(next(clock)))
    p = Progress(logging.getLogger("t"), 10, "loop", every_seconds=10)   # start at t = 0
    for i in range(1, 11):                                                # item i ends at 4 i s
        p.step(i)
    assert [r.getMessage() for r in caplog.records] == [
        "[3/10] loop, 12.0 s", "[6/10] loop, 24.0 s", "[9/10] loop, 36.0 s", "[10/10] loop, 40.0 s"]
    caplog.clear()
    p = Progress(logging.getLogger("t"), 2, "short loop", every_seconds=10)
    p.step(1), p.step(2)                                                  # 8 s in all
    assert caplog.records == []
    p = Progress(logging.getLogger("t"), 5, "loop", every_seconds=0)
    for i in range(1, 6):
        p.step(i)
    assert len(caplog.records) == 5


def test_the_inversion_shows_its_long_steps(tmp_path):
    """H Q Hᵀ of a solve called from a rule script reports its counts on stderr (interval 0 s)."""
    proc = _script(tmp_path, """
        import numpy as np, scipy.sparse as sp
        from gzcarbon.logs import script_logging
        from inversion import KroneckerCovariance, SolveOptions, solve
        script_logging("logs/inversion.log")
        rng = np.random.default_rng(0)
        H = sp.random(60, 2 * 20 * 20, density=0.02, format="csr", random_state=1)
        Q = KroneckerCovariance(sigma=np.full((2, 20, 20), 0.5), dx_km=1.0, dy_km=1.0, corr_length_km=3.0,
                                step_hours=24, corr_time_hours=24.0)
        y = rng.standard_normal(60)
        a = solve(H, y, np.zeros(800), Q, np.ones(60), options=SolveOptions(solver="cholesky", hqht="chunks"))
        b = solve(H, y, np.zeros(800), Q, np.ones(60), options=SolveOptions(solver="pcg"))
        print(float(np.max(np.abs(a.x_post - b.x_post))))
    """, GZCARBON_PROGRESS_SECONDS="0")
    assert proc.returncode == 0, proc.stderr
    assert float(proc.stdout) < 1e-6          # the same answer both ways (progress changes nothing)
    assert re.search(r"inversion \[1/1\] H Q Ht: observations 1-60 of 60", proc.stderr), proc.stderr
    assert re.search(r"inversion \[\d+/2000\] PCG iterations", proc.stderr), proc.stderr


def test_snakemake_shows_receptor_progress(tiny_reference_run, tmp_path):
    """A footprints job of a real (tiny) run: its receptors' [i/n] lines are in Snakemake's output."""
    from pipeline_conftest import copy_run, run_snakemake, tiny_config

    run = copy_run(tiny_reference_run, tmp_path / "run")
    target = "results/2025-01/footprints/NST/20250101.nc"
    proc = run_snakemake(run, tiny_config(run), "--forcerun", "footprints", target)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [ln for ln in proc.stderr.splitlines() if " footprints_NST_20250101 [" in ln]
    n = int(re.search(r"\[\d+/(\d+)\]", lines[0]).group(1))
    assert n >= 1 and [int(re.search(r"\[(\d+)/", ln).group(1)) for ln in lines] == list(range(1, n + 1))
