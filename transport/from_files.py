"""Footprints the user already has instead of HYSPLIT (config ``transport.footprints_from: files``).

Three steps, each a public function (the workflow runs the first two in rule ``footprint_matches``,
the third in rule ``footprints`` per site-day):

1. :func:`footprint_catalogue` lists every release of every file (``transport.read_footprints``
   reads pystilt, STILT-R, NAME/openghg ``fp``/``fp_HiTRes`` and FLEXPART/PARIS ``srr``): file,
   release, release time, position, height, site.
2. :func:`match_receptors` pairs each receptor of ``receptors.csv`` with one release:

   - *time*: the release lies in the receptor's observation hour (``floor(release, h) ==
     floor(receptor time, h)``; our receptors are released mid-hour, NAME/FLEXPART files stamp
     the release on the hour);
   - *site*: when the file names its site (attribute ``site`` or openghg's file name
     ``TAC-100magl_...``) it must be the receptor's site;
   - *position*: when the file gives ``release_lon/lat``, within :data:`POSITION_TOLERANCE_DEG`
     of the receptor;
   - *height*: when the file gives a release height, within :data:`HEIGHT_TOLERANCE_M` or
     :data:`HEIGHT_TOLERANCE_REL` of the receptor's inlet height.

   It raises :class:`FootprintMatchError` naming the receptors without a footprint, the receptors
   with more than one, and the files whose releases in the period match no receptor (a wrong site
   code, inlet height or time zone). Files whose releases all lie outside the period are skipped.
3. :func:`site_day_from_files` writes the site-day file of rule ``footprints``
   (``foot(receptor, time, lat, lon)`` on the state grid, ``foot_total``, ``release_time``,
   ``left_domain_fraction``; docs/formats.md) from the matched releases, regridded conservatively
   onto the state grid (:mod:`transport.regrid`; the part outside the state domain stays in
   ``foot_total`` and reaches the Jacobian's ``outside``), and an empty failures CSV. With the
   nested grid (config ``outer_grid``) the part outside the inner grid is regridded conservatively
   onto the outer cells as well (``foot_outer``), and only what lies beyond the outer box is
   ``foot_outside``; files carry no particles, so no exit points are written.

Time bins. Hourly footprints (pystilt, STILT-R) keep their clock hours. NAME's ``fp_HiTRes``
bin ``H_back = k`` (``k`` hours before the release, bins ``Δ`` hours wide) goes to the ``Δ``
clock hours ``floor(release) - k - Δ + 1 .. floor(release) - k``, split evenly (openghg-inversions
multiplies it with the flux of hour ``release - k``); its last bin (the largest ``H_back``) is the
*residual*, all older sensitivity, which openghg multiplies with a mean flux: it is spread evenly
over the 24 hours before the oldest resolved bin. A footprint integrated over the back period
(NAME ``fp`` without ``fp_HiTRes``, FLEXPART ``srr``) has no timing: it is spread evenly over the
``n_hours`` clock hours up to the release hour (the response to the mean flux of the back period,
as openghg uses it) and the site-day file says so in its attribute ``time_resolution``.
Every spreading conserves each receptor's total exactly.
"""

from __future__ import annotations

import glob
import logging
import os
import re
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from gzcarbon.atomic import atomic_write
from gzcarbon.grid import Grid, NestedGrid
from .footprints import FOOT_UNITS, FootprintFormatError, read_footprints, to_clock_hours
from .regrid import apply_weights, is_aligned, regrid_weights

logger = logging.getLogger(__name__)

#: A file's release position must lie this close (degrees, lon and lat) to the receptor.
POSITION_TOLERANCE_DEG = 0.05
#: A file's release height must lie within max(this many metres, this share) of the inlet height.
HEIGHT_TOLERANCE_M = 5.0
HEIGHT_TOLERANCE_REL = 0.05
#: Hours over which NAME's residual bin (sensitivity older than the resolved bins) is spread.
RESIDUAL_HOURS = 24
#: Columns of the catalogue and of matches.csv.
CATALOGUE_COLUMNS = ["file", "release", "release_time", "release_lon", "release_lat",
                     "release_height", "site", "time_resolution"]
