"""Footprint cost against accuracy: today's HYSPLIT-STILT settings, a cheaper setting and a
reference footprint, on the same demo receptors and met, in one run (issue "Footprints three times
cheaper at equal accuracy"; docs/performance.md, "Footprint cost").

    snakemake --cores 2                       # the default demo run (met, prior, truth), once
    python benchmarks/footprints.py --run .   # then this, from the run's directory

Receptors: every site-inlet of the run's ``receptors.csv`` at 14:30 and 02:30 local time (06:30 and
18:30 UTC) on the run's days whose 24 h back fit in its met: 6 sites x 2 days x day/night = 24.
Settings (``transport`` config keys, one HYSPLIT-STILT run per receptor each):

- ``today``: the inversion's settings before the split (``numpar`` 100, one run, output every
  1-minute step);
- ``new``: ``--new`` (default: the split, ``near_field_hours`` 6, ``far_numpar`` 25,
  ``far_output_minutes`` 10);
- ``reference``: ``--ref-seeds`` (5) independent seeds x ``--ref-numpar`` (1000) particles, one run
  each, output every step, averaged; over the first ``--ref-hours`` (default all ``n_hours``).

For each receptor and setting: the modelled enhancement (ppm) with the run's prior flux and with the
demo truth's flux (``sum_t,cells foot x flux``), and the district-aggregated sensitivity
(``district_matrix @ sum_t foot``). Errors are against the reference. With ``--ref-hours`` below
``n_hours`` every quantity is taken over the first ``--ref-hours`` hours only, and the share of
today's in-grid enhancement at older ages is printed (it must be negligible for that choice).

Cost: the CPU time of the HYSPLIT child processes (``RUSAGE_CHILDREN``), which unlike wall time
hardly depends on the machine's load; today's and the new runs are interleaved, receptor by
receptor. Results are cached per receptor and setting in ``--cache`` (a re-run resumes).

The last line: ``speed-up N.Nx; rms ratio R.RR; bias B.BBB ppm (se S.SSS)`` (rms ratio: new/today
of the RMS enhancement error, the larger of prior and truth flux; bias: mean paired error of the
new setting against the reference, prior or truth flux, whichever is larger in units of its
standard error).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing as mp
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DAY_UTC, NIGHT_UTC = "06:30", "18:30"


def parse_setting(text: str) -> dict:
    """``key=value,key=value`` -> dict of ints/floats."""
    out = {}
    for part in filter(None, text.split(",")):
        k, v = part.split("=")
        out[k.strip()] = float(v) if "." in v else int(v)
    return out


def pick_receptors(run: Path, month: str, n_hours: int) -> pd.DataFrame:
    """Day and night receptors of every site-inlet whose ``n_hours`` back fit the run's met."""
    rec = pd.read_csv(run / "results" / month / "receptors.csv")
    inlets = rec.groupby(["site", "agl"], as_index=False)[["lon", "lat"]].first()
    met_days = sorted(p.name[:8] for p in (run / "data" / "demo" / month / "met").glob("*_gz.arl"))
    first = pd.Timestamp(met_days[0])
    last = pd.Timestamp(met_days[-1]) + pd.Timedelta(hours=23)
    rows = []
    for day in met_days:
        for hm, kind in ((DAY_UTC, "day"), (NIGHT_UTC, "night")):
            t = pd.Timestamp(f"{day[:4]}-{day[4:6]}-{day[6:]} {hm}")
            if t - pd.Timedelta(hours=n_hours + 1) < first or t + pd.Timedelta(hours=1) > last:
                continue
            for r in inlets.itertuples():
                rows.append({"receptor_id": f"{r.site}_{t:%Y%m%d%H%M}_{int(r.agl)}", "site": r.site,
                             "time": t, "lon": r.lon, "lat": r.lat, "agl": r.agl, "kind": kind})
    return pd.DataFrame(rows)


