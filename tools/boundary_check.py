"""Model boundary against the upwind site and the baseline, on a finished demo run:

    python tools/boundary_check.py RUN_DIR [--month 2025-01] [--resample]
    python tools/boundary_check.py RUN_DIR --longer 48 [--receptors 6] [--far-numpar 100]

RUN_DIR is the Snakemake working directory of a demo run with ``stations.background.method:
model`` (its config.yaml or the defaults: results/<month>/, data/demo/<month>/). For the hours of
``obs/selected.csv`` it prints, per method, the error of the background against the demo truth's
background (``truth.nc``) at the observation hour: n, bias, rms, and the mean σ the method
reports; the upwind and baseline backgrounds are recomputed from the same hourly files with the
run's other selection settings (the upwind method reads the run's ARL met). Also the model
boundary's inflow shares and the share of particles that left the outer domain. ``--resample``
also rebuilds the demo's boundary field with the current ``gzcarbon.demo.boundary`` settings and
samples it at the run's exit points (no inversion): the row ``model (resampled)``.

``--longer HOURS`` measures the end-point approximation (docs/boundary.md): for a few receptors of
the run's last day (one per site, their window of HOURS inside the run's met), HYSPLIT-STILT runs
twice with the run's transport settings, ``transport.n_hours`` and HOURS back (the far-field run's
``--far-numpar`` particles give the exit points), the demo's boundary field is sampled at both sets
of exit points (particles still inside at the end lifted to ``inside_min_agl_m``), and the
per-receptor backgrounds, their difference, the share of particles that left the outer box and the
truth's background at the observation hour are printed, with the HYSPLIT CPU time of both runs.
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


def endpoint_runs(res: Path, demo: Path, cfg, hours: int, n_receptors: int, far_numpar: int, work: Path):
    """(per-receptor table, {n_hours: cpu seconds}) of the end-point measurement (module docstring)."""
    import resource

    from transport.stilt_driver import StiltSettings, run_site_day

    receptors = pd.read_csv(res / "receptors.csv")
    t = pd.DatetimeIndex(pd.to_datetime(receptors["time"]))
    met = sorted((demo / "met").glob("*.arl"))
    first = pd.Timestamp(met[0].name[:8])
    ok = (t - pd.Timedelta(hours=hours)) >= first
    if not ok.any():
        sys.exit(f"--longer {hours}: no receptor of {res / 'receptors.csv'} has {hours} h of met before it "
                 f"(met from {first}); give fewer hours")
    cand = receptors[ok].assign(_t=t[ok]).sort_values(["_t"])
    pick = cand[cand["_t"].dt.normalize() == cand["_t"].max().normalize()].groupby("site").head(1)
    pick = pick.head(n_receptors).drop(columns="_t").reset_index(drop=True)
    base = cfg.transport.as_dict()
    o = NestedGrid.from_config(cfg).outer
    box = (o.lon_min, o.lon_max, o.lat_min, o.lat_max)
    truth = read_truth_background(demo / "truth.nc")
    tt = pd.DatetimeIndex(truth.index)
    days = pd.date_range(tt.min().normalize(), tt.max().normalize() + pd.Timedelta(days=1), freq="D")
    m = cfg.met
    (work / "field").mkdir(parents=True, exist_ok=True)
    field = read_field(write_demo_boundary(truth, days, work / "field", (m.lon_min, m.lon_max, m.lat_min, m.lat_max),
                                           int(cfg.demo.seed)), "carbontracker")
    tables, cpu = {}, {}
    for n in (int(cfg.transport.n_hours), int(hours)):
        settings = StiltSettings.from_config({**base, "n_hours": n, "far_numpar": int(far_numpar)})
        out = work / f"footprints_{n}h.nc"
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        run_site_day(pick, met, cfg.grid.as_dict(), settings, out, work / f"cache_{n}h",
                     outer_grid=cfg.outer_grid.as_dict())
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu[n] = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        exits = exits_from_footprints([out], pick)
        tables[n] = receptor_backgrounds(field, exits, box, cfg.stations.background.model.inside_min_agl_m) \
            .set_index("receptor_id")
    n0, n1 = int(cfg.transport.n_hours), int(hours)
    a, b = tables[n0], tables[n1]
    hour = pd.DatetimeIndex(pd.to_datetime(pick["time"])).floor("h")
    out = pd.DataFrame({"receptor_id": pick["receptor_id"].astype(str), "site": pick["site"],
                        f"left_{n0}h": a["share_left"].reindex(pick["receptor_id"]).to_numpy(),
                        f"left_{n1}h": b["share_left"].reindex(pick["receptor_id"]).to_numpy(),
                        f"bg_{n0}h": a["background"].reindex(pick["receptor_id"]).to_numpy(),
                        f"bg_{n1}h": b["background"].reindex(pick["receptor_id"]).to_numpy(),
                        "truth": truth.reindex(hour).to_numpy(float)})
    out["diff"] = out[f"bg_{n0}h"] - out[f"bg_{n1}h"]
    return out, cpu


def print_endpoint(table: pd.DataFrame, cpu: dict) -> None:
    (n0, c0), (n1, c1) = sorted(cpu.items())
    print(f"end-point approximation: backgrounds sampled at the {n0} h run's exit points against the {n1} h "
          f"run's (ppm; particles still inside at the end lifted to inside_min_agl_m)")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    d = table["diff"].to_numpy(float)
    e0 = table[f"bg_{n0}h"].to_numpy(float) - table["truth"].to_numpy(float)
    e1 = table[f"bg_{n1}h"].to_numpy(float) - table["truth"].to_numpy(float)
    print(f"{n0} h − {n1} h: mean {d.mean():+.3f}, rms {np.sqrt((d ** 2).mean()):.3f} ppm over {d.size} receptors; "
          f"error against the truth's background: {n0} h bias {e0.mean():+.3f} / rms {np.sqrt((e0 ** 2).mean()):.3f}, "
          f"{n1} h bias {e1.mean():+.3f} / rms {np.sqrt((e1 ** 2).mean()):.3f}; particles left the outer box "
          f"{table[f'left_{n0}h'].mean():.2f} → {table[f'left_{n1}h'].mean():.2f}")
    print(f"HYSPLIT CPU (user+sys of the child processes): {n0} h {c0:.1f} s, {n1} h {c1:.1f} s (ratio {c1 / c0:.2f})")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--month", default=None)
    ap.add_argument("--resample", action="store_true", help="rebuild the demo field and sample it again")
    ap.add_argument("--longer", type=int, default=0, metavar="HOURS",
                    help="measure the end-point approximation against HOURS-long back-trajectories")
    ap.add_argument("--receptors", type=int, default=6, help="with --longer: receptors (one per site)")
    ap.add_argument("--far-numpar", type=int, default=100, help="with --longer: far-field particles")
    a = ap.parse_args(argv)
    raw = _config(a.run_dir)
    cfg = load_config(raw)
    month = a.month or cfg.month
    res = (a.run_dir / cfg.results_dir / month) if not Path(cfg.results_dir).is_absolute() else Path(cfg.results_dir) / month
    data = (a.run_dir / cfg.data_dir) if not Path(cfg.data_dir).is_absolute() else Path(cfg.data_dir)
    demo = data / "demo" / month
    truth = read_truth_background(demo / "truth.nc")
    if a.longer:
        with tempfile.TemporaryDirectory() as tmp:
            print_endpoint(*endpoint_runs(res, demo, cfg, a.longer, a.receptors, a.far_numpar, Path(tmp)))
        return 0
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
