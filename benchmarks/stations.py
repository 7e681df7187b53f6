"""Benchmark: a month of 2-second Picarro raw data for 6 sites, ingested, calibrated and flagged.

    python benchmarks/stations.py                       # 31 days, 6 sites, 2 s records, 2 workers
    python benchmarks/stations.py --days 3 --sites NST YXU

Writes the raw files once into --workdir (about 0.85 GB per site-month; reused on later runs),
then times
- ours: ``stations.hourly.process_site`` per site (read every line with accounting, QC flags incl.
  spike filter, calibration, hourly means), sites spread over ``--jobs`` processes;
- a plain pandas baseline: per site, ``read_csv`` of every file, concat, drop duplicates, sort,
  alarm / cavity / flush flags, per-cycle tank fits, interpolated calibration, hourly means; the
  same number of processes, no spike filter, no per-line accounting.
Every raw file is read once before the timings (page cache warm for both). Prints wall and CPU
times (CPU time is less sensitive to other jobs on a shared machine), their ratios, the load
average, and the median difference of the hourly means (should be ~0: the baseline has no spike
filter).
"""
from __future__ import annotations

import argparse
import os
import warnings
import concurrent.futures as cf
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stations import hourly  # noqa: E402
from gzcarbon.demo import stations as synthetic  # noqa: E402
from stations.sites import inlet_valves, load_sites, tank_table  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def truth_table(sites, days, start="2025-01-01", seed=0):
    return synthetic.proxy_truth(sites, days, start, seed, noise_ppm=0.5, background_amplitude_ppm=2.0,
                                 background_period_hours=50.0)


def generate(site, truth, outdir, record_seconds):
    if (outdir / ".complete").exists():
        return 0.0
    t = time.perf_counter()
    synthetic.write_demo_raw(truth, site, outdir, seed=20250101, record_seconds=record_seconds)
    (outdir / ".complete").write_text("ok")
    return time.perf_counter() - t


def ours(site, raw_dir):
    t, c = time.perf_counter(), time.process_time()
    ing = hourly.process_site(raw_dir, site, flush_seconds=60, min_coverage=0.5)
    n = int(ing.summary["lines_read"].sum())
    top = max(ing.hourly)
    return time.perf_counter() - t, n, ing.hourly[top]["value"], time.process_time() - c


def baseline(site, raw_dir, flush_seconds=60.0):
    """Plain pandas: the same steps without accounting or spike filter."""
    t, c = time.perf_counter(), time.process_time()
    files = sorted(Path(raw_dir).glob("*.dat"))
    df = pd.concat([pd.read_csv(f, sep=r"\s+") for f in files], ignore_index=True)
    df = df.drop_duplicates("EPOCH_TIME").sort_values("EPOCH_TIME").reset_index(drop=True)
    df["time"] = pd.to_datetime(df["EPOCH_TIME"], unit="s")
    valve = df["MPVPosition"].round().astype(int)
    seg = (valve != valve.shift()).cumsum()
    since = df["EPOCH_TIME"] - df.groupby(seg)["EPOCH_TIME"].transform("first")
    bad = (df["ALARM_STATUS"] != 0) | ((df["CavityPressure"] - 140).abs() > 0.2) | \
        ((df["CavityTemp"] - 45).abs() > 0.1) | (since < flush_seconds)
    tanks = tank_table(site, "co2")
    ref = {v: a for v, (_, a, tg) in tanks.items() if not tg}
    tk = df[valve.isin(list(ref)) & ~bad]
    runs = tk.groupby(seg[tk.index]).agg(t=("EPOCH_TIME", "mean"), m=("CO2_dry", "mean"),
                                          v=("MPVPosition", "first"), n=("CO2_dry", "size"))
    runs["a"] = runs["v"].round().astype(int).map(ref)
    runs["cyc"] = (runs["t"].diff() > 1800).cumsum()
    fits = runs.groupby("cyc").apply(lambda r: pd.Series(
        dict(zip(("gain", "offset"), np.polyfit(r["a"], r["m"], 1))) | {"t": r["t"].mean()}))
    gain = np.interp(df["EPOCH_TIME"], fits["t"], fits["gain"])
    offset = np.interp(df["EPOCH_TIME"], fits["t"], fits["offset"])
    df["cal"] = (df["CO2_dry"] - offset) / gain
    top_valve = max(inlet_valves(site).items(), key=lambda kv: kv[1])[0]
    amb = df[(valve == top_valve) & ~bad]
    hr = amb.set_index("time")["cal"].resample("h").mean()
    return time.perf_counter() - t, len(df), hr, time.process_time() - c


