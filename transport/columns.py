"""Column receptors: the footprint of a column-averaged mole fraction (XCO2, XCH4, XCO).

A retrieval reports ``X = Σ_j h_j [A_j x_j + (1 − A_j) x_prior,j]`` on its levels ``j`` (pressure
weights ``h_j`` summing to 1, averaging kernel ``A_j``, prior profile ``x_prior``; Wu et al. 2018,
GMD 11, 4843, as in X-STILT). Surface fluxes reach the lowest few kilometres within a day, so the
modelled column is

    X = Σ_l w_l (H_l x) + b · Σ_j h_j A_j + Σ_j h_j (1 − A_j) x_prior,j

* ``H_l x``: the enhancement at release level ``l`` (footprint × flux); the column footprint is
  ``F = Σ_l w_l F_l`` (:func:`column_footprint`);
* ``w_l = ∫_slab A(p) ρ(p) dp``: the **AK × pressure weight** of release slab ``l``, with ``ρ`` the
  retrieval's pressure-weight density (each level's ``h_j`` spread over its layer, half layers at
  the surface and the top) and ``A`` linear in pressure (:func:`column_operator`);
* ``b · Σ_j h_j A_j``: the **column background** — a background mole fraction ``b`` that is the
  same at every level enters through the kernel-weighted pressure weights
  (``ColumnOperator.background_weight``); air above the released column (above ``top_m``) carries
  no surface signal of the last ``n_hours`` and is part of ``b``;
* ``Σ_j h_j (1 − A_j) x_prior,j``: the **(1 − AK) × prior** term (``ColumnOperator.prior_term``),
  a constant of each sounding.

The release column runs from ``bottom_m`` to ``top_m`` above ground in ``n_levels`` slabs of
equal height; heights become pressures with the hypsometric relation ``p = p_s exp(−z / H)``
(scale height ``H``, default 8,000 m, about 0 °C). The transport runs **one** pystilt
``ColumnReceptor`` per sounding — HYSPLIT spreads its particles evenly over the height range —
and each particle's ``foot`` is multiplied by its slab's ``w_l × N / n_l`` (``N`` particles, ``n_l``
of them in slab ``l``), so the gridded footprint is ``Σ_l w_l F_l`` at the cost of one point
receptor (:func:`weight_particles`; docs/columns.md, "Cost").
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

#: default release column and scale height
BOTTOM_M = 5.0
TOP_M = 3000.0
N_LEVELS = 10
SCALE_HEIGHT_M = 8000.0


@dataclass(frozen=True)
class ColumnOperator:
    """The vertical operator of one sounding (see the module docstring).

    ``edges_m`` (n_levels + 1) slab edges above ground, ``heights_m`` slab mid-heights,
    ``weights`` ``w_l``, ``pressure_fraction`` the plain pressure weight of each slab (AK = 1),
    ``prior_term`` ``Σ h (1 − A) x_prior`` (units of the prior), ``background_weight``
    ``Σ h A``."""

    edges_m: np.ndarray
    heights_m: np.ndarray
    weights: np.ndarray
    pressure_fraction: np.ndarray
    prior_term: float
    background_weight: float

    @property
    def released_fraction(self) -> float:
        """Share of the column's air (by the retrieval's pressure weights) inside the released
        column."""
        return float(self.pressure_fraction.sum())

    def modelled(self, enhancement_levels, background: float) -> float:
        """``X`` from the level enhancements ``H_l x`` (one per slab) and a uniform background."""
        return float(np.dot(self.weights, np.asarray(enhancement_levels, float))
                     + background * self.background_weight + self.prior_term)


def layer_edges(pressure: np.ndarray) -> np.ndarray:
    """Layer edges of levels (surface first, decreasing pressure): the surface, the midpoints
    between levels, and the top level. Shape ``(n + 1,)``; layer ``j`` is ``[edges[j],
    edges[j + 1]]`` (half layers at both ends)."""
    p = np.asarray(pressure, dtype=float)
    return np.concatenate(([p[0]], (p[:-1] + p[1:]) / 2.0, [p[-1]]))


def column_operator(pressure, ak, pressure_weight, prior, surface_pressure: float | None = None,
                    bottom_m: float = BOTTOM_M, top_m: float = TOP_M, n_levels: int = N_LEVELS,
                    scale_height_m: float = SCALE_HEIGHT_M, n_sub: int = 64) -> ColumnOperator:
    """The :class:`ColumnOperator` of one sounding from its retrieval levels (surface first).

    ``pressure`` (hPa), ``ak``, ``pressure_weight`` and ``prior`` have one value per level;
    ``surface_pressure`` defaults to the first level's pressure. Weights are integrated over each
    slab with ``n_sub`` sub-steps (midpoint rule in pressure)."""
    p = np.asarray(pressure, dtype=float)
    a = np.asarray(ak, dtype=float)
    h = np.asarray(pressure_weight, dtype=float)
    x0 = np.asarray(prior, dtype=float)
    if not (p.shape == a.shape == h.shape == x0.shape) or p.ndim != 1 or p.size < 2:
        raise ValueError(f"column_operator: pressure, ak, pressure_weight and prior need one value "
                         f"per level, got shapes {p.shape}, {a.shape}, {h.shape}, {x0.shape}")
    if np.any(np.diff(p) >= 0):
        raise ValueError("column_operator: pressure levels must decrease from the surface up")
    if not (0 <= bottom_m < top_m):
        raise ValueError(f"column_operator: need 0 <= bottom_m < top_m, got {bottom_m}, {top_m}")
    ps = float(p[0] if surface_pressure is None else surface_pressure)
    e = layer_edges(p)
    e[0] = max(e[0], ps)
    density = h / (e[:-1] - e[1:])  # pressure weight per hPa in each level's layer
    edges_m = np.linspace(float(bottom_m), float(top_m), int(n_levels) + 1)
    edges_m[0] = 0.0 if bottom_m <= BOTTOM_M else bottom_m  # the lowest slab reaches the ground
    p_edges = ps * np.exp(-edges_m / float(scale_height_m))
    weights = np.zeros(int(n_levels))
    plain = np.zeros(int(n_levels))
    for lev in range(int(n_levels)):
        lo, hi = p_edges[lev], p_edges[lev + 1]
        dp = (lo - hi) / n_sub
        ps_mid = lo - dp * (np.arange(n_sub) + 0.5)
        layer = np.clip(np.searchsorted(-e, -ps_mid, side="right") - 1, 0, len(h) - 1)
        rho = density[layer]
        ak_mid = np.interp(ps_mid, p[::-1], a[::-1])
        weights[lev] = np.sum(ak_mid * rho) * dp
        plain[lev] = np.sum(rho) * dp
    return ColumnOperator(edges_m=edges_m, heights_m=(edges_m[:-1] + edges_m[1:]) / 2.0,
                          weights=weights, pressure_fraction=plain,
                          prior_term=float(np.sum(h * (1.0 - a) * x0)),
                          background_weight=float(np.sum(h * a)))


def ground_operator(surface_pressure: float, bottom_m: float = BOTTOM_M, top_m: float = TOP_M,
                    n_levels: int = N_LEVELS, scale_height_m: float = SCALE_HEIGHT_M,
                    n_pressure_levels: int = 51) -> ColumnOperator:
    """Operator of a ground-based spectrometer whose file carries no kernel (PROFFAST): AK = 1
    on levels evenly spaced in pressure from the measured surface pressure to the top, pressure
    weights of the layers, no prior term (``observations.column.ground_kernel: unity``)."""
    p = np.linspace(float(surface_pressure), 0.1, n_pressure_levels)
    e = layer_edges(p)
    h = (e[:-1] - e[1:]) / (e[0] - e[-1])
    return column_operator(p, np.ones_like(p), h, np.zeros_like(p), surface_pressure, bottom_m,
                           top_m, n_levels, scale_height_m)


def slab_index(release_height, edges_m: np.ndarray) -> np.ndarray:
    """The slab of each release height (particles above the top go to the top slab)."""
    z = np.asarray(release_height, dtype=float)
    return np.clip(np.searchsorted(edges_m, z, side="right") - 1, 0, len(edges_m) - 2)


def weight_particles(particles: pd.DataFrame, op: ColumnOperator) -> pd.DataFrame:
    """The particles of one ColumnReceptor run with ``foot`` × ``w_l N / n_l`` of their release
    slab ``l`` (``release_height`` column, as pystilt writes it). The footprint of the result,
    averaged over its ``N`` particles as usual, is ``Σ_l w_l F_l``. A slab without particles is
    an error (too few particles for ``n_levels``)."""
    if "release_height" not in particles.columns:
        raise ValueError("weight_particles: the particle table has no 'release_height'; it must "
                         "come from a pystilt ColumnReceptor run")
    first = particles.drop_duplicates("particle")
    slab_of = pd.Series(slab_index(first["release_height"], op.edges_m),
                        index=first["particle"].to_numpy())
    counts = np.bincount(slab_of.to_numpy(), minlength=len(op.weights))
    if np.any(counts == 0):
        raise ValueError(f"weight_particles: release slabs {np.flatnonzero(counts == 0).tolist()} "
                         f"hold no particle ({len(first)} particles for {len(op.weights)} slabs); "
                         "raise transport.numpar or lower observations.column.n_levels")
    factor = op.weights * len(first) / counts
    out = particles.copy()
    out["column_weight"] = factor[slab_of.reindex(out["particle"].to_numpy()).to_numpy()]
    out["foot"] = out["foot"] * out["column_weight"]
    return out


def scale_height_from_particles(particles: pd.DataFrame) -> float:
    """The scale height ``H`` (m) of ``ln p = b − z / H`` fitted to the particles' heights
    (``zagl``) and pressures (``pres``) at their first output step (closest to release)."""
    p = particles
    first = p.assign(_a=p["age"].abs()).sort_values("_a", kind="stable").drop_duplicates("particle")
    slope = np.polyfit(first["zagl"].to_numpy(float), np.log(first["pres"].to_numpy(float)), 1)[0]
    if not slope < 0:
        raise ValueError("scale_height_from_particles: pressure does not fall with height")
    return float(-1.0 / slope)


def column_footprint(level_footprints, weights) -> np.ndarray:
    """``Σ_l w_l F_l`` over the first axis of ``level_footprints`` (one footprint per slab)."""
    f = np.asarray(level_footprints, dtype=float)
    w = np.asarray(weights, dtype=float)
    if f.shape[0] != w.size:
        raise ValueError(f"column_footprint: {f.shape[0]} level footprints for {w.size} weights")
    return np.tensordot(w, f, axes=(0, 0))


def column_receptor(rec, op: ColumnOperator):
    """The pystilt ``ColumnReceptor`` of a receptor row (``time``, ``lon``, ``lat``) and its
    operator's release column."""
    import stilt

    bottom = max(float(op.edges_m[0]), BOTTOM_M)
    return stilt.ColumnReceptor(time=pd.Timestamp(rec["time"]), longitude=float(rec["lon"]),
                                latitude=float(rec["lat"]), bottom=bottom,
                                top=float(op.edges_m[-1]))


