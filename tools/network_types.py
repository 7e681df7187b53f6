"""Item 5 of docs/network.md: the best added tower vs a ground column sensor vs one day of mobile
transects, each alone added to the current network of a finished run, exact σ (`inversion.network`).

    python tools/network_types.py RUN_DIR [--tower ID] [--column-at LON,LAT] [--track LON0,LAT0,LON1,LAT1]
                                  [--speed-kmh 30] [--every-minutes 10] [--retrieval-ppm 0.2] [--work DIR]

RUN_DIR holds a finished run with its network design (``snakemake --cores 2 network_design
--configfile config/network_candidates.yaml``); nothing in it is written. The tower is a candidate of
``network/candidates.csv`` (default: the best), its rows the design's. The column sensor (EM27/SUN
type, default at the tower's position) gets one pystilt ``ColumnReceptor`` per hour of the tower's
receptors (`transport.columns.column_jacobian_row`, ground kernel AK = 1: `ground_operator`), R from
``observations.column`` (retrieval ``--retrieval-ppm``, mismatch, a background shared per
instrument-day) and no daily surface offset. The track is driven on the tower's day through the same
hours, a straight line from (LON0, LAT0) to (LON1, LAT1) and back at ``--speed-kmh``, one segment
(``observations.mobile.segment_seconds`` long, 1 Hz, no plume spread: the mismatch floor) every
``--every-minutes``, each a point receptor at 3 m (`point_jacobian_row`), R from
``observations.mobile`` (along-track correlation, background per track). A nested run with the model
boundary needs inflow shares for the new rows: they take the sites' mean shares of the same hour.
Printed: each option's district and city σ and reduction, n rows, CPU s of its transport.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gzcarbon.cli.osse import load_run, load_settings, run_config_file  # noqa: E402


def _cpu() -> float:
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def _pair(text, n, what):
    v = [float(x) for x in text.split(",")]
    if len(v) != n:
        sys.exit(f"{what}: give {n} comma-separated numbers, got {text!r}")
    return v


def track_points(lon0, lat0, lon1, lat1, start, end, speed_kmh, every_minutes):
    """(times, lons, lats) of a straight out-and-back drive from ``start`` to ``end`` at ``speed_kmh``,
    one point every ``every_minutes``."""
    from inversion.network import distance_km

    L = float(distance_km(lon0, lat0, lon1, lat1))
    t = pd.date_range(start, end, freq=f"{int(every_minutes)}min", inclusive="left")
    s = (t - t[0]) / pd.Timedelta(hours=1) * float(speed_kmh)  # km driven
    f = np.abs(((s / L) + 1) % 2 - 1)  # 0 -> 1 -> 0 ... (out and back)
    return t, lon0 + f * (lon1 - lon0), lat0 + f * (lat1 - lat0)


def _shares(sel_path, times, sides):
    """The sites' mean inflow shares at each hour of ``times`` (model boundary)."""
    if not sides:
        return {}
    sel = pd.read_csv(sel_path, parse_dates=["time"])
    m = sel.groupby(pd.DatetimeIndex(sel["time"]).floor("h"))[[f"bg_share_{s}" for s in sides]].mean()
    h = pd.DatetimeIndex(times).floor("h")
    out = m.reindex(h)
    if out.isna().any().any():
        sys.exit(f"{sel_path}: no site observation at hour(s) {sorted(set(h[out.isna().any(axis=1)]))} of the new rows")
    return {c: out[c].to_numpy(float) for c in out.columns}


def _cached(path: Path, build):
    """``build()`` once per work directory: (rows, CPU s) are kept in ``path`` (a pickle of this tool's
    own work directory), so a second call with the same ``--work`` reads them (the CPU printed is the
    first call's)."""
    import pickle

    if path.exists():
        return pickle.loads(path.read_bytes())
    out = build()
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(pickle.dumps(out))
    tmp.replace(path)
    return out


