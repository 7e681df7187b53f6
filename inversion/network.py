"""Network design: the exact district and city posterior σ that a candidate site would give if its
observations were added to the current network (docs/network.md).

No OSSE and no re-solve: the posterior is Gaussian and its covariance does not depend on the data, so
the covariance with one more block of observations follows from the current posterior by conditioning.
Let z = [A x ; y_c] be the aggregates (district and city totals, rows A) and the candidates'
observations y_c = H_c x + e_c (e_c: their model-data mismatch, correlated between nearby candidates,
independent of the existing network's errors). Its prior covariance, and its covariance with the
existing observations y_1 = H_1 x + e_1, are

    C_zz = [[A Q Aᵀ, A Q H_cᵀ], [H_c Q Aᵀ, H_c Q H_cᵀ + R_c]],   C_z1 = [A ; H_c] Q H_1ᵀ,

and after the existing network (K_1 = H_1 Q H_1ᵀ + R_1, the inversion's own matrix)

    P = C_zz − C_z1 K_1⁻¹ C_1z                                   (P_aa = A Q̂ Aᵀ of the inversion).

Adding the observations of candidate c (indices c of y_c) is conditioning on them:

    A Q̂_c Aᵀ = P_aa − P_ac P_cc⁻¹ P_ca,                          (Schur complement: exact)

which is Sherman–Morrison–Woodbury for appending rows H_c to H: P_cc = H_c Q̂ H_cᵀ + R_c is the
innovation covariance of the new block and P_ac = A Q̂ H_cᵀ. A greedy step conditions P on the chosen
block (every remaining candidate's P, its errors included, is updated with it), so the next choice
sees what is already known — and, through the correlated errors, what a nearby site would repeat.
"""

from __future__ import annotations

import itertools
import logging
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.linalg as sla
import scipy.sparse as sp

log = logging.getLogger(__name__)

EARTH_RADIUS_KM = 6371.0


