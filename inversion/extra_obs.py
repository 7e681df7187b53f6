"""Column and mobile observations in the same inversion as the in-situ sites: rows of y, H and R
with their own error model per type (config ``observations``; docs/columns.md).

The extra rows come as an :class:`ExtraObservations`: their Jacobian rows in the month's column
layout (``hour * n_cells + cell``; a column row is already the AK × pressure-weighted sum of its
slab footprints, ``transport.columns``), their receptors and their ``selected.csv``-like rows.
:func:`augment_inputs` stacks them under the in-situ rows, so the state, Q, the prior signal,
the factors and the aggregation are built exactly as for the sites; :func:`apply_type_errors`
then replaces their part of R and of the background block:

* **column**: ``value`` is the retrieved X minus the ``(1 − AK) × prior`` term, ``background``
  the column background ``b · Σ h A``; the surface background offsets of the state do not apply
  (the column's background is the free troposphere's and the stratosphere's), its uncertainty is
  in R instead: ``R = diag(σ_retrieval² + mismatch²) + σ_bg² · [same instrument and UTC day]``;
* **mobile**: a segment is surface air like a site's, so it keeps the daily offset; ``R =
  diag(σ_meas² / n) + m_i m_j exp(−|Δt| / τ) [same track] + σ_bg² [same track]`` with the
  segment mismatch ``m`` (floor and road-plume spread, ``stations.mobile.segment_sigma``).

The in-situ rows keep their R; the full R is block-diagonal between types.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

KINDS = ("column", "mobile")


@dataclass
class ExtraObservations:
    """Rows of other observation types (module docstring), one per receptor.

    ``H_hourly`` (n × n_hours·n_cells); ``receptors`` (``receptor_id, site, time, lon, lat,
    agl``); ``selected``: ``site, time`` (observation hour start, UTC), ``value``,
    ``background``, ``value_std_dev`` (measurement/retrieval σ); ``kind`` per row (``column`` or
    ``mobile``); ``mismatch`` per row (σ, ppm); ``group`` per row (background group: instrument
    and day, or track); ``background_sigma`` per row; ``corr_minutes`` along-track correlation
    time of the mobile mismatch (0 = independent)."""

    H_hourly: sp.spmatrix
    receptors: pd.DataFrame
    selected: pd.DataFrame
    kind: np.ndarray
    mismatch: np.ndarray
    group: np.ndarray
    background_sigma: np.ndarray
    corr_minutes: float = 0.0

    def __post_init__(self):
        n = self.H_hourly.shape[0]
        for name in ("receptors", "selected", "kind", "mismatch", "group", "background_sigma"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"ExtraObservations: {name} has {len(getattr(self, name))} rows, "
                                 f"the Jacobian rows {n}")
        bad = sorted(set(np.asarray(self.kind)) - set(KINDS))
        if bad:
            raise ValueError(f"ExtraObservations: unknown kind(s) {bad}; one of {KINDS}")
        sites = self.selected["site"].astype(str).to_numpy()
        if len(set(zip(sites, pd.DatetimeIndex(self.selected["time"]).floor("h")))) != n:
            raise ValueError("ExtraObservations: two rows share a site and hour; give each "
                             "instrument, overpass or track segment its own site id")


def augment_inputs(inputs, extra: ExtraObservations):
    """The inversion inputs with the extra rows under the in-situ ones (a new object)."""
    in_sites = set(inputs.selected["site"].astype(str))
    clash = sorted(in_sites & set(extra.selected["site"].astype(str)))
    if clash:
        raise ValueError(f"column/mobile site id(s) {clash} are also in-situ sites; rename them")
    H = sp.vstack([sp.csr_matrix(inputs.H_hourly), sp.csr_matrix(extra.H_hourly)], format="csr")
    receptors = pd.concat([inputs.receptors, extra.receptors[list(inputs.receptors.columns)]],
                          ignore_index=True)
    sel = extra.selected.copy()
    sel["time"] = pd.DatetimeIndex(pd.to_datetime(sel["time"]))
    for col in inputs.selected.columns:
        if col not in sel.columns:
            sel[col] = np.nan if col != "background_sigma" else 0.0
    selected = pd.concat([inputs.selected, sel[list(inputs.selected.columns)]], ignore_index=True)
    missing = inputs.missing
    if missing is not None:
        missing = np.concatenate([np.asarray(missing, bool), np.zeros(len(extra.selected), bool)])
    signal = inputs.prior_sector_signal
    if signal:
        pad = np.full(len(extra.selected), np.nan)
        signal = {k: np.concatenate([np.asarray(v, float), pad]) for k, v in signal.items()}
    return dataclasses.replace(inputs, H_hourly=H, receptors=receptors, selected=selected,
                               missing=missing, prior_sector_signal=signal)


def _extra_rows(prob, extra: ExtraObservations) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the extra observations in ``prob.obs`` and, for each, its index in
    ``extra``."""
    key = {(s, t): i for i, (s, t) in enumerate(zip(
        extra.selected["site"].astype(str), pd.DatetimeIndex(pd.to_datetime(extra.selected["time"])).floor("h")))}
    obs_key = zip(prob.obs["site"].astype(str), pd.DatetimeIndex(prob.obs["time"]).floor("h"))
    pos, idx = [], []
    for k, kk in enumerate(obs_key):
        i = key.get(kk)
        if i is not None:
            pos.append(k)
            idx.append(i)
    return np.asarray(pos, np.int64), np.asarray(idx, np.int64)


