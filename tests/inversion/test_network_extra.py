"""Column and mobile candidates in the network design (inversion.network.extra_candidate_rows): the σ
with a column sensor or a day of mobile transects added equals a dense re-solve with their rows; a
column row has no daily surface-offset coefficient, a mobile row has; R is the type's formula; the
rules' rows (extra_candidate, one file per candidate) rank the three types in one table."""

import numpy as np
import pandas as pd
import pytest
import scipy.linalg as sla
import scipy.sparse as sp

from inversion.extra_obs import ExtraObservations, column_extra, mobile_extra
from inversion.network import extra_candidate_rows, network_design
from inversion.run import InversionInputs, build_aggregation, build_inversion_problem, period_axis, screen_observations
from inversion.settings import inversion_config
from transport.columns import ground_operator

from test_network_run import _nd
from test_run import CFG, area, fake_world, two_districts

COL_SIGMA = dict(retrieval=0.4, mismatch=0.5, background=0.3)
MOB = dict(mismatch=1.0, plume_factor=0.5, measurement=0.2, corr_minutes=15.0, background=0.4)


def _world():
    w = fake_world()
    names, F = two_districts()
    sel = w["sel"].assign(time=pd.to_datetime(w["sel"]["time"], utc=True).dt.tz_localize(None))
    keep = (sel.site == "AAA").to_numpy()
    inputs = InversionInputs(w["H"], w["rec"], w["hours"], sel[keep], w["prior"], w["lat"], w["lon"], names, F,
                             area())
    rec = w["rec"].reset_index(drop=True)
    return w, inputs, rec


def _column(w, rec):
    """An EM27-type sensor at BBB: hourly column receptors 04-07 UTC on both days, its rows a quarter of
    BBB's surface footprint (a column sees the surface layer diluted), ground kernel AK = 1."""
    b = rec.index[rec.site == "BBB"].to_numpy()
    t = pd.DatetimeIndex(rec.loc[b, "time"])
    groups = pd.DataFrame({"site": "COL", "instrument": "COL", "release": t, "time": t.floor("h"),
                           "lon": rec.loc[b, "lon"].to_numpy(), "lat": rec.loc[b, "lat"].to_numpy(),
                           "value": 0.0, "value_std_dev": COL_SIGMA["retrieval"]})
    ops = [ground_operator(1010.0) for _ in b]
    return column_extra(groups, ops, 0.25 * w["H"][b], 420.0, COL_SIGMA["mismatch"], COL_SIGMA["background"])


def _mobile(w, rec):
    """One track on the first day: six 1-minute segments every 10 minutes from 05:05 UTC, each with
    half of AAA's 05:30 footprint shifted by a few percent."""
    a = int(np.flatnonzero((rec.site == "AAA") & (pd.DatetimeIndex(rec.time) == pd.Timestamp("2025-01-02 05:30")))[0])
    t = pd.Timestamp("2025-01-02 05:05") + pd.to_timedelta(10 * np.arange(6), unit="min")
    seg = pd.DataFrame({"track": "MOB", "segment": np.arange(6), "time": t, "lon": 113.05 + 0.01 * np.arange(6),
                        "lat": 23.05, "height": 3.0, "value": 0.0, "n": [60, 55, 60, 40, 60, 60],
                        "spread": [0.5, 2.0, 0.1, 0.8, 0.3, 1.2]})
    rows = sp.vstack([w["H"][a] * (0.5 + 0.02 * i) for i in range(6)], format="csr")
    return mobile_extra(seg, rows, 420.0, MOB["mismatch"], MOB["plume_factor"], MOB["measurement"],
                        MOB["corr_minutes"], MOB["background"]), seg


