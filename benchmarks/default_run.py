"""The default run's cost (issue 19.5): per-rule CPU, the summed job time and a list-schedule
estimate of its wall time on N cores, from a finished run directory; two run directories: each,
and after/before as ratios.

Per job the CPU is the ``job cost:`` line every rule script writes last in its log
(``gzcarbon.logs.job_cost``: the script's process *and* the children it waited for, so HYSPLIT is
included); a job without one falls back to Snakemake's benchmark ``cpu_time`` (which misses most
of the short-lived HYSPLIT processes) and is flagged. The jobs, their dependencies, threads and
priorities come from a dry run (``snakemake -n --forceall``) of the run directory's Snakefile (a
job is named by its log file, as its benchmark file).

The wall-time estimate replays the jobs on ``--cores`` cores from their measured CPU alone (a job
of ``t`` threads holds ``min(t, cores)`` cores for ``cpu / min(t, cores)`` seconds), so a loaded
machine does not spoil it. Two orders are replayed: the order in which the run itself started its
jobs (the Snakemake scheduler's choices, with the rules' ``priority:``), and the critical-path
order (the ready job with the longest chain of CPU after it first), a reference for a good order.
The main Snakemake process's own CPU is the whole run's CPU (``--time-v``: the output of
``/usr/bin/time -v``) minus the jobs'. Usage:

    python benchmarks/default_run.py RUN_DIR [--cores 2] [--snakefile Snakefile]
    python benchmarks/default_run.py BEFORE_DIR AFTER_DIR [--cores 2]
    python benchmarks/default_run.py RUN_DIR --dag-snakefile Snakefile [--cost JOB=SECONDS ...]

The last form replays RUN_DIR's measured jobs on the DAG, threads and priorities of another
Snakefile (a change of rules measured before a whole run of it exists) and prints the ratios.
"""

from __future__ import annotations

import argparse
import glob
import heapq
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field

import pandas as pd

from gzcarbon.logs import parse_job_cost

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass
class Job:
    name: str                      # log-file stem = benchmark-file stem
    rule: str
    cpu: float                     # seconds of CPU (job cost line, else benchmark cpu_time)
    threads: int = 1
    deps: set = field(default_factory=set)
    started: float = float("nan")  # epoch seconds the run started it (benchmark mtime - s)
    wall: float = float("nan")     # the run's measured wall seconds
    from_log: bool = True          # CPU from the job-cost line (False: benchmark cpu_time)
    priority: int = 0              # the rule's Snakemake priority


def bottom_levels(children: dict[str, list[str]], dur: dict[str, float]) -> dict[str, float]:
    """Per job the longest sum of durations from it to the end of the DAG (itself included)."""
    level: dict[str, float] = {}
    for n in children:
        stack = [] if n in level else [n]
        while stack:  # iterative depth-first: a job's level once all its children have theirs
            m = stack[-1]
            unlevelled = [c for c in children[m] if c not in level]
            if unlevelled:
                stack.extend(unlevelled)
                continue
            stack.pop()
            level[m] = dur[m] + max((level[c] for c in children[m]), default=0.0)
    return level


def _order_key(jobs: dict[str, Job], level: dict[str, float], order: str):
    if order == "critical":
        return lambda n: (-level[n], n)
    if order == "priority":  # Snakemake's choice: highest priority first; ties: critical path
        return lambda n: (-jobs[n].priority, -level[n], n)
    if order == "observed":
        def key(n):
            s = jobs[n].started
            return (s if s == s else float("inf"), -level[n], n)
        return key
    raise ValueError(f"unknown order {order!r}")