def extra_covariance(extra: ExtraObservations, idx: np.ndarray) -> np.ndarray:
    """R of the extra rows ``idx`` (module docstring)."""
    kind = np.asarray(extra.kind)[idx]
    m = np.asarray(extra.mismatch, float)[idx]
    vsd = extra.selected["value_std_dev"].to_numpy(float)[idx]
    vsd = np.where(np.isfinite(vsd), vsd, 0.0)
    bgs = np.asarray(extra.background_sigma, float)[idx]
    group = np.asarray(extra.group).astype(str)[idx]
    same = group[:, None] == group[None, :]
    R = np.diag(vsd ** 2)
    R += bgs[:, None] * bgs[None, :] * same
    mob = kind == "mobile"
    t = pd.DatetimeIndex(pd.to_datetime(extra.receptors["time"].to_numpy()[idx]))
    tm = np.asarray((t - t.min()) / pd.Timedelta(minutes=1), dtype=float) if len(t) else np.zeros(0)
    if extra.corr_minutes > 0:
        corr = np.exp(-np.abs(tm[:, None] - tm[None, :]) / float(extra.corr_minutes))
    else:
        corr = np.eye(len(idx))
    along = np.where(mob[:, None] & mob[None, :] & same, corr, 0.0)
    np.fill_diagonal(along, 1.0)
    R += m[:, None] * m[None, :] * along
    return R


def apply_type_errors(prob, extra: ExtraObservations):
    """``prob`` (built on :func:`augment_inputs`) with the extra rows' R and background block set
    by type (module docstring). Returns a new Problem whose R is a full matrix."""
    pos, idx = _extra_rows(prob, extra)
    n = len(prob.obs)
    if prob.obs_cov is not None:
        R = np.array(prob.obs_cov, dtype=float)
    else:
        R = np.diag(np.asarray(prob.obs_sigma, float) ** 2)
    R[pos, :] = 0.0
    R[:, pos] = 0.0
    R[np.ix_(pos, pos)] = extra_covariance(extra, idx)
    # columns: no surface background offset (their background is in R)
    H = sp.csr_matrix(prob.H, copy=True)
    col = pos[np.asarray(extra.kind)[idx] == "column"]
    if col.size:
        n_flux = prob.n_flux
        n_off = prob.n_offsets
        H = H.tolil()
        for r in col:
            for c in range(n_flux, n_flux + n_off):
                if H[r, c] != 0:
                    H[r, c] = 0.0
        H = sp.csr_matrix(H)
        H.eliminate_zeros()
    sigma = np.sqrt(np.diag(R))
    obs = prob.obs.copy()
    kind = np.full(n, "insitu", dtype=object)
    kind[pos] = np.asarray(extra.kind)[idx]
    obs["obs_type"] = kind
    return dataclasses.replace(prob, H=H, obs_sigma=sigma, obs_cov=R, obs=obs)


