"""A year on a real one-node SLURM (localhost) against a local run of the same year (issue 21 item 6;
docs/slurm.md, "A year on SLURM").

``run``: starts the one-node cluster of tests/slurm_cluster.py (slurm.conf, munged, slurmctld,
slurmd; stopped again by their PIDs at the end, also after an error or ``--stop-at``), runs
Snakemake with the SLURM profile (memory requests capped at the node, threads at 2 like a local
``--cores 2`` run, the flags of a cluster without accounting) and records every SLURM job
(``scontrol show job``: rule, wildcards, state, start and end) in ``<directory>/slurm_jobs.csv``.
Start it under ``nice`` to leave the machine to others (the daemons and the jobs inherit it)::

    nice -n 10 python benchmarks/slurm_year.py run --snakefile Snakefile --configfile year.yaml \\
        --directory /tmp/year_slurm [--jobs 12] [--stop-at 09:45]

``compare``: the SLURM run directory against the local one: every month's ``districts.csv`` and the
annual ``results/<year>/districts.csv`` (largest relative difference; 1e-9 required),
``flux_<year>.nc`` (every variable and coordinate bit for bit, attributes but time stamps), how the
months overlapped on the cluster (jobs of different months running at the same time; the most
months at once), and CPU and wall seconds per rule from both runs' benchmark files
(`benchmarks/year_run.py`), with the ratio SLURM / local::

    python benchmarks/slurm_year.py compare /tmp/year_local /tmp/year_slurm --year 2025
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(HERE))
PROFILE = ROOT / "workflow" / "profiles" / "slurm"
LOCAL_CORES = 2
TIMESTAMP_ATTRS = {"history", "date_created", "date_modified", "date_issued"}
#: provenance attributes that name the run's own directories (data_dir, results_dir differ)
PATH_ATTRS = {"config_sha256", "config_yaml", "input_files"}
MONTH = re.compile(r"_wildcards_.*?(20\d\d)-?(\d\d)")


# ---- run ------------------------------------------------------------------------------------------
def profile_args(real_memory_mb: int, cpus: int, profile: Path = PROFILE) -> list[str]:
    """The SLURM profile fitted to the one small node (as tests/test_slurm.py does): memory
    requests capped at the node's memory, threads at the local run's 2 cores (same thread count,
    same floating-point sums). --set-resources replaces the profile's entry: all of it is repeated."""
    prof = yaml.safe_load((profile / "config.yaml").read_text())
    sets = [f"{rule}:{k}={min(int(v), real_memory_mb) if k == 'mem_mb' else v}"
            for rule, res in prof["set-resources"].items() for k, v in res.items()]
    return ["--profile", str(profile), "--max-threads", str(min(LOCAL_CORES, cpus)), "--set-resources", *sets]


def slurm_flags(jobs: int) -> list[str]:
    """docs/slurm.md, "Clusters without job accounting": squeue status checks."""
    return ["--executor", "slurm", "--jobs", str(jobs), "--default-resources", "slurm_partition=debug",
            "--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "2"]


def scontrol_job(job_id: str) -> dict[str, str]:
    out = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True).stdout
    return dict(tok.split("=", 1) for tok in out.split() if "=" in tok)


def job_table(text: str) -> pd.DataFrame:
    """Every SLURM job the executor reported ("... with SLURM jobid N"), from scontrol."""
    rows = []
    for job_id in sorted(set(re.findall(r"with SLURM jobid (\d+)", text)), key=int):
        job = scontrol_job(job_id)
        comment = job.get("Comment", "")
        rule = re.match(r"rule_(.+?)(_wildcards_.*)?$", comment)
        m = MONTH.search(comment)
        rows.append({"jobid": int(job_id), "rule": rule.group(1) if rule else "", "wildcards": comment,
                     "month": f"{m.group(1)}-{m.group(2)}" if m else "", "state": job.get("JobState", "?"),
                     "submit": job.get("SubmitTime"), "start": job.get("StartTime"), "end": job.get("EndTime"),
                     "cpus": job.get("NumCPUs"), "mem": job.get("MinMemoryNode")})
    return pd.DataFrame(rows)


