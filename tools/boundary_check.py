"""Model boundary against the upwind site and the baseline, on a finished demo run:

    python tools/boundary_check.py RUN_DIR [--month 2025-01]

RUN_DIR is the Snakemake working directory of a demo run with ``stations.background.method:
model`` (its config.yaml or the defaults: results/<month>/, data/demo/<month>/). For the hours of
``obs/selected.csv`` it prints, per method, the error of the background against the demo truth's
background (``truth.nc``) at the observation hour: n, bias, rms, and the mean σ the method
reports; the upwind and baseline backgrounds are recomputed from the same hourly files with the
run's other selection settings (the upwind method reads the run's ARL met). Also the model
boundary's inflow shares and the share of particles that left the outer domain.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a checkout without `pip install -e .`

from gzcarbon.config import load_config  # noqa: E402
from stations.background import read_truth_background  # noqa: E402
from stations.selection import select  # noqa: E402


def _config(run: Path) -> dict:
    for name in ("config.yaml", "tiny.yaml"):
        if (run / name).exists():
            return yaml.safe_load((run / name).read_text()) or {}
    return {}


def errors(sel: pd.DataFrame, truth: pd.Series) -> dict:
    t = pd.DatetimeIndex(pd.to_datetime(sel["time"], utc=True)).tz_localize(None)
    e = sel["background"].to_numpy(float) - truth.reindex(t).to_numpy(float)
    e = e[np.isfinite(e)]
    return {"n": int(e.size), "bias": float(e.mean()), "rms": float(np.sqrt((e ** 2).mean())),
            "sigma": float(sel["background_sigma"].mean())}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--month", default=None)
    a = ap.parse_args(argv)
    raw = _config(a.run_dir)
    cfg = load_config(raw)
    month = a.month or cfg.month
    res = (a.run_dir / cfg.results_dir / month) if not Path(cfg.results_dir).is_absolute() else Path(cfg.results_dir) / month
    data = (a.run_dir / cfg.data_dir) if not Path(cfg.data_dir).is_absolute() else Path(cfg.data_dir)
    demo = data / "demo" / month
    truth = read_truth_background(demo / "truth.nc")
    st = cfg.stations
    hourly = sorted(p for p in (res / "obs" / "hourly").iterdir() if p.is_dir())
    met = sorted((demo / "met").glob("*.arl"))
    towers = [s["id"] for s in yaml.safe_load(Path(cfg.stations_file).read_text())["sites"] if s.get("role") == "tower"] \
        if Path(cfg.stations_file).exists() else []
    common = dict(utc_offset_hours=st.utc_offset_hours, select_hours_local=tuple(st.select_hours_local),
                  background_sigma_ppm=st.background_sigma_ppm, night_tower=st.night_tower, tower_ids=towers,
                  plausibility=st.plausibility, met_files=met)
    model = pd.read_csv(res / "obs" / "selected.csv")
    rows = {"model (run)": errors(model, truth)}
    for method in ("upwind", "baseline"):
        bg = st.background.model_copy(update={"method": method})
        rows[method] = errors(select(hourly, background=bg, **common), truth)
    print(f"background error against the demo truth, {month}, hours of selected.csv (ppm):")
    print(f"{'method':<14}{'n':>5}{'bias':>9}{'rms':>9}{'mean sigma':>12}")
    for k, r in rows.items():
        print(f"{k:<14}{r['n']:>5}{r['bias']:>9.3f}{r['rms']:>9.3f}{r['sigma']:>12.3f}")
    table = res / "boundary" / "background.csv"
    if table.exists():
        b = pd.read_csv(table)
        print(f"model boundary: {len(b)} receptors, particles that left the outer domain {b['share_left'].mean():.2f}, "
              f"inflow shares N {b['share_N'].mean():.2f} E {b['share_E'].mean():.2f} "
              f"S {b['share_S'].mean():.2f} W {b['share_W'].mean():.2f}, spread median "
              f"{b['background_spread'].median():.2f} ppm")
    return 0


if __name__ == "__main__":
    sys.exit(main())
