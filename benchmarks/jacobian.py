"""Benchmark Jacobian assembly: N receptors x 24 h on the 0.01° Guangzhou grid, STILT-like sparsity.

Writes synthetic site-day footprint files (a plume of particles drifting upwind, widening with
age, ~1-3 % of cells non-zero per hour), then, each in its own child process (so peak memory,
ru_maxrss, is measured per method):

- ours: ``transport.jacobian.assemble`` (one site-day dense at a time, numba row extraction, CSR
  built directly from per-row pieces);
- reference: the plain scipy way: the same dense site-day arrays, ``scipy.sparse.coo_matrix`` of
  every receptor's footprint shifted to its state columns, ``sparse.vstack`` and ``tocsr``.

Both H are compared (nnz, row sums, H @ v for a random v) and the times and memory printed as
ratios. Usage:

    python benchmarks/jacobian.py [--receptors 4500] [--per-file 24] [--workdir /tmp/jacbench]
        [--no-reference]
"""

import argparse
import multiprocessing as mp
import os
import resource
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
import xarray as xr

from gzcarbon.grid import Grid
from transport.jacobian import _state_indices, assemble, hour_axis
from transport.stilt_driver import foot_encoding

GRID = dict(lon_min=112.9, lon_max=114.1, lat_min=22.5, lat_max=24.0, res=0.01)


def synthetic_site_day(path, ids, releases, grid, rng, n_hours=24):
    g = Grid.from_config(grid)
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
                    coords={"receptor": np.array(ids), "time": hours, "lat": g.lat, "lon": g.lon})
    ds.to_netcdf(path, encoding={"foot": {**foot_encoding(), "chunksizes": (1, len(hours), g.ny, g.nx)}})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--receptors", type=int, default=4500)
    ap.add_argument("--per-file", type=int, default=24)
    ap.add_argument("--workdir", default="/tmp/jacbench")
    ap.add_argument("--no-reference", action="store_true", help="time ours only")
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
    t0, t1 = start - pd.Timedelta("1D"), start + pd.Timedelta(days=n_days)
    print(f"load average (1, 5, 15 min): {os.getloadavg()}")
    ctx = mp.get_context("fork")
    results = {}
    for name in (["ours"] + ([] if args.no_reference else ["reference"])):
        q = ctx.Queue()
        p = ctx.Process(target=_child, args=(name, files, rec, t0, t1, q))
        p.start()
        results[name] = q.get()
        p.join()
        r = results[name]
        print(f"{name:9s}: {len(rec)} receptors, H {r['shape']}, nnz {r['nnz']:,} "
              f"({r['mb']:.0f} MB), {r['seconds']:.1f} s, peak RSS {r['rss_mb']:.0f} MB")
    if "reference" in results:
        a, b = results["ours"], results["reference"]
        same = (a["nnz"] == b["nnz"] and np.allclose(a["rowsum"], b["rowsum"], rtol=1e-12)
                and np.allclose(a["Hv"], b["Hv"], rtol=1e-12))
        print(f"same H as the reference: {same} (nnz {a['nnz']:,} vs {b['nnz']:,}, max rel diff "
              f"of H@v {np.max(np.abs(a['Hv'] - b['Hv']) / np.maximum(np.abs(b['Hv']), 1e-300)):.1e})")
        print(f"ours / reference: time {a['seconds'] / b['seconds']:.2f}x "
              f"({b['seconds'] / a['seconds']:.1f}x faster), peak RSS "
              f"{a['rss_mb'] / b['rss_mb']:.2f}x; targets: < 60 s and < 4 GB -> "
              f"{'met' if a['seconds'] < 60 and a['rss_mb'] < 4096 else 'MISSED'}")
    print(f"load average (1, 5, 15 min): {os.getloadavg()}")


def reference_assemble(files, rec, grid, hour_start, hour_end):
    """The plain way: COO per receptor from the dense footprint, vstack, tocsr."""
    g = Grid.from_config(grid)
    hours = hour_axis(hour_start, hour_end)
    row_of = {r: i for i, r in enumerate(rec["receptor_id"].astype(str))}
    n_cols = len(hours) * g.n_cells
    blocks = [None] * len(rec)
    for path in files:
        with xr.open_dataset(path) as ds:
            rids = [str(r) for r in ds["receptor"].values]
            foot = ds["foot"].transpose("receptor", "time", "lat", "lon").values
            times = pd.to_datetime(ds["time"].values)
            kt, iy, ix = _state_indices(times, ds["lat"].values, ds["lon"].values, g, hours)
        for j, rid in enumerate(rids):
            # all footprint hours on the axis (the synthetic files are on the state grid)
            ok = kt >= 0
            c = sp.coo_matrix(foot[j][ok].reshape(1, -1).astype(np.float64))
            cols = kt[ok][c.col // g.n_cells] * g.n_cells + c.col % g.n_cells
            blocks[row_of[rid]] = sp.coo_matrix((c.data, (np.zeros_like(cols), cols)),
                                                shape=(1, n_cols))
    return sp.vstack(blocks, format="csr")


def _child(name, files, rec, t0, t1, q):
    t = time.perf_counter()
    if name == "ours":
        H = assemble(files, rec, GRID, t0, t1).H
    else:
        H = reference_assemble(files, rec, GRID, t0, t1)
    dt = time.perf_counter() - t
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    v = np.random.default_rng(1).random(H.shape[1])
    q.put(dict(seconds=dt, rss_mb=rss, nnz=int(H.nnz), shape=H.shape,
               mb=(H.data.nbytes + H.indices.nbytes + H.indptr.nbytes) / 1e6,
               rowsum=np.asarray(H.sum(axis=1)).ravel(), Hv=H @ v))


if __name__ == "__main__":
    main()