def run(args) -> int:
    from slurm_cluster import local_slurm, stopped

    d = Path(args.directory).resolve()
    d.mkdir(parents=True, exist_ok=True)
    # the profile of the code that runs (the Snakefile's checkout)
    profile = Path(args.snakefile).resolve().parent / "workflow" / "profiles" / "slurm"
    stop_at = None
    if args.stop_at:
        hh, mm = (int(x) for x in args.stop_at.split(":"))
        now = dt.datetime.now(dt.timezone.utc)
        stop_at = now.replace(hour=hh, minute=mm, second=0, microsecond=0)
    out, err = d / "slurm_run.out", d / "slurm_run.err"
    t0 = time.time()
    with local_slurm(d / "slurm_daemons") as cluster:
        print(f"cluster up: {cluster.cpus} CPUs, {cluster.real_memory_mb} MB, daemons {cluster.pids}", flush=True)
        cmd = [sys.executable, "-m", "snakemake", "-s", str(Path(args.snakefile).resolve()), "--directory", str(d),
               "--configfile", str(Path(args.configfile).resolve()),
               *profile_args(cluster.real_memory_mb, cluster.cpus, profile), *slurm_flags(args.jobs)]
        (d / "slurm_command.txt").write_text(" ".join(cmd) + "\n")
        with open(out, "w") as fo, open(err, "w") as fe:
            proc = subprocess.Popen(cmd, stdout=fo, stderr=fe, cwd=d, start_new_session=True)
            stopped_early = False
            while proc.poll() is None:
                time.sleep(5)
                if stop_at is not None and dt.datetime.now(dt.timezone.utc) >= stop_at:
                    print(f"--stop-at {args.stop_at} reached: stopping snakemake (PID {proc.pid})", flush=True)
                    proc.send_signal(signal.SIGINT)   # snakemake cancels its SLURM jobs (scancel)
                    try:
                        proc.wait(timeout=120)
                    except subprocess.TimeoutExpired:
                        os.killpg(proc.pid, signal.SIGKILL)
                        proc.wait()
                    stopped_early = True
        wall = time.time() - t0
        jobs = job_table(out.read_text() + err.read_text())
        jobs.to_csv(d / "slurm_jobs.csv", index=False)
    print(f"snakemake exit {proc.returncode} after {wall:.0f} s wall{' (stopped at --stop-at)' if stopped_early else ''}; "
          f"{len(jobs)} SLURM jobs, states {jobs['state'].value_counts().to_dict() if len(jobs) else {}}; "
          f"daemons stopped: {stopped(cluster)}", flush=True)
    (d / "slurm_wall.txt").write_text(f"{wall:.1f}\n")
    return proc.returncode


# ---- compare --------------------------------------------------------------------------------------
def max_rel_diff(a: Path, b: Path) -> tuple[float, int]:
    """Largest |a − b| / max(|a|, |b|) over the numeric cells of two CSVs (same columns and rows
    required; text columns must be equal) and the number of numeric cells compared."""
    da, db = pd.read_csv(a), pd.read_csv(b)
    if list(da.columns) != list(db.columns) or len(da) != len(db):
        raise SystemExit(f"{a} and {b}: different columns or rows")
    if not len(da):   # e.g. an empty failures.csv in both runs
        return 0.0, 0
    worst, n = 0.0, 0
    for c in da.columns:
        va, vb = da[c].to_numpy(), db[c].to_numpy()
        if not np.issubdtype(va.dtype, np.number):
            if list(va) != list(vb):
                raise SystemExit(f"{a}: column {c} differs from {b}")
            continue
        va, vb = va.astype(float), vb.astype(float)
        if not np.array_equal(np.isnan(va), np.isnan(vb)):
            raise SystemExit(f"{a}: column {c}: NaN in one run only")
        ok = ~np.isnan(va)
        den = np.maximum(np.abs(va[ok]), np.abs(vb[ok]))
        rel = np.where(den > 0, np.abs(va[ok] - vb[ok]) / np.where(den > 0, den, 1), 0.0)
        worst, n = max(worst, float(rel.max(initial=0.0))), n + int(ok.sum())
    return worst, n