def list_schedule(jobs: dict[str, Job], cores: int, order: str = "critical") -> dict:
    """Replay ``jobs`` on ``cores`` cores; returns ``{"makespan", "start", "end", "idle"}``.

    ``order``: ``"critical"`` (ready job with the longest CPU path to the end first),
    ``"priority"`` (highest rule priority first, ties by the critical path) or ``"observed"``
    (ready job the run started first). A job of ``t`` threads waits until
    ``min(t, cores)`` cores are free and lasts ``cpu / min(t, cores)``. Greedy, non-delay: whenever
    cores are free the best ready job that fits starts (as Snakemake's scheduler does)."""
    if cores < 1:
        raise ValueError("cores must be >= 1")
    for j in jobs.values():
        missing = j.deps - jobs.keys()
        if missing:
            raise ValueError(f"job {j.name} depends on unknown jobs {sorted(missing)}")
    children: dict[str, list[str]] = {n: [] for n in jobs}
    for j in jobs.values():
        for d in j.deps:
            children[d].append(j.name)
    need = {n: min(max(int(j.threads), 1), cores) for n, j in jobs.items()}
    dur = {n: max(float(j.cpu), 0.0) / need[n] for n, j in jobs.items()}
    level = bottom_levels(children, dur)
    key = _order_key(jobs, level, order)
    waiting = {n: len(j.deps) for n, j in jobs.items()}
    ready = sorted((n for n, w in waiting.items() if w == 0), key=key)
    running: list[tuple[float, str]] = []
    start, end = {}, {}
    now, free, busy = 0.0, cores, 0.0
    while ready or running:
        started = True
        while started and ready:
            started = False
            for n in ready:
                if need[n] <= free:
                    ready.remove(n)
                    start[n], free = now, free - need[n]
                    heapq.heappush(running, (now + dur[n], n))
                    busy += dur[n] * need[n]
                    started = True
                    break
        if not running:
            raise ValueError("jobs left that can never start (a cycle?)")
        t, n = heapq.heappop(running)
        done = [n]
        while running and running[0][0] <= t:
            done.append(heapq.heappop(running)[1])
        now = t
        for n in done:
            end[n] = t
            free += need[n]
            for c in children[n]:
                waiting[c] -= 1
                if waiting[c] == 0:
                    ready.append(c)
        ready.sort(key=key)
    makespan = max(end.values(), default=0.0)
    return {"makespan": makespan, "start": start, "end": end,
            "idle": makespan * cores - busy, "critical_path": max(level.values(), default=0.0)}


def parse_job_blocks(text: str) -> dict[str, dict]:
    """``{job: {"rule", "threads", "priority", "input", "output"}}`` from Snakemake's job blocks
    (its log of a run, or the output of a dry run): a job is named by its log file; ``threads: N``
    and ``priority: N`` of a block (1 and 0 without), its input and output files."""
    out = {}
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", text):
        head = re.match(r"(?:local)?rule (\w+):", block)
        log = re.search(r"^\s+log: (\S+?)(?:,|\n|$)", block, re.M)
        if not head or not log:
            continue
        n = re.search(r"^\s+threads: (\d+)", block, re.M)
        p = re.search(r"^\s+priority: (-?\d+)", block, re.M)

        def files(key, block=block):
            m = re.search(rf"^\s+{key}: (.*)$", block, re.M)
            return [f.strip() for f in m.group(1).split(",") if f.strip()] if m else []

        out[os.path.splitext(os.path.basename(log.group(1)))[0]] = {
            "rule": head.group(1), "threads": int(n.group(1)) if n else 1,
            "priority": int(p.group(1)) if p else 0, "input": files("input"),
            "output": files("output")}
    return out


def block_dag(blocks: dict[str, dict]) -> tuple[dict[str, str], dict[str, set]]:
    """``({job: rule}, {job: jobs it needs})`` from parsed job blocks (outputs to producers)."""
    producer = {f: job for job, b in blocks.items() for f in b["output"]}
    deps = {job: {producer[f] for f in b["input"] if f in producer and producer[f] != job}
            for job, b in blocks.items()}
    return {job: b["rule"] for job, b in blocks.items()}, deps


def job_threads(run_dir: str) -> dict[str, int]:
    """``{job: threads}`` from the run's Snakemake logs (``threads: N`` of a job block; 1 when the
    block has none)."""
    return {k: v["threads"] for k, v in run_blocks(run_dir).items()}