MATCH_COLUMNS = ["receptor_id", "site", "time", "file", "release", "release_time"]
FOOTPRINT_SUFFIXES = (".nc", ".nc4", ".netcdf", ".parquet")


class FootprintMatchError(ValueError):
    """Receptors without a footprint, or footprint files that match no receptor (names both)."""


def find_footprint_files(spec: str | os.PathLike) -> list[Path]:
    """The files of config ``transport.footprint_files``: a directory (every ``.nc``/``.nc4``/
    ``.parquet`` file under it, at any depth) or a glob pattern. Raises ``FileNotFoundError``
    naming the setting when nothing is found."""
    spec = str(spec)
    if not spec:
        raise FileNotFoundError("config transport.footprint_files is empty but "
                                "transport.footprints_from is 'files': give the directory or a "
                                "glob pattern of your footprint files")
    if os.path.isdir(spec):
        files = [Path(r) / n for r, _, names in os.walk(spec) for n in names
                 if n.lower().endswith(FOOTPRINT_SUFFIXES) and not n.startswith(".")]
    else:
        files = [Path(p) for p in glob.glob(spec, recursive=True) if os.path.isfile(p)]
    if not files:
        what = (f"the directory holds no {'/'.join(FOOTPRINT_SUFFIXES)} file" if os.path.isdir(spec)
                else "the pattern matches no file")
        raise FileNotFoundError(f"config transport.footprint_files = {spec!r}: {what}; give a "
                                "directory or glob of pystilt, STILT-R, NAME/openghg or "
                                "FLEXPART/PARIS footprint files")
    return sorted(files)


def _file_site(ds: xr.Dataset, path: Path) -> str:
    """The site a footprint file names: attribute ``site``, else openghg's file-name prefix
    (``TAC-100magl_...``); empty when unknown."""
    site = str(ds.attrs.get("site", "") or "").strip().upper()
    if site:
        return site
    m = re.match(r"^([A-Za-z0-9]+)-\d+(?:\.\d+)?magl", path.name)
    return m.group(1).upper() if m else ""


#: STILT-R / pystilt footprint file names: ``YYYYmmddHHMM_lon_lat_agl_foot.nc``.
STILT_NAME = re.compile(r"^(\d{12})_(-?\d+(?:\.\d+)?)_(-?\d+(?:\.\d+)?)_(\d+(?:\.\d+)?)_foot")


def _name_position(path: Path) -> tuple[float, float, float]:
    """(lon, lat, agl) from a STILT-R file name; NaN when the name is not STILT's."""
    m = STILT_NAME.match(path.name)
    return tuple(float(m.group(k)) for k in (2, 3, 4)) if m else (np.nan, np.nan, np.nan)


def _time_resolution(ds: xr.Dataset) -> str:
    if "foot_hires" in ds:
        return "hires"
    return "hourly" if "time" in ds["foot"].dims else "integrated"


def footprint_catalogue(files: Sequence[str | os.PathLike],
                        layer_height: float | None = None) -> pd.DataFrame:
    """One row per release of every file (:data:`CATALOGUE_COLUMNS`); ``release`` is the value
    of the file's ``receptor`` coordinate as :func:`transport.read_footprints` gives it."""
    rows = []
    for f in files:
        path = Path(f)
        ds = read_footprints(path, layer_height=layer_height)
        n = ds.sizes["receptor"]
        times = pd.to_datetime(ds["release_time"].values)
        col = {k: (np.asarray(ds[k].values, float) if k in ds.coords or k in ds
                   else np.full(n, np.nan)) for k in ("release_lon", "release_lat", "release_height")}
        site, res = _file_site(ds, path), _time_resolution(ds)
        if n == 1 and np.isnan(col["release_lon"]).all():
            pos = _name_position(path)
            for k, v in zip(("release_lon", "release_lat", "release_height"), pos):
                col[k] = np.full(1, v)
        for j in range(n):
            rows.append({"file": str(path), "release": str(ds["receptor"].values[j]),
                         "release_time": times[j], "release_lon": col["release_lon"][j],
                         "release_lat": col["release_lat"][j],
                         "release_height": col["release_height"][j], "site": site,
                         "time_resolution": res})
    cat = pd.DataFrame(rows, columns=CATALOGUE_COLUMNS)
    cat["release_time"] = pd.to_datetime(cat["release_time"])
    return cat