def column_candidate(cfg, clon, clat, rel, retrieval_ppm, day_bg, met, nested, hours, settings, work):
    """(ExtraObservations, CPU s) of the column sensor: one column receptor per release time ``rel``."""
    from inversion.extra_obs import column_extra
    from transport.columns import column_jacobian_row, ground_operator

    obs_c = cfg.observations.column
    kw = dict(bottom_m=float(obs_c.bottom_m), top_m=float(obs_c.top_m), n_levels=int(obs_c.n_levels))
    t0 = _cpu()
    ops, rows = [], []
    for r in rel:
        op = ground_operator(1013.0, **kw)
        ops.append(op)
        rows.append(column_jacobian_row(dict(time=r, lon=clon, lat=clat, receptor_id=f"COL_{r:%Y%m%d%H%M%S}_col"),
                                        op, met, nested, hours, settings, work)[0])
    cpu = _cpu() - t0
    groups = pd.DataFrame({"site": "COL", "instrument": "COL", "release": rel, "time": rel.floor("h"), "lon": clon,
                           "lat": clat, "value": 0.0, "value_std_dev": float(retrieval_ppm)})
    return column_extra(groups, ops, sp.vstack(rows, format="csr"), day_bg, float(obs_c.mismatch_ppm),
                        float(obs_c.background_sigma_ppm)), cpu


