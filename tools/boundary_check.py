"""Model boundary against the upwind site and the baseline, on a finished demo run:

    python tools/boundary_check.py RUN_DIR [--month 2025-01] [--resample]

RUN_DIR is the Snakemake working directory of a demo run with ``stations.background.method:
model`` (its config.yaml or the defaults: results/<month>/, data/demo/<month>/). For the hours of
``obs/selected.csv`` it prints, per method, the error of the background against the demo truth's
background (``truth.nc``) at the observation hour: n, bias, rms, and the mean σ the method
reports; the upwind and baseline backgrounds are recomputed from the same hourly files with the
run's other selection settings (the upwind method reads the run's ARL met). Also the model
boundary's inflow shares and the share of particles that left the outer domain. ``--resample``
also rebuilds the demo's boundary field with the current ``gzcarbon.demo.boundary`` settings and
samples it at the run's exit points (no inversion): the row ``model (resampled)``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a checkout without `pip install -e .`

import tempfile  # noqa: E402

from gzcarbon.config import load_config  # noqa: E402
from gzcarbon.demo.boundary import write_demo_boundary  # noqa: E402
from gzcarbon.grid import NestedGrid  # noqa: E402
from stations.background import model_site_series  # noqa: E402
from transport.boundary import exits_from_footprints, read_field, receptor_backgrounds  # noqa: E402
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


def receptor_rows(res: Path, sigma_ppm: float) -> pd.DataFrame:
    """site, time (the observation hour), background, background_sigma of every receptor of
    boundary/background.csv."""
    b = pd.read_csv(res / "boundary" / "background.csv")
    hour = pd.DatetimeIndex(pd.to_datetime(b["time"], utc=True)).tz_localize(None).floor("h")
    n = np.maximum(b["n_particles"].to_numpy(float), 1.0)
    return pd.DataFrame({"site": b["site"].astype(str), "time": hour.strftime("%Y-%m-%dT%H:%M:%SZ"),
                         "background": b["background"],
                         "background_sigma": np.sqrt(sigma_ppm ** 2 + b["background_spread"] ** 2 / n)})


def resampled(res: Path, truth: pd.Series, cfg, selected: pd.DataFrame) -> pd.DataFrame:
    """``selected`` with the background of the demo field rebuilt now and sampled at the run's exit points."""
    met = cfg.met
    box = (met.lon_min, met.lon_max, met.lat_min, met.lat_max)
    t = pd.DatetimeIndex(truth.index)
    days = pd.date_range(t.min().normalize(), t.max().normalize() + pd.Timedelta(days=1), freq="D")
    receptors = pd.read_csv(res / "receptors.csv")
    exits = exits_from_footprints(sorted((res / "footprints").glob("*/*[0-9].nc")), receptors)
    o = NestedGrid.from_config(cfg).outer
    bm = cfg.stations.background.model
    with tempfile.TemporaryDirectory() as tmp:
        field = read_field(write_demo_boundary(truth, days, tmp, box, int(cfg.demo.seed)), "carbontracker")
        table = receptor_backgrounds(field, exits, (o.lon_min, o.lon_max, o.lat_min, o.lat_max), bm.inside_min_agl_m)
    series = model_site_series(table, bm.sigma_ppm)
    out = selected.copy()
    when = pd.DatetimeIndex(pd.to_datetime(out["time"], utc=True)).tz_localize(None)
    for i, (site, hour) in enumerate(zip(out["site"].astype(str), when)):
        s = series.get(site)
        out.loc[out.index[i], "background"] = s["background"].get(hour, np.nan) if s is not None else np.nan
        out.loc[out.index[i], "background_sigma"] = s["background_sigma"].get(hour, np.nan) if s is not None else np.nan
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--month", default=None)
    ap.add_argument("--resample", action="store_true", help="rebuild the demo field and sample it again")
    a = ap.parse_args(argv)
    raw = _config(a.run_dir)
    cfg = load_config(raw)
    month = a.month or cfg.month
    res = (a.run_dir / cfg.results_dir / month) if not Path(cfg.results_dir).is_absolute() else Path(cfg.results_dir) / month
    data = (a.run_dir / cfg.data_dir) if not Path(cfg.data_dir).is_absolute() else Path(cfg.data_dir)
    demo = data / "demo" / month
    truth = read_truth_background(demo / "truth.nc")
    st = cfg.stations
    hourly = sorted(p for p in (res / "obs" / "hourly").iterdir() if p.is_dir()) if (res / "obs" / "hourly").is_dir() else []
    met = sorted((demo / "met").glob("*.arl"))
    towers = [s["id"] for s in yaml.safe_load(Path(cfg.stations_file).read_text())["sites"] if s.get("role") == "tower"] \
        if Path(cfg.stations_file).exists() else []
    common = dict(utc_offset_hours=st.utc_offset_hours, select_hours_local=tuple(st.select_hours_local),
                  background_sigma_ppm=st.background_sigma_ppm, night_tower=st.night_tower, tower_ids=towers,
                  plausibility=st.plausibility, met_files=met)
    if (res / "obs" / "selected.csv").exists():
        model = pd.read_csv(res / "obs" / "selected.csv")
        where = "hours of selected.csv"
    else:  # a run stopped before the selection: every receptor's hour, the model boundary only
        model = receptor_rows(res, st.background.model.sigma_ppm)
        where, hourly = "receptor hours (no selected.csv: model boundary only)", []
    rows = {"model (run)": errors(model, truth)}
    for method in ("upwind", "baseline") if hourly else ():
        bg = st.background.model_copy(update={"method": method})
        rows[method] = errors(select(hourly, background=bg, **common), truth)
    if a.resample:
        rows["model (resampled)"] = errors(resampled(res, truth, cfg, model), truth)
    print(f"background error against the demo truth, {month}, {where} (ppm):")
    print(f"{'method':<20}{'n':>5}{'bias':>9}{'rms':>9}{'mean sigma':>12}")
    for k, r in rows.items():
        print(f"{k:<20}{r['n']:>5}{r['bias']:>9.3f}{r['rms']:>9.3f}{r['sigma']:>12.3f}")
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