def _both(a, b):
    """The rows of ``a`` then ``b`` as one ExtraObservations (the along-track time of the mobile one)."""
    return ExtraObservations(sp.vstack([a.H_hourly, b.H_hourly], format="csr"),
                             pd.concat([a.receptors, b.receptors], ignore_index=True),
                             pd.concat([a.selected, b.selected], ignore_index=True), np.r_[a.kind, b.kind],
                             np.r_[a.mismatch, b.mismatch], np.r_[a.group, b.group],
                             np.r_[a.background_sigma, b.background_sigma], corr_minutes=b.corr_minutes)


def _problem(inputs):
    cfg = inversion_config(CFG)
    mask, days = period_axis(inputs.hours, "2025-01-02", "2025-01-04")
    prob = build_inversion_problem(inputs, cfg, days)
    return cfg, mask, days, prob


def _dense_sigma(Q, H, R, A):
    Qh = np.linalg.inv(np.linalg.inv(Q) + H.T @ np.linalg.solve(R, H))
    return np.sqrt(np.diag(A @ Qh @ A.T))


def test_column_and_mobile_candidates_equal_a_dense_re_solve():
    w, inputs, rec = _world()
    col = _column(w, rec)
    mob, _ = _mobile(w, rec)
    extra = _both(col, mob)
    owner = np.r_[np.full(col.H_hourly.shape[0], "COL"), np.full(mob.H_hourly.shape[0], "MOB")]
    b = rec.index[rec.site == "BBB"].to_numpy()
    table = pd.DataFrame([
        {"id": "BBB", "type": "insitu", "lon": rec.loc[b[0], "lon"], "lat": rec.loc[b[0], "lat"], "height": 100.0},
        {"id": "COL", "type": "column", "lon": rec.loc[b[0], "lon"], "lat": rec.loc[b[0], "lat"], "height": 0.0},
        {"id": "MOB", "type": "mobile", "lon": 113.05, "lat": 23.05, "height": 3.0}])
    res = network_design(inputs, CFG, _nd(), table, w["H"][b], rec.loc[b].reset_index(drop=True),
                         "2025-01-02", "2025-01-04", extra=extra, extra_owner=owner)
    cfg, mask, days, prob = _problem(inputs)
    used = screen_observations(prob, cfg).used
    agg = build_aggregation(inputs, prob, mask, days, cfg)
    Hx, Rx, blocks = extra_candidate_rows(inputs, cfg, days, 0.0, prob, extra, owner)
    assert sorted(blocks) == ["COL", "MOB"] and blocks["COL"].size == 8 and blocks["MOB"].size == 6
    n_state = prob.H.shape[1]
    Q = prob.Q.matmat(np.eye(n_state))
    H1 = prob.H[used].toarray()
    R1 = np.diag(prob.obs_sigma[used] ** 2)
    A = agg.A.toarray()
    base = _dense_sigma(Q, H1, R1, A)
    np.testing.assert_allclose(res.summary["current_sigma_t"], base, rtol=1e-8)
    got = res.candidates.set_index("id")
    for cid in ("COL", "MOB"):
        k = blocks[cid]
        ref = _dense_sigma(Q, np.vstack([H1, Hx[k].toarray()]), sla.block_diag(R1, Rx[np.ix_(k, k)]), A)
        np.testing.assert_allclose(got.loc[cid, ["sigma_West", "sigma_East", "city_sigma"]].to_numpy(float), ref,
                                   rtol=1e-8)
        assert ref[-1] < base[-1]
        assert got.loc[cid, "n_obs"] == k.size
    # the column rows: no daily surface-offset coefficient; the mobile rows: one each (surface air)
    off = slice(prob.n_flux, prob.n_flux + prob.n_offsets)
    assert prob.n_offsets > 0
    assert np.abs(Hx[blocks["COL"]][:, off]).sum() == 0
    np.testing.assert_allclose(np.asarray(Hx[blocks["MOB"]][:, off].sum(axis=1)).ravel(), 1.0)
    # their flux part is the rows given (column: 0.25 x BBB's; the state maps both the same way)
    assert np.abs(Hx[blocks["COL"]][:, :prob.n_flux]).sum() > 0
    # the column's R: retrieval² + mismatch² on the diagonal, the background shared per instrument-day
    k = blocks["COL"]
    day = pd.DatetimeIndex(col.selected["time"]).normalize().to_numpy()
    same = day[:, None] == day[None, :]
    Rcol = np.diag(np.full(8, COL_SIGMA["retrieval"] ** 2 + COL_SIGMA["mismatch"] ** 2)) + COL_SIGMA["background"] ** 2 * same
    np.testing.assert_allclose(Rx[np.ix_(k, k)], Rcol, rtol=1e-12)
    assert Rcol[0, 4] == 0 and Rcol[0, 3] == pytest.approx(0.09)
    # nothing between the column and the track
    assert np.abs(Rx[np.ix_(blocks["COL"], blocks["MOB"])]).max() == 0
    # greedy: the first step is the best single candidate by city sigma
    best = res.candidates.sort_values("city_sigma")["id"].iloc[0]
    assert res.greedy["id"].iloc[1] == best