def _compatible(rec: pd.Series, cand: pd.DataFrame) -> np.ndarray:
    """Which catalogue rows (already in the receptor's hour) fit its site, position and height."""
    ok = np.ones(len(cand), bool)
    site = cand["site"].fillna("").astype(str).to_numpy()
    ok &= (site == "") | (site == str(rec["site"]).upper())
    lon, lat = cand["release_lon"].to_numpy(float), cand["release_lat"].to_numpy(float)
    pos_known = np.isfinite(lon) & np.isfinite(lat)
    near = (np.abs(lon - float(rec["lon"])) <= POSITION_TOLERANCE_DEG) & \
        (np.abs(lat - float(rec["lat"])) <= POSITION_TOLERANCE_DEG)
    ok &= ~pos_known | near
    h = cand["release_height"].to_numpy(float)
    tol = max(HEIGHT_TOLERANCE_M, HEIGHT_TOLERANCE_REL * float(rec["agl"]))
    ok &= ~np.isfinite(h) | (np.abs(h - float(rec["agl"])) <= tol)
    return ok


def _listing(items: list[str], n: int = 10) -> str:
    return "; ".join(items[:n]) + (f" ... ({len(items)} in all)" if len(items) > n else "")


def match_receptors(receptors: pd.DataFrame, catalogue: pd.DataFrame) -> pd.DataFrame:
    """Pair every receptor with one release (rules in the module docstring).

    Returns :data:`MATCH_COLUMNS`, one row per receptor in ``receptors`` order. Raises
    :class:`FootprintMatchError` naming the receptors without a footprint (with the nearest
    release of their hour and why it does not fit), the receptors with several, and the files
    whose releases inside the period match no receptor."""
    cat = catalogue.reset_index(drop=True)
    cat_hour = pd.to_datetime(cat["release_time"]).dt.floor("h")
    rec = receptors.reset_index(drop=True)
    rec_hour = pd.to_datetime(rec["time"]).dt.floor("h")
    by_hour = {h: np.flatnonzero(cat_hour.to_numpy() == np.datetime64(h)) for h in set(rec_hour)}
    rows, lacking, several = [], [], []
    used = np.zeros(len(cat), bool)
    for i, r in rec.iterrows():
        idx = by_hour[rec_hour[i]]
        fit = idx[_compatible(r, cat.iloc[idx])] if len(idx) else idx
        if len(fit) == 0:
            why = _why_not(r, cat.iloc[idx]) if len(idx) else "no release in its hour"
            lacking.append(f"{r['receptor_id']} ({why})")
            continue
        if len(fit) > 1:
            several.append(f"{r['receptor_id']}: " + ", ".join(
                f"{Path(cat.at[k, 'file']).name}[{cat.at[k, 'release']}]" for k in fit[:3]))
            continue
        k = int(fit[0])
        used[k] = True
        rows.append({"receptor_id": r["receptor_id"], "site": r["site"], "time": r["time"],
                     "file": cat.at[k, "file"], "release": cat.at[k, "release"],
                     "release_time": cat.at[k, "release_time"]})
    t0, t1 = rec_hour.min(), rec_hour.max() + pd.Timedelta(hours=1)
    in_period = (cat_hour >= t0).to_numpy() & (cat_hour < t1).to_numpy() if len(rec) else \
        np.zeros(len(cat), bool)
    files = cat["file"].to_numpy()
    unmatched = sorted({f for f in set(files[in_period]) if not used[(files == f)].any()})
    problems = []
    if lacking:
        problems.append(f"{len(lacking)} receptor(s) have no footprint in the files: "
                        f"{_listing(lacking)}. Add footprint files for them, or narrow `sites`, "
                        "`months` or `stations.select_hours_local` to what the files cover")
    if several:
        problems.append(f"{len(several)} receptor(s) match more than one release (duplicate "
                        f"files?): {_listing(several, 5)}. Keep one file per release")
    if unmatched:
        problems.append(f"{len(unmatched)} footprint file(s) have releases in the period that "
                        f"match no receptor (site code, inlet height, position or time zone "
                        f"differ from {len(rec)} receptors of config/stations.yaml?): "
                        f"{_listing(unmatched, 5)}")
    if problems:
        raise FootprintMatchError("footprints_from: files: " + ". ".join(problems) + ".")
    skipped = sorted(set(files[~in_period]) - set(files[in_period]))
    if skipped:
        logger.info("%d footprint file(s) outside the period, not used: %s", len(skipped),
                    _listing([Path(f).name for f in skipped], 5))
    out = pd.DataFrame(rows, columns=MATCH_COLUMNS)
    return out


