"""End-to-end inversion on a tiny synthetic world written in the pipeline's file formats."""

import json

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import xarray as xr

from inversion.aggregate import (block_mean_weights, correction_total_matrix, hours_per_step,
                                 period_mask, totals_tonnes)
from inversion.run import InversionInputs, invert, run_inversion
from inversion.state import build_problem, prior_sigma, step_jacobian, step_matrix

LON0, LAT0, RES, NX, NY = 113.0, 23.0, 0.01, 12, 10
# the tiny world's settings; the rest are the pipeline's defaults (gzcarbon.config.InversionConfig)
# except the structured-prior options, off here unless a test turns them on
CFG = dict(time_step_hours=6, prior_rel_sigma=0.6, prior_floor_sigma=0.5, corr_length_km=3.0,
           corr_time_hours=12.0, obs_sigma_ppm=0.3, bg_sigma_ppm=2.0, coarse_block=5,
           diurnal_corr=1.0, district_scale_sigma=0.0, profile_scale_sigma=0.0)
SITES = {"AAA": (113.03, 23.03), "BBB": (113.09, 23.07)}


def fake_world(seed=0, n_days=2):
    """Hourly axis of 1 spin-up + n_days days; receptors 04-07 UTC each period day at two sites."""
    rng = np.random.default_rng(seed)
    hours = pd.date_range("2025-01-01", periods=24 * (n_days + 1), freq="h")
    n_cells = NX * NY
    lon = np.round(LON0 + RES * (np.arange(NX) + 0.5), 10)
    lat = np.round(LAT0 + RES * (np.arange(NY) + 0.5), 10)
    yy, xx = np.meshgrid(np.arange(NY), np.arange(NX), indexing="ij")
    rec_rows, rows, cols, vals = [], [], [], []
    for day in range(1, n_days + 1):
        for hh in range(4, 8):
            for site, (slon, slat) in SITES.items():
                t_obs = hours[0] + pd.Timedelta(days=day, hours=hh)
                i = len(rec_rows)
                rec_rows.append(dict(receptor_id=f"{site}_{(t_obs + pd.Timedelta('30min')):%Y%m%d%H%M}_100",
                                     site=site, time=t_obs + pd.Timedelta("30min"), lon=slon, lat=slat, agl=100.0))
                sx, sy = (slon - LON0) / RES, (slat - LAT0) / RES
                hi = hours.get_loc(t_obs)
                for back in range(24):  # plume drifts back in time towards a wind-dependent direction
                    ang = 0.7 * day + 0.3 * hh
                    cx, cy = sx + 0.4 * back * np.cos(ang), sy + 0.4 * back * np.sin(ang)
                    w = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * (1 + 0.2 * back) ** 2)) * 0.05 * np.exp(-back / 8)
                    w[w < 1e-4] = 0
                    nz = np.flatnonzero(w)
                    rows += [i] * nz.size
                    cols += list((hi - back) * n_cells + nz)
                    vals += list(w.ravel()[nz])
    H = sp.csr_matrix((vals, (rows, cols)), shape=(len(rec_rows), len(hours) * n_cells))
    rec = pd.DataFrame(rec_rows)
    diurnal = 1 + 0.5 * np.sin(2 * np.pi * (hours.hour.to_numpy() + 8) / 24)
    base = 2.0 + 3.0 * np.exp(-((xx - 6) ** 2 + (yy - 5) ** 2) / 8.0)
    prior = diurnal[:, None, None] * base[None]
    truth = prior * 1.3 + 0.5 * np.sin(xx / 3.0)[None]  # structured bias
    bg = 420.0 + rng.normal(0, 0.1)
    y_true = H @ truth.ravel() + bg
    noise = rng.normal(0, 0.3, len(rec))
    sel = pd.DataFrame({
        "site": rec["site"], "time": (rec["time"] - pd.Timedelta("30min")).dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "intake_height": 100.0, "lon": rec["lon"], "lat": rec["lat"], "value": y_true + noise,
        "value_std_dev": 0.1, "nvalue": 10, "background": 420.0, "background_sigma": 0.2,
    })
    return dict(H=H, rec=rec, hours=hours, prior=prior, truth=truth, lat=lat, lon=lon, sel=sel)