def column_extra(groups: pd.DataFrame, operators, H_rows, background, mismatch_ppm: float,
                 background_sigma_ppm: float) -> ExtraObservations:
    """:class:`ExtraObservations` of column groups (``transport.columns.hourly_soundings``):
    ``H_rows`` their column Jacobian rows (Σ_l w_l F_l), ``background`` the uniform background
    mole fraction per group (scalar or array, e.g. the day's background of the sites). ``value``
    becomes X − Σ h (1 − A) x_prior, ``background`` b · Σ h A; background groups are instrument
    and UTC day."""
    n = len(groups)
    b = np.broadcast_to(np.asarray(background, float), (n,))
    prior_term = np.array([op.prior_term for op in operators], float)
    bgw = np.array([op.background_weight for op in operators], float)
    t = pd.DatetimeIndex(pd.to_datetime(groups["time"]))
    base = groups["instrument"].astype(str).to_numpy()
    rec = pd.DataFrame({"receptor_id": [f"{s}_{r:%Y%m%d%H%M%S}_col" for s, r in
                                        zip(groups["site"], pd.to_datetime(groups["release"]))],
                        "site": groups["site"].astype(str).to_numpy(),
                        "time": pd.to_datetime(groups["release"]).to_numpy(),
                        "lon": groups["lon"].to_numpy(float), "lat": groups["lat"].to_numpy(float),
                        "agl": np.zeros(n)})
    sel = pd.DataFrame({"site": rec["site"], "time": t, "value": groups["value"].to_numpy(float) - prior_term,
                        "background": b * bgw, "value_std_dev": groups["value_std_dev"].to_numpy(float),
                        "background_sigma": 0.0})
    group = [f"{s}_{d:%Y%m%d}" for s, d in zip(base, t.normalize())]
    return ExtraObservations(sp.csr_matrix(H_rows), rec, sel, np.full(n, "column"),
                             np.full(n, float(mismatch_ppm)), np.asarray(group),
                             np.full(n, float(background_sigma_ppm)))


def mobile_extra(seg: pd.DataFrame, H_rows, background, mismatch_ppm: float, plume_factor: float,
                 measurement_ppm: float, corr_minutes: float,
                 background_sigma_ppm: float) -> ExtraObservations:
    """:class:`ExtraObservations` of mobile segments (``stations.mobile.segments``): each segment
    is its own site id ``{track}{segment:03d}`` (one row per site and hour), σ from
    ``stations.mobile.segment_sigma``, background group the track."""
    from stations.mobile import receptors, segment_sigma

    n = len(seg)
    rec = receptors(seg)
    names = [f"{k}{i:03d}" for k, i in zip(seg["track"], seg["segment"])]
    rec["site"] = names
    b = np.broadcast_to(np.asarray(background, float), (n,))
    sel = pd.DataFrame({"site": names, "time": pd.DatetimeIndex(pd.to_datetime(seg["time"])).floor("h"),
                        "value": seg["value"].to_numpy(float), "background": b,
                        "value_std_dev": float(measurement_ppm) / np.sqrt(np.maximum(seg["n"].to_numpy(float), 1)),
                        "background_sigma": 0.0})
    mism = segment_sigma(seg, mismatch_ppm, plume_factor, 0.0)
    return ExtraObservations(sp.csr_matrix(H_rows), rec, sel, np.full(n, "mobile"), mism,
                             seg["track"].astype(str).to_numpy(), np.full(n, float(background_sigma_ppm)),
                             corr_minutes=float(corr_minutes))


#: per-row columns of a saved :class:`ExtraObservations` (:func:`save_extra`)
_ROW_COLUMNS = ("receptor_id", "site", "time", "lon", "lat", "agl", "obs_time", "value", "background",
                "value_std_dev", "kind", "mismatch", "group", "background_sigma")


def _plain(v) -> np.ndarray:
    """An array np.load reads without pickle (text as fixed-width unicode)."""
    a = np.asarray(v)
    return a.astype(str) if a.dtype == object else a