def _task(args):
    """One HYSPLIT-STILT footprint (in a worker): returns (key, hours, foot, cpu)."""
    key, rec, met, grid, settings_kw, cache = args
    from gzcarbon.grid import Grid
    from transport.stilt_driver import StiltSettings, receptor_footprint

    path = Path(cache) / f"{key}.npz"
    if path.exists():
        z = np.load(path)
        return key, z["hours"], z["foot"], float(z["cpu"])
    s = StiltSettings(**settings_kw)
    with tempfile.TemporaryDirectory(dir=cache) as wd:
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        (hours, foot, _tot, _n, _left), _ = receptor_footprint(pd.Series(rec), met,
                                                                Grid.from_config(grid), s, Path(wd))
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime
    hours = hours.values.astype("datetime64[ns]")
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, hours=hours, foot=foot.astype(np.float32), cpu=cpu)
    os.replace(tmp, path)
    return key, hours, foot.astype(np.float32), cpu


def _key(rid: str, label: str, kw: dict) -> str:
    h = hashlib.blake2b(json.dumps(kw, sort_keys=True).encode(), digest_size=5).hexdigest()
    return f"{rid}__{label}__{h}"


def build_tasks(recs, base: dict, new: dict, args, met, grid, cache):
    """(tasks, index): today and new interleaved receptor by receptor, then the reference."""
    from transport.stilt_driver import StiltSettings

    tasks, index = [], {}
    for r in recs.to_dict("records"):
        rec = {k: r[k] for k in ("receptor_id", "time", "lon", "lat", "agl")}
        k_today = _key(r["receptor_id"], "today", base)
        tasks.append((k_today, rec, met, grid, base, cache))
        index[(r["receptor_id"], "today")] = [k_today]
        kw = {**base, **new}
        if StiltSettings(**kw).split_for(r["time"], r["lon"]):
            k = _key(r["receptor_id"], "new", kw)
            tasks.append((k, rec, met, grid, kw, cache))
        else:  # outside near_field_solar_hours the new setting is today's single run
            k = k_today
        index[(r["receptor_id"], "new")] = [k]
    for r in recs.to_dict("records"):
        rec = {k: r[k] for k in ("receptor_id", "time", "lon", "lat", "agl")}
        keys = []
        for s in range(args.ref_seeds):
            kw = {**base, "numpar": args.ref_numpar, "seed": 1001 + s, "n_hours": args.ref_hours,
                  "near_field_hours": 0}
            k = _key(r["receptor_id"], f"ref{s}", kw)
            tasks.append((k, rec, met, grid, kw, cache))
            keys.append(k)
        index[(r["receptor_id"], "reference")] = keys
    return tasks, index


def on_hours(hours, foot, axis):
    """foot (nt, ny, nx) placed on the common hour axis (zeros elsewhere)."""
    out = np.zeros((len(axis),) + foot.shape[1:], np.float64)
    pos = pd.DatetimeIndex(axis).get_indexer(pd.DatetimeIndex(hours))
    ok = pos >= 0
    out[pos[ok]] = foot[ok]
    return out


def metrics(foot_on_axis, prior, truth, dmat):
    """(enhancement with prior flux, with truth flux, district sensitivity vector)."""
    f = foot_on_axis.reshape(foot_on_axis.shape[0], -1)
    return (float(np.sum(f * prior)), float(np.sum(f * truth)),
            np.asarray(dmat @ f.sum(axis=0)).ravel())


def load_world(run: Path, month: str):
    import xarray as xr

    from gzcarbon.districts import district_matrix
    from gzcarbon.grid import Grid

    prior = xr.open_dataset(run / "results" / month / "prior.nc")["flux"].load()
    truth = xr.open_dataset(run / "data" / "demo" / month / "truth.nc")["flux"].load()
    g = Grid.from_centres(prior["lon"].values, prior["lat"].values)
    names, dmat = district_matrix(ROOT / "config" / "districts.geojson", g.lon_edges, g.lat_edges)
    return prior, truth, g, names, dmat


