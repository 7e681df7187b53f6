"""The inversion on a nested state (issue 19): a small world of 12 x 12 inner cells nested in 4 x 4
outer cells (12 outside the hole), footprints on both, a neighbour spanning inner and outer cells.
Posterior mean, district / outer-ring / neighbour σ against a dense NumPy solution written here from
the definitions; diagnostics (n_outer_cells, outer_signal_share), outer.csv and posterior.nc."""

import json

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import xarray as xr

from gzcarbon.grid import Grid, NestedGrid
from inversion.covariance import grid_spacing_km
from inversion.outer import OuterInputs
from inversion.run import InversionInputs, invert, write_outputs

INNER = Grid(113.00, 113.12, 23.00, 23.12, 0.01)
OUTER = Grid(112.94, 113.18, 22.94, 23.18, 0.06)
NESTED = NestedGrid(INNER, OUTER)
CFG = dict(time_step_hours=6, prior_rel_sigma=0.6, prior_floor_sigma=0.5, corr_length_km=3.0,
           corr_time_hours=12.0, obs_sigma_ppm=0.3, bg_sigma_ppm=2.0, coarse_block=4, diurnal_corr=-0.2,
           district_scale_sigma=0.0, profile_scale_sigma=0.0, outer_rel_sigma=0.5, outer_floor_sigma=0.3,
           outer_corr_length_km=12.0, station_contributions=False)
SITES = {"AAA": (113.03, 23.03), "BBB": (113.09, 23.08)}
T_PER = 3600 * 44.01e-12  # t CO2 per (µmol m-2 s-1 · m² · h)


def world(seed=0):
    rng = np.random.default_rng(seed)
    hours = pd.date_range("2025-01-01", periods=72, freq="h")
    ni, no = NESTED.n_inner, NESTED.n_outer
    nc = ni + no
    yy, xx = np.meshgrid(np.arange(INNER.ny), np.arange(INNER.nx), indexing="ij")
    recs, rows, cols, vals = [], [], [], []
    for day in (1, 2):
        for hh in range(3, 9):
            for site, (slon, slat) in SITES.items():
                t = hours[0] + pd.Timedelta(days=day, hours=hh)
                i = len(recs)
                recs.append(dict(receptor_id=f"{site}_{t:%Y%m%d%H}", site=site, time=t + pd.Timedelta("30min"),
                                 lon=slon, lat=slat, agl=100.0))
                sx, sy = (slon - INNER.lon_min) / 0.01, (slat - INNER.lat_min) / 0.01
                hi = hours.get_loc(t)
                for back in range(18):
                    ang = 0.9 * day + 0.25 * hh
                    cx, cy = sx + 0.6 * back * np.cos(ang), sy + 0.6 * back * np.sin(ang)
                    w = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * (1 + 0.2 * back) ** 2)) * 0.05
                    w[w < 1e-4] = 0
                    nz = np.flatnonzero(w)
                    rows += [i] * nz.size
                    cols += list((hi - back) * nc + nz)
                    vals += list(w.ravel()[nz])
                    if back >= 6:  # the older part of the plume: on outer cells
                        oc = rng.choice(no, size=3, replace=False)
                        rows += [i] * 3
                        cols += list((hi - back) * nc + ni + oc)
                        vals += list(2.0 * rng.random(3) * np.exp(-back / 10))
    H = sp.csr_matrix((vals, (rows, cols)), shape=(len(recs), len(hours) * nc))
    rec = pd.DataFrame(recs)
    diurnal = 1 + 0.5 * np.sin(2 * np.pi * (hours.hour.to_numpy() + 8) / 24)
    prior = diurnal[:, None, None] * (2.0 + 3.0 * np.exp(-((xx - 6) ** 2 + (yy - 5) ** 2) / 8.0))[None]
    prior_out = diurnal[:, None] * (1.0 + rng.random(no))[None, :]
    truth, truth_out = prior * 1.2, prior_out * 1.6
    x_true = np.concatenate([truth.reshape(72, -1), truth_out], axis=1).ravel()
    y = H @ x_true + 420.0 + rng.normal(0, 0.3, len(rec))
    sel = pd.DataFrame({"site": rec["site"], "time": rec["time"] - pd.Timedelta("30min"), "intake_height": 100.0,
                        "lon": rec["lon"], "lat": rec["lat"], "value": y, "value_std_dev": 0.1, "nvalue": 10,
                        "background": 420.0, "background_sigma": 0.2})
    # districts: west / east halves of the inner box; a neighbour: the inner box's 3 eastern columns
    # and the outer cells east of the hole
    ix = np.arange(ni) % INNER.nx
    F = sp.csr_matrix(np.vstack([ix < 6, ix >= 6]).astype(float))
    oy, ox = NESTED.outer_cells()
    neigh = np.concatenate([(ix >= 9).astype(float), (ox == 3).astype(float)])[None, :]
    outer = OuterInputs(NESTED, prior_out, truth_out, ["Eastcity"], ["city"], sp.csr_matrix(neigh))
    inputs = InversionInputs(H, rec, hours, sel, prior, INNER.lat, INNER.lon, ["West", "East"], F,
                             INNER.cell_area_m2(), truth_flux=truth, outer=outer)
    return inputs, dict(H=H, hours=hours, prior=prior, prior_out=prior_out, F=F, neigh=neigh, sel=sel)


