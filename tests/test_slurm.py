"""The pipeline on a real one-node SLURM cluster (localhost), against a local run of the same config.

Slow and needs root plus Debian's slurm-wlm and munge (``.ci/install_slurm.sh``); it skips with the
reason otherwise. Run it with ``pytest -m slow tests/test_slurm.py``. The cluster is started and
stopped by tests/slurm_cluster.py (daemons stopped by PID).
"""

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from slurm_cluster import SlurmUnavailable, local_slurm, stopped  # noqa: E402
from test_end_to_end import MONTH, ROOT, _tiny_config  # noqa: E402

pytestmark = pytest.mark.slow

# The flags of docs/slurm.md for a cluster without accounting (no sacct): squeue status checks.
SLURM_FLAGS = [
    "--executor", "slurm", "--jobs", "2",
    "--default-resources", "slurm_partition=debug",
    "--slurm-status-command", "squeue",
    "--slurm-init-seconds-before-status-checks", "2",
]
TIMEOUT = 2400  # s, a whole snakemake run
PROFILE = ROOT / "workflow" / "profiles" / "slurm"
LOCAL_CORES = 2  # the local reference run uses --cores 2


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory):
    """A running one-node SLURM for this module; skipped (with the reason) when unavailable."""
    if os.environ.get("GZ_SKIP_SLURM"):
        pytest.skip("GZ_SKIP_SLURM is set")
    workdir = tmp_path_factory.mktemp("slurm")
    try:
        cm = local_slurm(workdir)
        cluster = cm.__enter__()
    except SlurmUnavailable as err:
        pytest.skip(f"no local SLURM: {err}")
    try:
        yield cluster
    finally:
        cm.__exit__(None, None, None)
        assert stopped(cluster), f"daemons still alive after stop: {cluster.pids}"


def _run(cmd, cwd, cluster=None):
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=TIMEOUT)
    if proc.returncode != 0:
        extra = ""
        if cluster is not None:
            logs = sorted(Path(cwd).glob(".snakemake/slurm_logs/**/*.log"))
            extra = "\n".join(f"--- {p}\n{p.read_text(errors='replace')[-1500:]}" for p in logs[-4:])
            extra += f"\n--- slurmctld.log\n{cluster.log('slurmctld')[-2000:]}"
        pytest.fail(f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n"
                    f"{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}\n{extra}")
    return proc


def _slurm_job_ids(text: str) -> list[str]:
    """SLURM job ids the executor reports ("Job 3 has been submitted with SLURM jobid 12 ...")."""
    return sorted(set(re.findall(r"with SLURM jobid (\d+)", text)), key=int)


TWO_RULES = textwrap.dedent("""

    rule all:
        input: "sum.txt"

    rule numbers:
        output: "numbers.txt"
        resources: mem_mb=100, runtime=5
        shell: "python -c 'print(*range(1, 101), sep=chr(10))' > {output}; echo $SLURM_JOB_ID > numbers.jobid"

    rule total:
        input: "numbers.txt"
        output: "sum.txt"
        resources: mem_mb=100, runtime=5
        run:
            import os
            vals = [int(x) for x in open(input[0]).read().split()]
            with open(output[0], "w") as fh:
                fh.write(f"{sum(vals)} {os.environ.get('SLURM_JOB_ID', '')}\\n")
""")


def test_two_rule_workflow_runs_as_slurm_jobs(slurm_cluster, tmp_path):
    (tmp_path / "Snakefile").write_text(TWO_RULES)
    cmd = [sys.executable, "-m", "snakemake", "-s", "Snakefile", *SLURM_FLAGS]
    proc = _run(cmd, tmp_path, slurm_cluster)
    total, job_id = (tmp_path / "sum.txt").read_text().split()
    assert int(total) == 5050
    # Both rules really ran inside SLURM jobs (SLURM sets SLURM_JOB_ID), as two different jobs.
    first_id = (tmp_path / "numbers.jobid").read_text().strip()
    assert first_id.isdigit() and job_id.isdigit() and first_id != job_id
    ids = _slurm_job_ids(proc.stdout + proc.stderr)
    assert {first_id, job_id} <= set(ids), ids
    # The controller knows them (MinJobAge keeps finished jobs visible for an hour).
    sq = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True)
    assert sq.returncode == 0 and "JobState=COMPLETED" in sq.stdout, sq.stdout + sq.stderr