def summarise(recs, results, index, world, ref_hours, n_hours):
    prior, truth, g, names, dmat = world
    axis = pd.DatetimeIndex(prior["time"].values)
    pf = prior.values.reshape(len(axis), -1)
    tf = truth.reindex(time=prior["time"].values).values.reshape(len(axis), -1)
    rows, tail = [], []
    for r in recs.itertuples():
        rel = pd.Timestamp(r.time)
        keep = (axis > rel.floor("h") - pd.Timedelta(hours=ref_hours)) & (axis <= rel.floor("h"))
        vals = {}
        for label in ("today", "new", "reference"):
            feet = [on_hours(results[k][0], results[k][1], axis) for k in index[(r.receptor_id, label)]]
            f = np.mean(feet, axis=0)
            if label == "today":
                full = metrics(f, pf, tf, dmat)[0]
            f[~keep] = 0.0
            vals[label] = metrics(f, pf, tf, dmat)
        tail.append(1.0 - vals["today"][0] / full if full else 0.0)
        row = {"receptor": r.receptor_id, "kind": r.kind}
        for label in ("today", "new", "reference"):
            row[f"{label}_prior"], row[f"{label}_truth"] = vals[label][0], vals[label][1]
        for label in ("today", "new"):
            d = vals[label][2] - vals["reference"][2]
            row[f"{label}_district_rms"] = float(np.sqrt(np.mean(d ** 2)))
            row[f"{label}_cpu"] = sum(results[k][2] for k in index[(r.receptor_id, label)])
        row["ref_district_mean"] = float(np.mean(np.abs(vals["reference"][2])))
        rows.append(row)
    return pd.DataFrame(rows), np.array(tail)


