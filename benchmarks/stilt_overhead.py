"""Benchmark: HYSPLIT time vs our overhead per receptor (issue 3 target: overhead <= 10 %).

One run of ``transport.stilt_driver.run_site_day`` on a small set of receptors (default 4 at one
site, 24 h back, numpar 100) on the demo met (synthetic ARL on the config ``met`` grid, written
first and not timed). "HYSPLIT time" is what ``stilt.run_trajectories`` takes (the HYSPLIT binary
plus pystilt reading its particle file); "our overhead" is everything else of the site-day job
divided by the number of receptors: the met coverage check, gridding on clock hours, the
left-domain count, the per-receptor cache, stacking and writing the site-day NetCDF. Usage:

    python benchmarks/stilt_overhead.py [--receptors 4] [--numpar 100] [--n-hours 24]
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

from transport.receptors import receptor_id
from transport.stilt_driver import StiltSettings, run_site_day
from gzcarbon.demo.met import write_met_day

ROOT = Path(__file__).resolve().parents[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--receptors", type=int, default=4)
    ap.add_argument("--numpar", type=int, default=100)
    ap.add_argument("--n-hours", type=int, default=24)
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args()
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    wd = Path(args.workdir or tempfile.mkdtemp(prefix="stilt_overhead_"))
    met_dir = wd / "met"
    day = pd.Timestamp("2025-01-02")
    files = []
    t = time.perf_counter()
    for d in (day - pd.Timedelta("1D"), day):
        p = met_dir / f"{d:%Y%m%d}_gz.arl"
        if not p.exists():
            write_met_day(p, d, cfg["met"], seed=cfg["demo"]["seed"])
        files.append(p)
    print(f"met: {len(files)} days on the config met grid ({time.perf_counter() - t:.1f} s, "
          "not timed below)")
    site = {"id": "YXU", "lon": 113.28, "lat": 23.13, "agl": 50.0}  # a Guangzhou urban site
    times = [day + pd.Timedelta(hours=4 + k, minutes=30) for k in range(args.receptors)]
    rec = pd.DataFrame(dict(receptor_id=[receptor_id(site["id"], t, site["agl"]) for t in times],
                            site=site["id"], time=times, lon=site["lon"], lat=site["lat"],
                            agl=site["agl"]))
    settings = StiltSettings(n_hours=args.n_hours, numpar=args.numpar,
                             seed=cfg["transport"]["seed"], kmixd=cfg["transport"]["kmixd"])
    work = wd / f"work_{os.getpid()}"  # fresh cache: every receptor is computed
    t = time.perf_counter()
    s = run_site_day(rec, files, cfg["grid"], settings, wd / "fp" / f"{day:%Y%m%d}.nc", work,
                     check_met=True)
    wall = time.perf_counter() - t
    if s["n_computed"] != len(rec):
        raise SystemExit(f"only {s['n_computed']} of {len(rec)} receptors computed: {s}")
    n = len(rec)
    hys = s["sum_trajectories_s"] / n
    ours = (wall - s["sum_trajectories_s"]) / n
    print(f"load average (1, 5, 15 min) after the run: {os.getloadavg()}")
    print(f"{n} receptors, {args.n_hours} h back, numpar {args.numpar}, grid res "
          f"{cfg['grid']['res']} deg: site-day wall {wall:.1f} s")
    print(f"per receptor: HYSPLIT (run_trajectories) {hys:.2f} s, our overhead {ours:.3f} s "
          f"(gridding {s['mean_footprint_s']:.3f} s of it)")
    print(f"overhead / HYSPLIT = {ours / hys:.3f} ({100 * ours / hys:.1f} %; target <= 10 %); "
          f"left-domain fraction max {s.get('max_left_domain_fraction')}")
    grid_s = s["mean_footprint_s"]  # mostly pystilt's calc_footprint (kernel smoothing)
    print(f"without the footprint gridding (pystilt calc_footprint + our clock-hour shift): "
          f"{ours - grid_s:.3f} s per receptor = {100 * (ours - grid_s) / hys:.1f} % of HYSPLIT")


if __name__ == "__main__":
    main()