def run_blocks(run_dir: str) -> dict[str, dict]:
    blocks = {}
    for f in sorted(glob.glob(os.path.join(run_dir, ".snakemake", "log", "*.snakemake.log"))):
        with open(f, errors="replace") as fh:
            blocks.update(parse_job_blocks(fh.read()))
    return blocks


def dry_run_blocks(run_dir: str, snakefile: str) -> dict[str, dict]:
    """Job blocks of ``snakemake -n --forceall`` of ``snakefile`` on ``run_dir``: the whole DAG
    (every job with its inputs, outputs, threads and priority) as that Snakefile plans it."""
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", snakefile, "--directory", run_dir,
           "-n", "--forceall", "--cores", "2"]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stderr[-2000:]}")
    return parse_job_blocks(out.stdout + out.stderr)


def load_run(run_dir: str, snakefile: str | None = None, month: str = "2025-01",
             dag_snakefile: str | None = None, costs: dict | None = None) -> dict[str, Job]:
    """The jobs of a finished run with their measured CPU. ``dag_snakefile``: the jobs, their
    dependencies, threads and priorities from that Snakefile instead (a replay of this run's
    measured jobs on another checkout's DAG); a job the run did not have takes its CPU from
    ``costs`` ({job: seconds})."""
    if snakefile is None:
        own = os.path.join(run_dir, "Snakefile")
        snakefile = own if os.path.exists(own) else os.path.join(ROOT, "Snakefile")
    blocks = dry_run_blocks(run_dir, dag_snakefile or snakefile)
    rule_of, deps = block_dag(blocks)
    costs = costs or {}
    jobs = {}
    missing = []
    for name, rule in rule_of.items():
        bench = os.path.join(run_dir, "benchmarks", "runs", month, f"{name}.tsv")
        log = os.path.join(run_dir, "logs", month, f"{name}.log")
        b = blocks.get(name, {"threads": 1, "priority": 0})
        if not os.path.exists(bench):
            if name in costs:
                jobs[name] = Job(name, rule, float(costs[name]), b["threads"],
                                 set(deps.get(name, ())), float("nan"), float("nan"), False,
                                 b["priority"])
            else:
                missing.append(name)
            continue
        last = pd.read_csv(bench, sep="\t").iloc[-1]
        wall = float(last["s"])
        cost = None
        if os.path.exists(log):
            with open(log, errors="replace") as fh:
                cost = parse_job_cost(fh.read())
        jobs[name] = Job(name, rule, cost["cpu"] if cost else float(last["cpu_time"]),
                         b["threads"], set(deps.get(name, ())),
                         os.path.getmtime(bench) - wall, wall, cost is not None, b["priority"])
    if missing:
        raise SystemExit(f"{run_dir}: no benchmark file for {len(missing)} job(s) of the DAG "
                         f"({', '.join(sorted(missing)[:5])}): is the run finished? (a replay on "
                         "another DAG: give their CPU with --cost JOB=SECONDS)")
    for j in jobs.values():
        j.deps &= jobs.keys()
    return jobs


def whole_run_cpu(run_dir: str, time_v: str | None) -> float | None:
    path = time_v or os.path.join(run_dir, "time_v.txt")
    if not os.path.exists(path):
        return None
    with open(path) as fh:
        text = fh.read()
    u = re.search(r"User time \(seconds\): ([0-9.]+)", text)
    s = re.search(r"System time \(seconds\): ([0-9.]+)", text)
    return float(u.group(1)) + float(s.group(1)) if u and s else None