def dense_solution(inputs, w):
    """x̂ and the aggregate covariances from the definitions, with dense NumPy matrices."""
    ni, no = NESTED.n_inner, NESTED.n_outer
    nc, n_step, step = ni + no, 12, 6
    Hh = w["H"].toarray()
    P = np.zeros((72 * nc, n_step * nc))
    h, c = np.divmod(np.arange(72 * nc), nc)
    P[np.arange(72 * nc), (h // step) * nc + c] = 1.0
    days = np.array([1 if t.day == 2 else 2 for t in w["sel"]["time"]])  # period days 2025-01-02, -03
    E = np.zeros((len(days), 2))
    E[np.arange(len(days)), days - 1] = 1.0
    H = np.hstack([Hh @ P, E])
    xa_h = np.concatenate([w["prior"].reshape(72, -1), w["prior_out"]], axis=1).ravel()
    y = w["sel"]["value"].to_numpy() - 420.0 - Hh @ xa_h
    R = np.diag(0.1**2 + 0.3**2 + 0.2**2 + np.zeros(len(y)))
    # σ: rel · |step mean| + floor; Q_s block-diagonal; Q_t exponential with the time-of-day factor
    sm_in = w["prior"].reshape(n_step, step, ni).mean(axis=1)
    sm_out = w["prior_out"].reshape(n_step, step, no).mean(axis=1)
    s = np.concatenate([0.6 * np.abs(sm_in) + 0.5, 0.5 * np.abs(sm_out) + 0.3], axis=1).ravel()
    dx, dy = grid_spacing_km(INNER.lat_edges, INNER.lon_edges)
    dxo, dyo = grid_spacing_km(OUTER.lat_edges, OUTER.lon_edges)
    iy, ix = np.divmod(np.arange(ni), INNER.nx)
    oy, ox = NESTED.outer_cells()
    Qs = np.zeros((nc, nc))
    Qs[:ni, :ni] = np.exp(-np.hypot((iy[:, None] - iy) * dy, (ix[:, None] - ix) * dx) / 3.0)
    Qs[ni:, ni:] = np.exp(-np.hypot((oy[:, None] - oy) * dyo, (ox[:, None] - ox) * dxo) / 12.0)
    k = np.arange(n_step)
    Qt = np.exp(-np.abs(k[:, None] - k) * step / 12.0) * (-0.2 + 1.2 * ((k[:, None] % 4) == (k % 4)))
    Q = np.zeros((n_step * nc + 2,) * 2)
    Q[:-2, :-2] = np.kron(Qt, Qs) * s[:, None] * s[None, :]
    Q[-2:, -2:] = np.eye(2) * 4.0
    K = H @ Q @ H.T + R
    x = Q @ H.T @ np.linalg.solve(K, y)
    # aggregates over the period (hours 24..71: steps 4..11, 6 hours each)
    area = NESTED.cell_area_m2()
    wstep = np.r_[np.zeros(4), np.full(8, 6.0)] * T_PER
    W = np.vstack([w["F"].toarray() * area[:ni], w["F"].toarray().sum(axis=0) * area[:ni]])
    W = np.hstack([W, np.zeros((3, no))])
    ring = np.r_[np.zeros(ni), area[ni:]]
    W = np.vstack([W, ring, w["neigh"][0] * area])
    A = np.hstack([np.kron(wstep[None, :], W), np.zeros((5, 2))])
    AQA = A @ Q @ A.T
    HQA = H @ Q @ A.T
    post_cov = AQA - HQA.T @ np.linalg.solve(K, HQA)
    # period-mean σ of each outer cell
    Bo = np.zeros((no, n_step * nc + 2))
    for j in range(no):
        Bo[j, :-2] = np.kron(wstep / wstep.sum(), np.eye(nc)[ni + j])
    HQB = H @ Q @ Bo.T
    var_post_cells = np.diag(Bo @ Q @ Bo.T) - np.einsum("ij,ij->j", HQB, np.linalg.solve(K, HQB))
    return x, A, AQA, post_cov, var_post_cells, Hh, xa_h


@pytest.fixture(scope="module")
def solved():
    inputs, w = world()
    out = invert(inputs, CFG, "2025-01-02", "2025-01-04")
    return inputs, w, out, dense_solution(inputs, w)


def test_nested_posterior_matches_dense_numpy(solved):
    inputs, w, out, (x, A, AQA, post_cov, var_cells, _, _) = solved
    assert out.problem.n_outer == 12 and out.problem.n_cells == 156
    np.testing.assert_allclose(out.result.x_post, x, rtol=0, atol=1e-8 * np.abs(x).max())
    d = out.districts.set_index("district")
    sd_post = np.sqrt(np.diag(post_cov))
    np.testing.assert_allclose(d["posterior_sigma_t"].to_numpy(), sd_post[:3], rtol=1e-8)
    np.testing.assert_allclose(d["prior_sigma_t"].to_numpy(), np.sqrt(np.diag(AQA))[:3], rtol=1e-8)
    o = out.outer.set_index("name")
    assert list(o.index) == ["outer ring", "Eastcity"] and list(o["kind"]) == ["ring", "city"]
    np.testing.assert_allclose(o["posterior_sigma_t"].to_numpy(), sd_post[3:], rtol=1e-8)
    np.testing.assert_allclose(o["prior_sigma_t"].to_numpy(), np.sqrt(np.diag(AQA))[3:], rtol=1e-8)
    # totals: prior + A x̂ (no factors, no positivity), the truth from the truth fields
    xa_tot = o["prior_t"].to_numpy()
    np.testing.assert_allclose(o["posterior_t"].to_numpy(), xa_tot + (A @ x)[3:], rtol=1e-8)
    ring_truth = (inputs.outer.truth[24:].sum(axis=0) * NESTED.cell_area_m2()[144:]).sum() * T_PER
    assert o.loc["outer ring", "truth_t"] == pytest.approx(ring_truth, rel=1e-12)
    # the posterior σ of each outer cell's period mean (posterior.nc)
    sd = out.posterior["posterior_sigma_outer"].values[NESTED.outer_mask]
    np.testing.assert_allclose(sd, np.sqrt(var_cells), rtol=1e-8)
    assert np.all(np.isnan(out.posterior["posterior_sigma_outer"].values[~NESTED.outer_mask]))


def test_outer_signal_share_and_diagnostics(solved):
    inputs, w, out, (x, _, _, _, _, Hh, xa_h) = solved
    diag = out.diagnostics
    assert diag["n_outer_cells"] == 12 and diag["n_cells"] == 156
    ni, nc = 144, 156
    outer_cols = (np.arange(Hh.shape[1]) % nc) >= ni
    prior_outer = Hh[:, outer_cols] @ xa_h[outer_cols]
    site = w["sel"]["site"].to_numpy()
    for s in SITES:
        k = site == s
        share = diag["outer_signal_share"][s]
        assert share["prior"] == pytest.approx(prior_outer[k].sum() / (Hh[k] @ xa_h).sum(), rel=1e-10)
        assert 0.05 < share["prior"] < 0.95 and share["n_obs"] == int(k.sum())
        assert 0.0 < share["posterior"] < 1.0
    m = out.modelled
    np.testing.assert_allclose(m["prior_outer"].to_numpy(), out.problem.prior_enhancement_outer, rtol=1e-12)
    assert [r["name"] for r in diag["outer_totals"]] == ["outer ring", "Eastcity"]


def test_outer_outputs_written(solved, tmp_path):
    *_, out, _ = solved
    paths = [tmp_path / n for n in ("posterior.nc", "districts.csv", "modelled.csv", "diagnostics.json", "outer.csv")]
    write_outputs(out, *paths)
    with xr.open_dataset(paths[0]) as ds:
        assert ds["posterior_flux_outer"].dims == ("time", "olat", "olon")
        assert ds.attrs["n_outer"] == 12 and ds.attrs["outer_res"] == 0.06
        np.testing.assert_allclose(ds["olon"].values, OUTER.lon)
    assert pd.read_csv(paths[4])["name"].tolist() == ["outer ring", "Eastcity"]
    assert json.loads(paths[3].read_text())["n_outer_cells"] == 12
    with pytest.raises(ValueError, match="outer.csv"):
        write_outputs(out, *paths[:4])


def test_the_inner_totals_do_not_change_with_zero_outer_sensitivity():
    """With the outer columns of H all zero, the nested solution's inner part equals the single grid's."""
    inputs, w = world()
    H = sp.coo_matrix(w["H"])
    keep = (H.col % 156) < 144
    Hn = sp.csr_matrix((H.data[keep], (H.row[keep], H.col[keep])), shape=H.shape)
    inputs.H_hourly = Hn
    nested = invert(inputs, CFG, "2025-01-02", "2025-01-04")
    h, c = np.divmod(H.col[keep], 156)
    Hs = sp.csr_matrix((H.data[keep], (H.row[keep], h * 144 + c)), shape=(H.shape[0], 72 * 144))
    single = InversionInputs(Hs, inputs.receptors, inputs.hours, inputs.selected, inputs.prior_flux, inputs.lat,
                             inputs.lon, ["West", "East"], inputs.district_fractions, inputs.cell_area,
                             truth_flux=inputs.truth_flux)
    ref = invert(single, CFG, "2025-01-02", "2025-01-04")
    pd.testing.assert_frame_equal(nested.districts, ref.districts, rtol=1e-9)
    np.testing.assert_allclose(nested.posterior["posterior_flux"].values, ref.posterior["posterior_flux"].values,
                               rtol=1e-6)


def test_run_inversion_from_pipeline_files(tmp_path, caplog):
    """The rule's function on files as the pipeline writes them: a nested Jacobian (save_jacobian with
    an outer grid), prior.nc with flux_outer (add_outer_prior), the real neighbours file
    config/prd_cities.geojson. The same solution as in memory; outer.csv's ring prior = Σ flux_outer ×
    area over the period read back from prior.nc; a CH4 prior without flux_outer: inner columns, warned."""
    import logging
    from pathlib import Path

    from inversion.outer import add_outer_prior
    from inversion.prior import flux_dataset
    from inversion.run import run_inversion
    from transport.jacobian import save_jacobian

    repo = Path(__file__).resolve().parents[2]
    inputs, w = world(seed=3)
    outer_grid = {k: getattr(OUTER, k) for k in ("lon_min", "lon_max", "lat_min", "lat_max", "res")}
    save_jacobian(tmp_path / "jac.npz", w["H"], inputs.receptors, inputs.hours, INNER.as_dict(), outer_grid=outer_grid)
    w["sel"].assign(time=w["sel"]["time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")).to_csv(tmp_path / "sel.csv", index=False)
    prior = flux_dataset(INNER, w["hours"], {"industry": w["prior"]}, {"title": "t"})
    add_outer_prior(prior, NESTED, NESTED.outer_from_state(w["prior_out"]), {}).to_netcdf(tmp_path / "prior.nc")
    feats = []
    for k, (n, x0, x1) in enumerate((("West", 112.0, 113.06), ("East", 113.06, 114.0))):
        ring = [[x0, 22.0], [x1, 22.0], [x1, 24.0], [x0, 24.0], [x0, 22.0]]
        feats.append({"type": "Feature", "properties": {"adcode": 440100 + k, "name": n, "name_en": n},
                      "geometry": {"type": "Polygon", "coordinates": [ring]}})
    (tmp_path / "d.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    o = tmp_path / "out"
    neighbours = repo / "config" / "prd_cities.geojson"
    run = run_inversion(tmp_path / "jac.npz", tmp_path / "sel.csv", tmp_path / "prior.nc", tmp_path / "d.geojson",
                        o / "posterior.nc", o / "districts.csv", o / "modelled.csv", o / "diagnostics.json",
                        inversion_cfg=CFG, period_start="2025-01-02", period_end="2025-01-04",
                        out_outer=o / "outer.csv", neighbours_path=neighbours)
    mem = invert(inputs, CFG, "2025-01-02", "2025-01-04")
    np.testing.assert_allclose(run.result.x_post, mem.result.x_post, rtol=0, atol=1e-9 * np.abs(mem.result.x_post).max())
    table = pd.read_csv(o / "outer.csv")
    assert table["name"].iloc[0] == "outer ring" and len(table) > 2
    with xr.open_dataset(tmp_path / "prior.nc") as ds:
        f = ds["flux_outer"].values[24:].sum(axis=0)
    ring = float(np.nansum(f * OUTER.cell_area_m2()) * T_PER)
    assert table["prior_t"].iloc[0] == pytest.approx(ring, rel=1e-5)  # 6 significant digits in the CSV
    foshan = table.set_index("name").loc["Foshan"]  # the fake world lies in Foshan and Guangzhou
    assert foshan["prior_t"] > 0 and foshan["posterior_sigma_t"] < foshan["prior_sigma_t"]
    assert json.loads((o / "diagnostics.json").read_text())["n_outer_cells"] == 12
    # a gas prior without outer cells: the inner columns only, said in the log
    ch4 = flux_dataset(INNER, w["hours"], {"industry": w["prior"]}, {"title": "t", "gas": "ch4"}, gas="ch4")
    ch4.to_netcdf(tmp_path / "prior_ch4.nc")
    with caplog.at_level(logging.WARNING):
        g = run_inversion(tmp_path / "jac.npz", tmp_path / "sel.csv", tmp_path / "prior_ch4.nc", tmp_path / "d.geojson",
                          o / "p2.nc", o / "d2.csv", o / "m2.csv", o / "g2.json", inversion_cfg=CFG,
                          period_start="2025-01-02", period_end="2025-01-04", gas="ch4")
    assert "no `flux_outer`" in caplog.text and g.problem.n_outer == 0 and g.outer is None