def _why_not(rec: pd.Series, cand: pd.DataFrame) -> str:
    """Why the releases of a receptor's hour do not fit it (first candidate)."""
    c = cand.iloc[0]
    parts = []
    if c["site"] and c["site"] != str(rec["site"]).upper():
        parts.append(f"site {c['site']}")
    if np.isfinite(c["release_lon"]) and (abs(c["release_lon"] - rec["lon"]) > POSITION_TOLERANCE_DEG
                                          or abs(c["release_lat"] - rec["lat"]) > POSITION_TOLERANCE_DEG):
        parts.append(f"released at {c['release_lon']:.3f}E {c['release_lat']:.3f}N")
    if np.isfinite(c["release_height"]):
        parts.append(f"height {c['release_height']:g} m vs inlet {float(rec['agl']):g} m")
    return f"{Path(c['file']).name} in its hour: " + ", ".join(parts)


def write_matches(path: str | os.PathLike, matches: pd.DataFrame) -> Path:
    """matches.csv (atomic); times ISO."""
    out = matches[MATCH_COLUMNS].copy()
    for c in ("time", "release_time"):
        out[c] = pd.to_datetime(out[c]).dt.strftime("%Y-%m-%dT%H:%M:%S")
    return atomic_write(path, lambda p: out.to_csv(p, index=False))