def test_mobile_candidate_R_is_the_mobile_formula():
    w, inputs, rec = _world()
    mob, seg = _mobile(w, rec)
    cfg, mask, days, prob = _problem(inputs)
    Hx, Rx, blocks = extra_candidate_rows(inputs, cfg, days, 0.0, prob, mob, np.full(6, "MOB"))
    n = seg["n"].to_numpy(float)
    m = np.sqrt(MOB["mismatch"] ** 2 + (MOB["plume_factor"] * seg["spread"].to_numpy()) ** 2)
    tm = ((seg["time"] - seg["time"].iloc[0]) / pd.Timedelta(minutes=1)).to_numpy(float)
    R = (np.diag(MOB["measurement"] ** 2 / n) + np.outer(m, m) * np.exp(-np.abs(tm[:, None] - tm[None, :]) / MOB["corr_minutes"])
         + MOB["background"] ** 2)
    k = blocks["MOB"]
    np.testing.assert_allclose(Rx[np.ix_(k, k)], R, rtol=1e-12)
    # 10 minutes apart with tau = 15 min: correlation exp(-2/3) of the segment mismatch
    assert Rx[k[0], k[1]] == pytest.approx(m[0] * m[1] * np.exp(-10 / 15) + 0.16)


def test_column_candidates_without_rows_stop():
    w, inputs, rec = _world()
    table = pd.DataFrame([{"id": "COL", "type": "column", "lon": 113.09, "lat": 23.07, "height": 0.0}])
    with pytest.raises(ValueError, match=r"candidate\(s\) \['COL'\] have no rows"):
        network_design(inputs, CFG, _nd(), table, sp.csr_matrix((0, w["H"].shape[1])), rec.iloc[:0],
                       "2025-01-02", "2025-01-04")


def test_config_takes_candidates_of_every_type_and_refuses_incomplete_ones():
    from gzcarbon.config import ConfigError, load_config

    nd = load_config({"network_design": {"candidates": [
        {"id": "T1", "type": "insitu", "lon": 113.3, "lat": 23.1, "height": 100.0},
        {"id": "C1", "type": "column", "lon": 113.3, "lat": 23.1},
        {"id": "M1", "type": "mobile", "lon": 113.2, "lat": 23.1, "to_lon": 113.4, "to_lat": 23.1, "height": 3.0}]}}
    ).network_design
    assert [c.type for c in nd.candidates] == ["insitu", "column", "mobile"]
    assert nd.candidates[1].height == 0.0 and nd.mobile.every_minutes == 10 and nd.column.retrieval_ppm == 0.2
    bad = [({"id": "M2", "type": "mobile", "lon": 113.2, "lat": 23.1, "height": 3.0}, "needs to_lon and to_lat"),
           ({"id": "T2", "type": "insitu", "lon": 113.2, "lat": 23.1}, "needs height > 0"),
           ({"id": "C2", "type": "column", "lon": 113.2, "lat": 23.1, "to_lon": 113.3, "to_lat": 23.1},
            "mobile candidates only"),
           ({"id": "X1", "type": "satellite", "lon": 113.2, "lat": 23.1, "height": 3.0}, "candidates.0.type")]
    for cand, msg in bad:
        with pytest.raises(ConfigError, match=msg):
            load_config({"network_design": {"candidates": [cand]}})


