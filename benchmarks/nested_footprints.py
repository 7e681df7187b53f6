"""What the outer grid adds to a receptor's footprint (issue 19, docs/transport.md "Nested grid").

    python benchmarks/nested_footprints.py [--receptors 4] [--repeat 3] [--workdir DIR]

Writes the demo met of 2024-12-31 and 2025-01-01 (config `met`, demo seed) into ``--workdir``
(default: a temporary directory), runs HYSPLIT-STILT with the default transport settings for
receptors at the demo sites (50 m, 2025-01-01 06:30 UTC: day, the near/far split; 18:30 UTC: night,
one run), then grids the *same particles* twice through ``receptor_footprint``: on the inner grid
alone (``Grid``, pystilt's calc_footprint) and on the default nested grid (``NestedGrid``: inner +
0.3-degree outer cells, exit points), ``--repeat`` times each, keeping the fastest.

Prints per receptor the gridding time of both, the receptor's whole footprint time (HYSPLIT +
gridding) and the shares of the 24-h sensitivity on the inner grid, on the outer cells and beyond
the outer box, the net kernel spill out of the inner grid, the exit reasons; the last line:
``outer gridding adds X.XX s per receptor: footprint time ratio nested/inner R.RRR``.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SITES = {"NST": (113.56, 22.76), "YXU": (113.28, 23.13), "HPU": (113.47, 23.11),
         "CHU": (113.59, 23.56), "HDU": (113.22, 23.40), "PYU": (113.21, 23.00)}


def receptors(n: int) -> list[pd.Series]:
    """Day (06:30 UTC) and night (18:30 UTC) receptors at the demo sites, alternating."""
    recs = []
    for i, (site, (lon, lat)) in enumerate(list(SITES.items()) * 2):
        if len(recs) >= n:
            break
        t = "2025-01-01 06:30" if i % 2 == 0 else "2025-01-01 18:30"
        recs.append(pd.Series({"receptor_id": f"{site}_{t[11:13]}", "time": pd.Timestamp(t),
                               "lon": lon, "lat": lat, "agl": 50.0}))
    return recs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--receptors", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args()

    from gzcarbon.config import load_config
    from gzcarbon.demo.met import write_met_day
    from gzcarbon.grid import Grid, NestedGrid
    from transport import stilt_driver as sd

    cfg = load_config({})
    nested = NestedGrid.from_config(cfg)
    inner = nested.inner
    settings = sd.StiltSettings.from_config(cfg.transport.as_dict())
    work = Path(args.workdir or tempfile.mkdtemp(prefix="nested_fp_"))
    met_dir = work / "met"
    files = []
    for day in ("2024-12-31", "2025-01-01"):
        f = met_dir / f"{pd.Timestamp(day):%Y%m%d}_gz.arl"
        if not f.exists():
            write_met_day(f, day, cfg.met.as_dict(), seed=cfg.demo.seed)
        files.append(f)
    met = sd.met_config(files)

    real = sd._trajectories
    memo: dict = {}

    def cached(receptor, rid, met, settings, run_dir, n_hours, numpar, extra):
        key = (rid, n_hours, numpar, extra.get("outdt"))
        if key not in memo:
            t0 = time.perf_counter()
            memo[key] = real(receptor, rid, met, settings, run_dir, n_hours, numpar, extra)
            memo[key + ("s",)] = time.perf_counter() - t0
        return memo[key]

    sd._trajectories = cached
    recs = receptors(args.receptors)
    print(f"grid: {nested.describe()}; {settings.n_hours} h back, numpar {settings.numpar}, "
          f"split {settings.split} (far_numpar {settings.far_numpar})")
    adds, ratios = [], []
    for rec in recs:
        fp = None
        t_grid = {}
        for name, g in (("inner", inner), ("nested", nested)):
            best = np.inf
            for _ in range(args.repeat):
                fp_g, tim = sd.receptor_footprint(rec, met, g, settings, work)
                best = min(best, tim["footprint_s"])
            t_grid[name] = best
            if name == "nested":
                fp = fp_g
            else:
                foot_inner_only = fp_g.foot
        # the kernel's net spill out of the inner grid: the inner sum with and without smoothing
        fp0, _ = sd.receptor_footprint(rec, met, nested, dataclasses.replace(settings, smooth_factor=0.0),
                                       work)
        spill = (fp0.foot.sum() - fp.foot.sum()) / fp0.foot.sum()
        traj = sum(v for k, v in memo.items() if k[0] == rec["receptor_id"] and k[-1] == "s")
        tot = fp.total.sum()
        shares = (fp.foot.sum() / tot, fp.foot_outer.sum() / tot, fp.outside.sum() / tot)
        assert np.array_equal(fp.foot, foot_inner_only)
        resid = abs(fp.foot.sum(axis=(1, 2)) + fp.foot_outer.sum(axis=(1, 2)) + fp.outside
                    - fp.total).max()
        reasons = np.bincount(fp.exits["reason"], minlength=3)
        add = t_grid["nested"] - t_grid["inner"]
        ratio = (traj + t_grid["nested"]) / (traj + t_grid["inner"])
        adds.append(add)
        ratios.append(ratio)
        print(f"{rec['receptor_id']}: HYSPLIT {traj:.1f} s, gridding inner {t_grid['inner']:.2f} s, "
              f"nested {t_grid['nested']:.2f} s (+{add:.2f} s); sensitivity inner {shares[0]:.3f} "
              f"outer {shares[1]:.3f} beyond {shares[2]:.3f} of {tot:.3f}; conservation residual "
              f"{resid:.1e}; net kernel spill out of the inner grid {spill:+.4f} of its unsmoothed sum; "
              f"left met domain {fp.left_fraction:.2f}; exits: inside at the end "
              f"{reasons[0]}, left the outer box {reasons[1]}, stopped {reasons[2]}")
    print(f"outer gridding adds {np.mean(adds):.2f} s per receptor: footprint time ratio "
          f"nested/inner {np.mean(ratios):.3f}")


if __name__ == "__main__":
    main()