# --------------------------------------------------------------------------------------------------
# errors of the candidates
# --------------------------------------------------------------------------------------------------
def distance_km(lon1, lat1, lon2, lat2) -> np.ndarray:
    """Great-circle distance (km) between every pair (broadcast) of points (haversine)."""
    lo1, la1, lo2, la2 = (np.radians(np.asarray(v, float)) for v in (lon1, lat1, lon2, lat2))
    a = np.sin((la2 - la1) / 2) ** 2 + np.cos(la1) * np.cos(la2) * np.sin((lo2 - lo1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def candidate_error_covariance(lon, lat, times, value_std_dev, mismatch_sigma, corr_length_km: float,
                               corr_hours: float) -> np.ndarray:
    """R_c of the candidates' observations.

    R_ij = δ_ij s_i² + m_i m_j exp(−d_ij / L) ρ_t(t_i − t_j), s: measurement σ, m: model-data mismatch σ,
    d: distance between the two observations' sites (km), L = ``corr_length_km`` (0: only the same
    site correlates), ρ_t = exp(−|Δt| / ``corr_hours``) (0 hours: only the same hour). Within one site
    this is the inversion's R (`inversion.state.obs_error_covariance`); both factors are positive
    definite kernels, so R_c is too.
    """
    lon, lat = np.asarray(lon, float), np.asarray(lat, float)
    d = distance_km(lon[:, None], lat[:, None], lon[None, :], lat[None, :])
    if corr_length_km > 0:
        rho_s = np.exp(-d / float(corr_length_km))
    else:
        rho_s = (d < 1e-6).astype(float)
    t = np.asarray((pd.DatetimeIndex(times) - pd.Timestamp("2000-01-01")) / pd.Timedelta(hours=1), float)
    dt = np.abs(t[:, None] - t[None, :])
    rho_t = np.exp(-dt / float(corr_hours)) if corr_hours > 0 else (dt < 1e-9).astype(float)
    m = np.asarray(mismatch_sigma, float)
    return np.diag(np.asarray(value_std_dev, float) ** 2) + m[:, None] * m[None, :] * rho_s * rho_t


def station_correlated_errors(Rc, value_std_dev, cand_mismatch, cand_lon, cand_lat, cand_times, M1, st_mismatch,
                              st_sites, st_lon, st_lat, st_times, corr_length_km: float):
    """(R_c, R_c1): the candidates' error covariance and its covariance with the existing network's
    errors when a candidate's model-data mismatch is correlated with the nearest existing station's.

    The existing network's R (``M1``: its mismatch part, per site as the inversion has it; existing
    sites stay uncorrelated with each other) is not changed. The mismatch of candidate observation
    i is μ_i = β_i μ_j + ν_i, with j the nearest existing station's observation of the same hour,
    β_i = ρ_i m_i / m_j, ρ_i = exp(−d_ij / L), and ν the candidates' own part: covariance
    g (R_c − S) g, g = diag(√(1 − ρ²)), S = diag(``value_std_dev``²). So μ_i keeps its variance m_i²,
    its correlation with station j's observation of the same hour is ρ_i (with the station's other
    hours: ρ_i times the station's own time correlation), and the joint covariance of all errors is
    positive definite by construction (a linear map of independent parts). Returns
    R_c = S + g (R_c − S) g + B M1 Bᵀ and R_c1 = B M1 (n_c × n_1). A candidate with no station
    observation in its hour, or ``corr_length_km`` 0, keeps R_c's row."""
    n_c, n_1 = len(cand_mismatch), len(st_mismatch)
    B = np.zeros((n_c, n_1))
    rho = np.zeros(n_c)
    if corr_length_km > 0 and n_1:
        st_sites = np.asarray(st_sites).astype(str)
        names, first = np.unique(st_sites, return_index=True)
        d = distance_km(np.asarray(cand_lon, float)[:, None], np.asarray(cand_lat, float)[:, None],
                        np.asarray(st_lon, float)[first][None, :], np.asarray(st_lat, float)[first][None, :])
        nearest = d.argmin(axis=1)
        st_hour = pd.DatetimeIndex(st_times).floor("h")
        c_hour = pd.DatetimeIndex(cand_times).floor("h")
        key = {(s, h): j for j, (s, h) in enumerate(zip(st_sites, st_hour))}
        m_c, m_1 = np.asarray(cand_mismatch, float), np.asarray(st_mismatch, float)
        for i in range(n_c):
            j = key.get((names[nearest[i]], c_hour[i]))
            if j is None or m_1[j] <= 0:
                continue
            rho[i] = float(np.exp(-d[i, nearest[i]] / float(corr_length_km)))
            B[i, j] = rho[i] * m_c[i] / m_1[j]
    S = np.diag(np.asarray(value_std_dev, float) ** 2)
    g = np.sqrt(1.0 - rho**2)
    M1 = np.asarray(M1, float)
    R_c1 = B @ M1
    R = S + g[:, None] * (np.asarray(Rc, float) - S) * g[None, :] + R_c1 @ B.T
    return 0.5 * (R + R.T), R_c1


# --------------------------------------------------------------------------------------------------
# the algebra
# --------------------------------------------------------------------------------------------------
class _Dense:
    """A dense prior covariance with ``matmat`` (what `inversion.solve.build_hqht` applies)."""

    def __init__(self, Q):
        self.Q = np.asarray(Q, float)
        self.shape = self.Q.shape

    def matmat(self, V):
        return self.Q @ V


@dataclass
class Design:
    """The current network's posterior covariance P of z = [A x ; y_c] and the candidates' blocks."""

    P: np.ndarray
    names: list  # aggregates (rows of A)
    blocks: dict  # {candidate id: indices of its observations in y_c}
    prior_sigma: np.ndarray  # √diag(A Q Aᵀ)
    chosen: list = field(default_factory=list)

    @property
    def n_agg(self) -> int:
        return len(self.names)

    @property
    def sigma(self) -> np.ndarray:
        """Posterior σ of the aggregates with the current network (and the chosen candidates)."""
        return np.sqrt(np.maximum(np.diag(self.P[:self.n_agg, :self.n_agg]), 0.0))

    def _obs(self, ids) -> np.ndarray:
        return self.n_agg + np.concatenate([np.asarray(self.blocks[i], np.int64) for i in ids])

    def covariance_with(self, ids) -> np.ndarray:
        """A Q̂ Aᵀ with the observations of candidates ``ids`` added (exact: Schur complement)."""
        if not ids:
            return self.P[:self.n_agg, :self.n_agg].copy()
        c = self._obs(ids)
        a = np.arange(self.n_agg)
        try:
            L = sla.cholesky(self.P[np.ix_(c, c)], lower=True, check_finite=False)
        except np.linalg.LinAlgError:
            raise ValueError(f"network design: the innovation covariance of candidate(s) {list(ids)} is not "
                             "positive definite (two candidates at the same place with no measurement error?); "
                             "give network_design.insitu.value_std_dev_ppm > 0 or drop the duplicate") from None
        V = sla.solve_triangular(L, self.P[np.ix_(c, a)], lower=True, check_finite=False)
        cov = self.P[:self.n_agg, :self.n_agg] - V.T @ V
        return 0.5 * (cov + cov.T)

    def sigma_with(self, ids) -> np.ndarray:
        return np.sqrt(np.maximum(np.diag(self.covariance_with(list(ids))), 0.0))

    def add(self, cid: str) -> None:
        """Condition P on candidate ``cid``'s observations (a greedy step): every remaining candidate's
        block, errors included, now sees it."""
        c = self._obs([cid])
        L = sla.cholesky(self.P[np.ix_(c, c)], lower=True, check_finite=False)
        V = sla.solve_triangular(L, self.P[c], lower=True, check_finite=False)
        P = self.P - V.T @ V
        self.P = 0.5 * (P + P.T)
        self.chosen.append(cid)


def design_covariance(Q, H1, R1, A, Hc, Rc, blocks: dict, names: list, scale_Q: float = 1.0,
                      scale_R: float = 1.0, budget_bytes: float = 1.5e9, Rc1=None) -> Design:
    """The `Design` of the current network (rows ``H1``, errors ``R1``: σ vector or covariance) and the
    candidates (rows ``Hc``, error covariance ``Rc``), aggregates ``A``. ``Q``: a
    `inversion.covariance.KroneckerCovariance` (or its nested variant) or a dense matrix. ``scale_Q``,
    ``scale_R``: the inversion's tuned hyperparameters (1 without tuning; they scale Q and every R).
    ``Rc1``: covariance of the candidates' errors with the existing observations' (n_c × n_1,
    `station_correlated_errors`); None: independent."""
    from .kernels import SparseOperator
    from .solve import build_hqht

    Qop = Q if hasattr(Q, "matmat") and not isinstance(Q, np.ndarray) else _Dense(Q)
    A = sp.csr_matrix(A, dtype=np.float64)
    H1, Hc = sp.csr_matrix(H1, dtype=np.float64), sp.csr_matrix(Hc, dtype=np.float64)
    n1, nc, na = H1.shape[0], Hc.shape[0], A.shape[0]
    Hall = sp.vstack([H1, Hc], format="csr")
    K, AQH = build_hqht(Qop, SparseOperator(Hall), budget_bytes, side=[A])
    AQA = A @ Qop.matmat(A.T.toarray())
    AQA = 0.5 * (AQA + AQA.T) * scale_Q
    K, AQH = K * scale_Q, AQH * scale_Q
    R1 = np.asarray(R1, float)
    K11 = K[:n1, :n1] + (np.diag(R1**2) if R1.ndim == 1 else R1) * scale_R
    # z = [A x ; y_c]: prior covariance and covariance with y_1
    Czz = np.block([[AQA, AQH[:, n1:]], [AQH[:, n1:].T, K[n1:, n1:] + np.asarray(Rc, float) * scale_R]])
    Kc1 = K[n1:, :n1] if Rc1 is None else K[n1:, :n1] + np.asarray(Rc1, float) * scale_R
    Cz1 = np.vstack([AQH[:, :n1], Kc1])
    try:
        L = sla.cholesky(K11, lower=True, check_finite=False)
    except np.linalg.LinAlgError:
        raise ValueError("network design: H Q Hᵀ + R of the current network is not positive definite") from None
    V = sla.solve_triangular(L, Cz1.T, lower=True, check_finite=False)
    P = Czz - V.T @ V
    P = 0.5 * (P + P.T)
    assert P.shape == (na + nc, na + nc)
    return Design(P, list(names), {k: np.asarray(v, np.int64) for k, v in blocks.items()},
                  np.sqrt(np.maximum(np.diag(AQA), 0.0)))


def candidate_sigmas(design: Design) -> dict:
    """{candidate id: posterior σ of every aggregate with that candidate alone added}."""
    return {cid: design.sigma_with([cid]) for cid in design.blocks}


def greedy(design: Design, k: int, objective: int) -> list[dict]:
    """k greedy steps: each adds the remaining candidate that gives the smallest posterior σ of
    aggregate row ``objective``; returns [{id, sigma (all aggregates after the step)}]. ``design`` is
    not changed (a copy is conditioned)."""
    d = Design(design.P.copy(), design.names, design.blocks, design.prior_sigma, list(design.chosen))
    steps = []
    for _ in range(min(int(k), len(d.blocks))):
        left = [c for c in d.blocks if c not in d.chosen]
        s = {c: d.sigma_with([c])[objective] for c in left}
        best = min(left, key=lambda c: (s[c], c))
        d.add(best)
        steps.append({"id": best, "sigma": d.sigma.copy()})
    return steps


def brute_force(design: Design, k: int, objective: int) -> tuple[tuple, float]:
    """The best set of k candidates by exhaustive search (small cases only: C(n, k) Schur complements)."""
    best, best_s = None, math.inf
    for ids in itertools.combinations(sorted(design.blocks), k):
        s = float(design.sigma_with(list(ids))[objective])
        if s < best_s:
            best, best_s = ids, s
    return best, best_s


# --------------------------------------------------------------------------------------------------
# candidates
# --------------------------------------------------------------------------------------------------
CANDIDATE_COLUMNS = ["id", "type", "lon", "lat", "height", "to_lon", "to_lat"]
#: observation types of candidates: in-situ rows go through the footprint rules, the others through
#: rule network_extra_rows (`extra_candidate`)
CANDIDATE_TYPES = ("insitu", "column", "mobile")


def _inside(lon, lat, box) -> bool:
    return box[0] <= lon <= box[1] and box[2] <= lat <= box[3]


def grid_candidates(districts_path, spacing_km: float, height: float) -> list[dict]:
    """In-situ candidates on a regular grid (``spacing_km``) inside the union of the district polygons,
    ids ``G001``… (south to north, west to east)."""
    import shapely

    from gzcarbon.districts import read_districts

    city = shapely.union_all([d.geometry for d in read_districts(districts_path)])
    lon0, lat0, lon1, lat1 = city.bounds
    dlat = spacing_km / (EARTH_RADIUS_KM * np.pi / 180)
    dlon = dlat / np.cos(np.radians(0.5 * (lat0 + lat1)))
    lats = np.arange(lat0 + dlat / 2, lat1, dlat)
    lons = np.arange(lon0 + dlon / 2, lon1, dlon)
    out = []
    for la in lats:
        for lo in lons:
            if city.contains(shapely.Point(lo, la)):
                out.append({"id": f"G{len(out) + 1:03d}", "type": "insitu", "lon": round(float(lo), 4),
                            "lat": round(float(la), 4), "height": float(height)})
    return out


def candidate_table(nd, districts_path, state_box, met_box, station_ids) -> pd.DataFrame:
    """The candidates of the config's ``network_design`` (its list and its grid) as a table
    (:data:`CANDIDATE_COLUMNS`). A candidate outside the state grid or the met domain, an id of an
    existing station, no candidate at all or more than ``max_candidates`` stop with a ValueError
    naming the candidate, the field and the fix."""
    rows = [dict(c) if isinstance(c, dict) else c.as_dict() for c in nd["candidates"]]
    g = nd["grid"]
    if g["enabled"]:
        rows += grid_candidates(districts_path, float(g["spacing_km"]), float(g["height"]))
    if not rows:
        raise ValueError("config network_design: no candidates; give network_design.candidates (a list of "
                         "{id, type, lon, lat, height}) or network_design.grid.enabled: true (docs/network.md)")
    ids = [r["id"] for r in rows]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ValueError(f"config network_design: candidate id(s) {dup} given twice (a listed id equal to a "
                         "grid id G…?); rename the listed candidates")
    clash = sorted(set(ids) & set(station_ids))
    if clash:
        raise ValueError(f"config network_design.candidates: id(s) {clash} are stations of the stations file; "
                         "a candidate is a site that does not exist yet: give it another id")
    for r in rows:
        kind = r.get("type", "insitu")
        if kind not in CANDIDATE_TYPES:
            raise ValueError(f"config network_design.candidates: candidate {r['id']} has type {kind!r}; one of "
                             f"{', '.join(CANDIDATE_TYPES)}")
        points = [("", r["lon"], r["lat"])]
        if kind == "mobile":
            if r.get("to_lon") is None or r.get("to_lat") is None:
                raise ValueError(f"config network_design.candidates: mobile candidate {r['id']} needs to_lon and "
                                 "to_lat (the far end of its track)")
            points.append(("the far end of the track of ", r["to_lon"], r["to_lat"]))
        for box, what in ((met_box, "the met domain (config met)"), (state_box, "the state grid (config grid)")):
            for which, lo, la in points:
                if not _inside(float(lo), float(la), box):
                    raise ValueError(f"config network_design.candidates: {which}candidate {r['id']} at lon {lo}, "
                                     f"lat {la} is outside {what} {tuple(box)}; move it inside or drop it")
    if len(rows) > int(nd["max_candidates"]):
        per = receptors_per_hour(pd.DataFrame(rows).reindex(columns=CANDIDATE_COLUMNS), nd)
        raise ValueError(f"config network_design: {len(rows)} candidates > max_candidates = {nd['max_candidates']}; "
                         f"they need {per.sum():g} HYSPLIT receptor runs per selected hour, x the selected hours x "
                         f"max_candidate_days = {nd['max_candidate_days']} days (an in-situ or column candidate one "
                         "per hour, a mobile one 60 / mobile.every_minutes; a point receptor about 9 s of job time on "
                         "an idle core, a column receptor about 14 CPU s; docs/network.md, 'Cost'): widen grid.spacing_km, "
                         "shorten the list, or raise max_candidates knowing the cost")
    return pd.DataFrame(rows).reindex(columns=CANDIDATE_COLUMNS)


def receptors_per_hour(table: pd.DataFrame, nd) -> pd.Series:
    """HYSPLIT receptor runs of each candidate per selected hour: 1 for an in-situ or column
    candidate, 60 / ``mobile.every_minutes`` for a mobile one (its segments)."""
    every = float(nd.get("mobile", {}).get("every_minutes", 10))
    return pd.Series(np.where(table["type"].to_numpy() == "mobile", 60.0 / every, 1.0), index=table["id"])


def candidate_sites(table: pd.DataFrame) -> list[dict]:
    """The in-situ candidates as site dicts of the stations file's layout
    (`transport.receptors.schedule`); column and mobile candidates get their rows from
    `extra_candidate` (rule network_extra_rows)."""
    if "type" in table:
        table = table[table["type"].fillna("insitu") == "insitu"]
    return [{"id": r.id, "lon": float(r.lon), "lat": float(r.lat), "inlets": [{"height": float(r.height)}],
             "role": "candidate"} for r in table.itertuples()]


def candidate_days(period_days: list, max_days: int) -> list:
    """The days of the candidates' footprints: the first ``max_days`` days of the period."""
    return list(period_days)[:int(max_days)]


# --------------------------------------------------------------------------------------------------
# column and mobile candidates: their rows through the inversion's transport
# --------------------------------------------------------------------------------------------------
def track_points(lon0, lat0, lon1, lat1, start, end, speed_kmh, every_minutes):
    """(times, lons, lats) of a straight out-and-back drive from (lon0, lat0) to (lon1, lat1) at
    ``speed_kmh`` from ``start`` to ``end`` (exclusive), one point every ``every_minutes``."""
    L = float(distance_km(lon0, lat0, lon1, lat1))
    t = pd.date_range(start, end, freq=f"{int(every_minutes)}min", inclusive="left")
    if L <= 0:
        raise ValueError(f"mobile candidate: its track from ({lon0}, {lat0}) to ({lon1}, {lat1}) has no length")
    s = np.asarray((t - t[0]) / pd.Timedelta(hours=1), float) * float(speed_kmh)  # km driven
    f = np.abs(((s / L) + 1) % 2 - 1)  # 0 -> 1 -> 0 ... (out and back)
    return t, lon0 + f * (lon1 - lon0), lat0 + f * (lat1 - lat0)


def candidate_release_times(cand: dict, days, hours_local, utc_offset: float) -> pd.DatetimeIndex:
    """The release times of a candidate's receptors: every hour the inversion selects (obs hour +
    30 min, `transport.receptors.schedule`) on ``days``, as the in-situ candidates'."""
    from transport.receptors import schedule

    site = {"id": str(cand["id"]), "lon": float(cand["lon"]), "lat": float(cand["lat"]),
            "inlets": [{"height": max(float(cand.get("height") or 0.0), 1.0)}]}
    return pd.DatetimeIndex(schedule([site], days, hours_local=hours_local, utc_offset=utc_offset)["time"])


def column_candidate_rows(cand: dict, rel, obs_c: dict, retrieval_ppm: float, background, met, grid, hours,
                          settings, work_dir, row_fn=None):
    """`inversion.extra_obs.ExtraObservations` of a column candidate: one pystilt ``ColumnReceptor``
    per release time ``rel`` at the candidate's position (`transport.columns.column_jacobian_row`),
    ground kernel AK = 1 (`ground_operator`: pressure weights, no prior term), R from
    ``observations.column`` (``obs_c``) and the retrieval σ. ``row_fn`` replaces the transport
    (tests)."""
    from transport.columns import column_jacobian_row, ground_operator

    from .extra_obs import column_extra

    row_fn = row_fn or column_jacobian_row
    kw = dict(bottom_m=float(obs_c["bottom_m"]), top_m=float(obs_c["top_m"]), n_levels=int(obs_c["n_levels"]))
    rel = pd.DatetimeIndex(rel)
    cid, lon, lat = str(cand["id"]), float(cand["lon"]), float(cand["lat"])
    ops, rows = [], []
    for r in rel:
        op = ground_operator(1013.0, **kw)
        ops.append(op)
        rows.append(row_fn(dict(time=r, lon=lon, lat=lat, receptor_id=f"{cid}_{r:%Y%m%d%H%M%S}_col"),
                           op, met, grid, hours, settings, work_dir)[0])
    groups = pd.DataFrame({"site": cid, "instrument": cid, "release": rel, "time": rel.floor("h"), "lon": lon,
                           "lat": lat, "value": 0.0, "value_std_dev": float(retrieval_ppm)})
    return column_extra(groups, ops, sp.vstack(rows, format="csr"), background, float(obs_c["mismatch_ppm"]),
                        float(obs_c["background_sigma_ppm"]))


def mobile_candidate_segments(cand: dict, rel, speed_kmh: float, every_minutes: int,
                              segment_seconds: int) -> pd.DataFrame:
    """The segments (`stations.mobile.segments` layout) of a mobile candidate: on each day of the
    release times ``rel``, driven out and back along its line from the first selected hour's start
    to the last one's end, one segment every ``every_minutes`` (no plume spread; its time and position
    are its window's middle, as `stations.mobile.segments` gives them)."""
    rel = pd.DatetimeIndex(rel)
    half = pd.Timedelta(seconds=int(segment_seconds) / 2)  # a segment's time is its window's middle
    parts = []
    for _, r in pd.Series(rel, index=rel).groupby(rel.normalize()):
        t, lo, la = track_points(float(cand["lon"]), float(cand["lat"]), float(cand["to_lon"]),
                                 float(cand["to_lat"]), r.min().floor("h") + half,
                                 r.max().floor("h") + pd.Timedelta("1h") + half, speed_kmh, every_minutes)
        parts.append(pd.DataFrame({"time": t, "lon": lo, "lat": la}))
    seg = pd.concat(parts, ignore_index=True)
    return seg.assign(track=str(cand["id"]), segment=np.arange(len(seg)), height=float(cand["height"]),
                      value=0.0, n=int(segment_seconds), spread=0.0)[
        ["track", "segment", "time", "lon", "lat", "height", "value", "n", "spread"]]


def mobile_candidate_rows(cand: dict, rel, obs_m: dict, speed_kmh: float, every_minutes: int, background, met,
                          grid, hours, settings, work_dir, row_fn=None):
    """`inversion.extra_obs.ExtraObservations` of a mobile candidate (`mobile_candidate_segments`),
    one point receptor per segment (`transport.columns.point_jacobian_row`: the sites' driver), R
    from ``observations.mobile`` (``obs_m``): the mismatch floor, the along-track correlation and
    the background per track. ``row_fn`` replaces the transport (tests)."""
    from stations.mobile import receptors as segment_receptors
    from transport.columns import point_jacobian_row

    from .extra_obs import mobile_extra

    row_fn = row_fn or point_jacobian_row
    seg = mobile_candidate_segments(cand, rel, speed_kmh, every_minutes, int(obs_m["segment_seconds"]))
    rows = [row_fn(r._asdict(), met, grid, hours, settings, work_dir)[0]
            for r in segment_receptors(seg).itertuples(index=False)]
    return mobile_extra(seg, sp.vstack(rows, format="csr"), background, float(obs_m["mismatch_ppm"]),
                        float(obs_m["plume_factor"]), float(obs_m["measurement_ppm"]), float(obs_m["corr_minutes"]),
                        float(obs_m["background_sigma_ppm"]))


def extra_candidate(cand: dict, nd: dict, observations: dict, days, hours_local, utc_offset: float, selected_path,
                    met, grid, hours, settings, work_dir, row_fn=None):
    """(`inversion.extra_obs.ExtraObservations`, CPU s) of one column or mobile candidate on the
    candidate ``days`` (rule network_extra_rows): release times as the in-situ candidates'
    (`candidate_release_times`), the sites' mean background of the day (as the inversion's column
    and mobile rows), rows through ``settings``' transport (the inversion's, or the demo truth's)."""
    from .extra_obs import _background_of, _cpu, _day_background

    t0 = _cpu()
    hours = pd.DatetimeIndex(hours)
    rel = candidate_release_times(cand, days, hours_local, utc_offset)
    rel = rel[(rel >= hours[0]) & (rel <= hours[-1] + pd.Timedelta("1h"))]
    if not len(rel):
        raise ValueError(f"network design: candidate {cand['id']} has no selected hour on {list(days)} inside the "
                         f"run's hours {hours[0]}..{hours[-1]}")
    day_bg = _day_background(selected_path)
    if cand["type"] == "column":
        bg = _background_of(day_bg, rel.floor("h"), selected_path)
        extra = column_candidate_rows(cand, rel, observations["column"], float(nd["column"]["retrieval_ppm"]), bg,
                                      met, grid, hours, settings, work_dir, row_fn)
    elif cand["type"] == "mobile":
        m = nd["mobile"]
        seg_t = mobile_candidate_segments(cand, rel, float(m["speed_kmh"]), int(m["every_minutes"]),
                                          int(observations["mobile"]["segment_seconds"]))["time"]
        bg = _background_of(day_bg, seg_t, selected_path)
        extra = mobile_candidate_rows(cand, rel, observations["mobile"], float(m["speed_kmh"]),
                                      int(m["every_minutes"]), bg, met, grid, hours, settings, work_dir, row_fn)
    else:
        raise ValueError(f"network design: candidate {cand['id']} is of type {cand['type']!r}; in-situ candidates "
                         "get their rows from the footprint rules")
    return extra, _cpu() - t0


def hour_shares(selected_path, times, sides) -> dict:
    """{bg_share_<side>: the sites' mean inflow share at each hour of ``times``} (model boundary):
    the inflow shares of column and mobile candidate rows."""
    if not sides:
        return {}
    sel = pd.read_csv(selected_path)
    sel["time"] = pd.to_datetime(sel["time"], utc=True).dt.tz_localize(None)
    m = sel.groupby(pd.DatetimeIndex(sel["time"]).floor("h"))[[f"bg_share_{s}" for s in sides]].mean()
    h = pd.DatetimeIndex(pd.to_datetime(times)).floor("h")
    out = m.reindex(h)
    if out.isna().any().any():
        bad = sorted({str(x) for x, b in zip(h, out.isna().any(axis=1)) if b})
        raise ValueError(f"{selected_path}: no site observation at hour(s) {bad} of the column/mobile candidates' "
                         "rows, so no inflow shares for them (model boundary)")
    return {c: out[c].to_numpy(float) for c in out.columns}


# --------------------------------------------------------------------------------------------------
# the pipeline's design
# --------------------------------------------------------------------------------------------------
def candidate_observations(receptors: pd.DataFrame, table: pd.DataFrame, type_errors: dict,
                           shares: pd.DataFrame | None = None) -> pd.DataFrame:
    """selected.csv-like rows of the candidates' would-be observations, one per receptor (obs hour =
    release − 30 min), value and background 0 (the design never uses the data), the type's measurement
    and background σ. ``shares`` (model boundary: receptor_id, bg_share_N/E/S/W from the candidates'
    own exit points) are joined when given."""
    info = table.set_index("id")
    rec = receptors.reset_index(drop=True)
    kinds = info.loc[rec["site"].astype(str), "type"].to_numpy()
    out = pd.DataFrame({
        "site": rec["site"].astype(str).to_numpy(),
        "time": pd.DatetimeIndex(rec["time"]).floor("h"),
        "intake_height": rec["agl"].to_numpy(float),
        "value": 0.0, "background": 0.0,
        "value_std_dev": [type_errors[k]["value_std_dev_ppm"] for k in kinds],
        "background_sigma": [type_errors[k]["background_sigma_ppm"] for k in kinds],
        "receptor_id": rec["receptor_id"].astype(str).to_numpy(),
    })
    if shares is not None:
        out = out.merge(shares, on="receptor_id", how="left")
    return out


def exit_shares(footprint_paths, receptors: pd.DataFrame, outer_box) -> pd.DataFrame:
    """bg_share_N/E/S/W per candidate receptor from its particles' exit points (the model boundary's
    inflow shares, as `transport.boundary.receptor_backgrounds` gives them for the stations)."""
    from transport.boundary import SIDES, exits_from_footprints, inflow_side

    e = exits_from_footprints(list(footprint_paths), receptors)
    if e.empty:
        raise ValueError("network design: the candidates' footprint files hold no exit points; the model "
                         "boundary needs them (outer_grid.enabled: true, HYSPLIT-STILT footprints)")
    side = inflow_side(e["lon"], e["lat"], outer_box)
    df = pd.DataFrame({"receptor_id": e["receptor_id"].astype(str),
                       **{f"bg_share_{s}": (side == s).astype(float) for s in SIDES}})
    return df.groupby("receptor_id", sort=False).mean().reset_index()


@dataclass
class NetworkDesignResult:
    candidates: pd.DataFrame  # candidates.csv
    greedy: pd.DataFrame  # greedy.csv
    summary: dict  # design.json
    design: Design
    #: the problem behind it (tools/network_osse.py): ``prob``, ``used`` (the existing rows kept), ``R1``,
    #: ``H`` (candidate rows on the state), ``R`` (their error covariance), ``R1c`` (with the existing
    #: observations' errors, or None), ``blocks`` ({id: rows}), ``cp`` (the in-situ candidates' Problem),
    #: ``days``, ``agg``
    parts: dict = field(default_factory=dict)


def _aggregate_columns(names, sigma) -> dict:
    return {("city_sigma" if n == names[-1] else f"sigma_{n}"): float(s) for n, s in zip(names, sigma)}


def existing_mismatch(inputs, cfg, prob, used) -> dict:
    """The existing network's used observations for `station_correlated_errors`: their mismatch σ
    (the inversion's rule: √(transport² + background σ²)), its covariance M1 as the inversion's R has
    it (time-correlated within a site), their sites, positions (receptors) and hours."""
    from .state import obs_error_covariance

    obs = prob.obs.loc[np.asarray(used, bool)]
    enh = np.asarray(prob.prior_enhancement, float)[np.asarray(used, bool)]
    transport = np.sqrt(float(cfg.obs_sigma_ppm) ** 2 + (float(cfg.obs_rel_sigma) * np.abs(enh)) ** 2)
    bgs = np.nan_to_num(obs["background_sigma"].to_numpy(float))
    m = np.sqrt(transport**2 + bgs**2)
    times = pd.DatetimeIndex(pd.to_datetime(obs["time"]))
    if float(cfg.obs_corr_hours) > 0:
        M1 = obs_error_covariance(obs["site"].to_numpy(), times, np.zeros(len(m)), m, float(cfg.obs_corr_hours))
    else:
        M1 = np.diag(m**2)
    rec = inputs.receptors.iloc[obs["row"].to_numpy()]
    return {"M1": M1, "mismatch": m, "sites": obs["site"].astype(str).to_numpy(), "lon": rec["lon"].to_numpy(float),
            "lat": rec["lat"].to_numpy(float), "times": times}


def candidate_problem(inputs, cfg, prob, nd, table: pd.DataFrame, cand_H_hourly, cand_receptors, days, *,
                      cand_missing=None, shares=None, stations: dict | None = None):
    """(the candidates' `inversion.state.Problem` on the inversion's state ``prob`` — the same cells,
    steps, background terms and scaling factors —, their error covariance R_c, {id: rows}, R_c1).
    R_c: the type's measurement σ, the inversion's mismatch rule (``obs_sigma_ppm``, ``obs_rel_sigma``
    · |H x_a|) and the type's background σ, correlated by `candidate_error_covariance`. ``stations``
    (`existing_mismatch`): the mismatch is also correlated with the nearest existing station's
    (`station_correlated_errors`, length ``corr_length_km``); R_c1 is then the candidates' error
    covariance with the existing observations, else None."""
    from .state import build_problem

    types = {"insitu": dict(nd["insitu"])}
    sel = candidate_observations(cand_receptors, table, types, shares)
    if prob.sides and not all(f"bg_share_{s}" in sel for s in prob.sides):
        raise ValueError("network design: the inversion uses the model boundary (bias per day and inflow side) "
                         "but the candidates have no inflow shares; pass their footprints' exit points")
    cp = build_problem(cand_H_hourly, cand_receptors, inputs.hours, sel, inputs.prior_flux, inputs.lat_edges,
                       inputs.lon_edges, cfg, days, missing=cand_missing, prior_power=inputs.prior_power_flux,
                       factors=prob.factors, prior_bio=inputs.prior_bio_flux, outer=inputs.outer)
    if cp.H.shape[1] != prob.H.shape[1]:
        raise ValueError(f"network design: the candidates' state has {cp.H.shape[1]} columns, the inversion's "
                         f"{prob.H.shape[1]}; rebuild the candidates' Jacobian on the run's grid and hours")
    obs = cp.obs
    info = table.set_index("id").loc[obs["site"].astype(str)]
    kinds = info["type"].to_numpy()
    vsd = np.array([types[k]["value_std_dev_ppm"] for k in kinds])
    bgs = np.array([types[k]["background_sigma_ppm"] for k in kinds])
    transport = np.sqrt(float(cfg.obs_sigma_ppm) ** 2 + (float(cfg.obs_rel_sigma) * np.abs(cp.prior_enhancement)) ** 2)
    Rc = candidate_error_covariance(info["lon"].to_numpy(float), info["lat"].to_numpy(float), obs["time"], vsd,
                                    np.sqrt(transport**2 + bgs**2), float(nd["corr_length_km"]),
                                    float(cfg.obs_corr_hours))
    Rc1 = None
    if stations is not None:
        Rc, Rc1 = station_correlated_errors(
            Rc, vsd, np.sqrt(transport**2 + bgs**2), info["lon"].to_numpy(float), info["lat"].to_numpy(float),
            obs["time"], stations["M1"], stations["mismatch"], stations["sites"], stations["lon"], stations["lat"],
            stations["times"], float(nd["corr_length_km"]))
    site_of = obs["site"].astype(str).to_numpy()
    blocks = {c: np.flatnonzero(site_of == c) for c in table["id"] if (site_of == c).any()}
    return cp, Rc, blocks, Rc1


def extra_candidate_rows(inputs, cfg, days, utc_offset_hours, prob, extra, owner) -> tuple:
    """(H rows, R, {id: rows}) of column and mobile candidates on the inversion's state ``prob``.

    ``extra``: their `inversion.extra_obs.ExtraObservations` (``column_extra``: a ground column
    sensor's hourly receptors, ``mobile_extra``: a track's segments), ``owner``: the candidate id of
    each of its rows. The rows are mapped onto the state exactly as the inversion maps extra
    observations (`augment_inputs`, `build_inversion_problem`, `apply_type_errors`): a column row has
    no daily surface-offset coefficient (its background is in R: retrieval + mismatch + a background
    shared per instrument and day), a mobile row keeps it (R with the along-track correlation and the
    background shared per track). Between candidates of different types or tracks, R is zero."""
    from .extra_obs import _extra_rows, apply_type_errors, augment_inputs
    from .run import build_inversion_problem

    owner = np.asarray(owner).astype(str)
    if len(owner) != extra.H_hourly.shape[0]:
        raise ValueError(f"network design: {len(owner)} candidate ids for {extra.H_hourly.shape[0]} column/mobile rows")
    p2 = build_inversion_problem(augment_inputs(inputs, extra), cfg, days, utc_offset_hours)
    if p2.H.shape[1] != prob.H.shape[1] or p2.n_offsets != prob.n_offsets:
        raise ValueError(f"network design: the column/mobile candidates change the state ({p2.H.shape[1]} columns, "
                         f"the inversion's {prob.H.shape[1]}); give them observations inside the period's days")
    p2 = apply_type_errors(p2, extra)
    pos, idx = _extra_rows(p2, extra)
    if len(pos) < len(owner):
        log.warning("network design: %d of %d column/mobile candidate rows are outside the period or without "
                    "footprint; left out", len(owner) - len(pos), len(owner))
    H = sp.csr_matrix(p2.H)[pos]
    R = np.asarray(p2.obs_cov, float)[np.ix_(pos, pos)]
    who = owner[idx]
    blocks = {c: np.flatnonzero(who == c) for c in dict.fromkeys(owner) if (who == c).any()}
    return H, R, blocks


def network_design(inputs, config, nd, table: pd.DataFrame, cand_H_hourly, cand_receptors, period_start, period_end,
                   *, cand_missing=None, utc_offset_hours: float = 0.0, shares=None, hyper: dict | None = None,
                   cost: dict | None = None, extra=None, extra_owner=None) -> NetworkDesignResult:
    """The design of the month: the inversion's own problem (``inputs``: `inversion.run.InversionInputs`,
    ``config``: the ``inversion`` settings; same screening, aggregates and hyperparameters ``hyper``) and
    the candidates' Jacobian rows (``cand_H_hourly`` on the same hours and cells, ``cand_receptors``),
    mapped onto the same state by `inversion.state.build_problem`. Column and mobile candidates (rows of
    ``table`` with type ``column``/``mobile``) come as ``extra`` (`inversion.extra_obs.ExtraObservations`)
    with ``extra_owner`` (candidate id per row): `extra_candidate_rows`."""
    from .run import build_aggregation, build_inversion_problem, period_axis, screen_observations
    from .settings import inversion_config

    cfg = inversion_config(config)
    mask, days = period_axis(inputs.hours, period_start, period_end)
    prob = build_inversion_problem(inputs, cfg, days, utc_offset_hours)
    scr = screen_observations(prob, cfg)
    agg = build_aggregation(inputs, prob, mask, days, cfg)
    used = scr.used
    R1 = prob.obs_cov[np.ix_(used, used)] if prob.obs_cov is not None else prob.obs_sigma[used]
    ins = table[table["type"] == "insitu"]
    stations = existing_mismatch(inputs, cfg, prob, used) if nd.get("station_correlation", True) else None
    Rc1 = None
    if len(ins):
        cp, Rc, blocks, Rc1 = candidate_problem(inputs, cfg, prob, nd, ins, cand_H_hourly, cand_receptors, days,
                                                cand_missing=cand_missing, shares=shares, stations=stations)
        Hc, obs = cp.H, cp.obs
    else:
        cp = None
        Hc, Rc, blocks, obs = sp.csr_matrix((0, prob.H.shape[1])), np.zeros((0, 0)), {}, pd.DataFrame({"time": []})
    others = table[table["type"] != "insitu"]
    if len(others):
        if extra is None:
            raise ValueError(f"network design: column/mobile candidate(s) {list(others['id'])} have no rows; "
                             "pass their ExtraObservations (extra, extra_owner)")
        Hx, Rx, bx = extra_candidate_rows(inputs, cfg, days, utc_offset_hours, prob, extra, extra_owner)
        n0 = Hc.shape[0]
        blocks.update({c: v + n0 for c, v in bx.items()})
        Hc, Rc = sp.vstack([sp.csr_matrix(Hc), Hx], format="csr"), sla.block_diag(Rc, Rx)
        if Rc1 is not None:  # column and mobile rows: independent of the existing stations' errors
            Rc1 = np.vstack([Rc1, np.zeros((Hx.shape[0], Rc1.shape[1]))])
        obs = pd.concat([obs[["time"]], pd.DataFrame({"time": pd.to_datetime(extra.selected["time"])})])
    lost = [c for c in table["id"] if c not in blocks]
    if lost:
        log.warning("network design: candidate(s) %s have no footprint in the period (HYSPLIT failures or no "
                    "selected hour): they are left out of the tables", lost)
    types = {"insitu": dict(nd["insitu"])}
    hyper = hyper or {}
    sQ, sR = float(hyper.get("scale_Q", 1.0)), float(hyper.get("scale_R", 1.0))
    if cfg.tune_hyperparameters and not hyper:
        raise ValueError("network design: inversion.tune_hyperparameters is on; pass the run's diagnostics.json "
                         "(its `hyperparameters` scale Q and R)")
    names = list(agg.names)
    design = design_covariance(prob.Q, prob.H[used], R1, agg.A, Hc, Rc, blocks, names, sQ, sR, Rc1=Rc1)
    obj = _objective_row(nd["objective"], names)
    base = design.sigma
    sig = candidate_sigmas(design)
    rows = []
    for r in table.itertuples():
        if r.id not in sig:
            continue
        s = sig[r.id]
        rows.append({"id": r.id, "type": r.type, "lon": r.lon, "lat": r.lat, "height": r.height,
                     "to_lon": getattr(r, "to_lon", np.nan), "to_lat": getattr(r, "to_lat", np.nan),
                     "n_obs": int(blocks[r.id].size), **_aggregate_columns(names, s),
                     "city_sigma_reduction_pct": 100.0 * (1 - s[-1] / base[-1]),
                     "objective_sigma_reduction_pct": 100.0 * (1 - s[obj] / base[obj])})
    cand = pd.DataFrame(rows).sort_values("objective_sigma_reduction_pct", ascending=False, kind="stable")
    steps = greedy(design, int(nd["k"]), obj)
    g = [{"step": 0, "id": "", **_aggregate_columns(names, base)}]
    g += [{"step": i + 1, "id": st["id"], **_aggregate_columns(names, st["sigma"])} for i, st in enumerate(steps)]
    summary = {
        "aggregates": names, "prior_sigma_t": design.prior_sigma.tolist(), "current_sigma_t": base.tolist(),
        "objective": names[obj], "k": int(nd["k"]), "corr_length_km": float(nd["corr_length_km"]),
        "station_correlation": bool(nd.get("station_correlation", True)),
        "n_existing_obs": int(used.sum()), "n_candidate_obs": int(Hc.shape[0]),
        "candidate_days": sorted({pd.Timestamp(t).strftime("%Y-%m-%d") for t in obs["time"]}),
        "hyperparameters": {"scale_Q": sQ, "scale_R": sR}, "left_out": lost,
        "insitu": types["insitu"], "column": dict(nd.get("column") or {}), "mobile": dict(nd.get("mobile") or {}),
        "types": {k: int((table["type"] == k).sum()) for k in CANDIDATE_TYPES}, "cost": cost or {},
    }
    parts = {"prob": prob, "used": used, "R1": R1, "H": sp.csr_matrix(Hc), "R": Rc, "R1c": Rc1, "blocks": blocks,
             "cp": cp, "days": days, "agg": agg, "cfg": cfg}
    return NetworkDesignResult(cand.reset_index(drop=True), pd.DataFrame(g), summary, design, parts)


def _objective_row(objective: str, names: list) -> int:
    if objective == "city":
        return len(names) - 1
    if objective not in names:
        raise ValueError(f"config network_design.objective: {objective!r} is neither 'city' nor a district of "
                         f"the districts file ({', '.join(names[:-1])})")
    return names.index(objective)


def check_current_sigma(result: NetworkDesignResult, districts_csv, rtol: float = 1e-4) -> float:
    """The design's σ of the current network against the run's districts.csv (posterior_sigma_t): the
    same problem must give the same σ. Returns the largest relative difference; beyond ``rtol`` a
    ValueError names both (districts.csv from another run or settings)."""
    d = pd.read_csv(districts_csv)
    names, base = result.summary["aggregates"], np.asarray(result.summary["current_sigma_t"])
    ref = d.set_index("district").reindex(names)["posterior_sigma_t"].to_numpy(float)
    if not np.all(np.isfinite(ref)):
        raise ValueError(f"{districts_csv}: districts {', '.join(np.array(names)[~np.isfinite(ref)])} missing; "
                         "re-run the inversion")
    rel = float(np.max(np.abs(base - ref) / ref))
    if rel > rtol:
        raise ValueError(f"network design: the current network's posterior sigma ({base[-1]:.6g} t for the city) "
                         f"differs from {districts_csv} ({ref[-1]:.6g} t) by {rel:.2e} relative: the inversion "
                         "ran with other inputs or settings; re-run it (snakemake network_design re-runs both)")
    return rel


def load_extra_candidates(paths, selected, sides):
    """(ExtraObservations of every column/mobile candidate, candidate id per row) from the files of
    rule network_extra_rows (``network/extra/<id>.npz``: the id is the file's stem), the model
    boundary's inflow shares (``sides``) of the sites' same hour added."""
    from pathlib import Path

    from .extra_obs import concat_extra, load_extra

    parts, owner = [], []
    for p in paths:
        e = load_extra(p)
        parts.append(e)
        owner += [Path(p).stem] * e.H_hourly.shape[0]
    extra = concat_extra(parts)
    if extra is None:
        return None, np.zeros(0, str)
    for k, v in hour_shares(selected, extra.selected["time"], sides).items():
        extra.selected[k] = v
    return extra, np.asarray(owner)


def run_network_design(jacobian, selected, prior, districts, cand_jacobian, cand_receptors, candidates_table,
                       out_candidates, out_greedy, out_summary, *, inversion_cfg, nd, period_start, period_end,
                       utc_offset_hours=0.0, districts_csv=None, diagnostics=None, cand_footprints=(),
                       outer_box=None, neighbours=None, extra_rows=()) -> NetworkDesignResult:
    """Read the pipeline files, design, check the current σ against the run's districts.csv, write
    candidates.csv, greedy.csv and design.json atomically. ``cand_jacobian``/``cand_receptors``: the
    in-situ candidates' (None without any); ``extra_rows``: the column and mobile candidates' files
    (`load_extra_candidates`)."""
    import json
    import time

    from gzcarbon.atomic import atomic_write
    from transport.jacobian import load_jacobian

    from .run import load_inputs

    t0 = time.process_time()
    inputs = load_inputs(jacobian, selected, prior, districts, None, inversion_cfg, neighbours_path=neighbours)
    table = pd.read_csv(candidates_table, dtype={"id": str})
    with open(selected) as fh:
        sides = [c.removeprefix("bg_share_") for c in fh.readline().strip().split(",") if c.startswith("bg_share_")]
    H_c, rec, missing, shares = None, None, None, None
    if cand_jacobian:
        jac = load_jacobian(cand_jacobian)
        if len(jac.hours) != len(inputs.hours) or pd.Timestamp(jac.hours[0]) != inputs.hours[0]:
            raise ValueError(f"{cand_jacobian}: hours {jac.hours[0]}..{jac.hours[-1]} differ from the run's "
                             f"{inputs.hours[0]}..{inputs.hours[-1]}; re-run rule network_jacobian")
        H_c, rec, missing = jac.H, jac.receptors, getattr(jac, "missing", None)
        if sides:
            from transport.receptors import read_receptors

            shares = exit_shares(cand_footprints, read_receptors(cand_receptors), outer_box)
    extra, owner = load_extra_candidates(list(extra_rows), selected, sides)
    hyper = json.loads(open(diagnostics).read()).get("hyperparameters") if diagnostics else None
    res = network_design(inputs, inversion_cfg, nd, table, H_c, rec, period_start, period_end,
                         cand_missing=missing, utc_offset_hours=utc_offset_hours, shares=shares,
                         hyper=hyper if hyper and hyper.get("method", "none") != "none" else None,
                         extra=extra, extra_owner=owner)
    if districts_csv:
        res.summary["current_sigma_check_rel"] = check_current_sigma(res, districts_csv)
    res.summary["design_cpu_s"] = time.process_time() - t0
    atomic_write(out_candidates, lambda p: res.candidates.to_csv(p, index=False, float_format="%.6g"))
    atomic_write(out_greedy, lambda p: res.greedy.to_csv(p, index=False, float_format="%.6g"))
    atomic_write(out_summary, lambda p: open(p, "w").write(json.dumps(res.summary, indent=2, default=float)))
    log.info("network design: %d candidates, current city sigma %.0f t; best %s -> %.0f t (%.1f %%); greedy %s",
             len(res.candidates), res.summary["current_sigma_t"][-1], res.candidates["id"].iloc[0],
             res.candidates["city_sigma"].iloc[0], res.candidates["city_sigma_reduction_pct"].iloc[0],
             " > ".join(res.greedy["id"].iloc[1:]))
    return res
