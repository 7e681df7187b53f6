"""What the outer cells cost the inversion (issue 19 item 5): the month's inversion of a finished
nested demo run, solved twice from the same files, each in its own child process:

* **nested** — the pipeline's problem: inner 1 km cells + outer cells (config outer_grid), the
  outer ring and neighbour rows, one σ row per outer cell;
* **city only** — the same observations and inner prior with the Jacobian's outer columns dropped
  (the neighbours unmodelled, as before issue 19).

Printed per case: wall time of `inversion.run.invert` (load excluded), the peak resident memory of the
child process (ru_maxrss, load included) and its growth over the loaded inputs, the state size, and
the ratio nested / city only.

    python benchmarks/nested_inversion.py RUN_DIR [--month 2025-01] [--repeat 2]

RUN_DIR holds ``results/<month>/`` and ``data/demo/<month>/`` of a run made with outer_grid enabled
(the default), e.g. the repository after ``snakemake --cores 2``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _child(case: str, run_dir: str, month: str | None, repeat: int, queue) -> None:
    import numpy as np

    from gzcarbon.cli.osse import load_settings, run_config_file
    from inversion.outer import split_columns
    from inversion.run import invert, load_inputs

    run = Path(run_dir)
    config = run_config_file(run, month)
    cfg, inv = load_settings(config, [])
    months = sorted(p.name for p in (run / "results").glob("*") if (p / "jacobian_hourly.npz").exists())
    month = month or months[0]
    R, D = run / "results" / month, run / "data" / "demo" / month
    districts = Path(cfg.districts_file)
    districts = districts if districts.is_absolute() else ROOT / districts
    neighbours = Path(cfg.neighbours_file) if cfg.neighbours_file else None
    if neighbours is not None and not neighbours.is_absolute():
        neighbours = ROOT / neighbours
    inputs = load_inputs(R / "jacobian_hourly.npz", R / "obs" / "selected.csv", R / "prior.nc", districts,
                         D / "truth.nc", inv, truth_outer_path=D / "truth_outer.nc", neighbours_path=neighbours)
    if inputs.outer is None:
        queue.put({"case": case, "error": f"{R}: the Jacobian has no outer cells (a run with outer_grid disabled)"})
        return
    n_outer = inputs.outer.n_outer
    if case == "city only":
        nh = len(inputs.hours)
        inputs.H_hourly = split_columns(inputs.H_hourly, inputs.outer.nested.n_inner, inputs.outer.n_cells, nh)[0]
        inputs.outer = None
        if inputs.prior_sector_signal:
            inputs.prior_sector_signal.pop("outer", None)
    rss_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    hours = inputs.hours
    start = hours[0] + (hours[24] - hours[0])  # the spin-up day is not part of the period
    end = hours[-1] + (hours[1] - hours[0])
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        out = invert(inputs, inv, start, end, utc_offset_hours=float(cfg.stations.utc_offset_hours))
        times.append(time.perf_counter() - t)
    city = out.districts.iloc[-1]
    queue.put({"case": case, "seconds": float(np.min(times)), "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
               "rss_loaded_mb": rss_loaded, "n_state": int(out.result.n_state), "n_obs": int(out.result.n_obs),
               "n_outer": 0 if case == "city only" else n_outer, "solver": out.result.solver,
               "hqht": out.result.hqht, "city_post_kt": float(city.posterior_t) / 1e3,
               "city_sigma_kt": float(city.posterior_sigma_t) / 1e3, "timings": out.result.timings})


def measure(case: str, run_dir: Path, month: str | None, repeat: int) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(case, str(run_dir), month, repeat, q))
    p.start()
    res = q.get()
    p.join()
    if "error" in res:
        sys.exit(res["error"])
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--month", default=None)
    ap.add_argument("--repeat", type=int, default=2, help="solves per case (the fastest is reported)")
    args = ap.parse_args(argv)
    rows = [measure(c, args.run_dir, args.month, args.repeat) for c in ("city only", "nested")]
    print(f"{'case':<10}{'n_outer':>8}{'n_state':>9}{'n_obs':>7}{'solve s':>9}{'peak MB':>9}{'+MB':>7}"
          f"{'city kt':>10}{'σ kt':>7}  solver")
    for r in rows:
        print(f"{r['case']:<10}{r['n_outer']:>8}{r['n_state']:>9}{r['n_obs']:>7}{r['seconds']:>9.2f}{r['rss_mb']:>9.0f}"
              f"{r['rss_mb'] - r['rss_loaded_mb']:>7.0f}{r['city_post_kt']:>10.1f}{r['city_sigma_kt']:>7.1f}  "
              f"{r['solver']}/{r['hqht']}")
    a, b = rows
    print(f"ratio nested / city only: time {b['seconds'] / a['seconds']:.2f}, peak memory {b['rss_mb'] / a['rss_mb']:.2f}, "
          f"state {b['n_state'] / a['n_state']:.3f}")
    for r in rows:
        t = r["timings"]
        print(f"{r['case']}: " + ", ".join(f"{k} {float(v):.2f} s" for k, v in t.items() if isinstance(v, (int, float))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