def netcdf_identical(a: Path, b: Path, roots: tuple[str, str] = ("", "")) -> list[str]:
    """Differences between two netCDF files: every variable and coordinate bit for bit (NaN equal),
    attributes but the time stamps and the provenance that names the run's directories
    (`PATH_ATTRS`); an empty list when identical."""
    import xarray as xr

    out = []
    with xr.open_dataset(a, decode_times=False) as da, xr.open_dataset(b, decode_times=False) as db:
        if sorted(da.variables) != sorted(db.variables):
            return [f"variables {sorted(da.variables)} vs {sorted(db.variables)}"]
        for v in da.variables:
            x, y = da[v].values, db[v].values
            same = x.shape == y.shape and x.dtype == y.dtype and (
                x.tobytes() == y.tobytes() or (np.issubdtype(x.dtype, np.floating)
                                               and np.array_equal(x, y, equal_nan=True)))
            if not same:
                out.append(f"variable {v} differs")
        ka = {k: str(v) for k, v in da.attrs.items() if k not in TIMESTAMP_ATTRS | PATH_ATTRS}
        kb = {k: str(v) for k, v in db.attrs.items() if k not in TIMESTAMP_ATTRS | PATH_ATTRS}
        if roots[0] and roots[1]:   # paths inside the run's directory name it: compare them relative to it
            ka = {k: v.replace(roots[0] + "/", "<run>/") for k, v in ka.items()}
            kb = {k: v.replace(roots[1] + "/", "<run>/") for k, v in kb.items()}
        out += [f"attribute {k}" for k in sorted(set(ka) | set(kb)) if ka.get(k) != kb.get(k)]
    return out


SKIP_SUFFIXES = {".html", ".pdf", ".png", ".json", ".log", ".txt", ".lock"}   # time stamps, timings, renderings


def npz_identical(a: Path, b: Path) -> bool:
    with np.load(a, allow_pickle=False) as x, np.load(b, allow_pickle=False) as y:
        return sorted(x.files) == sorted(y.files) and all(
            x[k].shape == y[k].shape and x[k].tobytes() == y[k].tobytes() for k in x.files)


def compare_tree(local: Path, remote: Path, sub: str) -> tuple[dict, list]:
    """Every file the SLURM run wrote under ``sub`` (results/, data/) against the local run's file of
    the same path: CSV to 1e-9 (relative), netCDF and npz bit for bit (netCDF: attributes but time
    stamps), other files byte for byte; reports, figures, JSON and logs skipped. Returns (counts
    per kind, the files that differ)."""
    counts: dict[str, int] = {}
    bad = []
    for f in sorted((remote / sub).rglob("*")):
        if not f.is_file() or f.suffix in SKIP_SUFFIXES:
            continue
        g = local / f.relative_to(remote)
        if not g.is_file():
            bad.append(f"{f.relative_to(remote)}: not in the local run")
            continue
        if f.suffix == ".csv":
            try:
                same = max_rel_diff(g, f)[0] <= 1e-9
            except SystemExit:
                same = False
        elif f.suffix == ".nc":
            same = not netcdf_identical(g, f, (str(local), str(remote)))
        elif f.suffix == ".npz":
            same = npz_identical(g, f)
        else:
            same = g.read_bytes() == f.read_bytes()
        key = f.suffix or "(none)"
        counts[key] = counts.get(key, 0) + 1
        if not same:
            bad.append(str(f.relative_to(remote)))
    return counts, bad


def overlaps(jobs: pd.DataFrame) -> dict:
    """How the months' jobs overlapped in time on the cluster."""
    j = jobs[(jobs["month"] != "") & (jobs["state"] == "COMPLETED")].copy()
    epoch = pd.Timestamp("1970-01-01")
    j["t0"] = (pd.to_datetime(j["start"]) - epoch).dt.total_seconds()
    j["t1"] = (pd.to_datetime(j["end"]) - epoch).dt.total_seconds()
    a = j[["month", "t0", "t1"]].to_numpy()
    pairs = sum(1 for x in range(len(a)) for y in range(x + 1, len(a))
                if a[x][0] != a[y][0] and a[x][1] < a[y][2] and a[y][1] < a[x][2])
    span = j.groupby("month").agg(first=("t0", "min"), last=("t1", "max"))
    times = np.unique(np.concatenate([j["t0"].to_numpy(), j["t1"].to_numpy()]))
    most = max((len({m for m, s, e in a if s <= t < e}) for t in times), default=0)
    months_at_once = max((int(((span["first"] <= t) & (t < span["last"])).sum()) for t in times), default=0)
    first_done = span["last"].min()
    return {"jobs": len(j), "pairs_of_jobs_of_different_months_at_the_same_time": pairs,
            "most_months_with_a_job_running_at_once": most,
            "most_months_open_at_once (first job started, last not ended)": months_at_once,
            "months_started_before_the_first_month_ended": int((span["first"] < first_done).sum()),
            "cluster_span_s": float(j["t1"].max() - j["t0"].min())}


