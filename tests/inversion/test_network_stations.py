"""A candidate's errors correlated with an EXISTING station's (issue 23 item 4;
inversion.network.station_correlated_errors): a candidate 1 km from a station repeats the station's
transport error and gains much less than the same candidate far away; the design's σ equals a dense
re-solve with the joint error covariance written out independently here."""

import numpy as np
import pandas as pd
import pytest

from inversion.network import distance_km, existing_mismatch, network_design
from inversion.run import build_aggregation, screen_observations
from inversion.settings import inversion_config

from test_network_extra import _dense_sigma, _problem, _world
from test_network_run import _nd
from test_run import CFG as CFG_

AAA = (113.03, 23.03)
KM_LON = 1.0 / (111.195 * np.cos(np.radians(AAA[1])))  # degrees of longitude per km at AAA


def _twins(rec):
    """Two candidates with AAA's own rows (same footprints: only the distance differs), NEAR 1 km
    east of station AAA and FAR 60 km east."""
    a = rec.index[rec.site == "AAA"].to_numpy()
    parts, rows = [], []
    for cid, km in (("NEAR", 1.0), ("FAR", 60.0)):
        parts.append(rec.loc[a].assign(site=cid, lon=AAA[0] + km * KM_LON,
                                       receptor_id=lambda d, c=cid: c + d["receptor_id"].str[3:]))
        rows.append(a)
    table = pd.DataFrame([{"id": c, "type": "insitu", "lon": AAA[0] + km * KM_LON, "lat": AAA[1], "height": 100.0}
                          for c, km in (("NEAR", 1.0), ("FAR", 60.0))])
    return table, pd.concat(parts, ignore_index=True), np.concatenate(rows)


def test_a_candidate_next_to_a_station_gains_much_less_than_a_distant_one():
    w, inputs, rec = _world()
    table, crec, rows = _twins(rec)
    assert float(distance_km(AAA[0], AAA[1], table.lon[0], table.lat[0])) == pytest.approx(1.0, rel=1e-3)
    out = {}
    for corr in (True, False):
        res = network_design(inputs, CFG_, _nd(station_correlation=corr), table, w["H"][rows], crec,
                             "2025-01-02", "2025-01-04")
        base = np.asarray(res.summary["current_sigma_t"])[-1]
        c = res.candidates.set_index("id")
        out[corr] = {k: base - c.loc[k, "city_sigma"] for k in ("NEAR", "FAR")}
    # independent of the stations: the same rows give the same gain wherever the site stands
    assert out[False]["NEAR"] == pytest.approx(out[False]["FAR"], rel=1e-9)
    # FAR is 60 km away: exp(-6) = 0.25 % correlation, its gain barely moves
    assert out[True]["FAR"] == pytest.approx(out[False]["FAR"], rel=0.02)
    # NEAR shares 90 % of AAA's mismatch (exp(-1/10)): it gains an eighth of what FAR gains
    assert out[True]["NEAR"] < 0.2 * out[True]["FAR"]  # 0.80 t against 6.45 t
    assert out[True]["NEAR"] > 0



def test_station_correlated_design_equals_a_dense_re_solve():
    w, inputs, rec = _world()
    table, crec, rows = _twins(rec)
    nd = _nd(station_correlation=True, corr_length_km=10.0)
    res = network_design(inputs, CFG_, nd, table, w["H"][rows], crec, "2025-01-02", "2025-01-04")
    cfg, mask, days, prob = _problem(inputs)
    used = screen_observations(prob, cfg).used
    agg = build_aggregation(inputs, prob, mask, days, cfg)
    n = prob.H.shape[1]
    Q = prob.Q.matmat(np.eye(n))
    H1 = prob.H[used].toarray()
    R1 = prob.obs_cov[np.ix_(used, used)] if prob.obs_cov is not None else np.diag(prob.obs_sigma[used] ** 2)
    A = agg.A.toarray()
    st = existing_mismatch(inputs, inversion_config(CFG_), prob, used)
    # the candidates' problem without any correlation to the stations, to take H_c and R_c from
    from inversion.network import candidate_problem
    cp, Rc0, blocks, none = candidate_problem(inputs, cfg, prob, nd, table, w["H"][rows], crec, days)
    assert none is None
    Hc = cp.H.toarray()
    # the joint error covariance, written out: mu_c = beta mu_station(same hour) + nu
    vsd = nd["insitu"]["value_std_dev_ppm"]
    t1 = pd.DatetimeIndex(st["times"]).floor("h")
    tc = pd.DatetimeIndex(cp.obs["time"]).floor("h")
    mc = np.sqrt(np.diag(Rc0) - vsd**2)
    nc, n1 = Hc.shape[0], H1.shape[0]
    beta, rho = np.zeros((nc, n1)), np.zeros(nc)
    for i in range(nc):
        lon = table.set_index("id").loc[cp.obs["site"].iloc[i], "lon"]
        d = float(distance_km(lon, AAA[1], AAA[0], AAA[1]))  # AAA is the only station
        j = np.flatnonzero((st["sites"] == "AAA") & (t1 == tc[i]))
        assert len(j) == 1
        rho[i] = np.exp(-d / 10.0)
        beta[i, j[0]] = rho[i] * mc[i] / st["mismatch"][j[0]]
    M1 = st["M1"]
    np.testing.assert_allclose(R1 - M1, np.diag(np.diag(R1 - M1)), atol=1e-12)  # R1 = measurement + M1
    g = np.sqrt(1 - rho**2)
    S = vsd**2 * np.eye(nc)
    Rcc = S + np.outer(g, g) * (Rc0 - S) + beta @ M1 @ beta.T
    Rc1 = beta @ M1
    R = np.block([[R1, Rc1.T], [Rc1, Rcc]])
    assert np.linalg.eigvalsh(R).min() > 0
    # correlation of NEAR's first hour with AAA's same hour: rho = exp(-0.1)
    k0 = blocks["NEAR"][0]
    j0 = int(np.flatnonzero(beta[k0])[0])
    corr = Rc1[k0, j0] / np.sqrt(Rcc[k0, k0] - vsd**2) / np.sqrt(M1[j0, j0])
    assert corr == pytest.approx(np.exp(-0.1), rel=1e-6)
    base = _dense_sigma(Q, H1, R1, A)
    got = res.candidates.set_index("id")
    for cid in ("NEAR", "FAR"):
        k = blocks[cid]
        sub = np.r_[np.arange(n1), n1 + k]
        ref = _dense_sigma(Q, np.vstack([H1, Hc[k]]), R[np.ix_(sub, sub)], A)
        np.testing.assert_allclose(got.loc[cid, ["sigma_West", "sigma_East", "city_sigma"]].to_numpy(float), ref,
                                   rtol=1e-8)
    # both at once (the greedy's second step): the joint block with their own correlation
    ref2 = _dense_sigma(Q, np.vstack([H1, Hc]), R, A)
    np.testing.assert_allclose(res.design.sigma_with(["NEAR", "FAR"]), ref2, rtol=1e-8)
    np.testing.assert_allclose(res.summary["current_sigma_t"], base, rtol=1e-8)
