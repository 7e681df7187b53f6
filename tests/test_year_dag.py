"""Issue 21 item 6: the months of a year are parallel branches of the workflow's DAG.

The jobs and their dependencies are read from a dry run (``snakemake -n``: each job's rule, input
and output files), so this tests what Snakemake (local or ``--executor slurm``) will schedule. A
job's month is the ``<YYYY-MM>/`` folder of its outputs. The only edges between months are the
monthly reports' budget inputs (docs/year.md, "Which rules chain month to month"): `report` of
month m reads the `inversion` outputs (districts.csv, diagnostics.json) of the earlier months of
its budget year, never their footprints, inversions or reports.
"""

import re
from collections import defaultdict

import yaml
from pipeline_conftest import run_snakemake, tiny_config

MONTH_DIR = re.compile(r"(?:^|/)(\d{4}-\d{2})/")


def _dry_run_jobs(tmp_path, **overrides):
    tmp_path.mkdir(parents=True, exist_ok=True)
    cfg = tiny_config(tmp_path)
    c = yaml.safe_load(cfg.read_text())
    c.update(species=["co2"], **overrides)
    cfg.write_text(yaml.safe_dump(c))
    proc = run_snakemake(tmp_path, cfg, "--dry-run", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs, cur = [], None
    for line in (proc.stdout + proc.stderr).splitlines():
        m = re.match(r"^(?:local)?rule (\w+):$", line)
        if m:
            cur = {"rule": m.group(1), "input": [], "output": []}
            jobs.append(cur)
            continue
        m = re.match(r"^\s+(input|output): (.*)$", line)
        if m and cur is not None:
            cur[m.group(1)] = [p.strip() for p in m.group(2).split(",")]
    assert jobs, proc.stdout[-2000:]
    return jobs


def _graph(jobs):
    """(producer index of every output file, parents of every job, month of every job)."""
    producer = {f: i for i, j in enumerate(jobs) for f in j["output"]}
    parents = {i: {producer[f] for f in j["input"] if f in producer} for i, j in enumerate(jobs)}
    months = {}
    for i, j in enumerate(jobs):
        found = {m for f in j["output"] for m in MONTH_DIR.findall(f)}
        assert len(found) <= 1, (j["rule"], found)
        months[i] = found.pop() if found else None
    return producer, parents, months


def _depth(parents):
    """Jobs on the longest dependency chain (the critical path in jobs)."""
    memo = {}

    def d(i):
        if i not in memo:
            memo[i] = 1 + max((d(p) for p in parents[i]), default=0)
        return memo[i]

    return max(d(i) for i in parents)


def _cross_month_edges(jobs, parents, months):
    out = []
    for i, ps in parents.items():
        for p in ps:
            if months[i] and months[p] and months[i] != months[p]:
                out.append((jobs[i]["rule"], months[i], jobs[p]["rule"], months[p]))
    return out


def test_months_of_a_year_are_parallel_branches(tmp_path):
    year = ["2025-01", "2025-02", "2025-03"]
    budgets = {"2025": {"Tianhe": 5200, "Guangzhou": 62000}}
    jobs = _dry_run_jobs(tmp_path / "year", months=year, year=2025, budgets=budgets)
    _, parents, months = _graph(jobs)
    per_month = defaultdict(int)
    for i in months:
        per_month[months[i]] += 1
    # every job but the annual report belongs to one month (the target `all` prints its message, not
    # its rule, in a dry run), and every month has the same jobs
    assert [jobs[i]["rule"] for i in months if months[i] is None] == ["annual_report"]
    assert len({per_month[m] for m in year}) == 1 and per_month[year[0]] > 20, dict(per_month)
    # the only edges between months: a month's report reads the earlier months' inversion results
    cross = _cross_month_edges(jobs, parents, months)
    assert sorted(cross) == sorted([("report", "2025-02", "inversion", "2025-01"),
                                    ("report", "2025-03", "inversion", "2025-01"),
                                    ("report", "2025-03", "inversion", "2025-02")]), cross
    # so the critical path of a three-month year is as long as that of a one-month year (in jobs)
    one = _dry_run_jobs(tmp_path / "one", months=["2025-01"], year=2025, budgets=budgets)
    _, parents_one, _ = _graph(one)
    assert len(parents) > 2 * len(parents_one)
    assert _depth(parents) == _depth(parents_one), (_depth(parents), _depth(parents_one))


def test_without_budgets_no_job_reads_another_month(tmp_path):
    jobs = _dry_run_jobs(tmp_path, months=["2025-01", "2025-02"], year=2025)
    _, parents, months = _graph(jobs)
    assert _cross_month_edges(jobs, parents, months) == []