def save_extra(path, extra: ExtraObservations, n_columns: int) -> None:
    """Write ``extra`` to ``path`` (.npz, atomic): the sparse rows (``n_columns`` wide, the
    Jacobian's ``hour * n_cells + cell``), one table row per observation and ``corr_minutes``."""
    from gzcarbon.atomic import atomic_write

    H = sp.csr_matrix(extra.H_hourly, shape=(extra.H_hourly.shape[0], n_columns))
    rec, sel = extra.receptors.reset_index(drop=True), extra.selected.reset_index(drop=True)
    table = {
        "receptor_id": rec["receptor_id"].astype(str).to_numpy(), "site": sel["site"].astype(str).to_numpy(),
        "time": pd.DatetimeIndex(pd.to_datetime(rec["time"])).strftime("%Y-%m-%dT%H:%M:%S").to_numpy(),
        "lon": rec["lon"].to_numpy(float), "lat": rec["lat"].to_numpy(float), "agl": rec["agl"].to_numpy(float),
        "obs_time": pd.DatetimeIndex(pd.to_datetime(sel["time"])).strftime("%Y-%m-%dT%H:%M:%S").to_numpy(),
        "value": sel["value"].to_numpy(float), "background": sel["background"].to_numpy(float),
        "value_std_dev": sel["value_std_dev"].to_numpy(float), "kind": np.asarray(extra.kind).astype(str),
        "mismatch": np.asarray(extra.mismatch, float), "group": np.asarray(extra.group).astype(str),
        "background_sigma": np.asarray(extra.background_sigma, float)}

    def write(tmp):
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, data=H.data, indices=H.indices, indptr=H.indptr,
                                shape=np.asarray(H.shape), corr_minutes=float(extra.corr_minutes),
                                **{f"row_{k}": _plain(v) for k, v in table.items()})

    atomic_write(path, write)


def load_extra(path) -> ExtraObservations:
    """Read a file of :func:`save_extra`."""
    with np.load(path, allow_pickle=False) as z:
        H = sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(z["shape"]))
        t = {k: z[f"row_{k}"] for k in _ROW_COLUMNS}
        corr = float(z["corr_minutes"])
    rec = pd.DataFrame({k: t[k] for k in ("receptor_id", "site", "lon", "lat", "agl")})
    rec.insert(2, "time", pd.to_datetime(t["time"]))
    sel = pd.DataFrame({"site": t["site"], "time": pd.to_datetime(t["obs_time"]), "value": t["value"],
                        "background": t["background"], "value_std_dev": t["value_std_dev"],
                        "background_sigma": 0.0})
    return ExtraObservations(H, rec, sel, t["kind"].astype(str), t["mismatch"], t["group"].astype(str),
                             t["background_sigma"], corr_minutes=corr)


def concat_extra(parts) -> ExtraObservations | None:
    """One :class:`ExtraObservations` of several (column and mobile files); None for none. The
    along-track correlation time is the mobile part's (columns have none)."""
    parts = [p for p in parts if p is not None and p.H_hourly.shape[0] > 0]
    if not parts:
        return None
    corr = max((p.corr_minutes for p in parts), default=0.0)
    return ExtraObservations(sp.vstack([sp.csr_matrix(p.H_hourly) for p in parts], format="csr"),
                             pd.concat([p.receptors for p in parts], ignore_index=True),
                             pd.concat([p.selected for p in parts], ignore_index=True),
                             np.concatenate([np.asarray(p.kind) for p in parts]),
                             np.concatenate([np.asarray(p.mismatch, float) for p in parts]),
                             np.concatenate([np.asarray(p.group).astype(str) for p in parts]),
                             np.concatenate([np.asarray(p.background_sigma, float) for p in parts]),
                             corr_minutes=corr)


def _day_background(selected_path) -> pd.Series:
    """The in-situ sites' mean background per UTC day (selected.csv): the background a column or
    a track of that day is referred to (ppm)."""
    sel = pd.read_csv(selected_path)
    sel["time"] = pd.to_datetime(sel["time"], utc=True).dt.tz_localize(None)  # "…Z": UTC
    if sel.empty:
        raise ValueError(f"{selected_path}: no in-situ observations, so no background for the "
                         "column and mobile rows; they need the sites' background of their day")
    return sel.groupby(pd.DatetimeIndex(sel["time"]).normalize())["background"].mean()


def _background_of(days: pd.Series, times, selected_path) -> np.ndarray:
    d = pd.DatetimeIndex(pd.to_datetime(times)).normalize()
    out = days.reindex(d).to_numpy(float)
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{selected_path}: no in-situ background on day(s) "
                         f"{sorted({str(x.date()) for x, v in zip(d, out) if not np.isfinite(v)})} of a "
                         "column or mobile observation; drop those files or days")
    return out


