"""Resume after a hard kill (issue 8 item 3).

A fresh tiny run is killed (SIGKILL to its whole process group, as a lost node or an OOM killer
would) twice: first while the footprint jobs run (as soon as the first receptor is cached in
``footprints/work``), then, after restarting with the same command, while the inversion job runs.
Each restart is ``snakemake --unlock`` + the same command (with ``--rerun-incomplete``, see
:data:`SAME`). We check that

- a killed job never leaves a file that looks finished (no site-day file / inversion output of a
  killed job exists after the kill, only hidden ``.partial`` temporaries at most);
- receptors cached before the first kill are not recomputed (same mtime, logged as cached);
- outputs finished before the second kill (site-day footprints, Jacobian, prior) are not rebuilt;
- the final products equal those of an uninterrupted run bit for bit.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import xarray as xr

from pipeline_conftest import MONTH, product_differences, run_snakemake, snakemake_cmd, tiny_config

pytestmark = pytest.mark.slow

#: The command is the same every time: ``snakemake ... --cores 2 --rerun-incomplete`` (what
#: workflow/profiles/default sets). ``--rerun-incomplete`` is needed because a job with several
#: outputs can be killed between two atomic renames (e.g. demo_inventory after inventory.nc,
#: before truth.nc): the finished file is then correctly flagged incomplete and without the flag
#: Snakemake stops with IncompleteFilesException. ``--rerun-triggers mtime`` changes nothing in
#: a stable checkout (no code or parameter change between kill and restart); it keeps the test
#: meaningful while package code is edited during the run.
SAME = ("--rerun-incomplete", "--rerun-triggers", "mtime")


def _start(run: Path, cfg: Path, log: Path) -> subprocess.Popen:
    fh = open(log, "w")
    return subprocess.Popen(snakemake_cmd(run, cfg, *SAME), cwd=run, stdout=fh, stderr=subprocess.STDOUT,
                            start_new_session=True)


def _kill_when(proc: subprocess.Popen, ready, log: Path, timeout: float = 600, poll: float = 0.02):
    """SIGKILL the process group of ``proc`` as soon as ``ready()`` is true."""
    t0 = time.monotonic()
    while not ready():
        if proc.poll() is not None:
            pytest.fail(f"the run finished (exit {proc.returncode}) before the kill point was "
                        f"reached:\n{log.read_text()[-4000:]}")
        if time.monotonic() - t0 > timeout:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail("kill point not reached in time")
        time.sleep(poll)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(0.5)   # let the killed children go


def _mtimes(paths) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in paths}


def test_killed_run_resumes_and_recomputes_only_the_unfinished(tiny_reference_run, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    cfg = tiny_config(run)
    res = run / "results" / MONTH
    work = res / "footprints" / "work"

    # 1. kill while footprints run: as soon as the first receptor is cached
    p = _start(run, cfg, tmp_path / "run1.log")
    _kill_when(p, lambda: any(work.glob("*/*.nc")), tmp_path / "run1.log")
    cached = sorted(work.glob("*/*.nc"))
    assert cached, "no receptor was cached before the kill"
    cached_m = _mtimes(cached)
    site_days = sorted((res / "footprints").glob("[A-Z]*/*.nc"))
    # the site-day of the killed job is absent: a site-day file exists only once complete
    assert len(site_days) < 2, f"footprint jobs had already finished: {site_days}"
    for f in site_days + cached:    # whatever exists is complete (readable)
        with xr.open_dataset(f) as ds:
            assert "foot" in ds

    # 2. same command again (after --unlock); kill as soon as the inversion job starts
    assert run_snakemake(run, cfg, "--unlock").returncode == 0
    p = _start(run, cfg, tmp_path / "run2.log")
    inv_log = run / "logs" / MONTH / "inversion.log"
    _kill_when(p, inv_log.exists, tmp_path / "run2.log")
    assert _mtimes(cached) == cached_m, "receptors cached before the kill were recomputed"
    for k in ("NST", "YXU"):
        flog = (run / "logs" / MONTH / f"footprints_{k}_20250101.log").read_text()
        n_cached = sum(1 for c in cached if c.parent.name == k)
        assert flog.count(" cached") >= n_cached
    for name in ("posterior.nc", "districts.csv", "modelled.csv", "diagnostics.json"):
        assert not (res / name).exists(), f"{name} of the killed inversion job looks finished"
    done_before = [res / "jacobian_hourly.npz", res / "prior.nc",
                   *sorted((res / "footprints").glob("[A-Z]*/*.nc"))]
    assert len(done_before) == 4
    done_m = _mtimes(done_before)

    # 3. same command again: completes, rebuilds nothing that was finished
    assert run_snakemake(run, cfg, "--unlock").returncode == 0
    proc = run_snakemake(run, cfg, *SAME)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    assert "rule footprints" not in out and "rule jacobian:" not in out
    assert "rule inversion:" in out
    assert _mtimes(done_before) == done_m
    assert _mtimes(cached) == cached_m
    assert product_differences(tiny_reference_run, run) == []