def test_a_tracks_far_end_outside_the_met_domain_stops_naming_it():
    from inversion.network import candidate_table

    nd = _nd(candidates=[{"id": "MFAR", "type": "mobile", "lon": 113.3, "lat": 23.1, "to_lon": 116.5,
                          "to_lat": 23.1, "height": 3.0}])
    with pytest.raises(ValueError, match=r"far end of the track of candidate MFAR at lon 116.5.*met domain"):
        candidate_table(nd, "config/districts.geojson", (112.9, 114.1, 22.5, 24.0), (111.0, 116.0, 21.0, 25.5), [])


def test_the_track_goes_out_and_back_at_the_speed():
    from inversion.network import distance_km, track_points

    t, lon, lat = track_points(113.20, 23.13, 113.48, 23.13, "2025-01-01 04:00", "2025-01-01 08:00", 30.0, 10)
    assert len(t) == 24 and t[1] - t[0] == pd.Timedelta("10min")
    L = float(distance_km(113.20, 23.13, 113.48, 23.13))  # 28.65 km: out in 57.3 min, back by 114.6 min
    d = distance_km(113.20, 23.13, lon, lat)
    s = 5.0 * np.arange(24)  # km driven, 30 km/h
    ref = L - np.abs(s % (2 * L) - L)
    np.testing.assert_allclose(d, ref, rtol=1e-3, atol=1e-3)
    assert lat.min() == lat.max() == 23.13 and lon.max() <= 113.48 + 1e-12


def _fake_transport(w, rec):
    """Stand-ins of the column and point receptor runs (the tests have no HYSPLIT): a column row is a
    quarter of BBB's row of the same release time, a mobile segment's half of AAA's row of its hour."""
    def column(r, op, met, grid, hours, settings, work_dir):
        k = np.flatnonzero((rec.site == "BBB") & (pd.DatetimeIndex(rec.time) == pd.Timestamp(r["time"])))
        assert len(k) == 1 and (r["lon"], r["lat"]) == (113.09, 23.07)
        return 0.25 * w["H"][int(k[0])], 0.0

    def point(r, met, grid, hours, settings, work_dir):
        hour = pd.Timestamp(r["time"]).floor("h") + pd.Timedelta("30min")
        k = np.flatnonzero((rec.site == "AAA") & (pd.DatetimeIndex(rec.time) == hour))
        assert len(k) == 1 and r["agl"] == 3.0
        return 0.5 * w["H"][int(k[0])], 0.0

    return column, point


