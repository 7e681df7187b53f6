"""Peak memory of the Jacobian assembly for 1, 3 and 12 months of site-day footprint files.

Issue 21, item 5: the Jacobian of long periods must be assembled without holding every footprint
at once. This compares, each in its own child process,

- ``assemble``: every receptor's sparse row is kept in memory (int64 columns + float64 values)
  until the CSR is allocated and filled;
- ``assemble_streamed`` (what rule jacobian uses): each site-day file's rows are spilled to a
  temporary directory, the CSR is allocated once and filled file by file;

on synthetic site-day files written in the pipeline's footprint format (per-receptor footprints
stacked by ``transport.stilt_driver.combine``, written with its encoding) for 6 sites, 4 afternoon
receptors per site and day (local 12-15 h, as the default selection), on the default state grid
(``gzcarbon.config``: 0.01 deg, 120 x 150 cells), 24 h back. Each footprint is a plume drifting
upwind and widening with age (~1,500 non-zero cells per receptor; the demo's HYSPLIT footprints have
~2,900). The first 31 days are written with their own plumes, later days are copies of them moved
in time (time units and receptor ids rewritten in place: writing a file takes ~0.5 s, a year has
2,190). The files of the longest case are written once; shorter cases use the first months.

Measured per case and method, after a warm-up on one file (imports, numba compilation): the growth
of the child's peak resident memory (``ru_maxrss``) over the warm-up's, in MB, beside the CSR's own
size (data + indices + indptr); with ``--tracemalloc`` also the ``tracemalloc`` peak of the assembly
(NumPy registers its buffers with it; HDF5's are not traced; 2.5x slower). Both methods' H are
compared (same bytes).

    python benchmarks/jacobian_memory.py [--months 1 3 12] [--workdir /tmp/jacobian_memory] [--tracemalloc]
"""

import argparse
import logging
import multiprocessing as mp
import os
import resource
import shutil
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from gzcarbon.config import load_config
from gzcarbon.grid import Grid
from transport.jacobian import assemble, assemble_streamed
from transport.stilt_driver import combine, foot_encoding

SITES = ("NST", "YXU", "HPU", "PYU", "HDU", "CHU")
RELEASE_HOURS_UTC = (4, 5, 6, 7)  # 12-15 h local (UTC+8), the half hour
N_BACK = 24
MB = 2**20


def receptor_rows(site_k: int, day: pd.Timestamp) -> list[dict]:
    rels = [day + pd.Timedelta(hours=h, minutes=30) for h in RELEASE_HOURS_UTC]
    return [dict(receptor_id=f"{SITES[site_k]}_{r:%Y%m%d%H%M}_50", site=SITES[site_k], time=r,
                 lon=113.3, lat=23.1, agl=50.0) for r in rels]


def site_day_file(path, site_k: int, day: pd.Timestamp, g: Grid, rng) -> list[dict]:
    """One site-day file of plume footprints; returns its receptor rows."""
    done = []
    x0, y0 = 20 + 15 * site_k, 30 + 10 * site_k
    for h in RELEASE_HOURS_UTC:
        rel = day + pd.Timedelta(hours=h, minutes=30)
        hours = pd.date_range(rel.floor("h") - pd.Timedelta(hours=N_BACK), rel.floor("h"), freq="h")
        foot = np.zeros((len(hours), g.ny, g.nx), np.float32)
        dx, dy = rng.uniform(-3, 3, 2)  # the day's wind: drift in cells per hour of age
        for a in range(N_BACK + 1):
            k = len(hours) - 1 - a
            cx, cy, w = int(x0 + dx * a), int(y0 + dy * a), 1 + a // 3
            ys, xs = slice(max(cy - w, 0), max(min(cy + w + 1, g.ny), 0)), \
                slice(max(cx - w, 0), max(min(cx + w + 1, g.nx), 0))
            block = foot[k, ys, xs]
            if block.size:
                block[...] = rng.random(block.shape) * (rng.random(block.shape) < 0.6) * 1e-3 / w
        rid = f"{SITES[site_k]}_{rel:%Y%m%d%H%M}_50"  # as receptor_rows
        done.append(xr.Dataset({"foot": (("time", "lat", "lon"), foot),
                                "foot_total": (("time",), foot.sum(axis=(1, 2), dtype=np.float64) * 1.1)},
                               coords={"time": hours, "lat": g.lat, "lon": g.lon},
                               attrs={"receptor_id": rid, "release_time": rel.isoformat(),
                                      "left_domain_fraction": 0.0}))
    ds = combine(done, g)
    enc = {"foot": {**foot_encoding(), "chunksizes": (1, ds.sizes["time"], g.ny, g.nx)},
           "foot_total": {"dtype": "float64"}}
    tmp = path.with_name("." + path.name)
    ds.to_netcdf(tmp, encoding=enc)
    tmp.rename(path)
    return receptor_rows(site_k, day)


