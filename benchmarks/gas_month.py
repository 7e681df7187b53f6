"""Cost of each gas's inversion on a month (issue 20 item 5), without a month of HYSPLIT.

From a finished run with several gases (e.g. the default demo run with
``--config 'species=[co2,ch4,co]'``), a synthetic month is made by repeating the run's period in
time (the 2 demo days 15.5 times for 31 days): the Jacobian's rows are copied with their columns
shifted by the period's hours (`hour * n_cells + cell`), the receptors and every gas's selected
observations shifted by the same hours, and every time-dependent field of each gas's ``prior.nc``
(the CO2 sectors, biosphere and outer cells; the CH4 and CO sectors) continued periodically. Each
gas's inversion is then solved on these files exactly as rule ``inversion`` / ``inversion_gas``
does (`inversion.run.load_inputs` and `inversion.run.invert`, the gas's settings of ``gases.<gas>``
over the run's ``inversion`` section; no demo truth), each in its own child process, one after the
other. Printed per gas: observations, state size, CPU seconds of the child (load and solve),
wall seconds of the solve, peak resident memory, and the ratio to CO2. Usage:

    python benchmarks/gas_month.py RUN_DIR [--days 31] [--gases co2 ch4 co] [--month 2025-01]

The month's numbers are those of the repeated period (the same footprints every two days), so its
cost per observation and state element is the real pipeline's, not its science.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _period_hours(selected_paths, jac_hours):
    """The run's period (first hour, number of hours): whole UTC days of the observations."""
    import pandas as pd

    t = pd.concat([pd.to_datetime(pd.read_csv(p)["time"], utc=True).dt.tz_localize(None)
                   for p in selected_paths])
    start = t.min().floor("D")
    n_days = int((t.max().floor("D") - start) / pd.Timedelta("1D")) + 1
    if start < jac_hours[0]:
        raise SystemExit(f"observations start {start} before the Jacobian's hours {jac_hours[0]}")
    return start, 24 * n_days


def _config_file(name) -> Path:
    """A file of the run's config: relative to the repository, or (a run made from a copy of the
    repository that is gone) the file of the same name in this repository's config/ (said)."""
    p = Path(name)
    p = p if p.is_absolute() else ROOT / p
    if not p.exists() and (ROOT / "config" / p.name).exists():
        print(f"{p} is gone: using {ROOT / 'config' / p.name}")
        p = ROOT / "config" / p.name
    return p


def tile_jacobian(src: Path, dst: Path, copies: int, period_h: int):
    import numpy as np
    import pandas as pd
    import scipy.sparse as sp

    from transport.jacobian import load_jacobian, save_jacobian
    from transport.receptors import receptor_id

    jac = load_jacobian(src)
    nc = jac.nested.n_cells
    n_h = len(jac.hours)
    hours = pd.date_range(jac.hours[0], periods=n_h + period_h * (copies - 1), freq="h")
    coo = jac.H.tocoo()
    rows, cols, vals, recs = [], [], [], []
    for k in range(copies):
        rows.append(coo.row + k * jac.H.shape[0])
        cols.append(coo.col + k * period_h * nc)
        vals.append(coo.data)
        r = jac.receptors.copy()
        r["time"] = pd.to_datetime(r["time"]) + pd.Timedelta(hours=period_h * k)
        r["receptor_id"] = [receptor_id(s, t, a) for s, t, a in zip(r["site"], r["time"], r["agl"])]
        recs.append(r)
    H = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                      shape=(jac.H.shape[0] * copies, len(hours) * nc))
    rec = pd.concat(recs, ignore_index=True)
    save_jacobian(dst, H, rec, hours, jac.grid, np.tile(jac.outside, copies),
                  np.tile(jac.missing, copies), np.tile(jac.left_domain_fraction, copies),
                  {"enabled": True, **jac.outer_grid} if jac.outer_grid else None)
    return jac.hours, hours


def tile_prior(src: Path, dst: Path, old_hours, new_hours, period_h: int):
    """Every variable with a ``time`` dimension continued periodically (an hour past the run's last
    one takes the value of the hour a whole number of periods earlier)."""
    import numpy as np
    import pandas as pd
    import xarray as xr

    with xr.open_dataset(src) as ds:
        ds = ds.load()
    t = pd.DatetimeIndex(ds["time"].values)
    last = old_hours[-1]
    back = np.ceil(np.maximum(0, (new_hours - last) / pd.Timedelta(hours=1)) / period_h).astype(int)
    src_t = new_hours - pd.to_timedelta(back * period_h, unit="h")
    idx = t.get_indexer(src_t)
    if (idx < 0).any():
        raise SystemExit(f"{src}: hours {src_t[idx < 0][:3]} not in its time axis")
    out = ds.isel(time=idx).assign_coords(time=new_hours.values)
    out.to_netcdf(dst)


def tile_selected(src: Path, dst: Path, copies: int, period_h: int):
    import pandas as pd

    df = pd.read_csv(src)
    t = pd.to_datetime(df["time"], utc=True)
    parts = []
    for k in range(copies):
        d = df.copy()
        d["time"] = (t + pd.Timedelta(hours=period_h * k)).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        parts.append(d)
    pd.concat(parts, ignore_index=True).to_csv(dst, index=False)