def test_the_rules_column_and_mobile_candidates_rank_with_the_towers(tmp_path):
    """What rule network_extra_rows and network_design_month do, with the transport stood in for:
    a column sensor gets one row per selected hour of the candidate days, a vehicle a segment every
    `every_minutes` along its line; their files (one per candidate, named by its id) give the same σ as
    the rows passed directly, and candidates.csv ranks the three types together."""
    from gzcarbon.config import load_config
    from inversion.extra_obs import concat_extra, save_extra
    from inversion.network import distance_km, extra_candidate, load_extra_candidates

    w, inputs, rec = _world()
    sel_path = tmp_path / "selected.csv"
    w["sel"].to_csv(sel_path, index=False)
    column_fn, point_fn = _fake_transport(w, rec)
    nd = _nd(k=3, mobile={"speed_kmh": 30.0, "every_minutes": 10}, column={"retrieval_ppm": 0.3})
    obs = load_config({}).observations.as_dict()
    days = ["20250102", "20250103"]
    col_c = {"id": "CBB", "type": "column", "lon": 113.09, "lat": 23.07, "height": 0.0}
    mob_c = {"id": "MAA", "type": "mobile", "lon": 113.03, "lat": 23.03, "to_lon": 113.08, "to_lat": 23.03,
             "height": 3.0}
    args = (days, (12, 16), 8.0, sel_path, {}, None, inputs.hours, None, str(tmp_path / "work"))
    col, _ = extra_candidate(col_c, nd, obs, *args, row_fn=column_fn)
    mob, _ = extra_candidate(mob_c, nd, obs, *args, row_fn=point_fn)
    # the column: BBB's 8 release times (04:30-07:30 UTC on both days), R from observations.column
    assert col.H_hourly.shape[0] == 8 and set(col.kind) == {"column"}
    np.testing.assert_array_equal(pd.DatetimeIndex(col.receptors["time"]),
                                  pd.DatetimeIndex(rec.loc[rec.site == "BBB", "time"]))
    assert col.selected["value_std_dev"].eq(0.3).all() and col.mismatch[0] == obs["column"]["mismatch_ppm"]
    # the track: 04:00-08:00 UTC each day, every 10 min -> 24 segments a day, out and back at 30 km/h
    assert mob.H_hourly.shape[0] == 48 and set(mob.kind) == {"mobile"}
    t = pd.DatetimeIndex(mob.receptors["time"])
    assert t.min() == pd.Timestamp("2025-01-02 04:00:30") and t.max() == pd.Timestamp("2025-01-03 07:50:30")
    L = float(distance_km(113.03, 23.03, 113.08, 23.03))  # 5.1 km: out in 10.2 min
    d = distance_km(113.03, 23.03, mob.receptors["lon"].to_numpy(), mob.receptors["lat"].to_numpy())
    assert d.max() <= L + 1e-9 and d[1] == pytest.approx(5.0, abs=1e-3) and d[2] == pytest.approx(2 * L - 10, abs=1e-3)
    np.testing.assert_allclose(mob.selected["background"], 420.0)
    # the files of rule network_extra_rows, one per candidate: owner = the file's stem
    paths = []
    for e, cid in ((col, "CBB"), (mob, "MAA")):
        paths.append(tmp_path / f"{cid}.npz")
        save_extra(paths[-1], e, w["H"].shape[1])
    extra, owner = load_extra_candidates(paths, sel_path, [])
    assert list(owner) == ["CBB"] * 8 + ["MAA"] * 48
    b = rec.index[rec.site == "BBB"].to_numpy()
    table = pd.DataFrame([{"id": "TBB", "type": "insitu", "lon": 113.09, "lat": 23.07, "height": 100.0},
                          {**col_c}, {**mob_c}])
    rec_b = rec.loc[b].reset_index(drop=True).assign(site="TBB")
    res = network_design(inputs, CFG, nd, table, w["H"][b], rec_b, "2025-01-02", "2025-01-04",
                         extra=extra, extra_owner=owner)
    direct = network_design(inputs, CFG, nd, table, w["H"][b], rec_b, "2025-01-02", "2025-01-04",
                            extra=concat_extra([col, mob]), extra_owner=owner)
    pd.testing.assert_frame_equal(res.candidates, direct.candidates, rtol=1e-12)
    c = res.candidates.set_index("id")
    assert set(c["type"]) == {"insitu", "column", "mobile"} and c.loc["MAA", "to_lon"] == 113.08
    assert c.loc["CBB", "n_obs"] == 8 and c.loc["MAA", "n_obs"] == 48 and c.loc["TBB", "n_obs"] == 8
    red = c["objective_sigma_reduction_pct"]
    assert list(res.candidates["id"]) == list(red.sort_values(ascending=False).index) and (red > 0).all()
    # greedy across types: all three, each step lowers the city sigma
    assert sorted(res.greedy["id"].iloc[1:]) == ["CBB", "MAA", "TBB"]
    assert np.all(np.diff(res.greedy["city_sigma"].to_numpy()) < 0)
    assert res.summary["types"] == {"insitu": 1, "column": 1, "mobile": 1}