def relabel_copy(src: Path, dst: Path, shift: pd.Timedelta, site_k: int, day: pd.Timestamp) -> list[dict]:
    """``src`` (a site-day written by :func:`site_day_file`) copied to ``dst`` and moved in time by
    ``shift``: the CF time units of ``time`` and ``release_time`` and the receptor ids change, the
    footprints stay (writing every file anew takes ~0.5 s; a year is 2,190 files)."""
    import netCDF4

    tmp = dst.with_name("." + dst.name)
    shutil.copyfile(src, tmp)
    with netCDF4.Dataset(tmp, "r+") as nc:
        for v in ("time", "release_time"):
            what, since = nc[v].units.split(" since ")
            nc[v].units = f"{what} since {pd.Timestamp(since) + shift:%Y-%m-%d %H:%M:%S}"
        rows = receptor_rows(site_k, day)
        nc["receptor"][:] = np.array([r["receptor_id"] for r in rows], dtype=object)
    tmp.rename(dst)
    return rows


def make_files(workdir: Path, days: pd.DatetimeIndex, g: Grid, distinct_days: int):
    """Site-day files of ``days``: the first ``distinct_days`` written with their own plumes, the
    later ones copies of those moved in time (:func:`relabel_copy`)."""
    rng = np.random.default_rng(2025)
    files, rows, t = [], [], time.perf_counter()
    for n, day in enumerate(days):
        for k in range(len(SITES)):
            path = workdir / SITES[k] / f"{day:%Y%m%d}.nc"
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.exists():  # written by an earlier call: the same receptors
                rows += receptor_rows(k, day)
            elif n < distinct_days:
                rows += site_day_file(path, k, day, g, rng)
            else:
                src_day = days[n % distinct_days]
                rows += relabel_copy(workdir / SITES[k] / f"{src_day:%Y%m%d}.nc", path, day - src_day, k, day)
            files.append(path)
    print(f"{len(files)} site-day files in {workdir} ({time.perf_counter() - t:.0f} s)", flush=True)
    return files, pd.DataFrame(rows)


def _child(method, files, rec, grid, t0, t1, spill, traced, q):
    logging.getLogger("transport").setLevel(logging.ERROR)  # the warm-up's 'without footprint' rows
    fn = assemble if method == "assemble" else assemble_streamed
    kw = {} if method == "assemble" else {"spill_dir": spill}
    fn(files[:1], rec, grid, t0, t1, **kw)  # warm-up: imports, numba, netCDF
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if traced:
        tracemalloc.start()
    t = time.perf_counter()
    res = fn(files, rec, grid, t0, t1, **kw)
    sec = time.perf_counter() - t
    peak = tracemalloc.get_traced_memory()[1] / MB if traced else float("nan")
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    H = res.H
    q.put(dict(seconds=sec, traced_mb=peak, rss_growth_mb=rss - base_rss, rss_mb=rss,
               csr_mb=(H.data.nbytes + H.indices.nbytes + H.indptr.nbytes) / MB, nnz=H.nnz,
               digest=[hash(H.data.tobytes()), hash(H.indices.tobytes()), hash(H.indptr.tobytes()),
                       hash(res.outside.tobytes())]))


def run(method, files, rec, grid, t0, t1, spill, traced):
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(method, files, rec, grid, t0, t1, spill, traced, q))
    p.start()
    out = q.get()
    p.join()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--months", type=int, nargs="+", default=[1, 3, 12])
    ap.add_argument("--workdir", default="/tmp/jacobian_memory")
    ap.add_argument("--tracemalloc", action="store_true",
                    help="also trace NumPy's allocations (2.5x slower)")
    ap.add_argument("--distinct-days", type=int, default=31,
                    help="days written with their own plumes; later days are copies moved in time")
    args = ap.parse_args()
    wd = Path(args.workdir)
    wd.mkdir(parents=True, exist_ok=True)
    grid = load_config({}).grid.model_dump()
    g = Grid.from_config(grid)
    start = pd.Timestamp("2025-01-01")
    last = start + pd.DateOffset(months=max(args.months))
    files, rec = make_files(wd, pd.date_range(start, last, freq="D", inclusive="left"), g,
                            args.distinct_days)
    print(f"grid {g.nx} x {g.ny} cells; load average {os.getloadavg()}", flush=True)
    print("months | files | receptors | nnz | CSR MB | assemble: RSS growth MB, traced MB, s | "
          "streamed: RSS growth MB, traced MB, s | RSS growth streamed/assemble | streamed RSS growth "
          "- CSR MB | same bytes", flush=True)
    for m in sorted(args.months):
        end = start + pd.DateOffset(months=m)
        n_files = len(SITES) * (end - start).days
        sub = rec.iloc[:n_files * len(RELEASE_HOURS_UTC)]
        t0, t1 = (start - pd.Timedelta(days=1)).isoformat(), end.isoformat()
        a = run("assemble", files[:n_files], sub, grid, t0, t1, str(wd), args.tracemalloc)
        b = run("streamed", files[:n_files], sub, grid, t0, t1, str(wd), args.tracemalloc)
        print(f"{m} | {n_files} | {len(sub)} | {b['nnz']:,} | {b['csr_mb']:.0f} | "
              f"{a['rss_growth_mb']:.0f}, {a['traced_mb']:.0f}, {a['seconds']:.0f} | "
              f"{b['rss_growth_mb']:.0f}, {b['traced_mb']:.0f}, {b['seconds']:.0f} | "
              f"{b['rss_growth_mb'] / a['rss_growth_mb']:.2f} | {b['rss_growth_mb'] - b['csr_mb']:.0f} | "
              f"{a['digest'] == b['digest']}", flush=True)
    print(f"load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