def hourly_soundings(soundings, site: str, ground_kernel: str = "unity", cell_deg: float = 0.1,
                     hour_mean: bool = True, **operator_kw) -> tuple[pd.DataFrame, list[ColumnOperator]]:
    """One observation per UTC hour (and, for a satellite, per ``cell_deg`` cell of the overpass)
    from the good soundings of a ``stations.columns.Soundings``, with its :class:`ColumnOperator`.

    Returns a table ``site``, ``instrument`` (= ``site`` argument), ``time`` (hour start, UTC), ``release`` (mean sounding time: the
    receptor's time), ``lon``, ``lat``, ``value`` (mean X), ``value_std_dev``, ``n`` and the
    operators (kernel, weights and prior averaged over the group's soundings; a ground file
    without kernels gets :func:`ground_operator` at the mean surface pressure when
    ``ground_kernel`` is ``unity``, else :meth:`Soundings.require_kernels` raises).
    ``value_std_dev``: the mean of the soundings' own uncertainties (OCO; not divided by √n, their
    errors are correlated along the track), or, without them (PROFFAST), the standard deviation
    of the hour's soundings (0 for one). ``site`` names the instrument; a satellite group gets
    ``{site}{k}`` per cell (k = 1, 2, …) so each group has its own receptor."""
    if not soundings.has_kernels and ground_kernel != "unity":
        soundings.require_kernels()
    ok = soundings.table["good"].to_numpy(bool)
    s = soundings.select(ok)
    t = s.table
    if t.empty:
        return pd.DataFrame(columns=["site", "instrument", "time", "release", "lon", "lat", "value",
                                     "value_std_dev", "n"]), []
    key_t = pd.DatetimeIndex(t["time"]).floor("h")
    if soundings.kind == "satellite":
        cell = (np.floor(t["lon"].to_numpy() / cell_deg).astype(np.int64) * 100000
                + np.floor(t["lat"].to_numpy() / cell_deg).astype(np.int64))
    else:
        cell = np.zeros(len(t), np.int64)
    if not hour_mean:
        groups = [np.array([i]) for i in range(len(t))]
    else:
        frame = pd.DataFrame({"h": key_t, "c": cell})
        groups = [np.asarray(ix) for ix in frame.groupby(["h", "c"], sort=True).indices.values()]
    rows, ops = [], []
    cell_ids: dict = {}
    for k, ix in enumerate(groups):
        sub = t.iloc[ix]
        unc = sub["uncertainty"].to_numpy(float)
        vals = sub["value"].to_numpy(float)
        sd = (float(np.mean(unc)) if np.all(np.isfinite(unc))
              else float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0)
        name = site
        if soundings.kind == "satellite":
            cid = cell_ids.setdefault(int(cell[ix[0]]), len(cell_ids) + 1)
            name = f"{site}{cid}" if hour_mean else f"{site}{k + 1}"
        elif not hour_mean:
            name = f"{site}{k + 1}"
        rows.append(dict(site=name, instrument=site, time=key_t[ix[0]], release=pd.Timestamp(sub["time"].mean()),
                         lon=float(sub["lon"].mean()), lat=float(sub["lat"].mean()),
                         value=float(vals.mean()), value_std_dev=sd, n=len(ix)))
        ps = float(np.nanmean(sub["surface_pressure"].to_numpy(float)))
        if s.has_kernels:
            ops.append(column_operator(s.pressure[ix].mean(axis=0), s.ak[ix].mean(axis=0),
                                       s.pressure_weight[ix].mean(axis=0), s.prior[ix].mean(axis=0),
                                       ps, **operator_kw))
        else:
            ops.append(ground_operator(ps, **operator_kw))
    return pd.DataFrame(rows), ops