def _profile_args(cluster) -> list[str]:
    """The SLURM profile, fitted to the one small node: memory requests capped at the node's
    memory, threads at the local run's cores (same thread count, so the same floating-point sums).
    Command-line --set-resources replaces the profile's entry, so all of it is repeated here."""
    prof = yaml.safe_load((PROFILE / "config.yaml").read_text())
    assert prof["executor"] == "slurm"
    sets = []
    for rule, res in prof["set-resources"].items():
        for key, val in res.items():
            if key == "mem_mb":
                val = min(int(val), cluster.real_memory_mb)
            sets.append(f"{rule}:{key}={val}")
    return ["--profile", str(PROFILE), "--max-threads", str(min(LOCAL_CORES, cluster.cpus)),
            "--set-resources", *sets]


def _snakemake_tiny(tmp: Path, *extra: str, cluster=None):
    cfgfile = _tiny_config(tmp)
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory",
           str(tmp), "--configfile", str(cfgfile), *extra]
    return _run(cmd, tmp, cluster)


@pytest.fixture(scope="module")
def tiny_local_and_slurm(slurm_cluster, tmp_path_factory):
    local = tmp_path_factory.mktemp("tiny_local")
    _snakemake_tiny(local, "--cores", str(LOCAL_CORES))
    remote = tmp_path_factory.mktemp("tiny_slurm")
    proc = _snakemake_tiny(remote, *_profile_args(slurm_cluster), *SLURM_FLAGS,
                           cluster=slurm_cluster)
    return local, remote, proc


def _assert_csv_equal(a: Path, b: Path):
    da, db = pd.read_csv(a), pd.read_csv(b)
    assert list(da.columns) == list(db.columns), a.name
    assert len(da) == len(db) and len(da) > 0, a.name
    for col in da.columns:
        va, vb = da[col].to_numpy(), db[col].to_numpy()
        if np.issubdtype(va.dtype, np.number):
            assert np.array_equal(va, vb, equal_nan=np.issubdtype(va.dtype, np.floating)), \
                f"{a.name}: column {col} differs"
        else:
            assert list(va) == list(vb), f"{a.name}: column {col} differs"


TIMESTAMP_ATTRS = {"history", "date_created", "date_modified", "date_issued", "date_metadata_modified",
                   "created", "creation_date", "run_time", "timestamp"}


def _assert_netcdf_equal(a: Path, b: Path):
    with xr.open_dataset(a, decode_times=False) as da, xr.open_dataset(b, decode_times=False) as db:
        assert sorted(da.data_vars) == sorted(db.data_vars)
        assert sorted(da.coords) == sorted(db.coords)
        for name in list(da.data_vars) + list(da.coords):
            va, vb = da[name].values, db[name].values
            assert va.shape == vb.shape, name
            eq_nan = np.issubdtype(va.dtype, np.floating)
            assert np.array_equal(va, vb, equal_nan=eq_nan), f"{a.name}: {name} differs"
        ka = {k: v for k, v in da.attrs.items() if k not in TIMESTAMP_ATTRS}
        kb = {k: v for k, v in db.attrs.items() if k not in TIMESTAMP_ATTRS}
        assert ka.keys() == kb.keys()
        for k in ka:
            assert np.array_equal(np.asarray(ka[k]), np.asarray(kb[k])), f"{a.name}: attribute {k}"


def _scontrol_job(job_id: str) -> dict[str, str]:
    """Fields of ``scontrol show job`` as a dict (``Key=Value`` tokens)."""
    out = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True).stdout
    return dict(tok.split("=", 1) for tok in out.split() if "=" in tok)