def report(df: pd.DataFrame, tail: np.ndarray, ref_hours: int, n_hours: int) -> str:
    n = len(df)
    print(f"\n{n} receptors ({(df.kind == 'day').sum()} day, {(df.kind == 'night').sum()} night)")
    if ref_hours < n_hours:
        print(f"quantities over the first {ref_hours} h back; today's in-grid prior enhancement at "
              f"older ages: max {np.max(np.abs(tail)):.2%}, mean {np.mean(np.abs(tail)):.2%}")
    head = None
    for flux in ("prior", "truth"):
        e_t = df[f"today_{flux}"] - df[f"reference_{flux}"]
        e_n = df[f"new_{flux}"] - df[f"reference_{flux}"]
        rms_t, rms_n = np.sqrt(np.mean(e_t ** 2)), np.sqrt(np.mean(e_n ** 2))
        bias, se = e_n.mean(), e_n.std(ddof=1) / np.sqrt(n)
        bias_t, se_t = e_t.mean(), e_t.std(ddof=1) / np.sqrt(n)
        print(f"enhancement with the {flux} flux (reference mean {df[f'reference_{flux}'].mean():.3f}"
              f" ppm): RMS error today {rms_t:.4f}, new {rms_n:.4f} ppm (ratio {rms_n / rms_t:.2f});"
              f" bias today {bias_t:+.4f} (se {se_t:.4f}), new {bias:+.4f} (se {se:.4f}) ppm")
        for kind, sub in df.groupby("kind"):
            et = sub[f"today_{flux}"] - sub[f"reference_{flux}"]
            en = sub[f"new_{flux}"] - sub[f"reference_{flux}"]
            print(f"    {kind:5s}: RMS today {np.sqrt(np.mean(et ** 2)):.4f}, new "
                  f"{np.sqrt(np.mean(en ** 2)):.4f} ppm; bias new {en.mean():+.4f} ppm")
        cand = (rms_n / rms_t, bias, se)
        if head is None:
            head = cand
        else:
            head = (max(head[0], cand[0]),) + (cand[1:] if abs(cand[1]) / max(cand[2], 1e-12)
                                                > abs(head[1]) / max(head[2], 1e-12) else head[1:])
    dr_t = np.sqrt(np.mean(df.today_district_rms ** 2))
    dr_n = np.sqrt(np.mean(df.new_district_rms ** 2))
    print(f"district-aggregated sensitivity: RMS error today {dr_t:.3e}, new {dr_n:.3e} (ratio "
          f"{dr_n / dr_t:.2f}; mean |reference| {df.ref_district_mean.mean():.3e}) ppm/(umol m-2 s-1)")
    cpu_t, cpu_n = df.today_cpu.sum(), df.new_cpu.sum()
    print(f"HYSPLIT CPU: today {cpu_t:.0f} s, new {cpu_n:.0f} s over {n} receptors "
          f"({cpu_t / n:.1f} vs {cpu_n / n:.1f} s per receptor)")
    return (f"speed-up {cpu_t / cpu_n:.1f}x; rms ratio {head[0]:.2f}; bias {head[1]:.3f} ppm "
            f"(se {head[2]:.3f})")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, default=Path("."),
                    help="directory of a finished default demo run (default: .)")
    ap.add_argument("--month", default="2025-01")
    ap.add_argument("--new", default="near_field_hours=6,far_numpar=25,far_output_minutes=10",
                    help="the cheaper setting: transport keys, key=value,... (default: %(default)s)")
    ap.add_argument("--ref-seeds", type=int, default=5)
    ap.add_argument("--ref-numpar", type=int, default=1000)
    ap.add_argument("--ref-hours", type=int, default=None,
                    help="hours back of the reference runs (default: transport.n_hours)")
    ap.add_argument("--receptors", type=int, default=0, help="use only the first N (0: all)")
    ap.add_argument("--select", default="",
                    help="use only receptors whose id matches this regular expression")
    ap.add_argument("--jobs", type=int, default=2, help="HYSPLIT runs in parallel (default 2)")
    ap.add_argument("--cache", type=Path, default=None,
                    help="cache directory (default: <run>/benchmarks/footprint_cache)")
    ap.add_argument("--only", choices=["today-new", "all"], default="all",
                    help="today-new: skip the reference (cost and tail check only)")
    args = ap.parse_args(argv)

    from gzcarbon.config import load_config

    run = args.run.resolve()
    cfg = load_config({})
    base = {"n_hours": cfg.transport.n_hours, "numpar": cfg.transport.numpar,
            "seed": cfg.transport.seed, "kmixd": cfg.transport.kmixd,
            "smooth_factor": cfg.transport.smooth_factor, "near_field_hours": 0}
    new = parse_setting(args.new)
    args.ref_hours = args.ref_hours or base["n_hours"]
    cache = (args.cache or run / "benchmarks" / "footprint_cache").resolve()
    cache.mkdir(parents=True, exist_ok=True)
    met = {"directory": str(run / "data" / "demo" / args.month / "met"),
           "file_format": "%Y%m%d_gz.arl", "file_tres": "1D"}
    world = load_world(run, args.month)
    grid = world[2].as_dict()
    recs = pick_receptors(run, args.month, base["n_hours"])
    if args.select:
        recs = recs[recs.receptor_id.str.contains(args.select, regex=True)]
    if args.receptors:
        recs = recs.iloc[:args.receptors]
    tasks, index = build_tasks(recs, base, new, args, met, grid, str(cache))
    if args.only == "today-new":
        tasks = [t for t in tasks if "__ref" not in t[0]]
    print(f"{len(recs)} receptors, {len(tasks)} HYSPLIT runs ({args.jobs} at a time); new = {new}; "
          f"reference {args.ref_seeds} x {args.ref_numpar} particles over {args.ref_hours} h; "
          f"load {os.getloadavg()[0]:.1f}", flush=True)
    results, t0 = {}, time.perf_counter()
    with mp.get_context("spawn").Pool(args.jobs) as pool:
        for i, (k, hours, foot, cpu) in enumerate(pool.imap(_task, tasks), 1):
            results[k] = (hours, foot, cpu)
            print(f"[{i}/{len(tasks)}] {k} HYSPLIT CPU {cpu:.1f} s "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
    if args.only == "today-new":
        for r in recs.itertuples():
            index[(r.receptor_id, "reference")] = index[(r.receptor_id, "today")]
    df, tail = summarise(recs, results, index, world, args.ref_hours, base["n_hours"])
    df.to_csv(cache / "footprint_benchmark.csv", index=False)
    print(report(df, tail, args.ref_hours, base["n_hours"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
