"""Benchmark: the 10-m wind and PBL height at the sites (stations.background.wind_at_sites), which
every select_obs job (CO2 and each other gas of config species) reads from the run's ARL files.

Compares the CPU time of the current function with the previous way (interpolating the lazily
opened ARL file once per site, which re-read and deep-copied it) on the same files and sites, checks
that both give the same values, and prints the ratio. Usage (on a finished run, e.g. the default):

    python benchmarks/wind_at_sites.py --run . [--repeat 3]
"""

import argparse
import glob
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path[0] = str(ROOT)  # the package `stations`, not benchmarks/stations.py

from stations.background import wind_at_sites  # noqa: E402


def previous(met_files, points):
    """The per-site lazy interpolation of the code before this benchmark (values only)."""
    import arlmet

    parts = {k: [] for k in points}
    for f in sorted(str(p) for p in met_files):
        ds = arlmet.open_dataset(f)
        names = [v for v in ("U10M", "V10M", "PBLH") if v in ds]
        for k, (x, y) in points.items():
            p = ds[names].interp(lon=x, lat=y).load()
            parts[k].append(pd.DataFrame({n: p[n].values.astype(float) for n in names},
                                         index=pd.DatetimeIndex(p["time"].values).as_unit("ns")))
        ds.close()
    return {k: pd.concat(v) for k, v in parts.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", default=".", help="a run directory with data/demo/<month>/met/*.arl")
    ap.add_argument("--month", default="2025-01")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    met = sorted(glob.glob(str(Path(args.run) / "data" / "demo" / args.month / "met" / "*.arl")))
    if not met:
        raise SystemExit(f"no ARL files under {args.run}/data/demo/{args.month}/met")
    sites = yaml.safe_load((ROOT / "config" / "stations.yaml").read_text())["sites"]
    points = {s["id"]: (float(s["lon"]), float(s["lat"])) for s in sites}
    times = {}
    for name, fn in (("previous", previous), ("current", wind_at_sites)):
        t = time.process_time()
        for _ in range(args.repeat):
            out = fn(met, points)
        times[name] = (time.process_time() - t) / args.repeat
        times[name + "_out"] = out
    old, new = times["previous_out"], times["current_out"]
    for k in points:
        o = old[k][~old[k].index.duplicated(keep="first")].sort_index()
        for a, b in (("U10M", "u10"), ("V10M", "v10"), ("PBLH", "pblh")):
            if a in o and not np.array_equal(o[a].to_numpy(), new[k][b].to_numpy(), equal_nan=True):
                raise SystemExit(f"site {k}: {b} differs between the two ways")
    print(f"{len(met)} ARL files, {len(points)} sites: the same values; CPU per call "
          f"previous {times['previous']:.2f} s, current {times['current']:.2f} s, "
          f"ratio {times['previous'] / times['current']:.1f}x")


if __name__ == "__main__":
    main()