def rule_costs(local: Path, remote: Path, year: int) -> pd.DataFrame:
    """Per rule: the jobs with a benchmark file in the SLURM run (its months and the annual report)
    and the summed CPU and wall seconds of those same jobs in both runs."""
    from year_run import rule_of

    rows = []
    for f in sorted((remote / "benchmarks" / "runs").glob(f"{year}*/*.tsv")):
        g = local / f.relative_to(remote)
        if not g.is_file():
            continue
        r, q = pd.read_csv(f, sep="\t").iloc[-1], pd.read_csv(g, sep="\t").iloc[-1]
        rows.append({"rule": rule_of(f), "local_cpu_s": float(q["cpu_time"]), "slurm_cpu_s": float(r["cpu_time"]),
                     "local_wall_s": float(q["s"]), "slurm_wall_s": float(r["s"])})
    if not rows:
        raise SystemExit(f"{remote}/benchmarks/runs/: no benchmark file of {year}")
    df = pd.DataFrame(rows)
    g = df.groupby("rule")
    return pd.concat([g.size().rename("jobs"), g[["local_cpu_s", "slurm_cpu_s", "local_wall_s", "slurm_wall_s"]].sum()],
                     axis=1).sort_values("local_cpu_s", ascending=False).astype(float)


def compare(args) -> int:
    local, remote, year = Path(args.local), Path(args.slurm), int(args.year)
    months = sorted(p.name for p in (remote / "results").glob(f"{year}-??") if (p / "districts.csv").exists())
    print(f"months with districts.csv on SLURM: {len(months)} ({', '.join(months)})")
    worst = 0.0
    for m in months:
        r, n = max_rel_diff(local / "results" / m / "districts.csv", remote / "results" / m / "districts.csv")
        worst = max(worst, r)
        print(f"  {m}/districts.csv: {n} numbers, largest relative difference {r:.3g}")
    ann = remote / "results" / str(year) / "districts.csv"
    if ann.exists():
        r, n = max_rel_diff(local / "results" / str(year) / "districts.csv", ann)
        worst = max(worst, r)
        print(f"  {year}/districts.csv: {n} numbers, largest relative difference {r:.3g}")
        diffs = netcdf_identical(local / "results" / str(year) / f"flux_{year}.nc",
                                 remote / "results" / str(year) / f"flux_{year}.nc")
        print(f"  {year}/flux_{year}.nc: {'identical (every variable bit for bit, attributes but time stamps)' if not diffs else diffs}")
    else:
        diffs = ["no annual products on SLURM"]
        print(f"  {year}/districts.csv: not written on SLURM (run not finished)")
    for sub in ("data", "results"):
        counts, bad = compare_tree(local, remote, sub)
        print(f"every file of {sub}/ written on SLURM against the local run's: {sum(counts.values())} compared "
              f"({', '.join(f'{n} {k}' for k, n in sorted(counts.items()))}), {len(bad)} differ"
              + (f": {bad[:10]}" if bad else ""))
        diffs = diffs + bad
    jobs_csv = remote / "slurm_jobs.csv"
    if jobs_csv.exists():
        jobs = pd.read_csv(jobs_csv)
        print("SLURM jobs:", jobs["state"].value_counts().to_dict())
        for k, v in overlaps(jobs).items():
            print(f"  {k}: {v:g}" if isinstance(v, float) else f"  {k}: {v}")
    t = rule_costs(local, remote, year)
    t.loc["total"] = t.sum()
    t["cpu_slurm/local"] = t["slurm_cpu_s"] / t["local_cpu_s"]
    t["wall_slurm/local"] = t["slurm_wall_s"] / t["local_wall_s"]
    print("per rule, the jobs finished on SLURM against the same jobs of the local run (benchmark files: CPU s "
          "of the job's process tree as Snakemake samples it, job wall s):")
    print(t.round(2).to_string())
    ok = worst <= 1e-9 and not diffs
    print(f"equal to 1e-9 and flux_{year}.nc identical: {ok}")
    return 0 if ok else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--snakefile", required=True)
    r.add_argument("--configfile", required=True)
    r.add_argument("--directory", required=True)
    r.add_argument("--jobs", type=int, default=12, help="SLURM jobs queued or running at once")
    r.add_argument("--stop-at", help="HH:MM UTC: stop the run (and the daemons) then")
    c = sub.add_parser("compare")
    c.add_argument("local")
    c.add_argument("slurm")
    c.add_argument("--year", required=True)
    args = ap.parse_args()
    return run(args) if args.cmd == "run" else compare(args)


if __name__ == "__main__":
    sys.exit(main())
