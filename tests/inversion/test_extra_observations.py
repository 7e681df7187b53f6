"""Column and mobile rows in the same inversion as the sites: their R per type, the background
block, and the district σ they bring (tiny synthetic world of test_run.py)."""
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from inversion.extra_obs import ExtraObservations, apply_type_errors, augment_inputs, extra_covariance
from inversion.run import InversionInputs, build_inversion_problem, invert, period_axis
from transport.columns import column_footprint
from test_run import CFG, LAT0, LON0, NX, NY, RES, area, fake_world, two_districts


def plume_row(hours, lon, lat, t_obs, spread, amp):
    """One Jacobian row of the fake world's plume model (as in test_run.fake_world)."""
    n_cells = NX * NY
    yy, xx = np.meshgrid(np.arange(NY), np.arange(NX), indexing="ij")
    sx, sy = (lon - LON0) / RES, (lat - LAT0) / RES
    hi = hours.get_loc(t_obs)
    row = np.zeros(len(hours) * n_cells)
    ang = 0.7 * t_obs.day + 0.3 * t_obs.hour
    for back in range(24):
        cx, cy = sx + 0.4 * back * np.cos(ang), sy + 0.4 * back * np.sin(ang)
        w = amp * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * (spread + 0.2 * back) ** 2)) * np.exp(-back / 8)
        w[w < 1e-5] = 0
        row[(hi - back) * n_cells: (hi - back + 1) * n_cells] = w.ravel()
    return row


def extra_world(w, rng):
    """An EM27 site (column, 3 release slabs) 04-07 UTC and a 20-segment mobile track on day 1."""
    hours = w["hours"]
    rows, rec, sel, kind, mism, group, bgs = [], [], [], [], [], [], []
    weights = np.array([0.12, 0.10, 0.08])  # AK x pressure weight of 3 slabs (0-3 km)
    for day in (1, 2):
        for hh in range(4, 8):
            t = hours[0] + pd.Timedelta(days=day, hours=hh)
            levels = np.stack([plume_row(hours, 113.06, 23.05, t, 1.0 + 1.5 * k, 0.05 / (1 + k))
                               for k in range(3)])
            rows.append(column_footprint(levels, weights))
            rec.append(dict(receptor_id=f"EMA_{t:%Y%m%d%H%M}", site="EMA", time=t + pd.Timedelta("30min"),
                            lon=113.06, lat=23.05, agl=5.0))
            kind.append("column"), mism.append(0.15), group.append(f"EMA_{day}"), bgs.append(0.1)
    t0 = hours[0] + pd.Timedelta(days=1, hours=5)
    for k in range(20):
        t = t0 + pd.Timedelta(minutes=3 * k)
        lon, lat = 113.01 + 0.005 * k, 23.02 + 0.003 * k
        rows.append(plume_row(hours, lon, lat, t.floor("h"), 0.8, 0.08))
        rec.append(dict(receptor_id=f"M{k:02d}_{t:%Y%m%d%H%M}", site=f"M{k:02d}", time=t + pd.Timedelta("30s"),
                        lon=lon, lat=lat, agl=3.0))
        kind.append("mobile"), mism.append(1.0 + 0.5 * (k % 3)), group.append("TRACK1"), bgs.append(0.2)
    H = sp.csr_matrix(np.vstack(rows))
    rec = pd.DataFrame(rec)
    kind = np.array(kind)
    truth = H @ w["truth"].ravel()
    bgw, prior_term = 0.93, 12.4  # column background weight Σ h A, (1 - AK) x prior term (ppm)
    b = 420.0
    observed = np.where(kind == "column", truth + b * bgw + prior_term, truth + b)
    observed = observed + rng.normal(0, 0.1, len(rec))
    sel = pd.DataFrame(dict(site=rec["site"], time=rec["time"].dt.floor("h"),
                            value=np.where(kind == "column", observed - prior_term, observed),
                            background=np.where(kind == "column", b * bgw, b),
                            value_std_dev=np.where(kind == "column", 0.3, 0.1), background_sigma=0.0))
    return ExtraObservations(H, rec, sel, kind, np.array(mism), np.array(group), np.array(bgs),
                             corr_minutes=5.0)