def _warm(dirs):
    """Read every raw file once so that both runs find them in the page cache."""
    n = 0
    for d in dirs:
        for f in sorted(Path(d).glob("*.dat")):
            with open(f, "rb") as fh:
                while chunk := fh.read(1 << 24):
                    n += len(chunk)
    return n


def main():
    warnings.simplefilter("ignore", np.exceptions.RankWarning)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=int, default=31)
    ap.add_argument("--sites", nargs="*", default=None)
    ap.add_argument("--record-seconds", type=float, default=2.0)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--workdir", default="/tmp/gz_stations_bench")
    a = ap.parse_args()
    sites = load_sites(REPO / "config" / "stations.yaml")
    if a.sites:
        sites = [s for s in sites if s["id"] in a.sites]
    work = Path(a.workdir) / f"{a.days}d_{a.record_seconds:g}s"
    truth = truth_table(sites, a.days)
    dirs = {s["id"]: work / s["id"] for s in sites}
    t = time.perf_counter()
    with cf.ProcessPoolExecutor(a.jobs) as ex:
        list(ex.map(generate, sites, [truth] * len(sites), dirs.values(), [a.record_seconds] * len(sites)))
    size = sum(f.stat().st_size for d in dirs.values() for f in d.glob("*.dat"))
    print(f"raw data: {len(sites)} sites x {a.days} days, {a.record_seconds:g} s records, "
          f"{size / 1e9:.2f} GB in {work} (generated/checked in {time.perf_counter() - t:.1f} s)")

    t = time.perf_counter()
    _warm(dirs.values())
    print(f"page cache warmed in {time.perf_counter() - t:.1f} s; load average {os.getloadavg()}")

    t = time.perf_counter()
    with cf.ProcessPoolExecutor(a.jobs) as ex:
        res = list(ex.map(ours, sites, dirs.values()))
    t_ours = time.perf_counter() - t
    n_lines = sum(r[1] for r in res)
    cpu_ours = sum(r[3] for r in res)
    print(f"ours     : {t_ours:7.1f} s wall ({a.jobs} processes), {cpu_ours:6.1f} s CPU, {n_lines:,} lines, "
          f"{n_lines / t_ours / 1e6:.2f} M lines/s; load average {os.getloadavg()}")

    t = time.perf_counter()
    if a.jobs > 1:     # same number of processes as ours
        with cf.ProcessPoolExecutor(a.jobs) as ex:
            base = list(ex.map(baseline, sites, dirs.values()))
    else:
        base = [baseline(s, dirs[s["id"]]) for s in sites]
    t_base = time.perf_counter() - t
    cpu_base = sum(r[3] for r in base)
    print(f"baseline : {t_base:7.1f} s wall ({a.jobs} processes, plain pandas), {cpu_base:6.1f} s CPU; "
          f"load average {os.getloadavg()}")
    print(f"ratio baseline/ours = {t_base / t_ours:.2f} wall, {cpu_base / cpu_ours:.2f} CPU  "
          f"(target: ours < 60 s for a month, 6 sites, 2 cores)")
    diffs = []
    for (_, _, h1, _), (_, _, h2, _) in zip(res, base):
        d = (h1 - h2.reindex(h1.index)).abs()
        diffs.append(float(d.median()))
    print(f"median |hourly ours - baseline| per site (ppm): {np.round(diffs, 4).tolist()}")


if __name__ == "__main__":
    main()