def _hourly_row(hours_fp, foot, outer, grid, hours: pd.DatetimeIndex) -> tuple:
    """A receptor's gridded footprint as one sparse row ``hour * n_cells + cell`` on ``hours``
    (inner cells, then with a nested grid the outer cells in state order) and its sensitivity on
    the grid's cells in those hours (to subtract from the total for what lies outside)."""
    import scipy.sparse as sp

    from gzcarbon.grid import NestedGrid

    nested = grid if isinstance(grid, NestedGrid) else NestedGrid(grid)
    n_cells = nested.n_cells
    row = np.zeros(len(hours) * n_cells)
    pos = {h: k for k, h in enumerate(pd.DatetimeIndex(hours))}
    inside = 0.0
    for k, h in enumerate(hours_fp):
        j = pos.get(h)
        if j is None:
            continue
        v = (nested.state_vector(foot[k], outer[k]) if outer is not None
             else np.asarray(foot[k]).ravel())
        if v.size != n_cells:
            raise ValueError(f"footprint of {v.size} cells for a state of {n_cells} cells")
        row[j * n_cells:(j + 1) * n_cells] = v
        inside += float(v.sum())
    return sp.csr_matrix(row), inside


def column_jacobian_row(rec, op: ColumnOperator, met: dict, grid, hours: pd.DatetimeIndex,
                        settings, work_dir) -> tuple:
    """The Jacobian row (1 × len(hours)·n_cells, ``hour * n_cells + cell``) of one column
    receptor on ``grid``: the inner ``gzcarbon.grid.Grid``, or a ``NestedGrid`` (then the row has
    the outer cells too, gridded as the point receptors' nested footprints are:
    ``transport.stilt_driver._nested_hour_footprint``). One pystilt ``ColumnReceptor`` run of
    ``settings.numpar`` particles over ``settings.n_hours`` (no near/far split), the particles
    weighted by :func:`weight_particles`, gridded on clock hours as the point receptors are.
    ``rec``: ``time``, ``lon``, ``lat``, ``receptor_id``.
    Returns ``(row, outside)``: the sparse row and the sensitivity outside the grid and the hours
    (ppm / (µmol m-2 s-1)), for the background term."""
    from .stilt_driver import _gridded, _mkdtemp, _trajectories

    release = pd.Timestamp(rec["time"])
    n_hours = int(settings.n_hours)
    rid = str(rec.get("receptor_id", f"col_{release:%Y%m%d%H%M%S}"))
    Path(work_dir).mkdir(parents=True, exist_ok=True)
    particles = _trajectories(column_receptor(rec, op), rid, met, settings,
                              _mkdtemp(Path(work_dir), f"run_{rid}_"), n_hours, settings.numpar,
                              settings.extra)
    weighted = weight_particles(particles, op)
    fh, foot, total, outer, _ = _gridded(weighted, release, grid, n_hours, settings.smooth_factor)
    row, inside = _hourly_row(fh, foot, outer, grid, hours)
    return row, float(np.sum(total)) - inside


def point_jacobian_row(rec, met: dict, grid, hours: pd.DatetimeIndex, settings, work_dir) -> tuple:
    """The Jacobian row of a point receptor (a mobile segment: ``time``, ``lon``, ``lat``,
    ``agl``, ``receptor_id``) by the same driver as the sites' footprints
    (``transport.stilt_driver.receptor_footprint``: near/far split, nested gridding); returns
    ``(row, outside)`` as :func:`column_jacobian_row`."""
    from .stilt_driver import receptor_footprint

    Path(work_dir).mkdir(parents=True, exist_ok=True)
    fp, _ = receptor_footprint(pd.Series(dict(rec)), met, grid, settings, Path(work_dir))
    row, inside = _hourly_row(fp.hours, fp.foot, fp.foot_outer, grid, hours)
    return row, float(np.sum(fp.total)) - inside
