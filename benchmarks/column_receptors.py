"""What a column receptor costs per sounding against a point receptor (issue 23, docs/columns.md).

    python benchmarks/column_receptors.py [--numpar 200] [--hours 12] [--repeat 2] [--workdir DIR]

Writes the demo met of 2025-01-01 (the demo's met domain and seed) into ``--workdir`` (default: a
temporary directory) and runs, ``--repeat`` times each, at the demo's central site on
2025-01-01 05:30 UTC with ``--numpar`` particles and ``--hours`` back:

* a point receptor (50 m), as the in-situ sites get;
* one pystilt ``ColumnReceptor`` (5-3000 m) and its particle weighting
  (``transport.columns.weight_particles``, 10 slabs), the way column soundings are run;
* the alternative without a ColumnReceptor: one point receptor per slab (10 runs).

CPU seconds are HYSPLIT's (the child processes: ``RUSAGE_CHILDREN``) plus this process's (reading
the particles, weighting), measured with ``resource.getrusage`` — wall time is meaningless on a
shared machine. Prints each, and the last line ``column/point CPU ratio R.RR; slab points/point
ratio S.SS``.
"""
from __future__ import annotations

import argparse
import resource
import sys
import tempfile
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def cpu() -> float:
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def main(argv=None) -> int:
    import stilt

    from gzcarbon.config import load_config
    from gzcarbon.demo.met import write_met_day
    from stations.columns import read_oco_lite
    from transport.columns import column_operator, column_receptor, weight_particles
    from transport.stilt_driver import met_config

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--numpar", type=int, default=200)
    ap.add_argument("--hours", type=int, default=12)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--workdir", type=Path, default=None)
    a = ap.parse_args(argv)
    work = a.workdir or Path(tempfile.mkdtemp(prefix="colbench_"))
    cfg = load_config({})
    box = dict(lon_min=cfg.met.lon_min, lon_max=cfg.met.lon_max, lat_min=cfg.met.lat_min,
               lat_max=cfg.met.lat_max, res=cfg.met.res)
    day = "2025-01-01"
    files = [write_met_day(work / "met" / "20241231_gz.arl", "2024-12-31", box, seed=cfg.demo.seed),
             write_met_day(work / "met" / "20250101_gz.arl", day, box, seed=cfg.demo.seed)]
    met = met_config(files)
    t = pd.Timestamp(f"{day} 05:30")
    lon, lat = 113.2644, 23.1291
    s = read_oco_lite(ROOT / "tests" / "data" / "columns" / "oco2_LtCO2_250101_B11100Ar_gzcarbon.nc4")
    op = column_operator(s.pressure[0], s.ak[0], s.pressure_weight[0], s.prior[0],
                         float(s.table.surface_pressure[0]))
    runs = [0]

    def run(receptor):
        runs[0] += 1
        return stilt.run_trajectories(receptor, met, n_hours=-a.hours, numpar=a.numpar, krand=2, seed=7,
                                      kmixd=0, workdir=work / f"run{runs[0]}")

    best = {}
    for _ in range(a.repeat):
        c0 = cpu()
        run(stilt.PointReceptor(time=t, longitude=lon, latitude=lat, altitude=50.0))
        c1 = cpu()
        p = run(column_receptor(dict(time=t, lon=lon, lat=lat), op))
        weight_particles(p, op)
        c2 = cpu()
        for z in op.heights_m:
            run(stilt.PointReceptor(time=t, longitude=lon, latitude=lat, altitude=float(z)))
        c3 = cpu()
        for k, v in (("point", c1 - c0), ("column", c2 - c1), ("slab_points", c3 - c2)):
            best[k] = min(best.get(k, float("inf")), v)
    print(f"numpar {a.numpar}, {a.hours} h back, best of {a.repeat} (CPU s, HYSPLIT + Python):")
    print(f"  point receptor (50 m):                 {best['point']:.2f}")
    print(f"  column receptor (5-3000 m, weighted):  {best['column']:.2f}")
    print(f"  {len(op.heights_m)} point receptors at the slab heights:  {best['slab_points']:.2f}")
    print(f"column/point CPU ratio {best['column'] / best['point']:.2f}; "
          f"slab points/point ratio {best['slab_points'] / best['point']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
