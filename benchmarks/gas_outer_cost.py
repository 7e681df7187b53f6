"""What the outer domain adds to a CH4 or CO inversion (issue 19): the gas's inversion of a finished
nested run solved twice, each in its own child process, as rule ``inversion_gas`` does it
(`inversion.run.run_inversion`, the gas's ``gases.<gas>`` settings over the ``inversion`` section):
(a) with the run's ``<gas>/prior.nc`` (``flux_outer``: the outer cells in the state) and (b) with a copy
of it without ``flux_outer`` (the Jacobian's inner columns only, the behaviour before the gases had
outer cells). Printed per gas: CPU seconds (user + sys of the child, load and solve), peak resident
memory, the state size, and the ratio nested / inner-only. CPU seconds stay valid on a loaded
machine; wall seconds do not. Usage:

    python benchmarks/gas_outer_cost.py RUN_DIR [--gases ch4 co] [--month 2025-01]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _inversion_cfg(gas: str) -> dict:
    from gzcarbon.config import load_config

    c = load_config({}).model_dump()
    g = c["gases"][gas]
    inv = dict(c["inversion"])
    inv.update(prior_rel_sigma=g["prior_rel_sigma"], prior_floor_sigma=g["prior_floor_sigma"],
               obs_sigma_ppm=g["obs_sigma_ppb"], bg_sigma_ppm=g["bg_sigma_ppb"], outer_rel_sigma=g["outer_rel_sigma"],
               outer_floor_sigma=g["outer_floor_sigma"], outer_bio_rel_sigma=0.0)
    return inv


def _child(run: str, month: str, gas: str, prior: str, out: str, q) -> None:
    import pandas as pd

    from inversion.run import run_inversion

    res = Path(run) / "results" / month
    sel = pd.read_csv(res / gas / "obs" / "selected.csv")
    days = sorted(pd.to_datetime(sel["time"], utc=True).dt.tz_localize(None).dt.normalize().unique())
    o = Path(out)
    r = run_inversion(res / "jacobian_hourly.npz", res / gas / "obs" / "selected.csv", prior,
                      ROOT / "config" / "districts.geojson", o / "p.nc", o / "d.csv", o / "m.csv", o / "g.json",
                      inversion_cfg=_inversion_cfg(gas), period_start=str(days[0].date()),
                      period_end=str((days[-1] + pd.Timedelta(days=1)).date()), gas=gas,
                      out_outer=(o / "outer.csv") if "flux_outer" in _vars(prior) else None)
    ru = resource.getrusage(resource.RUSAGE_SELF)
    q.put({"cpu": ru.ru_utime + ru.ru_stime, "rss_mb": ru.ru_maxrss / 1024.0, "n_state": int(r.problem.H.shape[1])})


def _vars(path) -> list:
    import xarray as xr

    with xr.open_dataset(path) as ds:
        return list(ds.data_vars)


def measure(run: Path, month: str, gas: str, prior: Path) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    with tempfile.TemporaryDirectory(prefix="gas_outer_") as out:
        p = ctx.Process(target=_child, args=(str(run), month, gas, str(prior), out, q))
        p.start()
        r = q.get()
        p.join()
    return r


def main(argv=None) -> None:
    import xarray as xr

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--gases", nargs="+", default=["ch4", "co"])
    ap.add_argument("--month", default="2025-01")
    a = ap.parse_args(argv)
    print("| gas | state (nested / inner) | CPU s nested | CPU s inner only | × | peak MB nested | peak MB inner | × |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for gas in a.gases:
        prior = a.run / "results" / a.month / gas / "prior.nc"
        with tempfile.TemporaryDirectory(prefix="gas_inner_") as tmp:
            inner = Path(tmp) / "prior_inner.nc"
            with xr.open_dataset(prior) as ds:
                ds.drop_vars([v for v in ("flux_outer", "outer_cell_area") if v in ds]).load().to_netcdf(inner)
            n = measure(a.run, a.month, gas, prior)
            i = measure(a.run, a.month, gas, inner)
        print(f"| {gas} | {n['n_state']:,} / {i['n_state']:,} | {n['cpu']:.1f} | {i['cpu']:.1f} | "
              f"{n['cpu'] / i['cpu']:.2f} | {n['rss_mb']:.0f} | {i['rss_mb']:.0f} | {n['rss_mb'] / i['rss_mb']:.2f} |")


if __name__ == "__main__":
    main()
