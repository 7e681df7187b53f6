"""A constructed month for the figure tests: site-day footprint files written by the transport
stage's own writer (`transport.stilt_driver.combine` + `foot_encoding`, as rule footprints writes them),
one receptor HYSPLIT "failed" on (listed in the failures CSVs, absent from the file, as the driver does),
and the Jacobian assembled from them by `transport.jacobian.build_jacobian_file` (rule jacobian).

Grid and sites match the `fake_run` fixture (tests/products/conftest.py): lon 113.20-113.30, lat
23.00-23.12 at 0.01°, sites AAA and BBB."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

GRID = {"lon_min": 113.2, "lon_max": 113.3, "lat_min": 23.0, "lat_max": 23.12, "res": 0.01}
SITES = {"AAA": (113.23, 23.03), "BBB": (113.27, 23.09)}
DAYS = ("20250101", "20250102")
HOURS_UTC = (4, 5, 6)
N_BACK = 6
FAILED = "BBB_202501020530_30"


def _receptor_ds(rid, release, site_xy, grid, rng, left):
    """One receptor's footprint as `stilt_driver.run_receptor` returns it (clock-hour bins)."""
    from transport.footprints import FOOT_UNITS

    hours = pd.date_range(release.floor("h") - pd.Timedelta(hours=N_BACK - 1), release.floor("h"), freq="h")
    yy, xx = np.meshgrid(grid.lat, grid.lon, indexing="ij")
    foot = np.zeros((len(hours), grid.ny, grid.nx), np.float32)
    ang = rng.uniform(0, 2 * np.pi)
    for k in range(len(hours)):
        back = len(hours) - 1 - k
        cx = site_xy[0] + 0.006 * back * np.cos(ang)
        cy = site_xy[1] + 0.006 * back * np.sin(ang)
        foot[k] = (0.02 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * (0.01 + 0.004 * back) ** 2))
                   * rng.uniform(0.5, 1.5)).astype(np.float32)
    total = foot.sum(axis=(1, 2), dtype=np.float64) * 1.1  # 10 % of the sensitivity outside the grid
    return xr.Dataset(
        {"foot": (("time", "lat", "lon"), foot, {"units": FOOT_UNITS}),
         "foot_total": (("time",), total, {"units": FOOT_UNITS})},
        coords={"time": hours.values, "lat": grid.lat, "lon": grid.lon},
        attrs={"receptor_id": rid, "release_time": release.isoformat(), "n_particles": 100,
               "left_domain_fraction": left})


def write_month(R: Path, seed: int = 5) -> dict:
    """Site-day files, failures CSVs, receptors.csv and the Jacobian under ``R``; returns paths and
    the left-domain fractions written ({receptor_id: value})."""
    from gzcarbon.atomic import atomic_write
    from gzcarbon.grid import Grid
    from transport.jacobian import build_jacobian_file
    from transport.stilt_driver import collect_failures, combine, foot_encoding

    rng = np.random.default_rng(seed)
    grid = Grid.from_config(GRID)
    rec_rows, files, left = [], [], {}
    for site, xy in SITES.items():
        (R / "footprints" / site).mkdir(parents=True, exist_ok=True)
        for day in DAYS:
            done, failed = [], []
            for h in HOURS_UTC:
                release = pd.Timestamp(f"{day}T{h:02d}:30")
                rid = f"{site}_{release:%Y%m%d%H%M}_{100 if site == 'AAA' else 30}"
                rec_rows.append({"receptor_id": rid, "site": site, "time": release.isoformat(),
                                 "lon": xy[0], "lat": xy[1], "agl": 100.0 if site == "AAA" else 30.0})
                if rid == FAILED:
                    failed.append({"receptor_id": rid, "time": release.isoformat(),
                                   "error": "RuntimeError: hycs_std exited with status 1"})
                    continue
                left[rid] = round(float(rng.uniform(0.0, 0.9)), 3)
                done.append(_receptor_ds(rid, release, xy, grid, rng, left[rid]))
            out = R / "footprints" / site / f"{day}.nc"
            site_day = combine(done, grid)
            enc = {"foot": foot_encoding(), "foot_total": {"dtype": "float64"}}
            atomic_write(out, lambda p, ds=site_day: ds.to_netcdf(p, encoding=enc))
            pd.DataFrame(failed, columns=["receptor_id", "time", "error"]).to_csv(
                out.with_name(f"{day}_failures.csv"), index=False)
            files.append(out)
    pd.DataFrame(rec_rows).to_csv(R / "receptors.csv", index=False)
    failures = collect_failures(files, R / "footprints" / "failures.csv")
    build_jacobian_file(files, R / "receptors.csv", GRID, "2024-12-31T00:00", "2025-01-03T00:00",
                        R / "jacobian_hourly.npz")
    return {"files": files, "failures_csv": R / "footprints" / "failures.csv", "failures": failures,
            "jacobian": R / "jacobian_hourly.npz", "left": left}