def report(run_dir: str, jobs: dict[str, Job], cores: int, time_v: str | None,
           replay: bool = False) -> dict:
    df = pd.DataFrame([{"rule": j.rule, "cpu_s": j.cpu, "wall_s": j.wall, "threads": j.threads,
                        "from_log": j.from_log} for j in jobs.values()])
    by_rule = (df.groupby("rule").agg(jobs=("cpu_s", "size"), cpu_s=("cpu_s", "sum"),
                                      wall_s=("wall_s", "sum"), threads=("threads", "max"))
               .sort_values("cpu_s", ascending=False))
    print(f"== {run_dir}")
    print(by_rule.round(1).to_string())
    flagged = df.loc[~df["from_log"], "rule"].unique()
    if len(flagged):
        print(f"(no job-cost line, benchmark cpu_time used, HYSPLIT missed: {', '.join(flagged)})")
    total = float(df["cpu_s"].sum())
    res = {"jobs": len(df), "cpu": total}
    whole = whole_run_cpu(run_dir, time_v)
    print(f"jobs {len(df)}, job CPU {total:.0f} s (lower bound on {cores} cores: {total / cores:.0f} s)")
    if whole is not None:
        res["whole"] = whole
        print(f"whole run CPU (/usr/bin/time -v) {whole:.0f} s, of which the Snakemake process and "
              f"everything outside the jobs {whole - total:.0f} s")
    orders = ("priority", "critical") if replay else ("observed", "priority", "critical")
    for order in orders:
        s = list_schedule(jobs, cores, order)
        res[order] = s["makespan"]
        print(f"{cores}-core list schedule, {order} order: {s['makespan']:.0f} s "
              f"({s['makespan'] / 60:.1f} min), idle core time {s['idle']:.0f} s")
    res["critical_path"] = s["critical_path"]
    print(f"critical path (CPU along the longest chain): {s['critical_path']:.0f} s")
    if not replay:
        first = min(j.started for j in jobs.values())
        last = max(j.started + j.wall for j in jobs.values())
        print(f"measured wall of the run (first job start to last job end, machine load "
              f"included): {last - first:.0f} s")
    res["by_rule"] = by_rule
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dirs", nargs="+", help="RUN_DIR, or BEFORE_DIR AFTER_DIR")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--month", default="2025-01")
    ap.add_argument("--snakefile", default=None,
                    help="default: RUN_DIR/Snakefile when there is one, else this checkout's")
    ap.add_argument("--time-v", default=None, help="/usr/bin/time -v output of a single run "
                    "(default RUN_DIR/time_v.txt when present)")
    ap.add_argument("--dag-snakefile", default=None,
                    help="replay the (last) run's measured jobs on this Snakefile's DAG, threads "
                         "and priorities (e.g. a change of rules before a run of it exists)")
    ap.add_argument("--cost", action="append", default=[], metavar="JOB=SECONDS",
                    help="CPU of a job of --dag-snakefile's DAG that the run did not have")
    args = ap.parse_args(argv)
    if len(args.run_dirs) > 2:
        ap.error("one or two run directories")
    costs = {k: float(v) for k, v in (c.split("=", 1) for c in args.cost)}
    results = []
    for d in args.run_dirs:
        jobs = load_run(d, args.snakefile, args.month)
        results.append(report(d, jobs, args.cores, args.time_v if len(args.run_dirs) == 1 else None))
        print()
    if args.dag_snakefile:
        d = args.run_dirs[-1]
        jobs = load_run(d, args.snakefile, args.month, args.dag_snakefile, costs)
        print(f"replayed on the DAG of {args.dag_snakefile}:")
        results.append(report(d, jobs, args.cores, None, replay=True))
        results = results[-2:]
        print()
    if len(results) == 2:
        b, a = results
        print("after / before:")
        for k, what in (("cpu", "job CPU"), ("whole", "whole-run CPU"),
                        ("observed", f"{args.cores}-core estimate, the runs' own order"),
                        ("priority", f"{args.cores}-core estimate, rule priorities"),
                        ("critical", f"{args.cores}-core estimate, critical-path order"),
                        ("critical_path", "critical path")):
            if k in a and k in b and b[k]:
                print(f"  {what}: {b[k]:.0f} s -> {a[k]:.0f} s, ratio {a[k] / b[k]:.3f}")
        per = pd.concat({"before": b["by_rule"]["cpu_s"], "after": a["by_rule"]["cpu_s"]},
                        axis=1).fillna(0.0)
        per["after-before"] = per["after"] - per["before"]
        print(per.sort_values("before", ascending=False).round(1).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
