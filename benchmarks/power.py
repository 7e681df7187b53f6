"""Benchmark of the power stage: a year of hours (8,760) x 12 nodes (11 districts + external) x 20 plants.

    python benchmarks/power.py [--hours 8760] [--plants 20] [--seed 0]

Times (best of --repeat):
  * kernel     power.flow.trace: one batched solve over all hours (pooling rule)
  * kernel+F   the same with given inter-district flows
  * entry      power.emission_factors from in-memory tables (validation + tracing + Dataset)
  * files      power.emission_factors from CSV files
  * reference  power.flow.trace_reference: per-hour loop with numpy.linalg.solve on the 12-node system
  * marginal   power.marginal_factors on the year's Dataset (hour-to-hour regression; included in `entry`)
and prints the speed-up of the kernel over the reference as a ratio, checks they agree (1e-10) and
that the entry point meets the issue's target (< 5 s for a year).
"""

import argparse
import os
import sys
import tempfile
import time

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

import power  # noqa: E402
from power.flow import trace, trace_reference  # noqa: E402
from power.marginal import marginal_factors  # noqa: E402
from gzcarbon.atomic import write_csv  # noqa: E402
from gzcarbon.demo.power import make_demo  # noqa: E402


def registry(n_plants: int, rng) -> pd.DataFrame:
    fuels = rng.choice(["coal", "gas", "waste"], n_plants, p=[0.5, 0.4, 0.1])
    inten = {"coal": (0.82, 1.0), "gas": (0.34, 0.40), "waste": (0.3, 0.6)}
    return pd.DataFrame({
        "plant_id": [f"P{i:03d}" for i in range(n_plants)], "name": [f"plant {i}" for i in range(n_plants)],
        "district": rng.choice(power.DISTRICTS[4:], n_plants), "lon": rng.uniform(113.1, 113.9, n_plants),
        "lat": rng.uniform(22.6, 23.8, n_plants), "fuel": fuels,
        "capacity_mw": rng.choice([50, 100, 300, 460, 640], n_plants).astype(float),
        "intensity_t_per_mwh": [rng.uniform(*inten[f]) for f in fuels], "status": "operating",
    })


def best(fn, repeat):
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t0)
    return min(ts), out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hours", type=int, default=8760)
    ap.add_argument("--plants", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    reg = registry(a.plants, rng)
    start = pd.Timestamp("2024-01-01")
    end = start + pd.Timedelta(hours=a.hours)
    g, l, e, info = make_demo(reg, start, end, seed=a.seed)
    print(f"problem: {a.hours} hours x {len(power.DISTRICTS) + 1} nodes x {a.plants} plants "
          f"(local generation share {info['local_generation_share']:.2f})")

    ds = power.emission_factors(reg, g, l, e)
    gen = ds["generation_mwh"].to_numpy()
    emis = ds["production_emissions_t"].to_numpy()
    load = ds["load_mwh"].to_numpy()
    w_ext = ds["external_intensity"].to_numpy()
    T, N = gen.shape
    flows = rng.uniform(0, 200, (T, N, N)) * (rng.uniform(size=(T, N, N)) < 0.15)
    flows = np.triu(flows, 1)

    t_k, r = best(lambda: trace(gen, emis, load, w_ext), a.repeat)
    t_kf, rf = best(lambda: trace(gen, emis, load, w_ext, flows), a.repeat)
    t_e, _ = best(lambda: power.emission_factors(reg, g, l, e), a.repeat)
    with tempfile.TemporaryDirectory() as d:
        paths = {}
        for k, df in (("plants", reg), ("generation", g), ("load", l), ("external", e)):
            paths[k] = os.path.join(d, f"{k}.csv")
            write_csv(df, paths[k])
        t_f, _ = best(lambda: power.emission_factors(paths["plants"], paths["generation"], paths["load"],
                                                     paths["external"]), a.repeat)
    t_m, mf = best(lambda: marginal_factors(ds), a.repeat)
    t_r, ref = best(lambda: trace_reference(gen, emis, load, w_ext), 1)
    t_rf, reff = best(lambda: trace_reference(gen, emis, load, w_ext, flows), 1)
    err = np.nanmax(np.abs(r["w"] - ref) / np.abs(ref))
    errf = np.nanmax(np.abs(rf["w"] - reff) / np.abs(reff))

    print(f"{'kernel (pooling)':28s} {t_k * 1e3:9.1f} ms")
    print(f"{'kernel (given flows)':28s} {t_kf * 1e3:9.1f} ms")
    print(f"{'emission_factors (tables)':28s} {t_e * 1e3:9.1f} ms")
    print(f"{'emission_factors (CSV files)':28s} {t_f * 1e3:9.1f} ms")
    print(f"{'marginal factors':28s} {t_m * 1e3:9.1f} ms   (city {float(mf['city_marginal_factor']):.4f} "
          f"+- {float(mf['city_marginal_factor_se']):.4f} kg/kWh, {int(mf['marginal_hours'])} changes)")
    print(f"{'reference per-hour loop':28s} {t_r * 1e3:9.1f} ms   (given flows {t_rf * 1e3:.1f} ms)")
    print(f"speed-up kernel vs reference: {t_r / t_k:.1f}x (pooling), {t_rf / t_kf:.1f}x (given flows)")
    print(f"speed-up full entry point (incl. validation) vs reference kernel loop: {t_r / t_e:.1f}x")
    print(f"max relative difference to reference: {err:.1e} (pooling), {errf:.1e} (flows)")
    ok = err < 1e-10 and errf < 1e-10 and (a.hours < 8760 or t_f < 5.0)
    print("target (year from files < 5 s, agreement 1e-10):", "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