def _inputs(w):
    names, F = two_districts()
    sel = w["sel"].assign(time=pd.to_datetime(w["sel"]["time"], utc=True).dt.tz_localize(None))
    return InversionInputs(w["H"], w["rec"], w["hours"], sel, w["prior"], w["lat"], w["lon"], names, F,
                           area(), truth_flux=w["truth"])


def test_extra_rows_have_their_own_R_and_background():
    w = fake_world()
    ex = extra_world(w, np.random.default_rng(3))
    inp = augment_inputs(_inputs(w), ex)
    assert inp.H_hourly.shape[0] == w["H"].shape[0] + 28
    _, days = period_axis(inp.hours, "2025-01-02", "2025-01-04")
    prob = apply_type_errors(build_inversion_problem(inp, CFG, days), ex)
    types = prob.obs["obs_type"].to_numpy()
    assert (types == "column").sum() == 8 and (types == "mobile").sum() == 20 and (types == "insitu").sum() == 16
    R = prob.obs_cov
    col = np.flatnonzero(types == "column")
    mob = np.flatnonzero(types == "mobile")
    ins = np.flatnonzero(types == "insitu")
    # column: σ² = retrieval² + mismatch² + background², background shared within instrument-day
    assert R[col[0], col[0]] == pytest.approx(0.3 ** 2 + 0.15 ** 2 + 0.1 ** 2)
    day = pd.DatetimeIndex(prob.obs["time"].to_numpy()[col]).normalize().to_numpy()
    expected = np.where(day[:, None] == day[None, :], 0.1 ** 2, 0.0)
    np.fill_diagonal(expected, 0.3 ** 2 + 0.15 ** 2 + 0.1 ** 2)
    np.testing.assert_allclose(R[np.ix_(col, col)], expected, rtol=1e-12)
    # mobile: mismatch correlated along the track, exp(-Δt/5 min); segments 3 min apart
    i, j = mob[0], mob[1]
    mi, mj = 1.0, 1.5
    assert R[i, j] == pytest.approx(0.2 ** 2 + mi * mj * np.exp(-3 / 5))
    # no correlation between types, in-situ R unchanged (diagonal σ of build_problem)
    assert np.all(R[np.ix_(ins, col)] == 0) and np.all(R[np.ix_(ins, mob)] == 0)
    base = build_inversion_problem(_inputs(w), CFG, days)
    np.testing.assert_allclose(np.sqrt(np.diag(R[np.ix_(ins, ins)])), base.obs_sigma)
    assert np.all(np.linalg.eigvalsh(R) > 0)
    # columns: no surface background offset; mobile rows keep it
    offsets = prob.H[:, prob.n_flux: prob.n_flux + prob.n_offsets].toarray()
    assert np.all(offsets[col] == 0) and np.all(offsets[mob].sum(axis=1) == 1)
    np.testing.assert_allclose(offsets[ins], base.H[:, base.n_flux: base.n_flux + base.n_offsets].toarray())
    # the mobile block equals extra_covariance of the track's rows on its own
    np.testing.assert_allclose(R[np.ix_(mob, mob)], extra_covariance(ex, np.arange(8, 28)), rtol=1e-12)


def test_columns_and_mobile_shrink_district_sigma_and_keep_the_default():
    w = fake_world()
    ex = extra_world(w, np.random.default_rng(3))
    base = invert(_inputs(w), CFG, "2025-01-02", "2025-01-04")
    again = invert(_inputs(w), CFG, "2025-01-02", "2025-01-04", extra=None)
    pd.testing.assert_frame_equal(base.districts, again.districts)
    both = invert(_inputs(w), CFG, "2025-01-02", "2025-01-04", extra=ex)
    d0 = base.districts.set_index("district")
    d1 = both.districts.set_index("district")
    assert np.all(d1["posterior_sigma_t"] < d0["posterior_sigma_t"])
    # prior and truth are the same; only the observations changed
    np.testing.assert_allclose(d1["prior_t"], d0["prior_t"])
    city0, city1 = d0.loc["Guangzhou"], d1.loc["Guangzhou"]
    print(f"city sigma: in-situ only {city0.posterior_sigma_t:.4f} t, + columns and mobile "
          f"{city1.posterior_sigma_t:.4f} t (prior {city0.prior_sigma_t:.4f})")
    assert abs(city1.posterior_t - city1.truth_t) < 3 * city1.posterior_sigma_t
    assert len(both.modelled) == 16 + 28


