"""Peak memory of the annual flux map for 1, 3 and 12 months of monthly flux products.

Issue 21, item 5: the annual products of many months must be opened lazily and reduced chunk by
chunk, so that their memory does not grow with the number of months. This compares, each case and
method in its own child process,

- ``eager``: every month's ``flux_<month>.nc`` read into memory (``xr.open_dataset(...).load()``),
  concatenated in time, then averaged — what reading the months one after another into one array
  does;
- ``lazy`` (what rule annual_report uses: ``products.annual.annual_flux``): ``xr.open_mfdataset``
  over the months, dask chunks of 24 h x the whole grid, summed chunk by chunk with the synchronous
  scheduler;

on synthetic monthly flux products in the pipeline's layout (``prior_flux`` and ``posterior_flux``,
float32 (time, lat, lon) µmol m-2 s-1 with NetCDF chunks of (24, ny, nx) and zlib, as
``products.flux_netcdf`` writes them; every hour of the month) on the default state grid
(``gzcarbon.config``: 0.01 deg, 120 x 150 cells). January is written with its own fields; the later
months are the same numbers scaled by a month factor (their time axis their own).

Measured per case and method: the child's peak resident memory (``ru_maxrss``, MB) and its growth
over a warm-up that reads one chunk of one file (imports, HDF5; a growth of 0 means the method never
held more than the warm-up did), beside the bytes of the hourly fields themselves. The two methods'
annual means are compared (max relative difference). Prints, per case, the ratio of the peaks lazy /
eager and, last, lazy(12 months) / lazy(1 month).

    python benchmarks/annual_memory.py [--months 1 3 12] [--workdir /tmp/annual_memory]
"""

import argparse
import multiprocessing as mp
import queue
import resource
import sys
import time
from pathlib import Path

# benchmarks/inversion.py would shadow the package `inversion` that products.annual imports
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import xarray as xr  # noqa: E402

from gzcarbon.config import load_config  # noqa: E402
from gzcarbon.grid import Grid  # noqa: E402

MB = 2**20
VARS = ("prior_flux", "posterior_flux")


def month_file(path: Path, month: pd.Period, base: dict, factor: float) -> None:
    times = pd.date_range(month.start_time, month.end_time.floor("h"), freq="h")
    n = len(times)
    ds = xr.Dataset(coords={"time": times, "lat": base["lat"], "lon": base["lon"]})
    for v in VARS:
        field = base[v][np.arange(n) % base[v].shape[0]] * np.float32(factor)
        ds[v] = (("time", "lat", "lon"), field, {"units": "umol m-2 s-1"})
    enc = {v: {"zlib": True, "complevel": 1, "chunksizes": (24, field.shape[1], field.shape[2])} for v in VARS}
    enc["time"] = {"units": "hours since 2000-01-01 00:00:00", "dtype": "int64"}
    ds.to_netcdf(path, encoding=enc)


def make_files(workdir: Path, n_months: int, g: Grid) -> list[Path]:
    workdir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    yy, xx = np.meshgrid(np.linspace(0, 1, g.ny), np.linspace(0, 1, g.nx), indexing="ij")
    city = 8.0 * np.exp(-((yy - 0.5) ** 2 + (xx - 0.45) ** 2) / 0.02)
    hours = np.arange(24 * 31)
    diurnal = 1.0 + 0.4 * np.sin(2 * np.pi * (hours - 6) / 24)
    prior = (diurnal[:, None, None] * city[None] + 0.05).astype(np.float32)
    post = (prior * (1.0 + 0.05 * rng.standard_normal(prior.shape))).astype(np.float32)
    base = {"lat": g.lat, "lon": g.lon, "prior_flux": prior, "posterior_flux": post}
    files = []
    for k in range(n_months):
        month = pd.Period(f"2025-{k + 1:02d}", "M")
        p = workdir / f"flux_{month}.nc"
        if not p.exists():
            month_file(p, month, base, 1.0 + 0.05 * k)
        files.append(p)
    return files


def _eager(files):
    parts = []
    for f in files:
        with xr.open_dataset(f) as ds:
            parts.append(ds[list(VARS)].load())
    allm = xr.concat(parts, dim="time")
    del parts
    return {v: allm[v].astype("float64").mean("time").values for v in VARS}, int(allm.sizes["time"])


def _lazy(files):
    from products.annual import annual_flux

    ds = annual_flux(files)
    return {v: ds[f"{v}_mean"].values for v in VARS}, int(ds["n_hours"])


def _child(method, files, q):
    with xr.open_dataset(files[0], chunks={"time": 24}) as ds:  # warm-up: imports, HDF5, one chunk
        float(ds["prior_flux"].isel(time=slice(0, 24)).mean().compute())
    import dask  # noqa: F401

    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t = time.perf_counter()
    means, n = (_eager if method == "eager" else _lazy)(files)
    wall = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    q.put((peak - base, peak, wall, n, means))


def run(method, files):
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(method, [str(f) for f in files], q))
    p.start()
    while True:
        try:
            out = q.get(timeout=5)
            break
        except queue.Empty:
            if not p.is_alive():
                raise SystemExit(f"{method} child failed (exit code {p.exitcode}); its error is above")
    p.join()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--months", type=int, nargs="+", default=[1, 3, 12])
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/annual_memory"))
    args = ap.parse_args()
    cfg = load_config({})
    g = Grid.from_config(cfg.grid.model_dump())
    t = time.perf_counter()
    files = make_files(args.workdir, max(args.months), g)
    print(f"{len(files)} monthly flux files in {args.workdir} ({time.perf_counter() - t:.0f} s to write); "
          f"grid {g.ny} x {g.nx}")
    print("| months | hours | hourly fields MB | eager: peak RSS MB (growth) | lazy: peak RSS MB (growth) |"
          " ratio lazy / eager (peak RSS) | max rel. difference |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    lazy_peak = {}
    for n in args.months:
        e_mb, e_peak, e_s, hours, e_means = run("eager", files[:n])
        l_mb, l_peak, l_s, hours_l, l_means = run("lazy", files[:n])
        assert hours == hours_l
        diff = max(float(np.max(np.abs(l_means[v] - e_means[v]) / np.maximum(np.abs(e_means[v]), 1e-30)))
                   for v in VARS)
        fields_mb = hours * g.ny * g.nx * 4 * len(VARS) / MB
        lazy_peak[n] = l_peak
        print(f"| {n} | {hours} | {fields_mb:.0f} | {e_peak:.0f} ({e_mb:+.0f}) | {l_peak:.0f} ({l_mb:+.0f}) |"
              f" {l_peak / e_peak:.3f} | {diff:.1e} |  (wall eager {e_s:.1f} s, lazy {l_s:.1f} s)", flush=True)
    lo, hi = min(args.months), max(args.months)
    print(f"lazy peak RSS {hi} months / {lo} month(s): {lazy_peak[hi]:.0f} / {lazy_peak[lo]:.0f} MB, "
          f"ratio {lazy_peak[hi] / lazy_peak[lo]:.2f}")


if __name__ == "__main__":
    main()