def test_tiny_pipeline_on_slurm_equals_local_run(slurm_cluster, tiny_local_and_slurm):
    cluster = slurm_cluster
    local, remote, proc = tiny_local_and_slurm
    out = proc.stdout + proc.stderr
    # The jobs went through SLURM: the executor reports an external SLURM job id per job.
    ids = _slurm_job_ids(out)
    assert len(ids) >= 10, out[-3000:]
    prof = yaml.safe_load((PROFILE / "config.yaml").read_text())["set-resources"]
    seen = set()
    for job_id in ids:  # every job ran and completed under the controller ...
        job = _scontrol_job(job_id)
        assert job["JobState"] == "COMPLETED", f"job {job_id}: {job}"
        rule = re.match(r"rule_(.+?)(_wildcards_.*)?$", job["Comment"]).group(1)
        seen.add(rule)
        # ... with the profile's requests: memory (capped at the node), time limit, threads.
        if rule in prof:
            want_mem = min(int(prof[rule]["mem_mb"]), cluster.real_memory_mb)
            assert job["MinMemoryNode"] == f"{want_mem}M", (rule, job["MinMemoryNode"])
            h, m = divmod(int(prof[rule]["runtime"]), 60)
            assert job["TimeLimit"] == f"{h:02d}:{m:02d}:00", (rule, job["TimeLimit"])
        if rule == "inversion":
            assert job["CPUs/Task"] == str(min(LOCAL_CORES, cluster.cpus)), job["CPUs/Task"]
    assert {"footprints", "jacobian", "inversion", "power_factors", "report"} <= seen, seen
    rl, rr = local / "results" / MONTH, remote / "results" / MONTH
    _assert_csv_equal(rl / "districts.csv", rr / "districts.csv")
    _assert_csv_equal(rl / "power" / "emission_factors.csv", rr / "power" / "emission_factors.csv")
    _assert_netcdf_equal(rl / "posterior.nc", rr / "posterior.nc")
    # The city row carries a real, finite result (not two empty files that happen to agree).
    city = pd.read_csv(rr / "districts.csv").iloc[-1]
    assert city["district"] == "Guangzhou" and np.isfinite(city["posterior_t"])


# ---- a small year on the cluster (issue 21 item 6; docs/slurm.md "A year on SLURM") -------------
# Two one-day months of the tiny configuration (CO2 only) with a budget year, so the run has two
# monthly branches, the month-to-month budget edge (February's report reads January's inversion)
# and the annual report. Two months, not twelve: each SLURM run of a month is ~27 jobs and the
# test runs the year twice (locally and on SLURM) on 2 shared cores.
YEAR = 2025
YEAR_MONTHS = ["2025-01", "2025-02"]
MONTH_OF_COMMENT = re.compile(r"_wildcards_.*?(20\d\d)-?(\d\d)")


def _year_config(tmp: Path) -> Path:
    cfgfile = _tiny_config(tmp)
    cfg = yaml.safe_load(cfgfile.read_text())
    cfg.update(species=["co2"], months=YEAR_MONTHS, year=YEAR,
               budgets={str(YEAR): {"Tianhe": 5200, "Guangzhou": 62000}})
    cfgfile.write_text(yaml.safe_dump(cfg))
    return cfgfile


def _snakemake_year(tmp: Path, *extra: str, cluster=None):
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory",
           str(tmp), "--configfile", str(_year_config(tmp)), *extra]
    return _run(cmd, tmp, cluster)


