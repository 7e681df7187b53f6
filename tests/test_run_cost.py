"""Issue 19.5: the default run's cost, measured per job.

``gzcarbon.logs`` ends every rule script's log with a ``job cost:`` line (CPU of the script *and*
of the child processes it waited for: HYSPLIT), and ``benchmarks/default_run.py`` replays the
jobs' measured CPU on N cores in DAG order (a list schedule) to estimate the wall time of a run
independently of the machine's load.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gzcarbon.logs import format_job_cost, parse_job_cost

ROOT = Path(__file__).resolve().parents[1]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_default_run",
                                                  ROOT / "benchmarks" / "default_run.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def _script(tmp_path: Path, body: str) -> subprocess.CompletedProcess:
    path = tmp_path / "job.py"
    path.write_text(textwrap.dedent(body))
    return subprocess.run([sys.executable, str(path)], capture_output=True, text=True, cwd=tmp_path,
                          timeout=300)


BUSY_CHILD = "import time\nt = time.process_time()\nwhile time.process_time() - t < {s}: pass\n"


def test_job_cost_line_counts_the_cpu_of_waited_children(tmp_path):
    # the script burns ~0.3 s itself and starts a child that burns ~0.6 s (as HYSPLIT is started by
    # pystilt): the cost line must hold both, the children part alone >= 0.6 s
    proc = _script(tmp_path, f"""
        import subprocess, sys, time
        from gzcarbon.logs import script_logging
        script_logging("logs/job.log")
        subprocess.run([sys.executable, "-c", {BUSY_CHILD.format(s=0.6)!r}], check=True)
        t = time.process_time()
        while time.process_time() - t < 0.3:
            pass
    """)
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "logs" / "job.log").read_text()
    last = text.strip().splitlines()[-1]
    assert "job cost:" in last
    cost = parse_job_cost(text)
    assert cost["children"] >= 0.6
    assert cost["cpu"] >= 0.9 and cost["cpu"] == pytest.approx(cost["user"] + cost["sys"], abs=0.011)
    assert cost["cpu"] < cost["wall"] + 1.0  # one thread each, one after the other
    assert cost["rss"] > 1.0


def test_a_failed_job_keeps_the_error_as_its_last_log_line(tmp_path):
    proc = _script(tmp_path, """
        from gzcarbon.logs import script_logging
        script_logging("logs/job.log")
        raise ValueError("bad input in file x.csv, field y")
    """)
    assert proc.returncode != 0
    text = (tmp_path / "logs" / "job.log").read_text()
    assert "job cost:" not in text
    assert text.strip().splitlines()[-1] == "ERROR (job failed): ValueError: bad input in file x.csv, field y"


def test_job_cost_line_round_trips():
    c = {"cpu": 12.5, "user": 11.25, "sys": 1.25, "children": 9.0, "wall": 30.75, "rss": 321.5}
    assert parse_job_cost("noise\n" + format_job_cost(c) + "\n") == c
    assert parse_job_cost("no such line") is None


def _jobs(spec, bench):
    return {n: bench.Job(n, n.rstrip("0123456789"), cpu, threads, set(deps))
            for n, (cpu, threads, deps) in spec.items()}


def test_list_schedule_on_a_synthetic_dag():
    bench = _bench()
    # a -> (b, c, d) -> e; on 2 cores: a [0,2], b and c [2,5] and [2,6], d [5,6], e [6,7]
    spec = {"a": (2, 1, []), "b": (3, 1, ["a"]), "c": (4, 1, ["a"]), "d": (1, 1, ["a"]),
            "e": (1, 1, ["b", "c", "d"])}
    s = bench.list_schedule(_jobs(spec, bench), 2, "critical")
    assert s["makespan"] == pytest.approx(7.0)
    assert s["critical_path"] == pytest.approx(7.0)  # a, c, e
    assert s["start"]["c"] == 2.0 and s["start"]["d"] == 5.0
    assert s["idle"] == pytest.approx(2 * 7 - 11)  # cores x makespan - total CPU
    # one core: the sum of the CPU; many cores: the critical path
    assert bench.list_schedule(_jobs(spec, bench), 1)["makespan"] == pytest.approx(11.0)
    assert bench.list_schedule(_jobs(spec, bench), 8)["makespan"] == pytest.approx(7.0)
    # a job of 2 threads holds both cores for cpu / 2
    spec2 = {"a": (2, 1, []), "b": (2, 1, []), "inv": (8, 2, ["a", "b"])}
    s2 = bench.list_schedule(_jobs(spec2, bench), 2)
    assert s2["start"]["inv"] == 2.0 and s2["makespan"] == pytest.approx(6.0)


def test_list_schedule_observed_order_shows_a_serial_tail():
    # two long chains and short fillers: started in the observed order (fillers first, the
    # long chain's head last) the schedule ends with one core idle; the critical-path order not
    bench = _bench()
    spec = {"long1": (10, 1, []), "long2": (10, 1, ["long1"]), "f1": (5, 1, []), "f2": (5, 1, []),
            "f3": (5, 1, []), "f4": (5, 1, [])}
    jobs = _jobs(spec, bench)
    for k, n in enumerate(["f1", "f2", "f3", "f4", "long1", "long2"]):
        jobs[n].started = float(k)
    worst = bench.list_schedule(jobs, 2, "observed")
    best = bench.list_schedule(jobs, 2, "critical")
    assert best["makespan"] == pytest.approx(20.0)  # long1+long2 on one core, fillers on the other
    assert worst["makespan"] == pytest.approx(30.0)  # fillers 10 s on both, then the chain alone
    assert worst["idle"] == pytest.approx(2 * 30 - 40)


def test_list_schedule_is_valid_and_within_grahams_bound_on_small_dags():
    # on every DAG of 5 jobs below the list schedule (critical order) is a valid schedule: no job
    # starts before its inputs end, never more than 2 jobs at once, and its makespan lies between
    # the lower bounds (critical path, CPU / 2) and Graham's bound CPU / 2 + CP / 2 <= 1.5 x lower
    bench = _bench()
    cpus = [3.0, 1.0, 4.0, 1.5, 2.5]
    for mask in range(0, 1 << 10, 37):
        edges = [(i, j) for k, (i, j) in enumerate(itertools.combinations(range(5), 2))
                 if mask >> k & 1]
        spec = {f"j{j}": (cpus[j], 1, [f"j{i}" for i, jj in edges if jj == j]) for j in range(5)}
        jobs = _jobs(spec, bench)
        s = bench.list_schedule(jobs, 2)
        for n, j in jobs.items():
            for d in j.deps:
                assert s["start"][n] >= s["end"][d] - 1e-12
        events = sorted([(t, 1) for t in s["start"].values()] + [(t, -1) for t in s["end"].values()],
                        key=lambda e: (e[0], e[1]))
        assert max(itertools.accumulate(e[1] for e in events)) <= 2
        lower = max(s["critical_path"], sum(cpus) / 2)
        assert lower - 1e-9 <= s["makespan"] <= 1.5 * lower + 1e-9


def test_threads_are_read_from_the_snakemake_log(tmp_path):
    bench = _bench()
    log = tmp_path / ".snakemake" / "log" / "2026-01-01T000000.000000.snakemake.log"
    os.makedirs(log.parent)
    log.write_text(textwrap.dedent("""\
        [Wed Dec  2 08:20:14 2026]
        localrule demo_met:
            output: data/demo/2025-01/met/20241231_gz.arl
            log: logs/2025-01/demo_met_20241231.log
            jobid: 5
            priority: 10
        [Wed Dec  2 08:30:14 2026]
        rule inversion:
            input: results/2025-01/jacobian_hourly.npz
            log: logs/2025-01/inversion.log
            jobid: 2
            threads: 2
        """))
    assert bench.job_threads(str(tmp_path)) == {"demo_met_20241231": 1, "inversion": 2}
    blocks = bench.run_blocks(str(tmp_path))
    assert {k: (b["rule"], b["threads"], b["priority"]) for k, b in blocks.items()} == {
        "demo_met_20241231": ("demo_met", 1, 10), "inversion": ("inversion", 2, 0)}
    # the DAG from the blocks: inversion reads what demo_met writes
    blocks["inversion"]["input"].append("data/demo/2025-01/met/20241231_gz.arl")
    rules, deps = bench.block_dag(blocks)
    assert rules == {"demo_met_20241231": "demo_met", "inversion": "inversion"}
    assert deps == {"demo_met_20241231": set(), "inversion": {"demo_met_20241231"}}


def test_priority_order_runs_the_prioritised_chain_first():
    # two chains of equal length behind two short heads; the rule priority of chain b wins the
    # first free core, although the critical-path order alone would start chain a first (name)
    bench = _bench()
    spec = {"a1": (4, 1, []), "a2": (4, 1, ["a1"]), "b1": (4, 1, []), "b2": (4, 1, ["b1"]),
            "c": (4, 1, [])}
    jobs = _jobs(spec, bench)
    jobs["b1"].priority = jobs["b2"].priority = 10
    s = bench.list_schedule(jobs, 1, "priority")
    assert s["start"]["b1"] == 0.0 and s["start"]["b2"] == 4.0 and s["makespan"] == 20.0
    s = bench.list_schedule(jobs, 1, "critical")
    assert s["start"]["a1"] == 0.0
