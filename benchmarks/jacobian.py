"""Benchmark Jacobian assembly: N receptors x 24 h on the 0.01° Guangzhou grid, STILT-like sparsity.

Writes synthetic site-day footprint files (a plume of particles drifting upwind, widening with
age, ~1-3 % of cells non-zero per hour), then times ``transport.jacobian.assemble`` and reports
peak memory (ru_maxrss). Usage:

    python benchmarks/jacobian.py [--receptors 4500] [--per-file 24] [--workdir /tmp/jacbench]
"""

import argparse
import resource
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from transport.grid import StateGrid
from transport.jacobian import assemble
from transport.stilt_driver import foot_encoding

GRID = dict(lon_min=112.9, lon_max=114.1, lat_min=22.5, lat_max=24.0, res=0.01)


def synthetic_site_day(path, ids, releases, grid, rng, n_hours=24):
    g = StateGrid.from_config(grid)
    t0 = min(releases).floor("h") - pd.Timedelta(hours=n_hours)
    hours = pd.date_range(t0, max(releases).floor("h"), freq="h")
    foot = np.zeros((len(ids), len(hours), g.ny, g.nx), np.float32)
    x0, y0 = rng.integers(20, g.nx - 20), rng.integers(20, g.ny - 20)
    for r, rel in enumerate(releases):
        k0 = hours.get_loc(rel.floor("h"))
        for a in range(n_hours + 1):
            k = k0 - a
            if k < 0:
                break
            cx, cy = x0 + 4 * a, y0 + 3 * a  # drifting north-east (upwind of a NE monsoon)
            w = 1 + a  # plume half-width in cells
            ys = slice(max(cy - w, 0), min(cy + w + 1, g.ny))
            xs = slice(max(cx - w, 0), min(cx + w + 1, g.nx))
            block = foot[r, k, ys, xs]
            if block.size:
                block[...] = rng.random(block.shape) * (rng.random(block.shape) < 0.5) * 1e-3 / w
    ds = xr.Dataset({"foot": (("receptor", "time", "lat", "lon"), foot),
                     "foot_total": (("receptor", "time"), foot.sum((2, 3), dtype=float) * 1.2)},
                    coords={"receptor": np.array(ids), "time": hours, "lat": g.lats, "lon": g.lons})
    ds.to_netcdf(path, encoding={"foot": {**foot_encoding(), "chunksizes": (1, len(hours), g.ny, g.nx)}})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--receptors", type=int, default=4500)
    ap.add_argument("--per-file", type=int, default=24)
    ap.add_argument("--workdir", default="/tmp/jacbench")
    args = ap.parse_args()
    wd = Path(args.workdir)
    wd.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    start = pd.Timestamp("2025-01-01")
    n_files = int(np.ceil(args.receptors / args.per_file))
    rows, files = [], []
    t = time.perf_counter()
    for f in range(n_files):
        day = start + pd.Timedelta(days=f // 6)
        ids, rel = [], []
        for j in range(min(args.per_file, args.receptors - f * args.per_file)):
            r = day + pd.Timedelta(hours=j % 24, minutes=30)
            ids.append(f"S{f % 6}_{r:%Y%m%d%H%M}_{f}")
            rel.append(r)
            rows.append(dict(receptor_id=ids[-1], site=f"S{f % 6}", time=r, lon=113.3, lat=23.1,
                             agl=50.0))
        path = wd / f"sd_{f:04d}.nc"
        if not path.exists():
            synthetic_site_day(path, ids, rel, GRID, rng)
        files.append(path)
    print(f"synthetic files: {n_files} in {time.perf_counter() - t:.1f} s")
    rec = pd.DataFrame(rows)
    n_days = n_files // 6 + 1
    t = time.perf_counter()
    H, outside, missing = assemble(files, rec, GRID, start - pd.Timedelta("1D"),
                                   start + pd.Timedelta(days=n_days))
    dt = time.perf_counter() - t
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"assemble: {len(rec)} receptors, H {H.shape}, nnz {H.nnz:,} "
          f"({H.data.nbytes / 1e6 + H.indices.nbytes / 1e6:.0f} MB), {dt:.1f} s, peak RSS {rss:.0f} MB")


if __name__ == "__main__":
    main()
