"""What the outer grid adds to the Jacobian (issue 19 item 5): time and memory of rule jacobian's
assembly (``transport.jacobian.assemble_streamed``) of the same site-day files with and without the
outer columns, each in its own child process after a warm-up.

    python benchmarks/nested_jacobian.py [--months 1] [--workdir /tmp/nested_jacobian] [--files DIR]

Files: by default a month of synthetic site-day files in the nested layout (6 sites x 4 afternoon
receptors a day, 24 h back, the default nested grid): the inner part is the plume of
benchmarks/jacobian_memory.py (~1,500 non-zero cells per receptor), the outer part a plume on the
0.3-degree cells drifting upwind four times faster and widening with age (~500 non-zero outer
cell-hours per receptor). ``--files DIR``: the site-day files of a
real run instead (``{R}/footprints``, with ``receptors.csv`` one level up), e.g. the default demo
run's. Prints per case: nnz, CSR MB, seconds and the growth of the peak RSS over the warm-up's,
and the last line ``outer columns: time ratio T.TT, nnz ratio N.NN, CSR a -> b MB, peak RSS
growth c -> d MB``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

MB = 2**20


def nested_site_day(path, site_k, day, ng, rng, sites, release_hours, n_back):
    """One site-day file of plume footprints on the nested grid; returns its receptor rows."""
    from transport.stilt_driver import combine, foot_encoding

    g, og = ng.inner, ng.outer
    done, rows = [], []
    x0, y0 = 20 + 15 * site_k, 30 + 10 * site_k
    for h in release_hours:
        rel = day + pd.Timedelta(hours=h, minutes=30)
        hours = pd.date_range(rel.floor("h") - pd.Timedelta(hours=n_back), rel.floor("h"), freq="h")
        foot = np.zeros((len(hours), g.ny, g.nx), np.float32)
        outer = np.zeros((len(hours),) + og.shape, np.float32)
        dx, dy = rng.uniform(-3, 3, 2)  # the day's wind: drift in 0.01-degree cells per hour of age
        for a in range(n_back + 1):
            k = len(hours) - 1 - a
            cx, cy, w = int(x0 + dx * a), int(y0 + dy * a), 1 + a // 3
            ys, xs = slice(max(cy - w, 0), max(min(cy + w + 1, g.ny), 0)), \
                slice(max(cx - w, 0), max(min(cx + w + 1, g.nx), 0))
            block = foot[k, ys, xs]
            if block.size:
                block[...] = rng.random(block.shape) * (rng.random(block.shape) < 0.6) * 1e-3 / w
            # the far plume on the outer cells, drifting 4 x faster (~13 km/h: the particles that
            # leave the inner box)
            lon = g.lon_min + (x0 + 4 * dx * a + 0.5) * g.res
            lat = g.lat_min + (y0 + 4 * dy * a + 0.5) * g.res
            oy, ox, _ = og.locate(lon, lat)
            wo = 1 + a // 8
            ys, xs = slice(max(int(oy) - wo, 0), max(min(int(oy) + wo + 1, og.ny), 0)), \
                slice(max(int(ox) - wo, 0), max(min(int(ox) + wo + 1, og.nx), 0))
            block = outer[k, ys, xs]
            if block.size:
                block[...] = rng.random(block.shape) * (rng.random(block.shape) < 0.8) * 1e-2 / wo
        outer[:, ~ng.outer_mask] = 0.0
        rid = f"{sites[site_k]}_{rel:%Y%m%d%H%M}_50"
        total = foot.sum(axis=(1, 2), dtype=np.float64) + outer.sum(axis=(1, 2), dtype=np.float64)
        done.append(xr.Dataset(
            {"foot": (("time", "lat", "lon"), foot), "foot_total": (("time",), total),
             "foot_outer": (("time", "olat", "olon"), outer), "foot_outside": (("time",), 0 * total)},
            coords={"time": hours, "lat": g.lat, "lon": g.lon, "olat": og.lat, "olon": og.lon},
            attrs={"receptor_id": rid, "release_time": rel.isoformat(), "left_domain_fraction": 0.0}))
        rows.append(dict(receptor_id=rid, site=sites[site_k], time=rel, lon=113.3, lat=23.1, agl=50.0))
    ds = combine(done, ng)
    enc = {"foot": {**foot_encoding(), "chunksizes": (1, ds.sizes["time"], g.ny, g.nx)},
           "foot_total": {"dtype": "float64"}, "foot_outer": foot_encoding()}
    tmp = path.with_name("." + path.name)
    ds.to_netcdf(tmp, encoding=enc)
    tmp.rename(path)
    return rows


def _child(files, rec, grid, outer, t0, t1, spill, q):
    import logging

    from transport.jacobian import assemble_streamed

    logging.getLogger("transport").setLevel(logging.ERROR)
    assemble_streamed(files[:1], rec, grid, t0, t1, spill_dir=spill, outer_grid=outer)  # warm-up
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t = time.perf_counter()
    res = assemble_streamed(files, rec, grid, t0, t1, spill_dir=spill, outer_grid=outer)
    sec = time.perf_counter() - t
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    H = res.H
    q.put(dict(seconds=sec, rss_growth_mb=rss - base, nnz=H.nnz, cols=H.shape[1],
               csr_mb=(H.data.nbytes + H.indices.nbytes + H.indptr.nbytes) / MB,
               row_sum=float(H.sum() + res.outside.sum())))


def run(*args):
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(*args, q))
    p.start()
    out = q.get()
    p.join()
    return out


def main() -> None:
    from gzcarbon.config import load_config
    from gzcarbon.grid import NestedGrid
    from jacobian_memory import N_BACK, RELEASE_HOURS_UTC, SITES

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--months", type=int, default=1)
    ap.add_argument("--workdir", default="/tmp/nested_jacobian")
    ap.add_argument("--files", default=None, help="site-day files of a real run ({R}/footprints)")
    args = ap.parse_args()
    cfg = load_config({})
    grid, outer = cfg.grid.model_dump(), cfg.outer_grid.model_dump()
    ng = NestedGrid.from_config(cfg)
    if args.files:
        from transport.receptors import read_receptors

        files = sorted(p for p in Path(args.files).glob("*/*.nc"))
        rec = read_receptors(Path(args.files).parent / "receptors.csv")
        times = pd.to_datetime(rec["time"])
        t0 = (times.min().floor("D") - pd.Timedelta(days=1)).isoformat()
        t1 = (times.max().floor("D") + pd.Timedelta(days=1)).isoformat()
    else:
        wd = Path(args.workdir)
        start = pd.Timestamp("2025-01-01")
        days = pd.date_range(start, start + pd.DateOffset(months=args.months), freq="D", inclusive="left")
        rng = np.random.default_rng(19)
        files, rows, t = [], [], time.perf_counter()
        for day in days:
            for k in range(len(SITES)):
                path = wd / SITES[k] / f"{day:%Y%m%d}.nc"
                path.parent.mkdir(parents=True, exist_ok=True)
                rows += nested_site_day(path, k, day, ng, rng, SITES, RELEASE_HOURS_UTC, N_BACK)
                files.append(path)
        rec = pd.DataFrame(rows)
        t0, t1 = (start - pd.Timedelta(days=1)).isoformat(), days[-1] + pd.Timedelta(days=1)
        t1 = t1.isoformat()
        print(f"{len(files)} nested site-day files in {wd} ({time.perf_counter() - t:.0f} s)", flush=True)
    spill = str(Path(args.workdir))
    Path(spill).mkdir(parents=True, exist_ok=True)
    print(f"{ng.describe()}; {len(files)} files, {len(rec)} receptors; load average {os.getloadavg()}")
    res = {}
    for name, o in (("inner only", {**outer, "enabled": False}), ("nested", outer)):
        r = run(files, rec, grid, o, t0, t1, spill)
        res[name] = r
        print(f"{name}: columns {r['cols']:,}, nnz {r['nnz']:,}, CSR {r['csr_mb']:.1f} MB, "
              f"{r['seconds']:.1f} s, peak RSS growth {r['rss_growth_mb']:.0f} MB, "
              f"H.sum + outside {r['row_sum']:.6g}", flush=True)
    a, b = res["inner only"], res["nested"]
    print(f"load average {os.getloadavg()}")
    print(f"outer columns: time ratio {b['seconds'] / a['seconds']:.2f}, nnz ratio "
          f"{b['nnz'] / a['nnz']:.2f}, CSR {a['csr_mb']:.1f} -> {b['csr_mb']:.1f} MB, peak RSS growth "
          f"{a['rss_growth_mb']:.0f} -> {b['rss_growth_mb']:.0f} MB")


if __name__ == "__main__":
    main()