def _child(gas: str, files: dict, settings: dict, queue) -> None:
    import resource as _r

    from inversion.run import invert, load_inputs

    c0 = time.process_time()
    inputs = load_inputs(files["jacobian"], files["selected"], files["prior"], files["districts"],
                         None, settings["inversion"], gas=gas,
                         neighbours_path=files.get("neighbours"))
    t = time.perf_counter()
    out = invert(inputs, settings["inversion"], settings["start"], settings["end"],
                 utc_offset_hours=settings["utc_offset"])
    solve_s = time.perf_counter() - t
    d = out.diagnostics
    queue.put({"gas": gas, "n_obs": int(d["n_obs"]), "n_state": int(d["n_state"]),
               "cpu_s": time.process_time() - c0, "solve_s": solve_s,
               "rss_mb": _r.getrusage(_r.RUSAGE_SELF).ru_maxrss / 1024.0,
               "outer": inputs.outer is not None})


def main(argv=None) -> int:
    import pandas as pd

    from gzcarbon.cli.osse import load_settings, run_config_file

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--month", default="2025-01")
    ap.add_argument("--days", type=int, default=31)
    ap.add_argument("--gases", nargs="+", default=["co2", "ch4", "co"])
    ap.add_argument("--keep", type=Path, default=None, help="write the month's files here (kept)")
    args = ap.parse_args(argv)
    R = args.run_dir / "results" / args.month
    cfg, _ = load_settings(run_config_file(args.run_dir, args.month), [])
    sub = {g: (R if g == "co2" else R / g) for g in args.gases}
    for g, d in sub.items():
        for f in ("prior.nc", "obs/selected.csv"):
            if not (d / f).exists():
                raise SystemExit(f"{d / f} missing: make the run with {g} in species first")
    from transport.jacobian import load_jacobian

    jac_hours = pd.DatetimeIndex(load_jacobian(R / "jacobian_hourly.npz").hours)
    start, period_h = _period_hours([sub[g] / "obs/selected.csv" for g in args.gases], jac_hours)
    copies = -(-args.days * 24 // period_h)
    work = args.keep or Path(tempfile.mkdtemp(prefix="gas_month_"))
    work.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    old_hours, new_hours = tile_jacobian(R / "jacobian_hourly.npz", work / "jacobian_hourly.npz",
                                         copies, period_h)
    districts = _config_file(cfg.districts_file)
    neighbours = _config_file(cfg.neighbours_file) if cfg.neighbours_file else None
    files = {}
    for g in args.gases:
        (work / g).mkdir(exist_ok=True)
        tile_prior(sub[g] / "prior.nc", work / g / "prior.nc", old_hours, new_hours, period_h)
        tile_selected(sub[g] / "obs/selected.csv", work / g / "selected.csv", copies, period_h)
        files[g] = {"jacobian": work / "jacobian_hourly.npz", "prior": work / g / "prior.nc",
                    "selected": work / g / "selected.csv", "districts": districts,
                    "neighbours": neighbours}
    print(f"synthetic month: the run's {period_h} h repeated {copies} times = {copies * period_h // 24} "
          f"days, {len(new_hours)} hours of footprints; files made in {time.perf_counter() - t:.0f} s "
          f"({work})")
    end = start + pd.Timedelta(hours=period_h * copies)
    rows = []
    ctx = mp.get_context("spawn")
    for g in args.gases:
        inv = cfg.inversion.model_dump()
        if g != "co2":
            gs = getattr(cfg.gases, g)
            inv.update(prior_rel_sigma=gs.prior_rel_sigma, prior_floor_sigma=gs.prior_floor_sigma,
                       obs_sigma_ppm=gs.obs_sigma_ppb, bg_sigma_ppm=gs.bg_sigma_ppb)
        q = ctx.Queue()
        p = ctx.Process(target=_child, args=(g, files[g], {"inversion": inv, "start": start, "end": end,
                                                          "utc_offset": cfg.stations.utc_offset_hours}, q))
        p.start()
        res = q.get()
        p.join()
        rows.append(res)
        print(res, flush=True)
    ref = next((r for r in rows if r["gas"] == "co2"), rows[0])
    print(f"\nload average (1, 5, 15 min) at the end: {tuple(round(x, 1) for x in __import__('os').getloadavg())}")
    print(f"{'gas':<5} {'obs':>6} {'state':>10} {'outer cells':>11} {'CPU s':>8} {'x CO2':>6} "
          f"{'solve wall s':>12} {'peak RSS MB':>11} {'x CO2':>6}")
    for r in rows:
        print(f"{r['gas']:<5} {r['n_obs']:>6} {r['n_state']:>10} {str(r['outer']):>11} {r['cpu_s']:>8.1f} "
              f"{r['cpu_s'] / ref['cpu_s']:>6.2f} {r['solve_s']:>12.1f} {r['rss_mb']:>11.0f} "
              f"{r['rss_mb'] / ref['rss_mb']:>6.2f}")
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