def read_matches(path: str | os.PathLike) -> pd.DataFrame:
    """Read matches.csv written by :func:`write_matches`."""
    df = pd.read_csv(path, dtype={"receptor_id": str, "site": str, "file": str, "release": str})
    missing = [c for c in MATCH_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; re-run rule footprint_matches")
    for c in ("time", "release_time"):
        df[c] = pd.to_datetime(df[c])
    return df


# --------------------------------------------------------------------------------------------
# hourly bins
# --------------------------------------------------------------------------------------------
def _spread(hours: pd.DatetimeIndex, fields: list[tuple[pd.Timestamp, int, np.ndarray]]):
    """Sum ``(first hour, n hours, field)`` pieces, each spread evenly over its hours."""
    out = np.zeros((len(hours),) + fields[0][2].shape)
    for first, n, f in fields:
        k0 = int((first - hours[0]) / pd.Timedelta("1h"))
        out[k0:k0 + n] += f / n
    return out


def hourly_bins(one: xr.Dataset, n_hours: int) -> xr.DataArray:
    """One receptor of :func:`transport.read_footprints` as ``foot(time, lat, lon)`` on clock
    hours (rules in the module docstring); the total is conserved exactly."""
    release = pd.Timestamp(one["release_time"].values)
    h0 = release.floor("h")
    if "foot_hires" in one:
        back = np.asarray(one["back"].values, float)
        hires = np.asarray(one["foot_hires"].values, float)
        width = np.diff(back)
        if len(back) < 2 or np.any(width <= 0) or np.any(width != np.round(width)) or \
                np.any(back != np.round(back)):
            raise FootprintFormatError(
                f"{one.attrs.get('source_file')}: H_back {back.tolist()} is not whole, increasing "
                "hours; cannot place fp_HiTRes on clock hours")
        pieces = [(h0 - pd.Timedelta(hours=int(back[k] + width[k] - 1)), int(width[k]), hires[k])
                  for k in range(len(back) - 1)]
        oldest = pieces[-1][0]
        pieces.append((oldest - pd.Timedelta(hours=RESIDUAL_HOURS), RESIDUAL_HOURS, hires[-1]))
    elif "time" in one["foot"].dims:  # hourly bins already
        foot = to_clock_hours(one["foot"].transpose("time", "lat", "lon"))
        return foot.astype(np.float64)
    else:
        n = int(n_hours)
        pieces = [(h0 - pd.Timedelta(hours=n - 1), n, np.asarray(one["foot"].values, float))]
    first = min(p[0] for p in pieces)
    hours = pd.date_range(first, h0, freq="h")
    return xr.DataArray(_spread(hours, pieces), dims=("time", "lat", "lon"),
                        coords={"time": hours.values, "lat": one["lat"].values,
                                "lon": one["lon"].values}, name="foot",
                        attrs={"units": FOOT_UNITS})


def regular_centres(c: np.ndarray, what: str) -> np.ndarray:
    """Centres stored in float32 (NAME, openghg) made exactly regular when they are a regular
    axis to float32 rounding (steps equal to 1e-4 relative); others are returned unchanged (the
    regridder then refuses irregular ones, naming the axis)."""
    c = np.asarray(c, np.float64)
    if c.size < 3:
        return c
    reg = np.linspace(c[0], c[-1], c.size)
    step = abs(c[-1] - c[0]) / (c.size - 1)
    if np.max(np.abs(c - reg)) <= 1e-4 * step:
        return reg
    return c


# --------------------------------------------------------------------------------------------
# site-day files
# --------------------------------------------------------------------------------------------
def _on_state_grid(foot: xr.DataArray, grid: Grid, nested: NestedGrid | None = None):
    """``(foot on the state grid (nt, ny, nx), total per hour incl. outside, times, outer)``;
    ``outer`` = ``(foot_outer (nt, ny_o, nx_o) zero in the hole, beyond the outer box (nt,))``
    with an enabled ``nested`` grid, else None. The outer cells take the conservative regridding
    onto the full outer grid minus its hole, which is exactly the inner box, so per hour inner +
    outer + beyond = the file's total to rounding."""
    foot = foot.sortby("lat").sortby("lon")
    lats = regular_centres(foot["lat"].values, "latitude")
    lons = regular_centres(foot["lon"].values, "longitude")
    vals = np.asarray(foot.values, np.float64)
    total = vals.sum(axis=(1, 2))
    outer = None
    if nested is not None and nested.enabled:
        wy, wx = regrid_weights(lons, lats, nested.outer)
        full, beyond = apply_weights(vals, wy, wx)
        full[:, ~nested.outer_mask] = 0.0
        outer = (full, beyond)
    if is_aligned(lons, lats, grid) and len(lons) == grid.nx and len(lats) == grid.ny and \
            np.allclose(lons, grid.lon) and np.allclose(lats, grid.lat):
        return vals, total, foot["time"].values, outer
    wy, wx = regrid_weights(lons, lats, grid)
    g, _ = apply_weights(vals, wy, wx)
    return g, total, foot["time"].values, outer


def _receptor_dataset(rid: str, release, foot: xr.DataArray, grid: Grid, source: str,
                      resolution: str, nested: NestedGrid | None = None) -> xr.Dataset:
    g, total, times, outer = _on_state_grid(foot, grid, nested)
    ds = xr.Dataset(
        {"foot": (("time", "lat", "lon"), g), "foot_total": (("time",), total)},
        coords={"time": times, "lat": grid.lat, "lon": grid.lon},
        attrs={"receptor_id": rid, "release_time": pd.Timestamp(release).isoformat(),
               "source_file": source, "time_resolution": resolution})
    if outer is not None:
        ds["foot_outer"] = (("time", "olat", "olon"), outer[0].astype(np.float32))
        ds["foot_outside"] = (("time",), outer[1])
        ds = ds.assign_coords(olat=nested.outer.lat, olon=nested.outer.lon)
    return ds


def site_day_from_files(matches: pd.DataFrame, grid: dict, out_path: str | os.PathLike,
                        n_hours: int, layer_height: float | None = None,
                        outer_grid: dict | None = None) -> dict:
    """Write the site-day file of ``matches`` (rows of matches.csv for one site-day) on the state
    ``grid`` and an empty failures CSV beside it; returns a summary dict.

    Each receptor's total sensitivity is kept: Σ foot over the state grid + the part outside it
    (``foot_total`` − grid sum, the Jacobian's ``outside``) = the file's total for that release.
    With an enabled ``outer_grid`` (config block) the part outside the inner grid is regridded
    conservatively onto the outer cells (``foot_outer``), the rest is ``foot_outside``.
    """
    from .stilt_driver import NESTED_ALGORITHM, FAILURE_COLUMNS, combine, failures_path, foot_encoding

    g = Grid.from_config(grid)
    nested = NestedGrid.from_config({"grid": g.as_dict(), "outer_grid": outer_grid})
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    done, resolutions = [], set()
    for f, rows in matches.groupby("file", sort=False):
        ds = read_footprints(f, layer_height=layer_height)
        res = _time_resolution(ds)
        resolutions.add(res)
        ids = [str(v) for v in ds["receptor"].values]
        for r in rows.itertuples(index=False):
            if str(r.release) not in ids:
                raise FootprintMatchError(f"{f}: release {r.release!r} of receptor "
                                          f"{r.receptor_id} is not in the file any more; re-run "
                                          "rule footprint_matches")
            one = ds.isel(receptor=ids.index(str(r.release)))
            foot = hourly_bins(one, n_hours)
            done.append(_receptor_dataset(str(r.receptor_id), one["release_time"].values, foot, g,
                                          str(f), res, nested))
    order = {rid: k for k, rid in enumerate(matches["receptor_id"].astype(str))}
    done.sort(key=lambda d: order[d.attrs["receptor_id"]])
    site_day = combine(done, nested if nested.enabled else g)
    if "integrated" in resolutions:
        logger.warning("%s: %d receptor(s) from footprints integrated over the back period: spread "
                       "evenly over the %d h up to the release (no timing in the file)", out_path,
                       len(done), int(n_hours))
    site_day.attrs.update({
        "model": "footprints read from files (transport.footprints_from: files)",
        "time_resolution": ",".join(sorted(resolutions)),
        "source_files": ",".join(sorted({str(d.attrs["source_file"]) for d in done})),
        "n_hours_back": int(n_hours), "grid": str(g.as_dict())})
    if layer_height is not None:
        site_day.attrs["footprint_layer_height_m"] = float(layer_height)
    enc = {"foot": foot_encoding(), "foot_total": {"dtype": "float64"}}
    if nested.enabled:
        site_day.attrs.update({**nested.attrs(), "nested_algorithm": NESTED_ALGORITHM})
        enc["foot_outer"] = foot_encoding()
        beyond = site_day["foot_outside"].values.sum() / max(site_day["foot_total"].values.sum(), 1e-300)
        logger.info("%s: share of the files' sensitivity on the inner grid %.3f, on the outer cells "
                    "%.3f, beyond the outer box %.3f", out_path,
                    site_day["foot"].values.sum() / max(site_day["foot_total"].values.sum(), 1e-300),
                    site_day["foot_outer"].values.sum() / max(site_day["foot_total"].values.sum(), 1e-300),
                    beyond)
    atomic_write(out_path, lambda p: site_day.to_netcdf(p, encoding=enc))
    empty = pd.DataFrame(columns=[c for c in FAILURE_COLUMNS if c not in ("site", "day")])
    atomic_write(failures_path(out_path), lambda p: empty.to_csv(p, index=False))
    return {"n_receptors": len(matches), "n_done": len(done),
            "time_resolution": sorted(resolutions)}
