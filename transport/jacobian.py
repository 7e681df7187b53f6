"""Sparse Jacobian H on the hourly state: rows = receptors, columns = hour x cell.

``column = hour_index * n_cells + iy * nx + ix`` (cell index row-major from the south-west), hour
``k`` = ``hour_start + k h`` covering ``[t, t+1h)``; ``hour_end`` is exclusive. H is assembled one
site-day file at a time, so at most one site-day is dense in memory. Footprint mass that does not
land in the state (hours outside ``[hour_start, hour_end)``, cells outside the grid, and the
sensitivity outside the footprint grid recorded by the driver in ``foot_total``) is returned as a
per-receptor ``outside`` sensitivity (ppm / (µmol m-2 s-1)): the response to a uniform unit flux
outside the state, for the background / far-field term. Receptors without a footprint (HYSPLIT
failed, or no file) keep an empty row and are flagged in ``missing``.

Nested state (config ``outer_grid``, :class:`gzcarbon.grid.NestedGrid`): ``n_cells = n_inner +
n_outer`` and the outer cells' columns are ``hour_index * n_cells + n_inner + k`` (``k`` the outer
state cell, row-major over the outer grid outside the inner box), filled from the site-day files'
``foot_outer``; ``outside`` then holds the sensitivity beyond the outer box (``foot_outside``) and
the hours outside the axis. Without an outer grid everything is as before, byte for byte.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from gzcarbon.atomic import atomic_write, read_fault
from gzcarbon.grid import Grid, NestedGrid
from .footprints import read_site_day
from .regrid import apply_weights, is_aligned, regrid_weights

logger = logging.getLogger(__name__)


@dataclass
class Jacobian:
    """A loaded Jacobian: ``H`` (CSR), its receptor table, hourly axis, grid and extras."""

    H: sp.csr_matrix
    receptors: pd.DataFrame
    hours: pd.DatetimeIndex
    grid: dict
    outside: np.ndarray
    missing: np.ndarray
    left_domain_fraction: np.ndarray | None = None
    #: the outer grid (``lon_min, lon_max, lat_min, lat_max, res``) of a nested Jacobian, else None
    outer_grid: dict | None = None

    @property
    def nested(self) -> NestedGrid:
        """The state grid of the columns: the inner grid, nested in ``outer_grid`` when there is one."""
        inner = Grid.from_config(self.grid)
        return NestedGrid(inner, Grid(**self.outer_grid) if self.outer_grid else None)

    @property
    def n_cells(self) -> int:
        return self.nested.n_cells

    @property
    def n_inner(self) -> int:
        return self.nested.n_inner

    @property
    def n_outer(self) -> int:
        return self.nested.n_outer


class Assembled(NamedTuple):
    """What :func:`assemble` returns."""

    H: sp.csr_matrix
    outside: np.ndarray
    missing: np.ndarray
    left_domain_fraction: np.ndarray


#: Warn when more than this share of a receptor's particles left the met domain early.
LEFT_DOMAIN_WARN = 0.1


def warn_left_domain(left_frac: np.ndarray, ids, threshold: float = LEFT_DOMAIN_WARN) -> int:
    """Log a warning naming the receptors whose particles left the met domain early (share above
    ``threshold``); their sensitivity after leaving is lost. Returns how many there are."""
    lf = np.asarray(left_frac, float)
    bad = np.flatnonzero(np.nan_to_num(lf, nan=0.0) > threshold)
    if bad.size:
        worst = bad[np.argsort(-lf[bad])][:5]
        logger.warning(
            "%d receptor(s) lost more than %.0f%% of their particles out of the met domain before "
            "the end of the run (their later sensitivity is missing; widen the met domain): %s",
            bad.size, 100 * threshold,
            ", ".join(f"{np.asarray(ids)[k]} ({100 * lf[k]:.0f}%)" for k in worst))
    return int(bad.size)


def hour_axis(hour_start, hour_end) -> pd.DatetimeIndex:
    """Hourly axis ``[hour_start, hour_end)`` (tz-naive UTC)."""
    t0, t1 = pd.Timestamp(hour_start), pd.Timestamp(hour_end)
    if t0.tzinfo is not None:
        t0 = t0.tz_convert("UTC").tz_localize(None)
    if t1.tzinfo is not None:
        t1 = t1.tz_convert("UTC").tz_localize(None)
    if t1 <= t0 or t0 != t0.floor("h") or t1 != t1.floor("h"):
        raise ValueError(f"hour axis: need whole hours with start < end, got {t0} .. {t1}")
    return pd.date_range(t0, t1, freq="h", inclusive="left")


def _sparse_row(foot: np.ndarray, kt: np.ndarray, iy: np.ndarray, ix: np.ndarray, nx: int,
                n_cells: int):
    """Plain NumPy: (cols, vals, outside) of one footprint ``foot(time, lat, lon)``.

    ``kt``/``iy``/``ix`` map the footprint's time/lat/lon indices to state hour, row and column
    (-1 = outside the state). Columns come out ascending when the axes are ascending.
    """
    t_idx, y_idx, x_idx = np.nonzero(foot)
    vals = foot[t_idx, y_idx, x_idx].astype(np.float64)
    k, cy, cx = kt[t_idx], iy[y_idx], ix[x_idx]
    inside = (k >= 0) & (cy >= 0) & (cx >= 0)
    cols = k[inside].astype(np.int64) * n_cells + cy[inside] * nx + cx[inside]
    return cols, vals[inside], float(vals[~inside].sum())


try:
    import numba

    @numba.njit(cache=True, nogil=True)
    def _sparse_row_nb(foot, kt, iy, ix, nx, n_cells):  # pragma: no cover - compiled
        nt, ny, nxf = foot.shape
        n = 0
        for t in range(nt):
            for y in range(ny):
                for x in range(nxf):
                    if foot[t, y, x] != 0:
                        n += 1
        cols = np.empty(n, np.int64)
        vals = np.empty(n, np.float64)
        out = 0.0
        m = 0
        for t in range(nt):
            k = kt[t]
            for y in range(ny):
                cy = iy[y]
                for x in range(nxf):
                    v = foot[t, y, x]
                    if v != 0:
                        cx = ix[x]
                        if k >= 0 and cy >= 0 and cx >= 0:
                            cols[m] = k * n_cells + cy * nx + cx
                            vals[m] = v
                            m += 1
                        else:
                            out += v
        return cols[:m], vals[:m], out

    def _sparse_row_fast(foot, kt, iy, ix, nx, n_cells):
        c, v, o = _sparse_row_nb(np.ascontiguousarray(foot), kt.astype(np.int64),
                                 iy.astype(np.int64), ix.astype(np.int64), nx, n_cells)
        return c, v, float(o)
except ImportError:  # numba missing: the plain function
    _sparse_row_fast = _sparse_row


def _state_indices(times: pd.DatetimeIndex, lats: np.ndarray, lons: np.ndarray, grid: Grid,
                   hours: pd.DatetimeIndex):
    ix, iy = grid.centre_index(lons, lats)
    kt = ((times - hours[0]) / pd.Timedelta("1h")).to_numpy()
    kt = np.where(np.isclose(kt, np.round(kt)), np.round(kt), -1).astype(int)
    kt = np.where((kt >= 0) & (kt < len(hours)), kt, -1)
    return kt, iy, ix


def _csr_from_pieces(per_row: list, n_cols: int) -> sp.csr_matrix:
    """CSR straight from the per-row ``(columns, values)`` pieces (columns ascending within a
    piece); empties ``per_row`` as it goes so only one copy is held."""
    n = len(per_row)
    counts = np.array([sum(len(c) for c, _ in pieces) for pieces in per_row], np.int64)
    indptr = np.concatenate([[0], np.cumsum(counts)])
    idx_dtype = np.int32 if n_cols < 2**31 - 1 and indptr[-1] < 2**31 - 1 else np.int64
    indices = np.empty(indptr[-1], idx_dtype)
    data = np.empty(indptr[-1], np.float64)
    for i, pieces in enumerate(per_row):
        p = indptr[i]
        for c, v in pieces:
            indices[p:p + len(c)] = c
            data[p:p + len(c)] = v
            p += len(c)
        per_row[i] = []
    H = sp.csr_matrix((data, indices, indptr.astype(idx_dtype)), shape=(n, n_cols))
    if not H.has_sorted_indices:
        H.sort_indices()
    H.sum_duplicates()
    return H


#: One site-day file read at a time across threads (HDF5 is not thread-safe).
_READ_LOCK = threading.Lock()


def _outer_part(path, ds, nested: NestedGrid):
    """``(foot_outer (receptor, time, ny_o, nx_o), its per-receptor sum)`` of a site-day file on the
    nested grid; a file without it, or on another outer grid, stops naming the file and the fix."""
    og = nested.outer
    if "foot_outer" not in ds:
        raise ValueError(f"{path}: no foot_outer (footprint on the outer grid) but config outer_grid "
                         f"is enabled ({og.describe()}); the file was written without the outer "
                         "grid: re-run rule footprints (snakemake ... --forcerun footprints), or set "
                         "outer_grid.enabled: false")
    ds = ds.sortby("olat").sortby("olon")
    if not og.matches(ds["olon"].values, ds["olat"].values):
        raise ValueError(f"{path}: foot_outer is on {Grid.describe_centres(ds['olon'].values, ds['olat'].values)}"
                         f", not on the outer grid of config outer_grid ({og.describe()}); re-run "
                         "rule footprints (--forcerun footprints)")
    fo = ds["foot_outer"].transpose("receptor", "time", "olat", "olon").values
    if np.any(fo[:, :, ~nested.outer_mask] != 0):
        raise ValueError(f"{path}: foot_outer is not zero in the outer cells under the inner grid; "
                         "their sensitivity belongs in foot (a file not written by rule footprints?)")
    return fo, fo.sum(axis=(1, 2, 3), dtype=np.float64)


def _outer_sparse_row(fo: np.ndarray, kt: np.ndarray, oidx: np.ndarray, n_cells: int):
    """(cols, vals, outside) of one receptor's ``foot_outer(time, olat, olon)``: column
    ``hour * n_cells + oidx[olat, olon]``; hours off the axis go to ``outside``."""
    t_idx, y_idx, x_idx = np.nonzero(fo)
    vals = fo[t_idx, y_idx, x_idx].astype(np.float64)
    k = kt[t_idx]
    inside = k >= 0
    cols = k[inside].astype(np.int64) * n_cells + oidx[y_idx[inside], x_idx[inside]]
    return cols, vals[inside], float(vals[~inside].sum())


def _site_day_rows(path, g: Grid | NestedGrid, hours: pd.DatetimeIndex, row_of: dict) -> list:
    """The sparse rows of one site-day file, in file order: ``(row, cols, vals, outside, left)``
    per receptor of the file that is in ``row_of`` (one site-day dense in memory at a time).
    ``g``: the inner grid, or a nested grid (then with the outer columns from ``foot_outer``).
    Reading holds ``_READ_LOCK``: the HDF5 library is not thread-safe (two threads opening files
    at once fail with "NetCDF: HDF error"); the sparse extraction runs outside it."""
    nested = g if isinstance(g, NestedGrid) and g.enabled else None
    g = g.inner if isinstance(g, NestedGrid) else g
    fo = None
    with _READ_LOCK, read_site_day(path) as ds:
        rids = [str(r) for r in ds["receptor"].values]
        if not rids:
            return []
        ds = ds.sortby("time").sortby("lat").sortby("lon")
        foot = ds["foot"].transpose("receptor", "time", "lat", "lon").values  # one site-day
        times = pd.to_datetime(ds["time"].values)
        lats, lons = ds["lat"].values, ds["lon"].values
        total = ds["foot_total"].values if "foot_total" in ds else None
        left = (ds["left_domain_fraction"].values if "left_domain_fraction" in ds
                else np.full(len(rids), np.nan))
        if nested is not None:
            fo, outer_sum = _outer_part(path, ds, nested)
    grid_sum = foot.sum(axis=(1, 2, 3), dtype=np.float64)
    if fo is not None:
        grid_sum = grid_sum + outer_sum
    regrid_out = np.zeros(len(rids))
    if not is_aligned(lons, lats, g):  # another resolution or offset: conservative regrid
        wy, wx = regrid_weights(lons, lats, g)
        logger.info("%s: footprint grid %d x %d (%.4g deg) regridded conservatively onto the "
                    "state grid", path, len(lons), len(lats),
                    float(np.diff(lons).mean()) if len(lons) > 1 else float("nan"))
        foot, o = apply_weights(foot, wy, wx)
        regrid_out = o.sum(axis=1)
        lats, lons = g.lat, g.lon
    kt, iy, ix = _state_indices(times, lats, lons, g, hours)
    rows = []
    for j, rid in enumerate(rids):
        i = row_of.get(rid)
        if i is None:
            logger.warning("%s: receptor %s not in receptors.csv; ignored", path, rid)
            continue
        n_cells = g.n_cells if nested is None else nested.n_cells
        cols, vals, out = _sparse_row_fast(foot[j], kt, iy, ix, g.nx, n_cells)
        if nested is not None:
            oc, ov, oo = _outer_sparse_row(fo[j], kt, nested.outer_index(), n_cells)
            cols, vals = np.concatenate([cols, oc]), np.concatenate([vals, ov])
            order = np.argsort(cols, kind="stable")
            cols, vals, out = cols[order], vals[order], out + oo
        out += regrid_out[j]
        if total is not None:  # sensitivity that left the footprint grid
            out += max(float(total[j].sum()) - float(grid_sum[j]), 0.0)
        rows.append((i, cols, vals, out, left[j]))
    return rows


def _receptor_rows(receptors: pd.DataFrame) -> tuple[list, dict]:
    ids = receptors["receptor_id"].astype(str).tolist()
    row_of = {r: i for i, r in enumerate(ids)}
    if len(row_of) != len(ids):
        raise ValueError("receptors: duplicated receptor_id values")
    return ids, row_of


def _finish(H, outside, missing, left_frac, ids) -> Assembled:
    if missing.any():
        logger.warning("%d receptor(s) without footprint (empty rows): %s", missing.sum(),
                       ", ".join(np.asarray(ids)[missing][:10]))
    warn_left_domain(left_frac, ids)
    return Assembled(H, outside, missing, left_frac)


def _nesting(grid, outer_grid) -> NestedGrid:
    return NestedGrid.from_config({"grid": Grid.from_config(grid).as_dict(), "outer_grid": outer_grid})


def assemble(footprint_files: Sequence[str | os.PathLike], receptors: pd.DataFrame, grid: dict,
             hour_start, hour_end, outer_grid: dict | None = None):
    """Assemble H from site-day footprint files, holding every receptor's sparse row in memory
    until the CSR is built (:func:`assemble_streamed` builds the same bytes with a peak that does
    not grow beyond the CSR itself; the pipeline uses that one).

    Returns :class:`Assembled` ``(H, outside, missing, left_domain_fraction)``: CSR
    (n_receptors, n_hours * n_cells) float64 with rows in ``receptors`` order; ``outside``
    (n_receptors,) sensitivity not in the state; ``missing`` (n_receptors,) bool, True where no
    footprint was found; ``left_domain_fraction`` (n_receptors,) share of particles that left the
    met domain before the end of the run (NaN when unknown: missing, or files without it).

    Footprints on another grid (other resolution, offset, larger domain) are regridded
    conservatively (:mod:`transport.regrid`); their mass outside the state domain goes to
    ``outside``.

    ``outer_grid`` (config block; None or disabled: the inner grid alone): the columns are
    ``n_hours * (n_inner + n_outer)``, the outer ones from each file's ``foot_outer``.
    """
    nested = _nesting(grid, outer_grid)
    g = nested if nested.enabled else nested.inner
    hours = hour_axis(hour_start, hour_end)
    ids, row_of = _receptor_rows(receptors)
    n = len(ids)
    per_row: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in range(n)]
    outside = np.zeros(n)
    left_frac = np.full(n, np.nan)
    found = np.zeros(n, bool)
    for path in footprint_files:
        for i, cols, vals, out, left in _site_day_rows(path, g, hours, row_of):
            per_row[i].append((cols, vals))
            outside[i] += out
            left_frac[i] = left
            found[i] = True
    H = _csr_from_pieces(per_row, len(hours) * nested.n_cells)
    return _finish(H, outside, ~found, left_frac, ids)


def _spill_site_day(k: int, path, g: Grid | NestedGrid, hours, row_of: dict, spill: Path, col_dtype):
    """Rows of site-day file number ``k`` to two raw files in ``spill`` (columns, values); returns
    the small part kept in memory: (k, rows, lengths, outside, left)."""
    rows = _site_day_rows(path, g, hours, row_of)
    rr = np.array([r[0] for r in rows], np.int64)
    ln = np.array([len(r[1]) for r in rows], np.int64)
    if rows:
        np.concatenate([r[1] for r in rows]).astype(col_dtype).tofile(spill / f"{k}.cols")
        np.concatenate([r[2] for r in rows]).astype(np.float64).tofile(spill / f"{k}.vals")
    return k, rr, ln, [r[3] for r in rows], [r[4] for r in rows]


def _in_order(fn, items, workers: int):
    """``fn(k, item)`` for every item, results yielded in item order, at most ``workers`` running
    (and held) at a time."""
    if workers <= 1:
        for k, item in enumerate(items):
            yield fn(k, item)
        return
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=workers) as pool:
        running: deque = deque()
        for k, item in enumerate(items):
            running.append(pool.submit(fn, k, item))
            if len(running) >= workers:
                yield running.popleft().result()
        while running:
            yield running.popleft().result()


def assemble_streamed(footprint_files: Sequence[str | os.PathLike], receptors: pd.DataFrame,
                      grid: dict, hour_start, hour_end, *, workers: int = 1,
                      spill_dir: str | os.PathLike | None = None,
                      outer_grid: dict | None = None) -> Assembled:
    """:func:`assemble` with a peak memory of the CSR itself plus one site-day per worker.

    Pass 1 reads the site-day files (``workers`` threads, results taken in file order) and writes
    each file's sparse rows to two raw files in a temporary directory under ``spill_dir`` (default:
    the system's temporary directory), keeping only the row numbers, row lengths, ``outside`` and
    ``left_domain_fraction`` in memory. Pass 2 allocates the CSR arrays once (their size is known
    from the lengths) and copies each file's rows into their slots, file by file, in the order
    :func:`assemble` concatenates them; the result has the same bytes (``data``, ``indices``,
    ``indptr``, ``outside``, ``missing``, ``left_domain_fraction``); ``outer_grid`` as there.
    """
    nested = _nesting(grid, outer_grid)
    g = nested if nested.enabled else nested.inner
    hours = hour_axis(hour_start, hour_end)
    ids, row_of = _receptor_rows(receptors)
    n, n_cols = len(ids), len(hours) * nested.n_cells
    col_dtype = np.int32 if n_cols < 2**31 - 1 else np.int64
    counts = np.zeros(n, np.int64)
    outside = np.zeros(n)
    left_frac = np.full(n, np.nan)
    found = np.zeros(n, bool)
    pieces = []
    with tempfile.TemporaryDirectory(dir=spill_dir, prefix=".jacobian_pieces_") as tmp:
        spill = Path(tmp)

        def work(k, path):
            return _spill_site_day(k, path, g, hours, row_of, spill, col_dtype)

        for k, rr, ln, outs, lefts in _in_order(work, list(footprint_files), max(1, int(workers))):
            for i, m, out, left in zip(rr, ln, outs, lefts):  # file order, as assemble adds them
                counts[i] += m
                outside[i] += out
                left_frac[i] = left
                found[i] = True
            pieces.append((k, rr, ln))
        indptr = np.concatenate([[0], np.cumsum(counts)])
        idx_dtype = np.int32 if n_cols < 2**31 - 1 and indptr[-1] < 2**31 - 1 else np.int64
        indices = np.empty(indptr[-1], idx_dtype)
        data = np.empty(indptr[-1], np.float64)
        cursor = indptr[:-1].copy()
        for k, rr, ln in pieces:
            if not len(rr):
                continue
            cols = np.fromfile(spill / f"{k}.cols", col_dtype)
            vals = np.fromfile(spill / f"{k}.vals", np.float64)
            off = 0
            for i, m in zip(rr, ln):
                p = cursor[i]
                indices[p:p + m] = cols[off:off + m]
                data[p:p + m] = vals[off:off + m]
                cursor[i] += m
                off += m
            del cols, vals
            (spill / f"{k}.cols").unlink()
            (spill / f"{k}.vals").unlink()
    H = sp.csr_matrix((data, indices, indptr.astype(idx_dtype)), shape=(n, n_cols))
    if not H.has_sorted_indices:
        H.sort_indices()
    H.sum_duplicates()
    return _finish(H, outside, ~found, left_frac, ids)


def build_jacobian_file(footprint_files: Sequence[str | os.PathLike], receptors_csv,
                        grid: dict, hour_start, hour_end, out_path, workers: int = 1,
                        outer_grid: dict | None = None):
    """Read receptors.csv, assemble the hourly Jacobian of the site-day footprint files
    (:func:`assemble_streamed`, its temporary pieces in a hidden directory beside ``out_path``)
    and write it to ``out_path`` (what rule jacobian, and the demo's truth Jacobian, do); returns
    the assembly (``H``, ``outside``, ``missing``, ``left_domain_fraction``). ``outer_grid``:
    config block (None or disabled: the inner grid alone)."""
    from .receptors import read_receptors

    rec = read_receptors(receptors_csv)
    res = assemble_streamed(list(footprint_files), rec, dict(grid), hour_start, hour_end,
                            workers=workers, spill_dir=Path(out_path).parent,
                            outer_grid=outer_grid)
    save_jacobian(out_path, res.H, rec, hour_axis(hour_start, hour_end), dict(grid),
                  outside=res.outside, missing=res.missing,
                  left_domain_fraction=res.left_domain_fraction, outer_grid=outer_grid)
    return res


def save_jacobian(path: str | os.PathLike, H: sp.spmatrix, receptors: pd.DataFrame,
                  hours: Sequence, grid: dict, outside: np.ndarray | None = None,
                  missing: np.ndarray | None = None,
                  left_domain_fraction: np.ndarray | None = None,
                  outer_grid: dict | None = None) -> Path:
    """Save H (CSR) with its receptor table, hourly axis and grid to ``path`` (.npz, atomic).
    With an enabled ``outer_grid`` (config block) also ``n_inner``, ``n_outer`` and
    ``outer_grid`` [lon_min, lon_max, lat_min, lat_max, res]; without, the file is as before."""
    path = Path(path)
    H = sp.csr_matrix(H)
    nested = _nesting(grid, outer_grid)
    g = nested.inner
    hours = pd.DatetimeIndex(pd.to_datetime(list(hours)))
    if H.shape != (len(receptors), len(hours) * nested.n_cells):
        raise ValueError(f"H shape {H.shape} != (n_receptors={len(receptors)}, n_hours*n_cells="
                         f"{len(hours) * nested.n_cells}: {nested.describe()})")
    n = len(receptors)
    t = pd.to_datetime(receptors["time"])
    arrays = dict(
        data=H.data.astype(np.float64), indices=H.indices.astype(np.int64),
        indptr=H.indptr.astype(np.int64), shape=np.array(H.shape, np.int64),
        receptor_id=receptors["receptor_id"].astype(str).to_numpy().astype("U"),
        site=receptors["site"].astype(str).to_numpy().astype("U"),
        time=t.dt.strftime("%Y-%m-%dT%H:%M:%S").to_numpy().astype("U"),
        lon=receptors["lon"].to_numpy(float), lat=receptors["lat"].to_numpy(float),
        agl=receptors["agl"].to_numpy(float),
        hours=hours.strftime("%Y-%m-%dT%H:%M:%S").to_numpy().astype("U"),
        grid=np.array([g.lon_min, g.lon_max, g.lat_min, g.lat_max, g.res]),
        outside=np.zeros(n) if outside is None else np.asarray(outside, float),
        missing=np.zeros(n, bool) if missing is None else np.asarray(missing, bool),
        left_domain_fraction=(np.full(n, np.nan) if left_domain_fraction is None
                              else np.asarray(left_domain_fraction, float)))
    if nested.enabled:
        o = nested.outer
        arrays.update(n_inner=np.int64(nested.n_inner), n_outer=np.int64(nested.n_outer),
                      outer_grid=np.array([o.lon_min, o.lon_max, o.lat_min, o.lat_max, o.res]))

    def write(tmp):
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)

    return atomic_write(path, write)


class JacobianFileError(ValueError):
    """A Jacobian file that cannot be read (truncated, corrupt); the message names file and fix."""


def load_jacobian(path: str | os.PathLike) -> Jacobian:
    """Load a Jacobian saved by :func:`save_jacobian`."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Jacobian {path} does not exist; run rule jacobian")
    try:
        with np.load(path, allow_pickle=False) as npz:
            z = {k: npz[k] for k in npz.files}  # read (and CRC-check) every array now
    except Exception as exc:  # BadZipFile, zlib.error, EOFError, ValueError of a damaged file
        fault = read_fault(path, exc, "the Jacobian")
        if fault is not None:
            raise fault from exc
        raise JacobianFileError(
            f"{path}: the Jacobian file is truncated or corrupt ({type(exc).__name__}: {exc}); "
            f"delete it and re-run the same command with `--forcerun jacobian` "
            f"(e.g. rm {path}; snakemake ... --forcerun jacobian)") from exc
    need = {"data", "indices", "indptr", "shape", "receptor_id", "hours", "grid"}
    if not need <= set(z):
        raise JacobianFileError(f"{path}: not a Jacobian file, missing {sorted(need - set(z))}; "
                                "delete it and re-run with `--forcerun jacobian`")
    H = sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(z["shape"]))
    rec = pd.DataFrame({"receptor_id": z["receptor_id"], "site": z["site"],
                        "time": pd.to_datetime(z["time"]), "lon": z["lon"], "lat": z["lat"],
                        "agl": z["agl"]})
    gv = z["grid"]
    grid = dict(lon_min=float(gv[0]), lon_max=float(gv[1]), lat_min=float(gv[2]),
                lat_max=float(gv[3]), res=float(gv[4]))
    outer = None
    if "outer_grid" in z:
        ov = z["outer_grid"]
        outer = dict(lon_min=float(ov[0]), lon_max=float(ov[1]), lat_min=float(ov[2]),
                     lat_max=float(ov[3]), res=float(ov[4]))
        nested = NestedGrid(Grid(**grid), Grid(**outer))
        if (int(z["n_inner"]), int(z["n_outer"])) != (nested.n_inner, nested.n_outer):
            raise JacobianFileError(f"{path}: n_inner/n_outer {int(z['n_inner'])}/{int(z['n_outer'])} "
                                    f"do not match its grids ({nested.describe()}); rebuild it with "
                                    "`--forcerun jacobian`")
    return Jacobian(H=H, receptors=rec, hours=pd.DatetimeIndex(pd.to_datetime(z["hours"])),
                    grid=grid, outside=z["outside"], missing=z["missing"],
                    left_domain_fraction=(z["left_domain_fraction"]
                                          if "left_domain_fraction" in z
                                          else np.full(H.shape[0], np.nan)),
                    outer_grid=outer)
