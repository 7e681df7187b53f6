"""The target-tank calibration check of a month, from the files the hourly rule writes per site.

``{R}/obs/hourly/{site}/target_tank.csv`` holds every target run (calibrated like ambient air:
``bias`` = calibrated − assigned, ppm); the hourly NetCDF files beside it carry the limit the run
acted on (``target_tank_max_bias``, config ``stations.target_tank.max_bias``), the WMO
compatibility goal (``target_goal``) and the species. :func:`target_check` gathers them for every
site: one row per target run and one summary row per site (docs/stations.md, "Calibration").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

RUN_COLUMNS = ["site", "time", "assigned", "calibrated", "bias"]
SUMMARY_COLUMNS = ["site", "species", "n", "mean_bias", "scatter", "max_abs_bias", "goal", "max_bias",
                   "n_beyond_goal", "n_beyond_max_bias"]


class TargetTankFileError(ValueError):
    """A target_tank.csv without the columns the check needs."""


def _limits(site_dir: Path) -> dict:
    """species, goal and max_bias from the first hourly NetCDF of the site (NaN when absent)."""
    for nc in sorted(site_dir.glob("*.nc")):
        with xr.open_dataset(nc) as ds:
            a = ds.attrs
            return {"species": str(a.get("species", "")), "goal": float(a.get("target_goal", np.nan)),
                    "max_bias": float(a.get("target_tank_max_bias", np.nan))}
    return {"species": "", "goal": np.nan, "max_bias": np.nan}


def read_target_runs(site_dir) -> pd.DataFrame:
    """Every target run of one site directory: ``site, time, assigned, calibrated, bias`` (ppm).
    A site without target runs (no file, or standard-format data calibrated by its provider) gives
    an empty table."""
    site_dir = Path(site_dir)
    path = site_dir / "target_tank.csv"
    if not path.is_file() or path.stat().st_size == 0:
        return pd.DataFrame(columns=RUN_COLUMNS)
    df = pd.read_csv(path)
    if df.empty:
        return pd.DataFrame(columns=RUN_COLUMNS)
    missing = [c for c in ("time", "assigned", "calibrated", "bias") if c not in df]
    if missing:
        raise TargetTankFileError(f"{path}: columns {missing} missing (found {list(df.columns)}); "
                                  "rerun rule hourly_obs for this site (docs/stations.md).")
    out = pd.DataFrame({"site": site_dir.name, "time": pd.to_datetime(df["time"]),
                        **{c: pd.to_numeric(df[c], errors="coerce") for c in ("assigned", "calibrated", "bias")}})
    return out[np.isfinite(out["bias"].to_numpy(float))].reset_index(drop=True)


def target_check(site_dirs) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(runs, summary) of the target tank at every site of ``site_dirs`` (``obs/hourly/<site>``).

    ``runs``: every target run (`read_target_runs`). ``summary`` per site: ``n`` runs, ``mean_bias``,
    ``scatter`` (std of the run biases, NaN below 2 runs), ``max_abs_bias``, the WMO ``goal`` and the
    acting limit ``max_bias`` of the hourly files, and how many runs lie beyond each."""
    runs, rows = [], []
    for d in map(Path, site_dirs):
        r = read_target_runs(d)
        lim = _limits(d)
        b = r["bias"].to_numpy(float)
        rows.append({"site": d.name, "species": lim["species"], "n": int(b.size),
                     "mean_bias": float(b.mean()) if b.size else np.nan,
                     "scatter": float(b.std(ddof=1)) if b.size > 1 else np.nan,
                     "max_abs_bias": float(np.abs(b).max()) if b.size else np.nan,
                     "goal": lim["goal"], "max_bias": lim["max_bias"],
                     "n_beyond_goal": int((np.abs(b) > lim["goal"]).sum()),
                     "n_beyond_max_bias": int((np.abs(b) > lim["max_bias"]).sum())})
        runs.append(r)
    runs = [r for r in runs if len(r)]
    all_runs = pd.concat(runs, ignore_index=True) if runs else pd.DataFrame(columns=RUN_COLUMNS)
    return all_runs, pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