def test_column_and_mobile_builders():
    from inversion.extra_obs import column_extra, mobile_extra
    from stations.mobile import segments
    from transport.columns import ColumnOperator

    ops = [ColumnOperator(np.linspace(0, 3000, 3), np.array([750.0, 2250.0]), np.array([0.1, 0.09]),
                          np.array([0.12, 0.1]), prior_term=pt, background_weight=0.9) for pt in (12.0, 13.0)]
    groups = pd.DataFrame(dict(site=["EMA", "EMA"], instrument="EMA",
                               time=pd.to_datetime(["2025-01-02 04:00", "2025-01-03 04:00"]),
                               release=pd.to_datetime(["2025-01-02 04:30", "2025-01-03 04:31"]),
                               lon=113.06, lat=23.05, value=[420.5, 421.0], value_std_dev=0.3, n=10))
    ex = column_extra(groups, ops, sp.csr_matrix((2, 10)), 419.0, 0.8, 0.5)
    np.testing.assert_allclose(ex.selected["value"], [420.5 - 12.0, 421.0 - 13.0])
    np.testing.assert_allclose(ex.selected["background"], 419.0 * 0.9)
    assert list(ex.group) == ["EMA_20250102", "EMA_20250103"] and list(ex.kind) == ["column"] * 2
    t = pd.date_range("2025-01-02 05:00", periods=180, freq="1s")
    track = pd.DataFrame(dict(time=t, lat=23.1 + np.arange(180) * 5e-5, lon=113.3, height=3.0,
                              co2=430.0 + np.sin(np.arange(180) / 9.0)))
    seg = segments(track, "co2", track_id="CAR")
    mx = mobile_extra(seg, sp.csr_matrix((3, 10)), 420.0, 3.0, 1.0, 0.1, 5.0, 0.5)
    assert list(mx.selected["site"]) == ["CAR000", "CAR001", "CAR002"]
    np.testing.assert_allclose(mx.mismatch, np.sqrt(9.0 + seg["spread"].to_numpy() ** 2))
    np.testing.assert_allclose(mx.selected["value_std_dev"], 0.1 / np.sqrt(60))


def test_saved_rows_round_trip_and_invert_alike(tmp_path):
    """save_extra / load_extra (the rows rules column_rows and mobile_rows hand to rule inversion):
    the same H, tables and error model, and the same posterior as the object itself."""
    from inversion.extra_obs import concat_extra, load_extra, save_extra

    w = fake_world()
    ex = extra_world(w, np.random.default_rng(3))
    cols, mob = (np.flatnonzero(ex.kind == k) for k in ("column", "mobile"))

    def part(ix, corr):
        return ExtraObservations(ex.H_hourly[ix], ex.receptors.iloc[ix].reset_index(drop=True),
                                 ex.selected.iloc[ix].reset_index(drop=True), ex.kind[ix], ex.mismatch[ix],
                                 ex.group[ix], ex.background_sigma[ix], corr_minutes=corr)

    save_extra(tmp_path / "c.npz", part(cols, 0.0), ex.H_hourly.shape[1])
    save_extra(tmp_path / "m.npz", part(mob, 5.0), ex.H_hourly.shape[1])
    back = concat_extra([load_extra(tmp_path / "c.npz"), load_extra(tmp_path / "m.npz")])
    assert (back.H_hourly != sp.csr_matrix(ex.H_hourly)).nnz == 0
    assert back.corr_minutes == 5.0 and list(back.kind) == list(ex.kind)
    np.testing.assert_array_equal(back.mismatch, ex.mismatch)
    np.testing.assert_array_equal(back.selected["value"], ex.selected["value"])
    np.testing.assert_array_equal(pd.to_datetime(back.receptors["time"]), pd.to_datetime(ex.receptors["time"]))
    idx = np.arange(len(ex.kind))
    np.testing.assert_allclose(extra_covariance(back, idx), extra_covariance(ex, idx), rtol=0, atol=1e-12)
    a = invert(_inputs(w), CFG, "2025-01-02", "2025-01-04", extra=ex).districts
    b = invert(_inputs(w), CFG, "2025-01-02", "2025-01-04", extra=back).districts
    np.testing.assert_allclose(b["posterior_sigma_t"], a["posterior_sigma_t"], rtol=1e-12)
    np.testing.assert_allclose(b["posterior_t"], a["posterior_t"], rtol=1e-12)
