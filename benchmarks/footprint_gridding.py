"""Benchmark: the Python gridding of one receptor's footprint on the nested grid (near-field and
far-field runs of the split, `transport.stilt_driver._gridded`), with pystilt's early-timestep
interpolation (per-particle merges) against `transport.stilt_driver.early_timesteps` (the same
table without them). Runs HYSPLIT-STILT once for a receptor of a finished run (its met, receptors
and config; not timed), then grids its particles both ways, checks that every array is identical
and prints the CPU seconds per receptor and the ratio. Usage (on the default demo run):

    python benchmarks/footprint_gridding.py --run . [--receptor 0] [--repeat 3] [--truth]

``--truth``: the particles of the demo truth's transport (150 particles, wind and mixed-layer errors).
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path[0] = str(ROOT)

from gzcarbon.config import validate_config  # noqa: E402
from gzcarbon.grid import NestedGrid  # noqa: E402
from transport import stilt_driver as sd  # noqa: E402
from transport.receptors import read_receptors  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", default=".")
    ap.add_argument("--month", default="2025-01")
    ap.add_argument("--receptor", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--truth", action="store_true")
    args = ap.parse_args()
    import stilt
    from stilt.footprint import gridding

    run = Path(args.run)
    c = validate_config(yaml.safe_load((ROOT / "config" / "config.yaml").read_text()))
    c = c if isinstance(c, dict) else c.model_dump()
    transport = dict(c["transport"])
    if args.truth:
        from gzcarbon.demo.truth_errors import TruthTransport

        transport = TruthTransport.from_mapping(c["demo"].get("truth_transport")).transport_config(transport)
    settings = sd.StiltSettings.from_config(transport)
    nested = NestedGrid.from_config({"grid": c["grid"], "outer_grid": c["outer_grid"]})
    rec = read_receptors(run / "results" / args.month / "receptors.csv").iloc[args.receptor]
    met = sd.met_config(sorted((run / "data" / "demo" / args.month / "met").glob("*.arl")))
    release = pd.Timestamp(rec["time"])
    receptor = stilt.PointReceptor(time=release, longitude=float(rec["lon"]), latitude=float(rec["lat"]),
                                   altitude=float(rec["agl"]))
    work = Path(tempfile.mkdtemp(prefix="fp_gridding_"))
    n_h = int(settings.n_hours)
    near = sd._trajectories(receptor, "near", met, settings, work / "n", int(settings.near_field_hours),
                            settings.numpar, settings.extra)
    far = sd._trajectories(receptor, "far", met, settings, work / "f", n_h, settings.far_numpar,
                           {**settings.extra, "outdt": int(settings.far_output_minutes)})
    far = sd.interval_midpoints(far, float(rec["lon"]), float(rec["lat"]))

    def grid_both():
        return [sd._gridded(p, release, nested, n_h, settings.smooth_factor) for p in (near, far)]

    ours_fn = sd.early_timesteps
    out, cpu = {}, {}
    for name, fn in (("pystilt", lambda p, res, ts: gridding._interpolate_early_timesteps(
            p, xres=res, yres=res, time_sign=ts)), ("early_timesteps", ours_fn)):
        sd.early_timesteps = fn
        t = time.process_time()
        for _ in range(args.repeat):
            out[name] = grid_both()
        cpu[name] = (time.process_time() - t) / args.repeat
    sd.early_timesteps = ours_fn
    for a, b in zip(out["pystilt"], out["early_timesteps"]):
        for x, y in zip(a[1:], b[1:]):
            if x is not None and not np.array_equal(x, y):
                raise SystemExit("the two ways give different footprints")
    print(f"receptor {rec['receptor_id']} ({'truth' if args.truth else 'inversion'} transport: near "
          f"{near['particle'].nunique()} particles, {len(near)} rows; far {far['particle'].nunique()} "
          f"particles, {len(far)} rows): identical footprints")
    print(f"gridding CPU per receptor (near + far): with pystilt's interpolation {cpu['pystilt']:.3f} s, "
          f"with early_timesteps {cpu['early_timesteps']:.3f} s, ratio {cpu['pystilt'] / cpu['early_timesteps']:.2f}x, "
          f"saved {cpu['pystilt'] - cpu['early_timesteps']:.3f} s")


if __name__ == "__main__":
    main()