def _cpu() -> float:
    import resource

    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def column_rows(files, obs: dict, selected_path, met: dict, grid, hours, settings, work_dir):
    """(:class:`ExtraObservations`, CPU s) of the column files (``stations.columns.read_columns``,
    config ``observations.column`` as ``obs``): hour means per instrument
    (``transport.columns.hourly_soundings``), one inversion-transport column receptor each
    (``column_jacobian_row`` on ``grid``, inner or nested), background the sites' mean of the day."""
    from pathlib import Path

    from stations.columns import read_columns
    from transport.columns import column_jacobian_row, hourly_soundings

    t0 = _cpu()
    days = _day_background(selected_path)
    hours = pd.DatetimeIndex(hours)
    kw = dict(bottom_m=float(obs["bottom_m"]), top_m=float(obs["top_m"]), n_levels=int(obs["n_levels"]))
    parts = []
    for f in files:
        s = read_columns(f)
        stem = Path(f).stem.split("_")
        # PROFFAST comb_invparms_<site>_SN..: the site; OCO oco2_LtCO2_..: OCO2 (then OCO21, OCO22 per cell)
        site = stem[2] if s.kind == "ground" and len(stem) > 2 else stem[0].upper()
        groups, ops = hourly_soundings(s, site, ground_kernel=obs["ground_kernel"],
                                       hour_mean=bool(obs["hour_mean"]), **kw)
        inside = (groups["time"] >= hours[0]) & (groups["time"] <= hours[-1]) if len(groups) else []
        keep = np.flatnonzero(np.asarray(inside, bool))
        if not len(keep):
            continue
        groups, ops = groups.iloc[keep].reset_index(drop=True), [ops[i] for i in keep]
        bg = _background_of(days, groups["time"], selected_path)  # before any transport
        rows = [column_jacobian_row(dict(time=g.release, lon=g.lon, lat=g.lat,
                                         receptor_id=f"{g.site}_{pd.Timestamp(g.release):%Y%m%d%H%M%S}_col"),
                                    op, met, grid, hours, settings, work_dir)[0]
                for g, op in zip(groups.itertuples(), ops)]
        parts.append(column_extra(groups, ops, sp.vstack(rows, format="csr"),
                                  bg, float(obs["mismatch_ppm"]), float(obs["background_sigma_ppm"])))
    extra = concat_extra(parts) or _empty(hours, grid)
    return extra, _cpu() - t0


def mobile_rows(files, obs: dict, selected_path, met: dict, grid, hours, settings, work_dir):
    """(:class:`ExtraObservations`, CPU s) of the track files (``stations.mobile``, config
    ``observations.mobile`` as ``obs``): 1-minute segments, one inversion-transport point receptor
    each (``transport.columns.point_jacobian_row``: the sites' driver, near/far split, nested
    gridding), background the sites' mean of the day."""
    from pathlib import Path

    from stations.mobile import read_track, segments
    from transport.columns import point_jacobian_row

    t0 = _cpu()
    days = _day_background(selected_path)
    hours = pd.DatetimeIndex(hours)
    parts = []
    for f in files:
        track_id = Path(f).stem.split("_")[1] if "_" in Path(f).stem else Path(f).stem
        seg = segments(read_track(f), "co2", int(obs["segment_seconds"]), int(obs["min_records"]),
                       track_id=track_id, max_speed_ms=float(obs["max_speed_ms"]))
        t = pd.DatetimeIndex(pd.to_datetime(seg["time"]))
        seg = seg[(t >= hours[0]) & (t <= hours[-1])].reset_index(drop=True)
        if seg.empty:
            continue
        from stations.mobile import receptors

        rec = receptors(seg)
        bg = _background_of(days, seg["time"], selected_path)  # before any transport
        rows = [point_jacobian_row(r._asdict(), met, grid, hours, settings, work_dir)[0]
                for r in rec.itertuples(index=False)]
        parts.append(mobile_extra(seg, sp.vstack(rows, format="csr"), bg,
                                  float(obs["mismatch_ppm"]), float(obs["plume_factor"]),
                                  float(obs["measurement_ppm"]), float(obs["corr_minutes"]),
                                  float(obs["background_sigma_ppm"])))
    extra = concat_extra(parts) or _empty(hours, grid)
    return extra, _cpu() - t0


def _empty(hours, grid) -> ExtraObservations:
    n_cells = grid.n_cells
    return ExtraObservations(sp.csr_matrix((0, len(hours) * n_cells)),
                             pd.DataFrame(columns=["receptor_id", "site", "time", "lon", "lat", "agl"]),
                             pd.DataFrame(columns=["site", "time", "value", "background", "value_std_dev",
                                                   "background_sigma"]),
                             np.zeros(0, str), np.zeros(0), np.zeros(0, str), np.zeros(0))