def mobile_candidate(cfg, line, rel, args, day_bg, met, nested, hours, settings, work):
    """(ExtraObservations, CPU s) of one day of transects along ``line`` over the hours of ``rel``."""
    from inversion.extra_obs import mobile_extra
    from stations.mobile import receptors as segment_receptors
    from transport.columns import point_jacobian_row

    obs_m = cfg.observations.mobile
    tt, tlon, tlat = track_points(*line, rel[0].floor("h"), rel[-1].floor("h") + pd.Timedelta("1h"),
                                  args.speed_kmh, args.every_minutes)
    seg = pd.DataFrame({"track": "MOB", "segment": np.arange(len(tt)), "time": tt, "lon": tlon, "lat": tlat,
                        "height": 3.0, "value": 0.0, "n": int(obs_m.segment_seconds), "spread": 0.0})
    t0 = _cpu()
    rows = [point_jacobian_row(r._asdict(), met, nested, hours, settings, work)[0]
            for r in segment_receptors(seg).itertuples(index=False)]
    cpu = _cpu() - t0
    return mobile_extra(seg, sp.vstack(rows, format="csr"), day_bg, float(obs_m.mismatch_ppm),
                        float(obs_m.plume_factor), float(obs_m.measurement_ppm), float(obs_m.corr_minutes),
                        float(obs_m.background_sigma_ppm)), cpu


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--month", default=None)
    ap.add_argument("--tower", default=None, help="in-situ candidate id (default: the best of candidates.csv)")
    ap.add_argument("--column-at", default=None, help="LON,LAT of the column sensor (default: the tower's)")
    ap.add_argument("--track", default="113.20,23.13,113.48,23.13",
                    help="LON0,LAT0,LON1,LAT1 of the straight transect (default: west-east through the centre)")
    ap.add_argument("--speed-kmh", type=float, default=30.0)
    ap.add_argument("--every-minutes", type=int, default=10)
    ap.add_argument("--retrieval-ppm", type=float, default=0.2, help="retrieval sigma of an hourly column mean")
    ap.add_argument("--config", type=Path, default=None,
                    help="config file (default: the run's own, stored in its flux product)")
    ap.add_argument("--work", type=Path, default=None, help="HYSPLIT work directory (default: a new temp dir)")
    args = ap.parse_args(argv)

    from gzcarbon.grid import NestedGrid
    from inversion.extra_obs import concat_extra
    from inversion.network import exit_shares, network_design
    from transport.jacobian import load_jacobian
    from transport.stilt_driver import StiltSettings, met_config

    cfg, inv = load_settings(args.config or run_config_file(args.run_dir, args.month), [])
    inputs, R, truth_path, start, end, _ = load_run(args.run_dir, args.month, cfg, inv)
    D, N = truth_path.parent, R / "network"
    ranked = pd.read_csv(N / "candidates.csv", dtype={"id": str})
    table = pd.read_csv(N / "candidate_sites.csv", dtype={"id": str})
    tid = args.tower or str(ranked["id"].iloc[0])
    tower = table.set_index("id").loc[tid]
    jac_c = load_jacobian(N / "jacobian_hourly.npz")
    rt = jac_c.receptors[jac_c.receptors["site"].astype(str) == tid].reset_index()
    H_t = sp.csr_matrix(jac_c.H)[rt["index"].to_numpy()]
    shares = None
    nested = NestedGrid.from_config({"grid": cfg.grid.as_dict(), "outer_grid": cfg.outer_grid.as_dict(),
                                     "met": cfg.met.as_dict()})
    sel_path = R / "obs" / "selected.csv"
    sides = [c.removeprefix("bg_share_") for c in pd.read_csv(sel_path, nrows=1).columns if c.startswith("bg_share_")]
    if sides:
        o = nested.outer
        shares = exit_shares(sorted((N / "footprints" / tid).glob("*[0-9].nc")), rt.drop(columns="index"),
                             (o.lon_min, o.lon_max, o.lat_min, o.lat_max))
    met = met_config(sorted(str(p) for p in (D / "met").glob("*.arl")), "%Y%m%d_gz.arl")
    settings = StiltSettings.from_config(cfg.transport.as_dict())
    work = args.work or Path(tempfile.mkdtemp(prefix="network_types_"))
    hours = pd.DatetimeIndex(inputs.hours)
    rel = pd.DatetimeIndex(rt["time"])
    day_bg = pd.read_csv(sel_path, parse_dates=["time"])["background"].mean()

    clon, clat = _pair(args.column_at, 2, "--column-at") if args.column_at else (float(tower.lon), float(tower.lat))
    col, cpu_col = _cached(work / "column_rows.pkl", lambda: column_candidate(
        cfg, clon, clat, rel, args.retrieval_ppm, day_bg, met, nested, hours, settings, work))
    lon0, lat0, lon1, lat1 = _pair(args.track, 4, "--track")
    mob, cpu_mob = _cached(work / "mobile_rows.pkl", lambda: mobile_candidate(
        cfg, (lon0, lat0, lon1, lat1), rel, args, day_bg, met, nested, hours, settings, work))
    extra = concat_extra([col, mob])
    for k, v in _shares(sel_path, extra.selected["time"], sides).items():
        extra.selected[k] = v
    owner = np.r_[np.full(len(col.kind), "COL"), np.full(len(mob.kind), "MOB")]
    cand = pd.DataFrame([{"id": tid, "type": "insitu", "lon": tower.lon, "lat": tower.lat, "height": tower.height},
                         {"id": "COL", "type": "column", "lon": clon, "lat": clat, "height": 0.0},
                         {"id": "MOB", "type": "mobile", "lon": lon0, "lat": lat0, "height": 3.0}])
    res = network_design(inputs, inv, cfg.network_design.as_dict(), cand, H_t, rt.drop(columns="index"), start, end,
                         utc_offset_hours=float(cfg.stations.utc_offset_hours), shares=shares, extra=extra,
                         extra_owner=owner)
    names, base = res.summary["aggregates"], np.asarray(res.summary["current_sigma_t"])
    c = res.candidates.set_index("id")
    cols = [f"sigma_{n}" for n in names[:-1]] + ["city_sigma"]
    print(f"run {R}; tower {tid} ({int(c.loc[tid, 'n_obs'])} h), column at {clon:.3f},{clat:.3f} "
          f"({int(c.loc['COL', 'n_obs'])} h, {cpu_col:.1f} CPU s), track {args.track} at {args.speed_kmh:g} km/h "
          f"({int(c.loc['MOB', 'n_obs'])} segments, {cpu_mob:.1f} CPU s)")
    print("| aggregate | current σ (t) | + tower | + column | + mobile day |")
    print("|---|---|---|---|---|")
    for n, col_name, b in zip(names, cols, base):
        cells = [f"{c.loc[i, col_name]:.0f} ({100 * (1 - c.loc[i, col_name] / b):.2f} %)" for i in (tid, "COL", "MOB")]
        print(f"| {n} | {b:.0f} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