def two_districts():
    """West half / east half of the grid as district fractions."""
    ix = np.arange(NY * NX) % NX
    F = sp.csr_matrix(np.vstack([(ix < NX // 2), (ix >= NX // 2)]).astype(float))
    return ["West", "East"], F


def invert_world(H, rec, hours, sel, prior, lat, lon, names, F, cell_area, cfg, start, end, *, solve_options=None,
                 utc_offset_hours=0.0, problem=None, **input_fields):
    """`invert` on the fake world's pieces (its `InversionInputs` from the first ten arguments)."""
    inputs = InversionInputs(H, rec, hours, sel, prior, lat, lon, names, F, cell_area, **input_fields)
    return invert(inputs, cfg, start, end, solve_options=solve_options, utc_offset_hours=utc_offset_hours,
                  problem=problem)


def area():
    from gzcarbon.grid import cell_area_m2
    return cell_area_m2(LAT0 + RES * np.arange(NY + 1), LON0 + RES * np.arange(NX + 1))


def test_step_jacobian_equals_H_times_P():
    rng = np.random.default_rng(0)
    H = sp.random(7, 48 * 6, density=0.2, random_state=rng, format="csr")
    Hs = step_jacobian(H, 6, 6)
    np.testing.assert_allclose(Hs.toarray(), (H @ step_matrix(48, 6, 6)).toarray(), rtol=1e-14)


def test_prior_sigma_is_rel_of_step_mean_plus_floor():
    f = np.arange(12, dtype=float).reshape(12, 1, 1) - 5
    s = prior_sigma(f, 6, 0.5, 0.1)
    np.testing.assert_allclose(s.ravel(), [0.5 * abs(np.mean(f[:6])) + 0.1, 0.5 * abs(np.mean(f[6:])) + 0.1])


def test_prior_sigma_sector_aware_power():
    rng = np.random.default_rng(4)
    f = rng.normal(2.0, 1.0, (12, 2, 3))
    p = np.zeros_like(f)
    p[:, 0, 0] = 50.0  # a power plant's point-source cell
    tot = f + p
    s = prior_sigma(tot, 6, 0.6, 0.5, power_flux=p, power_rel=0.1)
    m = lambda a: a.reshape(2, 6, 2, 3).mean(axis=1)  # noqa: E731
    np.testing.assert_allclose(s, 0.6 * np.abs(m(f)) + 0.1 * np.abs(m(p)) + 0.5, rtol=1e-13)
    # the plant's cell: 0.1 x 50 instead of 0.6 x 50; other cells unchanged
    old = prior_sigma(tot, 6, 0.6, 0.5)
    assert np.all(s[:, 0, 0] < 0.3 * old[:, 0, 0])
    np.testing.assert_allclose(s.reshape(2, -1)[:, 1:], old.reshape(2, -1)[:, 1:], rtol=1e-13)
    # power_rel = rel reproduces the sector-blind sigma where both parts have one sign
    np.testing.assert_allclose(prior_sigma(np.abs(f) + p, 6, 0.6, 0.5, power_flux=p, power_rel=0.6),
                               prior_sigma(np.abs(f) + p, 6, 0.6, 0.5), rtol=1e-13)
    with pytest.raises(ValueError, match="flux_power"):
        prior_sigma(tot, 6, 0.6, 0.5, power_flux=p[:5])


def test_aggregation_units_and_correction_matrix():
    hours = pd.date_range("2025-01-01", periods=48, freq="h")
    mask = period_mask(hours, "2025-01-02", "2025-01-03")
    assert mask.sum() == 24
    a = np.full((2, 3), 1e6)  # 1 km² cells
    W = sp.csr_matrix(np.ones((1, 6)) * 1e6)
    flux = np.ones((48, 2, 3))  # 1 µmol m-2 s-1
    # 6 km² × 1 µmol/m²/s × 86400 s × 44.01e-12 t/µmol
    assert totals_tonnes(flux, W, mask)[0] == pytest.approx(6e6 * 86400 * 44.01e-12)
    nh = hours_per_step(mask, 6)
    A = correction_total_matrix(W, nh, 2)
    x = np.r_[np.ones(8 * 6), 5.0, 7.0]
    assert (A @ x)[0] == pytest.approx(totals_tonnes(flux, W, mask)[0])
    Wb, nby, nbx = block_mean_weights(2, 3, 2, a)
    assert (nby, nbx) == (1, 2)
    np.testing.assert_allclose(np.asarray(Wb.sum(axis=1)).ravel(), 1.0)


def test_invert_recovers_truth_and_outputs_are_consistent():
    w = fake_world()
    names, F = two_districts()
    out = invert_world(w["H"], w["rec"], w["hours"], w["sel"].assign(time=pd.to_datetime(w["sel"]["time"], utc=True).dt.tz_localize(None)),
                 w["prior"], w["lat"], w["lon"], names, F, area(), CFG, "2025-01-02", "2025-01-04",
                 truth_flux=w["truth"])
    d = out.districts.set_index("district")
    assert list(d.index) == ["West", "East", "Guangzhou"]
    # city = sum of districts (they tile the grid), for prior, posterior and truth
    for c in ("prior_t", "posterior_t", "truth_t"):
        assert d.loc["Guangzhou", c] == pytest.approx(d.loc[["West", "East"], c].sum(), rel=1e-10)
    city = d.loc["Guangzhou"]
    assert abs(city.posterior_t - city.truth_t) < abs(city.prior_t - city.truth_t)
    assert abs(city.posterior_t - city.truth_t) < 2 * city.posterior_sigma_t
    assert city.posterior_sigma_t < city.prior_sigma_t
    # the prior total is the exact hourly sum over the period (2 days, spin-up excluded)
    a = area().ravel()
    exact = (w["prior"][24:].reshape(48, -1) * a).sum() * 3600 * 44.01e-12
    assert city.prior_t == pytest.approx(exact, rel=1e-12)
    m = out.modelled
    assert len(m) == len(w["sel"])
    assert np.std(m.observed - m.posterior_model) < 0.5 * np.std(m.observed - m.prior_model)
    # posterior_model == background_posterior + H_hourly (prior + correction)
    ds = out.posterior
    H = w["H"][out.problem.obs["row"].to_numpy()]
    recon = H @ ds["posterior_flux"].values.astype(float).ravel() + m.background_posterior.to_numpy()
    np.testing.assert_allclose(recon, m.posterior_model, atol=1e-4)
    assert ds["posterior_sigma_block"].shape == (2, 3)
    assert np.all(ds["posterior_sigma_block"].values <= ds["prior_sigma_block"].values + 1e-12)
    assert ds["background_offset_sigma"].shape == (2,)
    assert np.all(ds["background_offset_sigma"].values < CFG["bg_sigma_ppm"])
    assert out.diagnostics["n_obs"] == 16 and 0 < out.diagnostics["dofs"] < 16


def test_station_contributions_equal_inversions_without_the_station():
    """diagnostics station_contributions: the district σ with a station left out (or alone) equal a
    separate inversion on the other stations' (that station's) observations only."""
    w = fake_world()
    names, F = two_districts()
    sel = w["sel"].assign(time=pd.to_datetime(w["sel"]["time"], utc=True).dt.tz_localize(None))
    args = (w["H"], w["rec"], w["hours"])
    rest = (w["prior"], w["lat"], w["lon"], names, F, area(), CFG, "2025-01-02", "2025-01-04")
    out = invert_world(*args, sel, *rest)
    sc = out.diagnostics["station_contributions"]
    assert sc["aggregates"] == ["West", "East", "Guangzhou"] and sc["sites"] == ["AAA", "BBB"]
    np.testing.assert_allclose(sc["posterior_sigma_t"], out.districts["posterior_sigma_t"], rtol=1e-12)
    for site, other in (("AAA", "BBB"), ("BBB", "AAA")):
        alone_other = invert_world(*args, sel[sel.site == other], *rest).districts["posterior_sigma_t"]
        np.testing.assert_allclose(sc["without"][site], alone_other, rtol=1e-8)
        np.testing.assert_allclose(sc["only"][other], alone_other, rtol=1e-8)
        # a station left out never makes any σ smaller
        assert np.all(np.asarray(sc["without"][site]) >= np.asarray(sc["posterior_sigma_t"]) * (1 - 1e-12))
    off = invert_world(*args, sel, *rest[:6], {**CFG, "station_contributions": False}, *rest[7:])
    assert off.diagnostics["station_contributions"] is None


def test_run_inversion_files(tmp_path):
    from transport.jacobian import save_jacobian

    w = fake_world(seed=1)
    grid = dict(lon_min=LON0, lon_max=LON0 + NX * RES, lat_min=LAT0, lat_max=LAT0 + NY * RES, res=RES)
    save_jacobian(tmp_path / "jacobian_hourly.npz", w["H"], w["rec"], w["hours"], grid)
    w["sel"].to_csv(tmp_path / "selected.csv", index=False)
    for name, f in (("prior.nc", w["prior"]), ("truth.nc", w["truth"])):
        xr.Dataset({"flux": (("time", "lat", "lon"), f)},
                   coords={"time": w["hours"].values, "lat": w["lat"], "lon": w["lon"]}).to_netcdf(tmp_path / name)
    mid = LON0 + NX // 2 * RES
    feats = []
    for k, (n, x0, x1) in enumerate((("West", LON0 - 1, mid), ("East", mid, LON0 + 1))):
        ring = [[x0, LAT0 - 1], [x1, LAT0 - 1], [x1, LAT0 + 1], [x0, LAT0 + 1], [x0, LAT0 - 1]]
        feats.append({"type": "Feature", "properties": {"adcode": 440100 + k, "name": n, "name_en": n},
                      "geometry": {"type": "Polygon", "coordinates": [ring]}})
    (tmp_path / "d.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    o = tmp_path / "out"
    run_inversion(tmp_path / "jacobian_hourly.npz", tmp_path / "selected.csv", tmp_path / "prior.nc",
                  tmp_path / "d.geojson", o / "posterior.nc", o / "districts.csv", o / "modelled.csv",
                  o / "diagnostics.json", inversion_cfg=CFG, period_start="2025-01-02", period_end="2025-01-04",
                  truth_path=tmp_path / "truth.nc")
    d = pd.read_csv(o / "districts.csv")
    assert list(d.columns) == ["district", "prior_t", "posterior_t", "prior_sigma_t", "posterior_sigma_t", "truth_t"]
    assert d.district.iloc[-1] == "Guangzhou"
    c = d.iloc[-1]
    assert abs(c.posterior_t - c.truth_t) < min(abs(c.prior_t - c.truth_t), 2 * c.posterior_sigma_t)
    diag = json.loads((o / "diagnostics.json").read_text())
    for k in ("n_obs", "n_state", "chi2_reduced", "dofs", "solver", "seconds", "per_site", "period_start", "period_end"):
        assert k in diag
    assert set(diag["per_site"]) == set(SITES)
    # cross-validation (inversion.crossval): each site left out, each of the two days a fold
    cv = diag["cross_validation"]
    assert set(cv["sites"]) == set(SITES) and len(cv["days"]) == 2 and cv["summary"]["sites"]["n"] == diag["n_obs"]
    for rec in [*cv["sites"].values(), *cv["days"]]:
        assert {"n", "prior_rmse", "posterior_rmse", "prior_bias", "posterior_bias", "prior_corr",
                "posterior_corr", "chi2_reduced"} <= set(rec) and rec["n"] > 0
    with xr.open_dataset(o / "posterior.nc") as ds:
        assert ds["prior_flux"].dims == ("time", "lat", "lon") and ds.sizes["time"] == 72
        assert ds["correction"].dims == ("step", "lat", "lon") and ds.sizes["step"] == 12
        assert ds.attrs["period_start"].startswith("2025-01-02")
    m = pd.read_csv(o / "modelled.csv")
    assert list(m.columns) == ["site", "time", "intake_height", "observed", "background_prior",
                               "background_posterior", "prior_model", "posterior_model", "innovation",
                               "innovation_sigma", "normalised_innovation", "screened", "used"]
    assert not list(o.glob(".*partial"))


def test_bad_selected_file(tmp_path):
    from inversion.state import read_selected
    p = tmp_path / "selected.csv"
    pd.DataFrame({"site": ["A"], "time": ["2025-01-01T00:00:00Z"]}).to_csv(p, index=False)
    with pytest.raises(ValueError, match="selected.csv.*missing column"):
        read_selected(p)


def test_obs_rel_sigma_grows_with_the_prior_enhancement():
    w = fake_world(seed=3)
    sel = w["sel"].assign(time=pd.to_datetime(w["sel"]["time"], utc=True).dt.tz_localize(None))
    lat_edges = LAT0 + RES * np.arange(NY + 1)
    lon_edges = LON0 + RES * np.arange(NX + 1)
    days = pd.date_range("2025-01-02", periods=2, freq="D")
    base = build_problem(w["H"], w["rec"], w["hours"], sel, w["prior"], lat_edges, lon_edges, CFG, days)
    rel = build_problem(w["H"], w["rec"], w["hours"], sel, w["prior"], lat_edges, lon_edges,
                        {**CFG, "obs_rel_sigma": 0.2}, days)
    np.testing.assert_allclose(rel.obs_sigma**2 - base.obs_sigma**2, (0.2 * base.prior_enhancement) ** 2, rtol=1e-12)
    with pytest.raises(ValueError, match="obs_rel_sigma"):
        build_problem(w["H"], w["rec"], w["hours"], sel, w["prior"], lat_edges, lon_edges, {**CFG, "obs_rel_sigma": -1}, days)


def test_python_api_with_a_partial_config_solves_the_pipelines_problem():
    """invert(...) given some keys of the inversion section solves the same problem as the pipeline,
    which validates the same keys through gzcarbon.config (defaults: diurnal_corr -0.3, district and
    profile factor sigma 0.25 and 0.5): same posterior to 1e-12. Before the typed config, the library
    defaulted to diurnal_corr 1 and no district factors, another problem (checked below)."""
    from gzcarbon.config import load_config

    w = fake_world(seed=4)
    names, F = two_districts()
    sel = w["sel"].assign(time=pd.to_datetime(w["sel"]["time"], utc=True).dt.tz_localize(None))
    partial = dict(corr_length_km=3.0, corr_time_hours=12.0, obs_sigma_ppm=0.3)
    pipeline = load_config({"inversion": partial}).inversion  # what snakemake runs with these keys
    assert (pipeline.diurnal_corr, pipeline.district_scale_sigma, pipeline.profile_scale_sigma) == (-0.3, 0.25, 0.5)
    args = (w["H"], w["rec"], w["hours"], sel, w["prior"], w["lat"], w["lon"], names, F, area())
    api = invert_world(*args, partial, "2025-01-02", "2025-01-04")
    snake = invert_world(*args, pipeline, "2025-01-02", "2025-01-04")
    np.testing.assert_allclose(api.result.x_post, snake.result.x_post, rtol=1e-12, atol=0)
    for c in ("posterior_t", "posterior_sigma_t"):
        np.testing.assert_allclose(api.districts[c], snake.districts[c], rtol=1e-12)
    assert api.problem.Q.diurnal_corr == -0.3 and api.problem.n_factors == 2  # one factor per district
    old = invert_world(*args, {**partial, "diurnal_corr": 1.0, "district_scale_sigma": 0.0}, "2025-01-02", "2025-01-04")
    assert np.abs(old.districts["posterior_sigma_t"] / api.districts["posterior_sigma_t"] - 1).max() > 1e-3