@pytest.fixture(scope="module")
def year_local_and_slurm(slurm_cluster, tmp_path_factory):
    """The local run goes on while the SLURM run waits for its status checks (same 2 cores)."""
    local = tmp_path_factory.mktemp("year_local")
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(local),
           "--configfile", str(_year_config(local)), "--cores", str(LOCAL_CORES)]
    local_proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=local)
    try:
        remote = tmp_path_factory.mktemp("year_slurm")
        proc = _snakemake_year(remote, *_profile_args(slurm_cluster), *SLURM_FLAGS, cluster=slurm_cluster)
        out, err = local_proc.communicate(timeout=TIMEOUT)
    finally:
        if local_proc.poll() is None:
            local_proc.kill()
            local_proc.wait()
    assert local_proc.returncode == 0, f"local run failed:\n{out[-3000:]}\n{err[-6000:]}"
    return local, remote, proc


def _assert_csv_close(a: Path, b: Path, rtol: float = 1e-9):
    da, db = pd.read_csv(a), pd.read_csv(b)
    assert list(da.columns) == list(db.columns) and len(da) == len(db) > 0, a
    for col in da.columns:
        va, vb = da[col].to_numpy(), db[col].to_numpy()
        if np.issubdtype(va.dtype, np.number):
            np.testing.assert_allclose(va, vb, rtol=rtol, atol=0, equal_nan=True, err_msg=f"{a}: {col}")
        else:
            assert list(va) == list(vb), f"{a}: column {col} differs"


def _slurm_intervals(job_ids: list[str]) -> list[tuple[str, str, float, float]]:
    """(rule, month, start, end) in epoch seconds of every finished SLURM job with a month."""
    out = []
    for job_id in job_ids:
        job = _scontrol_job(job_id)
        assert job["JobState"] == "COMPLETED", f"job {job_id}: {job}"
        m = MONTH_OF_COMMENT.search(job["Comment"])
        if m is None:  # the annual report (wildcard year only)
            continue
        rule = re.match(r"rule_(.+?)_wildcards_", job["Comment"]).group(1)
        start, end = (pd.Timestamp(job[k]).timestamp() for k in ("StartTime", "EndTime"))
        out.append((rule, f"{m.group(1)}-{m.group(2)}", start, end))
    return out


def test_small_year_on_slurm_equals_local_run_and_runs_months_in_parallel(slurm_cluster,
                                                                          year_local_and_slurm):
    local, remote, proc = year_local_and_slurm
    jobs = _slurm_intervals(_slurm_job_ids(proc.stdout + proc.stderr))
    assert {m for _, m, _, _ in jobs} == set(YEAR_MONTHS), jobs
    assert {"footprints", "inversion", "report"} <= {r for r, *_ in jobs}
    # the months are parallel branches: some job of one month ran while a job of the other did
    overlap = [(a[:2], b[:2]) for a in jobs for b in jobs
               if a[1] < b[1] and a[2] < b[3] and b[2] < a[3]]
    assert overlap, sorted(jobs, key=lambda j: j[2])
    # ... and February did not wait for January's products: its first job started before
    # January's last one ended
    first_feb = min(s for _, m, s, _ in jobs if m == YEAR_MONTHS[1])
    last_jan = max(e for _, m, _, e in jobs if m == YEAR_MONTHS[0])
    assert first_feb < last_jan
    # the annual products and the months' totals equal the local run's
    rl, rr = local / "results", remote / "results"
    _assert_csv_close(rl / str(YEAR) / "districts.csv", rr / str(YEAR) / "districts.csv")
    for m in YEAR_MONTHS:
        _assert_csv_close(rl / m / "districts.csv", rr / m / "districts.csv")
    _assert_netcdf_equal(rl / str(YEAR) / f"flux_{YEAR}.nc", rr / str(YEAR) / f"flux_{YEAR}.nc")
    year = pd.read_csv(rr / str(YEAR) / "districts.csv").set_index("district")
    city = year.loc["Guangzhou"]
    assert city["months_covered"] == 2 and city["covered_hours"] == 48
    assert np.isfinite(city["posterior_t"]) and 0 < city["posterior_sigma_t"] < city["prior_sigma_t"]
    assert "Budget status" in (rr / str(YEAR) / "report.html").read_text()
