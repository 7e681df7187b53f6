"""Run HYSPLIT-STILT (pystilt) for the receptors of one site-day and write their footprints.

One call = one site-day (the Snakemake job unit). For each receptor:

1. ``stilt.run_trajectories`` runs HYSPLIT backward ``n_hours`` with ``numpar`` particles, a fixed
   seed (``krand=2``, ``seed``) and the mixing-depth option ``kmixd``, in a fresh absolute
   directory under the work directory;
2. ``stilt.calc_footprint`` grids the particles on the footprint grid. pystilt bins hours relative
   to the release time (release at mm:30 gives bins mm:30-mm:30); we want clock hours, so particle
   ages are shifted by the release minute and the receptor time moved to the next full hour, which
   makes pystilt's ``floor(age/60)`` bins fall on clock hours (the kernel widths depend only on
   age differences and are unchanged; the near-receptor track interpolation is done before the
   shift, on the true ages);
3. the total sensitivity of every clock hour (all particles, wherever they are) is kept beside the
   gridded footprint, so the mass outside the grid is known;
4. the result is cached as ``{work_dir}/{receptor_id}.nc`` (written atomically) with the attribute
   ``cache_key``: a hash of everything the footprint depends on (:func:`receptor_cache_inputs`:
   receptor position, height and time, every setting that changes the result, the grid, the
   content checksums of the met files its window needs, the pystilt and HYSPLIT versions and the
   HYSPLIT binary, the gridding algorithm). A cached receptor whose key matches is reused; any
   other is recomputed and overwritten (logged as ``stale cache: <what changed>``). A receptor
   HYSPLIT fails on is logged, listed in the failures CSV and left out of the site-day file; the
   next run retries it;
5. an I/O fault (disk full, no permission, read-only file system) while HYSPLIT runs, while a
   cache or site-day file is written or while the met is read stops the job with
   :class:`gzcarbon.atomic.FileIOError` naming the file and the cause; it is never recorded as a
   HYSPLIT failure.

The site-day file ``foot(receptor, time, lat, lon)`` (float32, zlib) holds every receptor that
succeeded, on a common hourly axis, plus ``foot_total(receptor, time)``: the sensitivity of each
hour summed over all space (ppm / (µmol m-2 s-1)), whose difference to the grid sum is the
sensitivity outside the grid.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time as _time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from gzcarbon.atomic import FileIOError, atomic_write, diagnose, fault_errno, io_message, read_fault
from gzcarbon.grid import Grid, NestedGrid
from .arl import check_met_coverage, met_files_for, read_arl_index

logger = logging.getLogger(__name__)

FOOT_UNITS = "ppm / (umol m-2 s-1)"
ENCODING = {"zlib": True, "complevel": 4, "dtype": "float32"}  # portable fallback


def foot_encoding() -> dict:
    """NetCDF encoding of footprints: zstd (10x faster to read than zlib, smaller) when the
    netCDF4 build has the plugin, else zlib."""
    global _ENCODING
    if _ENCODING is None:
        try:
            with tempfile.TemporaryDirectory() as d:
                xr.Dataset({"a": ("x", np.zeros(4, np.float32))}).to_netcdf(
                    Path(d) / "t.nc", encoding={"a": {"compression": "zstd", "complevel": 1}})
            _ENCODING = {"compression": "zstd", "complevel": 1, "dtype": "float32"}
        except Exception:  # netCDF4 without zstd
            _ENCODING = dict(ENCODING)
    return dict(_ENCODING)


_ENCODING = None


@dataclass
class StiltSettings:
    """Transport settings (config ``transport``)."""

    n_hours: int = 24  # hours back (positive number)
    numpar: int = 100
    seed: int = 7
    kmixd: int = 0
    timeout: int = 1800  # seconds per receptor
    smooth_factor: float = 1.0
    #: hours back covered by the near-field run (``numpar`` particles, output every minute); the
    #: later hours come from a far-field run of ``far_numpar`` particles over all ``n_hours`` with
    #: output every ``far_output_minutes``. 0 (or >= n_hours): one run of ``numpar`` particles.
    near_field_hours: int = 6
    far_numpar: int = 25
    far_output_minutes: int = 10
    #: the split is used only for receptors released between these local solar hours (daytime
    #: mixed layer); others get one run of ``numpar`` particles
    near_field_solar_hours: list = field(default_factory=lambda: [10.0, 18.0])
    extra: dict = field(default_factory=dict)  # further HYSPLIT namelist parameters

    @classmethod
    def from_config(cls, transport: dict) -> "StiltSettings":
        known = {"n_hours", "numpar", "seed", "kmixd", "timeout", "smooth_factor",
                 "near_field_hours", "far_numpar", "far_output_minutes", "near_field_solar_hours"}
        kw = {k: transport[k] for k in known if k in transport}
        if "near_field_solar_hours" in kw:
            kw["near_field_solar_hours"] = [float(h) for h in kw["near_field_solar_hours"]]
        s = cls(**kw, extra=dict(transport.get("hysplit", {}) or {}))
        if int(s.n_hours) <= 0:
            raise ValueError(f"config transport.n_hours must be a positive number of hours back, "
                             f"got {s.n_hours}")
        if "outdt" in s.extra and s.split:
            raise ValueError("config transport.hysplit.outdt cannot be combined with "
                             "transport.near_field_hours > 0: the near-field run writes every "
                             "step and the far-field run every transport.far_output_minutes; set "
                             "near_field_hours: 0 to choose outdt yourself")
        return s

    @property
    def split(self) -> bool:
        """True when footprints (of receptors in ``near_field_solar_hours``) come from a
        near-field and a far-field run."""
        return 0 < int(self.near_field_hours) < int(self.n_hours)

    def split_for(self, release, lon: float) -> bool:
        """True when this receptor's footprint comes from the split: ``split`` and a release
        between ``near_field_solar_hours`` local solar time (UTC + longitude / 15°)."""
        if not self.split:
            return False
        t = pd.Timestamp(release)
        solar = (t.hour + t.minute / 60.0 + float(lon) / 15.0) % 24.0
        start, end = (float(h) for h in self.near_field_solar_hours)
        return (start <= solar < end) if start <= end else (solar >= start or solar < end)


#: Names of the per-hour links that let pystilt find ARL files given as an explicit list.
LINK_FORMAT = "%Y%m%d%H"


def link_met_hours(indexes: Sequence, start, end, link_dir: str | os.PathLike) -> dict:
    """pystilt met mapping for ARL files of *any* names (an explicit list: GDAS ``gdas1.jan25.w1``,
    ``hysplit.t00z.namsf``, ...), which a strftime pattern cannot name.

    pystilt finds met files by the start of their names (``file_format`` for each ``file_tres``
    step) and then resolves symbolic links and drops duplicates. So ``link_dir`` gets, for every
    hour from ``start`` to ``end``, one link ``YYYYmmddHH_<k>`` per file whose time steps reach
    that hour (from one record interval before its first step to one after its last), pointing to
    the file itself: pystilt (``file_format: %Y%m%d%H``, ``file_tres: 1h``) then hands HYSPLIT
    exactly the real files a run's window needs, each once. ``indexes``: the files'
    :class:`transport.arl.ArlIndex` (from :func:`transport.arl.check_met_coverage`).
    """
    link_dir = Path(link_dir)
    link_dir.mkdir(parents=True, exist_ok=True)
    spans = []
    for ix in indexes:
        if not ix.times:
            continue
        step = ix.step or pd.Timedelta(hours=1)
        spans.append((min(ix.times) - step, max(ix.times) + step, Path(ix.path).resolve()))
    for h in pd.date_range(pd.Timestamp(start).floor("h"), pd.Timestamp(end).ceil("h"), freq="h"):
        for k, (a, b, target) in enumerate(spans):
            if a <= h <= b:
                link = link_dir / f"{h.strftime(LINK_FORMAT)}_{k}"
                if not link.is_symlink():
                    os.symlink(target, link)
    return {"directory": str(link_dir.resolve()), "file_format": LINK_FORMAT, "file_tres": "1h"}


def met_config(met_files: Sequence[str | os.PathLike], file_format: str = "%Y%m%d_gz.arl") -> dict:
    """pystilt met mapping for daily ARL files named by ``file_format`` in one directory
    (files of other names: :func:`link_met_hours`)."""
    dirs = {Path(p).resolve().parent for p in met_files}
    if len(dirs) != 1:
        raise ValueError(f"met files must share one directory, got {sorted(map(str, dirs))}")
    return {"directory": str(dirs.pop()), "file_format": file_format, "file_tres": "1D"}


# --------------------------------------------------------------------------------------------------
# cache key: everything a receptor's footprint depends on
# --------------------------------------------------------------------------------------------------
#: Version of our own gridding of pystilt's particles (clock-hour shift, hourly totals, left-domain
#: count). Bump it when ``_clock_hour_footprint``, ``left_domain_fraction`` or ``run_receptor``
#: change the numbers they produce: every cached footprint is then recomputed.
FOOTPRINT_ALGORITHM = "clock-hour-v1"
#: Version of the key layout itself.
CACHE_KEY_VERSION = 1
#: StiltSettings fields that cannot change a footprint that was computed (only whether it is).
NOT_IN_KEY = {"timeout"}
#: StiltSettings fields of the near/far split: in the key only when the split is on (one run of
#: ``numpar`` particles, as before the split existed, keeps its cache).
SPLIT_FIELDS = ("near_field_hours", "far_numpar", "far_output_minutes", "near_field_solar_hours")
#: Version of the far-field gridding of the split (interval midpoints); in the key with the split.
SPLIT_ALGORITHM = "far-interval-midpoint-v1"
#: Version of the nested gridding (inner + outer grid, exit points: ``_nested_hour_footprint``,
#: ``exit_points``); in the key, with the outer grid, when an outer grid is enabled (a footprint
#: without outer cells never satisfies a nested run, and the inner-only key is unchanged).
NESTED_ALGORITHM = "nested-padding-v1"

_SOFTWARE: dict[str, dict] = {}
_MET_SUMS: dict[tuple, str] = {}


def _blake2b_file(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def software_identity(settings: "StiltSettings | None" = None) -> dict:
    """pystilt version, HYSPLIT version and a content hash of the ``hycs_std`` binary that runs.

    The binary is the one in ``hysplit.exe_dir`` (config) or pystilt's bundled build; computed once
    per process. Unknown parts are ``"unknown: <why>"`` (e.g. no bundled build for the platform:
    HYSPLIT cannot run there either)."""
    exe_dir = (settings.extra.get("exe_dir") if settings is not None else None) or None
    memo = str(exe_dir)
    if memo not in _SOFTWARE:
        out = {}
        try:
            import stilt

            out["pystilt"] = str(getattr(stilt, "__version__", "unknown"))
        except Exception as exc:  # pystilt missing: no run possible, but keys still comparable
            out["pystilt"] = f"unknown: {type(exc).__name__}"
        try:
            from stilt.transport.hysplit.driver import HYCS_STD_FILE, _bundled_exe_dir
            from stilt.transport.hysplit.model import hysplit_version

            d = Path(exe_dir) if exe_dir else _bundled_exe_dir()
            out["hysplit"] = hysplit_version(exe_dir)
            out["hycs_std_blake2b"] = _blake2b_file(d / HYCS_STD_FILE)
        except Exception as exc:
            out.setdefault("hysplit", f"unknown: {type(exc).__name__}: {exc}"[:200])
            out.setdefault("hycs_std_blake2b", "unknown")
        _SOFTWARE[memo] = out
    return dict(_SOFTWARE[memo])


def settings_identity(settings: "StiltSettings") -> dict:
    """Every :class:`StiltSettings` field that changes a footprint (all but ``timeout``)."""
    d = dataclasses.asdict(settings)
    skip = set(NOT_IN_KEY) | (set() if settings.split else set(SPLIT_FIELDS))
    out = {k: v for k, v in sorted(d.items()) if k not in skip}
    if settings.split:
        out["split_algorithm"] = SPLIT_ALGORITHM
    return out


def met_checksum(path: str | os.PathLike, memo_dir: str | os.PathLike | None = None) -> str:
    """blake2b content hash of a met file.

    Memoised per process and, with ``memo_dir``, in a small JSON per met file there, valid while the
    file's size, mtime, ctime and inode are unchanged (any rewrite, copy or ``touch`` changes
    ctime), so a month of met is read once, not once per site-day job. An I/O fault while reading
    raises :class:`FileIOError` naming the met file."""
    path = Path(path).resolve()
    try:
        st = path.stat()
        ident = (str(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
        if ident in _MET_SUMS:
            return _MET_SUMS[ident]
        memo = None
        if memo_dir is not None:
            tag = hashlib.blake2b(str(path).encode(), digest_size=4).hexdigest()
            memo = Path(memo_dir) / f"{path.name}.{tag}.json"
            try:
                m = json.loads(memo.read_text())
                if tuple(m["ident"]) == ident:
                    _MET_SUMS[ident] = m["blake2b"]
                    return m["blake2b"]
            except (OSError, ValueError, KeyError, TypeError):
                pass  # no memo yet, or another file's: hash the file
        value = _blake2b_file(path)
    except OSError as exc:
        fault = read_fault(path, exc, "met file")
        if fault is not None:
            raise fault from exc
        raise
    _MET_SUMS[ident] = value
    if memo is not None:
        atomic_write(memo, lambda p: Path(p).write_text(json.dumps(
            {"ident": list(ident), "blake2b": value})))
    return value


def needed_met_names(release, n_hours: int, file_format: str) -> list[str]:
    """Names of the met files a backward run of ``n_hours`` from ``release`` reads: every hour
    from ``floor(release) - n_hours`` to ``floor(release) + 1h`` (as :func:`check_met_coverage`)."""
    t0 = pd.Timestamp(release).floor("h")
    hours = pd.date_range(t0 - pd.Timedelta(hours=abs(int(n_hours))), t0 + pd.Timedelta(hours=1),
                          freq="h")
    return sorted({h.strftime(file_format) for h in hours})


def receptor_cache_inputs(rec, grid: Grid | NestedGrid, settings: "StiltSettings", met_sums: dict,
                          met_file_format: str | None, software: dict | None = None,
                          met_names: Sequence[str] | None = None) -> dict:
    """Everything a receptor's footprint depends on, as a JSON-able dict (see module docstring).

    ``met_sums`` maps met file names to content checksums; files of the receptor's window that are
    not in it count as ``"absent"``. The window's files are named by ``met_file_format``, or given
    as ``met_names`` (explicit met lists: :func:`explicit_met_names`)."""
    release = pd.Timestamp(rec["time"])
    if met_names is None:
        met_names = needed_met_names(release, int(settings.n_hours), met_file_format)
    met = {n: met_sums.get(n, "absent") for n in sorted(met_names)}
    nested = grid if isinstance(grid, NestedGrid) else NestedGrid(grid)
    grid = nested.inner
    out = {
        "key_version": CACHE_KEY_VERSION,
        "receptor": {"receptor_id": str(rec["receptor_id"]), "time": release.isoformat(),
                     "lon": float(rec["lon"]), "lat": float(rec["lat"]),
                     "agl": float(rec["agl"])},
        "settings": settings_identity(settings),
        "grid": {k: float(v) for k, v in grid.as_dict().items()},
        "met": met,
        "software": dict(software if software is not None else software_identity(settings)),
        "algorithm": FOOTPRINT_ALGORITHM,
    }
    if nested.enabled:
        out["outer_grid"] = {k: float(v) for k, v in nested.outer.as_dict().items()}
        out["nested_algorithm"] = NESTED_ALGORITHM
    return out


def explicit_met_names(indexes: Sequence, release, n_hours: int) -> list[str]:
    """Names of the files of an explicit met list that a backward run of ``n_hours`` from
    ``release`` reads (:func:`transport.arl.met_files_for` over its window)."""
    t0 = pd.Timestamp(release).floor("h")
    return [p.name for p in met_files_for(indexes, t0 - pd.Timedelta(hours=abs(int(n_hours))),
                                          t0 + pd.Timedelta(hours=1))]


def cache_key(inputs: dict) -> str:
    """Hash of the canonical JSON of :func:`receptor_cache_inputs`."""
    text = json.dumps(inputs, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def stale_reason(old: dict | None, new: dict) -> str:
    """What differs between the stored inputs of a cache file and the current ones (short)."""
    if not old:
        return "no cache key (written by an older version)"
    diffs = []

    def walk(a, b, where):
        if isinstance(a, dict) and isinstance(b, dict):
            for k in sorted(set(a) | set(b)):
                walk(a.get(k, "<none>"), b.get(k, "<none>"), f"{where}.{k}" if where else k)
        elif a != b:
            diffs.append(f"{where} {a} -> {b}")

    walk(old, new, "")
    return "; ".join(diffs)[:400] or "key differs"


def _read_cache(cache: Path, key: str, inputs: dict) -> tuple[xr.Dataset | None, str]:
    """The cached footprint when its key matches, else ``(None, why it is stale)``."""
    try:
        with xr.open_dataset(cache) as ds:
            if ds.attrs.get("cache_key") == key:
                return ds.load(), ""
            if "cache_key" not in ds.attrs:
                return None, "no cache key (written by an older version: provenance unknown)"
            try:
                old = json.loads(ds.attrs.get("cache_inputs", "null"))
            except ValueError:
                old = None
    except Exception as exc:
        fault = read_fault(cache, exc, "cached footprint")
        if fault is not None:
            raise fault from exc
        return None, f"unreadable ({type(exc).__name__}: {exc})"[:300]
    return None, stale_reason(old, inputs)


#: the particle columns pystilt's early-timestep interpolation fills on the rows it inserts
_INTERPOLATED_COLUMNS = ("particle", "age", "lon", "lat", "foot")


def early_timesteps(p: pd.DataFrame, res: float, time_sign: int) -> pd.DataFrame:
    """pystilt's near-receptor interpolation (``gridding._interpolate_early_timesteps``): the same
    frame, without its per-particle merges when they cannot add a row.

    When the particles' median step in the first 100 minutes exceeds a grid cell, pystilt inserts
    rows at finer times with only ``lon``, ``lat`` and ``foot`` filled, then drops every row with a
    missing value (STILT-R's ``na.omit``), sorts by particle and age (youngest first), rounds the
    ages to 0.1 min and rescales ``foot`` so that the windows 0-10, 10-20 and 20-100 min keep their
    sums. A HYSPLIT-STILT particle table has further columns (``zagl``, ``mlht``, ...): none of the
    inserted rows survives, and the merges (a quarter second per far-field run of 25 particles with
    10-minute output) only reorder the table. This function does the same sort, rounding and
    rescaling directly (the same operations in the same order, so the same numbers bit for bit:
    tests/transport/test_early_timesteps.py) and calls pystilt whenever a row could survive (no
    further column, a missing value, or an age given twice for a particle)."""
    from stilt.footprint import gridding

    age = p["age"].to_numpy(float)
    early = p[np.abs(age) < 100]
    if early.empty:
        return p
    se = early.sort_values(by=["particle", "age"])
    med = se.groupby("particle", sort=False)[["lon", "lat"]].diff().abs().groupby(se["particle"]).median()
    dx, dy = med["lon"].dropna().to_numpy(), med["lat"].dropna().to_numpy()
    dx_med = float(np.median(dx)) if dx.size else np.nan
    dy_med = float(np.median(dy)) if dy.size else np.nan
    if (np.isnan(dx_med) or dx_med <= res) and (np.isnan(dy_med) or dy_med <= res):
        return p  # pystilt returns its input unchanged
    extra = [c for c in p.columns if c not in _INTERPOLATED_COLUMNS]
    if not extra or p.isna().to_numpy().any() or p.duplicated(["particle", "age"]).any():
        return gridding._interpolate_early_timesteps(p, xres=res, yres=res, time_sign=time_sign)
    atime = np.abs(p["age"])
    sums = [p.loc[atime <= 10, "foot"].sum(), p.loc[(atime > 10) & (atime <= 20), "foot"].sum(),
            p.loc[(atime > 20) & (atime <= 100), "foot"].sum()]
    q = p.copy()
    q["age"] = q["age"].astype(float)
    for c in extra:  # the merge's missing values made pystilt's integer columns float
        if q[c].dtype.kind in "iub":
            q[c] = q[c].astype(float)
    q = q.sort_values(["particle", "age"], ascending=[True, False], kind="stable").reset_index(drop=True)
    q["age"] = q["age"].round(1)
    atime = np.abs(q["age"])
    for mask, total in zip((atime <= 10, (atime > 10) & (atime <= 20), (atime > 20) & (atime <= 100)),
                           sums, strict=True):
        s = q.loc[mask, "foot"].sum()
        if s > 0:
            q.loc[mask, "foot"] *= total / s
    return q


def _clock_hour_footprint(particles: pd.DataFrame, release: pd.Timestamp, grid: Grid,
                          n_hours: int, smooth_factor: float):
    """Footprint on clock-hour bins and the hourly total sensitivity of one receptor.

    Returns ``(hours, foot (nt, ny, nx) float64, total (nt,))`` with ``hours`` = the clock hours
    ``floor(release) - n_hours .. floor(release)``.
    """
    import stilt

    h0 = release.floor("h")
    m = (release - h0) / pd.Timedelta(minutes=1)  # minutes past the hour
    hours = pd.date_range(h0 - pd.Timedelta(hours=n_hours), h0, freq="h")
    nt = len(hours)
    npar = particles["particle"].nunique()
    # Hourly total sensitivity from the raw particles (clock-hour bins).
    bins = np.floor((particles["age"].to_numpy() + m) / 60.0).astype(int) + n_hours
    ok = (bins >= 0) & (bins < nt)
    total = np.bincount(bins[ok], weights=particles["foot"].to_numpy()[ok], minlength=nt) / npar

    foot = np.zeros((nt, grid.ny, grid.nx))
    sgrid = stilt.Grid(xmin=grid.lon_min, xmax=grid.lon_max, ymin=grid.lat_min,
                       ymax=grid.lat_max, xres=grid.res, yres=grid.res)
    # Near-receptor interpolation on the true ages, then shift ages so hours are clock hours.
    p = particles
    # pystilt 0.1.0a25's own near-receptor interpolation (its result, `early_timesteps`; the private
    # function: pinned version, tests/transport/test_pystilt_contract.py fails if it disappears)
    p = early_timesteps(p.copy(), grid.res, -1)
    p = p.copy()
    p["age"] = p["age"] - (60.0 - m)
    rec = stilt.PointReceptor(time=h0 + pd.Timedelta(hours=1), longitude=0.0, latitude=0.0,
                              altitude=1.0)
    try:
        fp = stilt.calc_footprint(p, rec, sgrid, smooth_factor=smooth_factor)
    except Exception as exc:  # EmptyFootprint: no particle over the grid
        if type(exc).__name__ != "EmptyFootprint":
            raise
        return hours, foot, total
    ft = pd.to_datetime(fp["time"].values)
    idx = ((ft - hours[0]) / pd.Timedelta("1h")).to_numpy()
    if not np.allclose(idx, np.round(idx)):
        raise RuntimeError(f"footprint hours {ft[:3]} are not clock hours (release {release})")
    idx = np.round(idx).astype(int)
    vals = fp.transpose("time", "lat", "lon").values
    if vals.shape[1:] != (grid.ny, grid.nx):
        raise RuntimeError(f"pystilt footprint shape {vals.shape} != grid {(grid.ny, grid.nx)}")
    keep = (idx >= 0) & (idx < nt)
    foot[idx[keep]] += vals[keep]
    return hours, foot, total


def _nested_hour_footprint(particles: pd.DataFrame, release: pd.Timestamp, nested: NestedGrid,
                           n_hours: int, smooth_factor: float):
    """Clock-hour footprint on the inner *and* the outer grid, conserving every hour's sensitivity.

    Returns ``(hours, foot (nt, ny, nx), foot_outer (nt, ny_o, nx_o), outside (nt,), total (nt,))``.
    The inner footprint is pystilt's ``calc_footprint`` exactly (same particles, clock-hour shift,
    kernel widths and padded grid): the trimmed centre of the padded array pystilt smooths on. The
    rest of every particle's sensitivity goes to the outer cells:

    - the *padding* of that array (the 1 km cells around the inner box: kernel mass of particles
      inside spilled out, and smoothed particles of the band just outside) is summed onto the outer
      cells it lies in (the inner cells nest in outer cells, so each padded cell lies in one);
    - particles beyond the band pystilt smooths (outside the inner box by more than the widest
      kernel's half width) are binned, unsmoothed, onto the outer cell they are in;
    - whatever lies outside the outer box is ``outside``.

    ``total`` is the hour's sensitivity of the same (interpolated, shifted) particles, so
    ``foot.sum + foot_outer.sum + outside == total`` per hour up to float64 rounding (the kernels
    sum to 1 and nothing is dropped). The outer cells under the inner box (the hole) stay zero.
    """
    from stilt.footprint import gridding
    from stilt.spatial import _grid_cell_starts

    g, og = nested.inner, nested.outer
    h0 = release.floor("h")
    m = (release - h0) / pd.Timedelta(minutes=1)
    hours = pd.date_range(h0 - pd.Timedelta(hours=n_hours), h0, freq="h")
    nt = len(hours)
    npar = particles["particle"].nunique()
    foot = np.zeros((nt, g.ny, g.nx))
    outer = np.zeros((nt,) + og.shape)
    outside = np.zeros(nt)
    total = np.zeros(nt)
    if particles.empty:
        return hours, foot, outer, outside, total
    # as _clock_hour_footprint + stilt.calc_footprint: interpolation on the true ages, the shift,
    # calc_footprint's own interpolation (a no-op on already interpolated tracks) and rtime
    p = early_timesteps(particles.copy(), g.res, -1)
    p = p.copy()
    p["age"] = p["age"] - (60.0 - m)
    time_sign = int(np.sign(p["age"].median()))
    p = early_timesteps(p, g.res, time_sign)
    min_abs = p["age"].abs().groupby(p["particle"], sort=False).transform("min")
    p["rtime"] = p["age"] - time_sign * min_abs
    rs = (g.res, g.res)
    glong = _grid_cell_starts(g.lon_min, g.lon_max, g.res)
    glati = _grid_cell_starts(g.lat_min, g.lat_max, g.res)
    kernel_df, w = gridding._compute_kernel_bandwidths(p, smooth_factor=smooth_factor, is_longlat=True)
    kmax = gridding._make_gauss_kernel(rs, float(np.max(w))) if len(w) > 0 else np.array([[1.0]])
    xbuf, ybuf = kmax.shape
    glong_buf, glati_buf = gridding._padded_axes(xmin=g.lon_min, ymin=g.lat_min, xres=g.res,
                                                 yres=g.res, n_lon=len(glong), n_lat=len(glati),
                                                 xbuf=xbuf, ybuf=ybuf)
    xbufh, ybufh = (xbuf - 1) // 2, (ybuf - 1) // 2
    lon, lat, fv = (p[c].to_numpy(float) for c in ("lon", "lat", "foot"))
    # the same condition as pystilt's _filter_and_rasterize_particles: these rows are smoothed
    smoothed = ((fv > 0) & (lon >= g.lon_min - xbufh * g.res) & (lon < g.lon_max + xbufh * g.res)
                & (lat >= g.lat_min - ybufh * g.res) & (lat < g.lat_max + ybufh * g.res))
    bins = np.floor(p["age"].to_numpy(float) / 60.0).astype(np.int64) + n_hours + 1
    ok = (bins >= 0) & (bins < nt)
    total = np.bincount(bins[ok], weights=fv[ok], minlength=nt) / npar
    # unsmoothed rows: straight onto the outer cells, or outside the outer box
    raw = ok & ~smoothed
    iy, ix, inside = og.locate(lon[raw], lat[raw])
    hole_y, hole_x = nested.hole
    in_hole = inside & (iy >= hole_y.start) & (iy < hole_y.stop) & (ix >= hole_x.start) & (ix < hole_x.stop)
    if (fv[raw][in_hole] != 0).any():
        raise RuntimeError("particles over the inner grid with negative foot: not a STILT footprint")
    b = bins[raw]
    outside += np.bincount(b[~inside], weights=fv[raw][~inside], minlength=nt) / npar
    flat = (b[inside] * og.ny + iy[inside]) * og.nx + ix[inside]
    outer += np.bincount(flat, weights=fv[raw][inside], minlength=outer.size).reshape(outer.shape) / npar
    pf, layers = gridding._filter_and_rasterize_particles(
        p, glong_buf=glong_buf, glati_buf=glati_buf, xbufh=xbufh, ybufh=ybufh, xmin=g.lon_min,
        xmax=g.lon_max, ymin=g.lat_min, ymax=g.lat_max, xres=g.res, yres=g.res,
        time_integrate=False)
    if pf.empty:
        return hours, foot, outer, outside, total
    arr = gridding._accumulate_smoothed_footprint(
        pf, layers=layers, n_lon_buf=len(glong_buf), n_lat_buf=len(glati_buf),
        rtimes=kernel_df["rtime"].to_numpy(), w=w, rs=rs) / npar     # (lon_buf, lat_buf, layer)
    idx = np.asarray(layers, dtype=np.int64) + n_hours + 1
    keep = (idx >= 0) & (idx < nt)
    arr, idx = arr[:, :, keep], idx[keep]
    foot[idx] += arr[xbuf:xbuf + len(glong), ybuf:ybuf + len(glati), :].transpose(2, 1, 0)
    # the padding: each padded 1 km cell onto the outer cell its centre lies in
    ring = np.ones((len(glong_buf), len(glati_buf)), dtype=bool)
    ring[xbuf:xbuf + len(glong), ybuf:ybuf + len(glati)] = False
    ci, cj = np.nonzero(ring)
    oy, ox, o_in = og.locate(glong_buf[ci] + g.res / 2, glati_buf[cj] + g.res / 2)
    mass = arr[ci, cj, :]                                          # (n_ring, n_layer)
    outside[idx] += mass[~o_in].sum(axis=0)
    ocell = oy[o_in] * og.nx + ox[o_in]
    for k, t in enumerate(idx):
        outer[t] += np.bincount(ocell, weights=mass[o_in, k], minlength=og.n_cells).reshape(og.shape)
    return hours, foot, outer, outside, total


#: Codes of ``exit_reason`` (docs/formats.md, "Footprints").
EXIT_LEFT_DOMAIN, EXIT_END_OF_RUN, EXIT_STOPPED = 1, 0, 2


def exit_points(particles: pd.DataFrame, release: pd.Timestamp, box: Grid,
                n_hours: int) -> dict:
    """Where and when each particle left ``box`` (the outer domain), or its last position.

    Per particle (sorted by particle number), from its output rows youngest to oldest: the first
    position outside ``box`` (``exit_reason`` 1); if it never left, its oldest position:
    ``exit_reason`` 0 when it lasted the whole ``n_hours`` run, 2 when HYSPLIT stopped it earlier
    (it left the met domain or its top without crossing ``box``'s edge at an output step). Returns
    arrays ``particle, lon, lat, agl (m above ground), time (datetime64), reason``.
    """
    cols = ("particle", "age", "lon", "lat", "zagl")
    if particles.empty:
        return {"particle": np.zeros(0, np.int64), "lon": np.zeros(0), "lat": np.zeros(0),
                "agl": np.zeros(0), "time": np.zeros(0, "datetime64[ns]"),
                "reason": np.zeros(0, np.int8)}
    p = particles.loc[:, [c for c in cols if c in particles]].copy()
    if "zagl" not in p:
        p["zagl"] = np.nan
    p["a"] = p["age"].abs()
    p = p.sort_values(["particle", "a"], kind="stable")
    outside = ~((p["lon"] >= box.lon_min) & (p["lon"] < box.lon_max)
                & (p["lat"] >= box.lat_min) & (p["lat"] < box.lat_max))
    p["out"] = outside.to_numpy()
    first_out = p[p["out"]].groupby("particle", sort=True).head(1).set_index("particle")
    last = p.groupby("particle", sort=True).tail(1).set_index("particle")
    ages = np.unique(p["a"].to_numpy())
    step = float(np.median(np.diff(ages))) if ages.size > 1 else 1.0
    stopped = last["a"].to_numpy() < 60.0 * abs(int(n_hours)) - 1.5 * step
    reason = np.where(stopped, EXIT_STOPPED, EXIT_END_OF_RUN).astype(np.int8)
    pick = last.copy()
    left = pick.index.isin(first_out.index)
    pick.loc[left, ["a", "lon", "lat", "zagl"]] = first_out.loc[pick.index[left], ["a", "lon", "lat", "zagl"]].to_numpy()
    reason[left] = EXIT_LEFT_DOMAIN
    t = (pd.Timestamp(release) - pd.to_timedelta(pick["a"].to_numpy(float), unit="min")).to_numpy()
    return {"particle": pick.index.to_numpy().astype(np.int64), "lon": pick["lon"].to_numpy(float),
            "lat": pick["lat"].to_numpy(float), "agl": pick["zagl"].to_numpy(float),
            "time": t.astype("datetime64[ns]"), "reason": reason}


def left_domain_fraction(particles: pd.DataFrame, n_hours: int) -> float:
    """Share of particles that stopped before the end of the ``n_hours`` backward run.

    HYSPLIT drops a particle when it leaves the met domain (or its top); pystilt's particle table
    then ends early for it (its oldest ``age`` is younger than ``-60 n_hours`` minutes by more than
    one output step). Their sensitivity after leaving is lost, so this is the share of the
    footprint that a too-small met domain misses.
    """
    if particles.empty:
        return float("nan")
    age = particles["age"].to_numpy(float)
    ages = np.unique(np.abs(age))
    step = float(np.median(np.diff(ages))) if ages.size > 1 else 1.0
    oldest = particles.assign(a=np.abs(age)).groupby("particle")["a"].max().to_numpy()
    return float(np.mean(oldest < 60.0 * abs(int(n_hours)) - 1.5 * step))


def _trajectories(receptor, rid: str, met: dict, settings: StiltSettings, run_dir: Path,
                  n_hours: int, numpar: int, extra: dict) -> pd.DataFrame:
    """One HYSPLIT-STILT run in ``run_dir`` (removed afterwards); an I/O fault raises FileIOError."""
    import stilt

    try:
        return stilt.run_trajectories(
            receptor, met, n_hours=-int(n_hours), numpar=int(numpar), krand=2,
            seed=int(settings.seed), kmixd=int(settings.kmixd), workdir=run_dir,
            timeout=settings.timeout, **extra)
    except Exception as exc:
        # A full disk or a permission problem makes HYSPLIT/pystilt fail too: find out before the
        # run directory (and the space it holds) is removed, and stop the job naming the cause.
        err = diagnose(exc, run_dir)
        if err is not None:
            raise FileIOError(io_message(run_dir, err, f"{type(exc).__name__}: {exc}"[:300],
                                         f"run HYSPLIT for {rid} in"), err, run_dir) from exc
        raise
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def near_field_bins(release, n_hours: int, near_field_hours: int) -> np.ndarray:
    """Which clock-hour bins of a footprint (``floor(release) - n_hours .. floor(release)``, as
    :func:`_clock_hour_footprint`) lie wholly within the first ``near_field_hours`` hours back
    from ``release``: those come from the near-field run, the others from the far-field run."""
    release = pd.Timestamp(release)
    h0 = release.floor("h")
    m = (release - h0) / pd.Timedelta(minutes=1)
    k = np.arange(int(n_hours), -1, -1)  # hours before floor(release), oldest first
    oldest_age = np.where(k == 0, m, m + 60.0 * k)  # minutes back at the old edge of each bin
    return oldest_age <= 60.0 * int(near_field_hours) + 1e-9


def interval_midpoints(particles: pd.DataFrame, lon0: float, lat0: float) -> pd.DataFrame:
    """Each output row's position moved to the middle of its output interval.

    With an output interval of several steps HYSPLIT-STILT writes, per particle and interval, the
    ``foot`` summed over the interval and the position at its end (the oldest, in a backward run).
    Gridding the sum at that end shifts sensitivity away from the receptor, and out of the grid:
    measured on demo receptors with 10-minute output, the in-grid footprint after 4 h came out
    1-2 % low against the same particles written every minute. The midpoint of the interval (the
    mean of its two end positions; the release point before a particle's first row) removes that
    bias to ~0.2 % (docs/performance.md, "Footprint cost")."""
    p = particles.assign(_a=particles["age"].abs()).sort_values(["particle", "_a"])
    for col, start in (("lon", lon0), ("lat", lat0)):
        prev = p.groupby("particle", sort=False)[col].shift(1).fillna(start)
        p[col] = 0.5 * (p[col] + prev)
    return p.drop(columns="_a")


def _mkdtemp(work_dir: Path, prefix: str) -> Path:
    try:
        return Path(tempfile.mkdtemp(prefix=prefix, dir=work_dir)).resolve()
    except OSError as exc:
        err = fault_errno(exc)
        if err is None:
            raise
        raise FileIOError(io_message(work_dir, err, str(exc), "create a HYSPLIT run directory in"),
                          err, work_dir) from exc


class ReceptorFootprint(NamedTuple):
    """One receptor's footprint (:func:`receptor_footprint`). ``foot_outer``, ``outside`` and
    ``exits`` are None without an outer grid."""

    hours: pd.DatetimeIndex
    foot: np.ndarray             # (nt, ny, nx) inner grid
    total: np.ndarray            # (nt,) all space
    n_particles: int
    left_fraction: float         # share of particles that left the met domain early
    foot_outer: np.ndarray | None = None   # (nt, ny_o, nx_o), zero under the inner box
    outside: np.ndarray | None = None      # (nt,) beyond the outer box
    exits: dict | None = None              # exit_points() of the run that lasts n_hours


def _gridded(particles, release, grid: Grid | NestedGrid, n_hours: int, smooth_factor: float):
    """``(hours, foot, total, foot_outer, outside)`` on the inner grid alone or on both."""
    if isinstance(grid, NestedGrid) and grid.enabled:
        hours, foot, outer, outside, total = _nested_hour_footprint(particles, release, grid,
                                                                    n_hours, smooth_factor)
        return hours, foot, total, outer, outside
    inner = grid.inner if isinstance(grid, NestedGrid) else grid
    hours, foot, total = _clock_hour_footprint(particles, release, inner, n_hours, smooth_factor)
    return hours, foot, total, None, None


def receptor_footprint(rec: pd.Series, met: dict, grid: Grid | NestedGrid, settings: StiltSettings,
                       work_dir: Path) -> tuple[ReceptorFootprint, dict]:
    """HYSPLIT-STILT for one receptor: ``(ReceptorFootprint, timings)``.

    ``grid``: the inner :class:`Grid`, or a :class:`NestedGrid` (with an outer grid the footprint
    is gridded on both, :func:`_nested_hour_footprint`, and the particles' exit points from the
    outer box are kept).

    With ``settings.split`` two runs: the near field (``numpar`` particles, ``near_field_hours``
    back, output every 1-minute step as STILT's near-field correction and the 1 km grid need) and
    the far field (``far_numpar`` particles over all ``n_hours``, output every
    ``far_output_minutes``: HYSPLIT sums ``foot`` over the output interval). Each clock-hour bin
    comes wholly from one run (:func:`near_field_bins`), each normalised by its own particles, so
    both parts are unbiased; the far field's sampling noise is that of ``far_numpar`` particles
    (docs/performance.md, "Footprint cost"). The share of particles that left the met domain and
    the exit points come from the run that lasts ``n_hours``."""
    import stilt

    release = pd.Timestamp(rec["time"])
    n_hours = int(settings.n_hours)
    nested = isinstance(grid, NestedGrid) and grid.enabled
    receptor = stilt.PointReceptor(time=release, longitude=float(rec["lon"]),
                                   latitude=float(rec["lat"]), altitude=float(rec["agl"]))
    rid = str(rec["receptor_id"])
    t0 = _time.perf_counter()
    if not settings.split_for(release, float(rec["lon"])):
        particles = _trajectories(receptor, rid, met, settings, _mkdtemp(work_dir, f"run_{rid}_"),
                                  n_hours, settings.numpar, settings.extra)
        t1 = _time.perf_counter()
        hours, foot, total, outer, outside = _gridded(particles, release, grid, n_hours,
                                                      settings.smooth_factor)
        exits = exit_points(particles, release, grid.outer, n_hours) if nested else None
        out = ReceptorFootprint(hours, foot, total, int(particles["particle"].nunique()),
                                left_domain_fraction(particles, n_hours), outer, outside, exits)
        return out, {"trajectories_s": t1 - t0, "footprint_s": _time.perf_counter() - t1}
    near_h = int(settings.near_field_hours)
    near = _trajectories(receptor, rid, met, settings, _mkdtemp(work_dir, f"run_{rid}_near_"),
                         near_h, settings.numpar, settings.extra)
    far = _trajectories(receptor, rid, met, settings, _mkdtemp(work_dir, f"run_{rid}_far_"), n_hours,
                        settings.far_numpar,
                        {**settings.extra, "outdt": int(settings.far_output_minutes)})
    exits = exit_points(far, release, grid.outer, n_hours) if nested else None
    left = left_domain_fraction(far, n_hours)
    far = interval_midpoints(far, float(rec["lon"]), float(rec["lat"]))
    t1 = _time.perf_counter()
    hours, foot_n, total_n, outer_n, outside_n = _gridded(near, release, grid, n_hours,
                                                          settings.smooth_factor)
    _, foot_f, total_f, outer_f, outside_f = _gridded(far, release, grid, n_hours,
                                                      settings.smooth_factor)
    use_near = near_field_bins(release, n_hours, near_h)
    foot = np.where(use_near[:, None, None], foot_n, foot_f)
    total = np.where(use_near, total_n, total_f)
    outer = outside = None
    if nested:
        outer = np.where(use_near[:, None, None], outer_n, outer_f)
        outside = np.where(use_near, outside_n, outside_f)
    out = ReceptorFootprint(hours, foot, total, int(near["particle"].nunique()), left, outer,
                            outside, exits)
    return out, {"trajectories_s": t1 - t0, "footprint_s": _time.perf_counter() - t1}


def run_receptor(rec: pd.Series, met: dict, grid: Grid | NestedGrid, settings: StiltSettings,
                 work_dir: Path) -> tuple[xr.Dataset, dict]:
    """Run one receptor; returns its footprint dataset and timings (seconds). With a nested grid
    the dataset also holds ``foot_outer``, ``foot_outside`` and the ``exit_*`` variables
    (docs/formats.md, "Footprints")."""
    release = pd.Timestamp(rec["time"])
    fp, tim = receptor_footprint(rec, met, grid, settings, work_dir)
    inner = grid.inner if isinstance(grid, NestedGrid) else grid
    ds = xr.Dataset(
        {"foot": (("time", "lat", "lon"), fp.foot.astype(np.float32), {"units": FOOT_UNITS}),
         "foot_total": (("time",), fp.total, {"units": FOOT_UNITS, "long_name":
                        "sensitivity of the hour summed over all space (inside and outside grid)"})},
        coords={"time": fp.hours.values, "lat": inner.lat, "lon": inner.lon},
        attrs={"receptor_id": str(rec["receptor_id"]), "release_time": release.isoformat(),
               "n_particles": fp.n_particles, "left_domain_fraction": fp.left_fraction})
    if fp.foot_outer is not None:
        og = grid.outer
        ds["foot_outer"] = (("time", "olat", "olon"), fp.foot_outer.astype(np.float32),
                            {"units": FOOT_UNITS})
        ds["foot_outside"] = (("time",), fp.outside, {"units": FOOT_UNITS})
        ds = ds.assign_coords(olat=og.lat, olon=og.lon)
        e = fp.exits
        ds["exit_particle"] = (("particle",), e["particle"])
        for k in ("lon", "lat", "agl", "time", "reason"):
            ds[f"exit_{k}"] = (("particle",), e[k])
        ds.attrs.update(grid.attrs())
    if settings.split_for(release, float(rec["lon"])):
        ds.attrs.update({"near_field_hours": int(settings.near_field_hours),
                         "far_numpar": int(settings.far_numpar),
                         "far_output_minutes": int(settings.far_output_minutes)})
    return ds, tim


def _write_atomic(ds: xr.Dataset, path: Path, encoding: dict) -> None:
    """NetCDF through :func:`gzcarbon.atomic.atomic_write` (unique temporary name; an I/O fault
    raises :class:`FileIOError` naming the file and the cause)."""
    atomic_write(path, lambda p: ds.to_netcdf(p, encoding=encoding))


def _site_day_attrs(settings: StiltSettings, software: dict, needed: list, met_sums: dict,
                    keys: list, failures: list, g: Grid) -> dict:
    """Attributes of a site-day file: every receptor in it was computed (now or earlier) with
    exactly these inputs (the cache keys of its receptors match them)."""
    return {
        "n_hours_back": int(settings.n_hours), "numpar": int(settings.numpar),
        "seed": int(settings.seed), "kmixd": int(settings.kmixd),
        "smooth_factor": float(settings.smooth_factor),
        "near_field_hours": int(settings.near_field_hours) if settings.split else 0,
        "far_numpar": int(settings.far_numpar) if settings.split else int(settings.numpar),
        "far_output_minutes": int(settings.far_output_minutes) if settings.split else 0,
        "near_field_solar_hours": (",".join(f"{h:g}" for h in settings.near_field_solar_hours)
                                   if settings.split else ""),
        "hysplit_settings": json.dumps(settings.extra, sort_keys=True, default=str),
        "pystilt_version": software.get("pystilt", ""),
        "hysplit_version": software.get("hysplit", ""),
        "hycs_std_blake2b": software.get("hycs_std_blake2b", ""),
        "footprint_algorithm": FOOTPRINT_ALGORITHM,
        "met_files_blake2b": ",".join(f"{n}:{met_sums[n]}" for n in needed),
        "receptor_cache_keys": ",".join(keys),
        "failed_receptors": ",".join(f["receptor_id"] for f in failures),
        "grid": str(g.as_dict()), "model": "HYSPLIT-STILT via pystilt"}


def _run_receptors(receptors: pd.DataFrame, g: Grid | NestedGrid, settings: StiltSettings, met: dict,
                   met_sums: dict, needed_for, software: dict, work_dir: Path):
    """Cached or new footprint of every receptor: ``(done, keys, failures, timings, n_stale)``.
    ``needed_for(release)`` names the met files of a receptor's window (cache key).
    A HYSPLIT failure is recorded and the loop goes on; an I/O fault raises FileIOError."""
    done: list[xr.Dataset] = []
    keys: list[str] = []
    failures = []
    timings = []
    n_stale = 0
    for i, rec in enumerate(receptors.itertuples(index=False)):
        rec = pd.Series(rec._asdict())
        rid = str(rec["receptor_id"])
        cache = work_dir / f"{rid}.nc"
        inputs = receptor_cache_inputs(rec, g, settings, met_sums, None, software,
                                       met_names=needed_for(rec["time"]))
        key = cache_key(inputs)
        if cache.exists():
            ds, why = _read_cache(cache, key, inputs)
            if ds is not None:
                done.append(ds)
                keys.append(key)
                logger.info("[%d/%d] %s cached", i + 1, len(receptors), rid)
                continue
            n_stale += 1
            logger.info("[%d/%d] %s stale cache: %s; recomputing", i + 1, len(receptors), rid, why)
        t0 = _time.perf_counter()
        try:
            ds, tim = run_receptor(rec, met, g, settings, work_dir)
        except FileIOError:
            raise  # disk full / permission: stop the job, it is not a HYSPLIT failure
        except Exception as exc:  # HYSPLIT failure: record, go on
            err = fault_errno(exc)
            if err is not None:
                raise FileIOError(io_message(work_dir, err, f"{type(exc).__name__}: {exc}"[:300],
                                             f"run HYSPLIT for {rid} in"), err, work_dir) from exc
            msg = f"{type(exc).__name__}: {exc}".replace("\n", " ")[:500]
            logger.error("[%d/%d] %s FAILED: %s", i + 1, len(receptors), rid, msg)
            failures.append({"receptor_id": rid, "time": rec["time"], "error": msg})
            continue
        ds.attrs["cache_key"] = key
        ds.attrs["cache_inputs"] = json.dumps(inputs, sort_keys=True, default=str)
        enc = {"foot": foot_encoding(), "foot_total": {"dtype": "float64"}}
        if "foot_outer" in ds:
            enc["foot_outer"] = foot_encoding()
        _write_atomic(ds, cache, enc)
        keys.append(key)
        tim["total_s"] = _time.perf_counter() - t0
        tim["overhead_s"] = tim["total_s"] - tim["trajectories_s"]
        timings.append(tim)
        done.append(ds)
        logger.info("[%d/%d] %s: trajectories %.1f s, footprint %.2f s, total %.1f s, "
                    "foot sum in grid %.4g%s of %.4g", i + 1, len(receptors), rid,
                    tim["trajectories_s"], tim["footprint_s"], tim["total_s"],
                    float(ds["foot"].sum()),
                    (f", in the outer cells {float(ds['foot_outer'].sum()):.4g}, beyond them "
                     f"{float(ds['foot_outside'].sum()):.4g}" if "foot_outer" in ds else ""),
                    float(ds["foot_total"].sum()))

    return done, keys, failures, timings, n_stale


def _pystilt_met(met_files, met_file_format, receptors, n_hours: int, indexes, work_dir: Path):
    """``(pystilt met mapping, needed_for(release) -> met file names, link dir or None)``: daily
    files named by ``met_file_format`` directly, an explicit list (``met_file_format=None``)
    through per-hour links in a temporary directory under ``work_dir`` (:func:`link_met_hours`;
    the caller removes it)."""
    if met_file_format is not None:
        return (met_config(met_files, met_file_format),
                lambda rel: needed_met_names(rel, n_hours, met_file_format), None)
    indexes = indexes or [read_arl_index(f) for f in met_files]
    t = pd.to_datetime(receptors["time"]) if len(receptors) else pd.DatetimeIndex([])
    link_dir = Path(tempfile.mkdtemp(prefix=".met_links_", dir=work_dir))
    met = (link_met_hours(indexes, t.min().floor("h") - pd.Timedelta(hours=n_hours + 1),
                          t.max().floor("h") + pd.Timedelta(hours=2), link_dir) if len(t) else {})
    return met, (lambda rel: explicit_met_names(indexes, rel, n_hours)), link_dir


def run_site_day(receptors: pd.DataFrame, met_files: Sequence[str | os.PathLike], grid: dict,
                 settings: StiltSettings, out_path: str | os.PathLike,
                 work_dir: str | os.PathLike, met_file_format: str | None = "%Y%m%d_gz.arl",
                 check_met: bool = True, left_domain_warn: float = 0.1,
                 outer_grid: dict | None = None) -> dict:
    """Footprints of one site-day's receptors -> ``out_path`` (see module docstring).

    Parameters
    ----------
    receptors : DataFrame
        Rows of receptors.csv for this site-day (any number, may be empty).
    met_files : ARL files covering every receptor's window (checked first).
    met_file_format : strftime pattern of the daily met file names, or ``None`` for an explicit
        list of files of any names and periods (GDAS ``gdas1.jan25.w1``): pystilt then finds
        them through per-hour links (:func:`link_met_hours`).
    grid : config ``grid`` mapping.
    settings : :class:`StiltSettings`.
    out_path : the site-day NetCDF; the failures CSV is written beside it as
        ``{stem}_failures.csv`` (header only when nothing failed).
    work_dir : cache of per-receptor results (made absolute); met checksums are memoised in
        ``{work_dir}/../.met_checksums/``.
    check_met : check met coverage of every receptor's window and position first
        (:func:`transport.arl.check_met_coverage`); raises before any HYSPLIT run.
    left_domain_warn : warn for receptors whose share of particles that left the met domain
        before ``n_hours`` exceeds this.
    outer_grid : config ``outer_grid`` mapping (or None/disabled: the inner grid alone). Enabled,
        the file also holds the footprint on the outer cells, the sensitivity beyond the outer box
        and each particle's exit point (docs/formats.md, "Footprints").

    Returns a summary dict: counts and timings.

    Raises :class:`gzcarbon.atomic.FileIOError` (naming the file and the cause) on an I/O fault
    while reading met, running HYSPLIT or writing a cache or output file; only HYSPLIT/pystilt
    failures of a receptor are recorded in the failures CSV.
    """
    g = Grid.from_config(grid)
    nested = NestedGrid.from_config({"grid": g.as_dict(), "outer_grid": outer_grid})
    out_path = Path(out_path)
    work_dir = Path(work_dir).resolve()
    for d in (work_dir, out_path.parent):
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            err = fault_errno(exc)
            if err is None:
                raise
            raise FileIOError(io_message(d, err, str(exc), "create directory"), err, d) from exc
    indexes = None
    if check_met and len(receptors):
        try:
            indexes = check_met_coverage(met_files, receptors, -int(settings.n_hours),
                                         file_format=met_file_format)
        except OSError as exc:
            fault = read_fault(getattr(exc, "filename", None) or "met file", exc, "met file")
            if fault is None:
                raise
            raise fault from exc
    met, needed_for, link_dir = _pystilt_met(met_files, met_file_format, receptors,
                                             int(settings.n_hours), indexes, work_dir)
    # Content checksums of the met files the receptors' windows need (read once per job, memoised
    # by size/mtime/ctime/inode beside the cache), the software identity, once per job.
    by_name = {Path(f).name: Path(f) for f in met_files}
    needed = sorted({n for t in receptors["time"] for n in needed_for(t)} & set(by_name))
    memo_dir = work_dir.parent / ".met_checksums"
    met_sums = {n: met_checksum(by_name[n], memo_dir) for n in needed}
    software = software_identity(settings)
    try:
        done, keys, failures, timings, n_stale = _run_receptors(
            receptors, nested if nested.enabled else g, settings, met, met_sums, needed_for,
            software, work_dir)
    finally:
        if link_dir is not None:
            shutil.rmtree(link_dir, ignore_errors=True)
    fail_path = out_path.with_name(f"{out_path.stem}_failures.csv")
    failed = pd.DataFrame(failures, columns=["receptor_id", "time", "error"])
    atomic_write(fail_path, lambda p: failed.to_csv(p, index=False))

    site_day = combine(done, nested if nested.enabled else g)
    # Every receptor in the file was computed (now or earlier) with exactly these inputs: the cache
    # keys of its receptors match them.
    site_day.attrs.update(_site_day_attrs(settings, software, needed, met_sums, keys, failures, g))
    empty = site_day.sizes["receptor"] == 0 or site_day.sizes["time"] == 0
    enc = {"foot": {**foot_encoding(), "chunksizes": (1, site_day.sizes["time"] or 1, g.ny, g.nx)},
           "foot_total": {"dtype": "float64"}}
    if nested.enabled:
        site_day.attrs.update(nested.attrs())
        site_day.attrs["nested_algorithm"] = NESTED_ALGORITHM
        enc["foot_outer"] = {**foot_encoding(), "chunksizes": (1, site_day.sizes["time"] or 1)
                             + nested.outer.shape}
        if empty:
            enc["foot_outer"].pop("chunksizes")
    if empty:
        enc["foot"].pop("chunksizes")
    _write_atomic(site_day, out_path, enc)
    summary = {"n_receptors": len(receptors), "n_done": len(done), "n_failed": len(failures),
               "n_computed": len(timings), "n_stale": n_stale}
    if timings:
        for k in ("trajectories_s", "footprint_s", "overhead_s", "total_s"):
            summary[f"mean_{k}"] = float(np.mean([t[k] for t in timings]))
        summary["sum_trajectories_s"] = float(np.sum([t["trajectories_s"] for t in timings]))
    if site_day.sizes["receptor"]:
        from .jacobian import warn_left_domain

        lf = site_day["left_domain_fraction"].values
        summary["max_left_domain_fraction"] = float(np.nanmax(lf)) if np.isfinite(lf).any() else None
        summary["n_left_domain_warn"] = warn_left_domain(lf, site_day["receptor"].values,
                                                         left_domain_warn)
    logger.info("site-day %s: %s", out_path, summary)
    return summary


def combine(datasets: Sequence[xr.Dataset], grid: Grid | NestedGrid) -> xr.Dataset:
    """Stack per-receptor footprints on a common hourly axis: ``foot(receptor, time, lat, lon)``;
    with a nested grid also ``foot_outer(receptor, time, olat, olon)``, ``foot_outside(receptor,
    time)`` and the exit points ``exit_*(receptor, particle)`` (docs/formats.md)."""
    nested = grid if isinstance(grid, NestedGrid) else NestedGrid(grid)
    grid = nested.inner
    if not datasets:
        out = xr.Dataset(
            {"foot": (("receptor", "time", "lat", "lon"),
                      np.zeros((0, 0, grid.ny, grid.nx), np.float32), {"units": FOOT_UNITS}),
             "foot_total": (("receptor", "time"), np.zeros((0, 0)), {"units": FOOT_UNITS}),
             "left_domain_fraction": (("receptor",), np.zeros(0), {"units": "1"})},
            coords={"receptor": np.array([], dtype=str), "time": pd.DatetimeIndex([]),
                    "lat": grid.lat, "lon": grid.lon})
        if nested.enabled:
            out = _add_outer(out, [], nested, pd.DatetimeIndex([]))
        return out
    t_min = min(pd.Timestamp(ds["time"].values[0]) for ds in datasets)
    t_max = max(pd.Timestamp(ds["time"].values[-1]) for ds in datasets)
    hours = pd.date_range(t_min, t_max, freq="h")
    foot = np.zeros((len(datasets), len(hours), grid.ny, grid.nx), np.float32)
    total = np.zeros((len(datasets), len(hours)))
    for r, ds in enumerate(datasets):
        i0 = int((pd.Timestamp(ds["time"].values[0]) - t_min) / pd.Timedelta("1h"))
        n = ds.sizes["time"]
        foot[r, i0:i0 + n] = ds["foot"].values
        total[r, i0:i0 + n] = ds["foot_total"].values
    ids = np.array([ds.attrs["receptor_id"] for ds in datasets], dtype=str)
    out = xr.Dataset(
        {"foot": (("receptor", "time", "lat", "lon"), foot,
                  {"units": FOOT_UNITS, "long_name": "STILT footprint, hourly bins (time = start "
                   "of the hour the particles spent there), cell centres"}),
         "foot_total": (("receptor", "time"), total,
                        {"units": FOOT_UNITS, "long_name": "hourly sensitivity summed over all "
                         "space; minus the grid sum = sensitivity outside the grid"}),
         "release_time": (("receptor",), pd.to_datetime([ds.attrs["release_time"]
                                                          for ds in datasets]).values),
         "left_domain_fraction": (("receptor",), np.array(
             [float(ds.attrs.get("left_domain_fraction", np.nan)) for ds in datasets]),
             {"units": "1", "long_name": "share of particles that left the met domain before the "
              "end of the backward run (their later sensitivity is not in foot/foot_total)"})},
        coords={"receptor": ids, "time": hours.values, "lat": grid.lat, "lon": grid.lon})
    if nested.enabled:
        out = _add_outer(out, datasets, nested, hours)
    return out


def _add_outer(out: xr.Dataset, datasets: Sequence[xr.Dataset], nested: NestedGrid,
               hours: pd.DatetimeIndex) -> xr.Dataset:
    """The outer footprint, the sensitivity beyond the outer box and the exit points of every
    receptor (each receptor dataset from :func:`run_receptor` with the same nested grid)."""
    og = nested.outer
    n_r, nt = len(datasets), len(hours)
    outer = np.zeros((n_r, nt) + og.shape, np.float32)
    beyond = np.zeros((n_r, nt))
    with_exits = any("exit_lon" in ds for ds in datasets) or not datasets
    n_p = max([ds.sizes.get("particle", 0) for ds in datasets], default=0)
    ex = {k: np.full((n_r, n_p), np.nan) for k in ("lon", "lat", "agl")}
    ex_time = np.full((n_r, n_p), np.datetime64("NaT"), "datetime64[ns]")
    ex_reason = np.full((n_r, n_p), -1, np.int8)
    ex_particle = np.full((n_r, n_p), -1, np.int32)
    for r, ds in enumerate(datasets):
        if "foot_outer" not in ds:
            raise ValueError(f"receptor {ds.attrs.get('receptor_id')}: footprint without outer "
                             "cells in a nested site-day file (a stale cache?)")
        if not (og.matches(ds["olon"].values, ds["olat"].values)):
            raise ValueError(f"receptor {ds.attrs.get('receptor_id')}: outer cells "
                             f"{Grid.describe_centres(ds['olon'].values, ds['olat'].values)} are not "
                             f"the outer grid {og.describe()}")
        i0 = int((pd.Timestamp(ds["time"].values[0]) - hours[0]) / pd.Timedelta("1h"))
        n = ds.sizes["time"]
        outer[r, i0:i0 + n] = ds["foot_outer"].values
        beyond[r, i0:i0 + n] = ds["foot_outside"].values
        k = ds.sizes.get("particle", 0) if "exit_lon" in ds else 0
        if not k:
            continue
        for name in ("lon", "lat", "agl"):
            ex[name][r, :k] = ds[f"exit_{name}"].values
        ex_time[r, :k] = ds["exit_time"].values
        ex_reason[r, :k] = ds["exit_reason"].values
        ex_particle[r, :k] = ds["exit_particle"].values
    box = (f"the outer box lon {og.lon_min}..{og.lon_max}, lat {og.lat_min}..{og.lat_max}")
    out["foot_outer"] = (("receptor", "time", "olat", "olon"), outer, {
        "units": FOOT_UNITS, "long_name": "STILT footprint on the outer grid, hourly bins; zero in "
        "the cells under the inner grid (their sensitivity is in foot)"})
    out["foot_outside"] = (("receptor", "time"), beyond, {
        "units": FOOT_UNITS, "long_name": f"hourly sensitivity beyond {box}; foot + foot_outer + "
        "foot_outside summed over space = foot_total"})
    if not with_exits:  # footprints read from files: no particles, no exit points
        return out.assign_coords(olat=og.lat, olon=og.lon)
    out["exit_particle"] = (("receptor", "particle"), ex_particle, {
        "long_name": "HYSPLIT particle number (-1: padding, the receptor has fewer particles)"})
    out["exit_lon"] = (("receptor", "particle"), ex["lon"], {
        "units": "degrees_east", "long_name": f"where the particle first left {box} (exit_reason "
        "1), else its last position"})
    out["exit_lat"] = (("receptor", "particle"), ex["lat"], {"units": "degrees_north"})
    out["exit_agl"] = (("receptor", "particle"), ex["agl"], {
        "units": "m", "long_name": "height above ground at the exit point"})
    out["exit_time"] = (("receptor", "particle"), ex_time, {
        "long_name": "UTC time of the exit point (release time minus the particle's age)"})
    out["exit_reason"] = (("receptor", "particle"), ex_reason, {
        "long_name": "1: left the outer box at this output step (first position outside); 0: "
                     "inside at the end of the run (last position); 2: stopped earlier inside "
                     "the outer box (left the met domain or its top between output steps); -1: "
                     "padding",
        "flag_values": np.array([-1, 0, 1, 2], np.int8)})
    return out.assign_coords(olat=og.lat, olon=og.lon,
                             particle=np.arange(n_p, dtype=np.int32))


FAILURE_COLUMNS = ["site", "day", "receptor_id", "time", "error"]


def failures_path(site_day_path: str | os.PathLike) -> Path:
    """The failures CSV written beside a site-day file: ``{stem}_failures.csv``."""
    p = Path(site_day_path)
    return p.with_name(f"{p.stem}_failures.csv")


def collect_failures(site_day_files: Sequence[str | os.PathLike], out_path=None) -> pd.DataFrame:
    """All receptors HYSPLIT failed on, from the failures CSVs beside the site-day files.

    Returns a table ``site, day, receptor_id, time, error`` (one row per failed receptor; empty
    when none failed) and writes it to ``out_path`` (atomically) when given. A missing failures
    CSV (site-day files from elsewhere) counts as no failures.
    """
    parts = []
    for f in site_day_files:
        fp = failures_path(f)
        if not fp.exists():
            continue
        df = pd.read_csv(fp, dtype=str)
        if len(df):
            df.insert(0, "day", Path(f).stem)
            df.insert(0, "site", Path(f).parent.name)
            parts.append(df)
    out = (pd.concat(parts, ignore_index=True) if parts
           else pd.DataFrame(columns=FAILURE_COLUMNS))[FAILURE_COLUMNS]
    if out_path is not None:
        atomic_write(out_path, lambda p: out.to_csv(p, index=False))
    return out
