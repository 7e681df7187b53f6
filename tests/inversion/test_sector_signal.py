"""modelled.csv's per-sector prior signal: every `flux_<sector>` of prior.nc through the same Jacobian
(`inversion.run.sector_signals`, `sector_columns`) and diagnostics' aggregate covariance."""

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from inversion.run import run_inversion

from test_run import CFG, LAT0, LON0, NX, NY, RES, SITES, fake_world  # noqa: F401


def _sectors(w):
    """Three sectors (float64) that add up to a prior flux: industry, road (diurnal), bio (uptake)."""
    hours = w["hours"]
    yy, xx = np.meshgrid(np.arange(NY), np.arange(NX), indexing="ij")
    industry = np.broadcast_to(1.5 + 2.0 * np.exp(-((xx - 3) ** 2 + (yy - 6) ** 2) / 6.0), (len(hours), NY, NX))
    road = w["prior"] * 0.8
    bio = -0.4 * (1 + np.cos(2 * np.pi * hours.hour.to_numpy() / 24))[:, None, None] * np.ones((NY, NX))[None]
    return {"industry": np.array(industry), "road": road, "bio": bio}


def _files(tmp_path, w, sectors, drop=()):
    from transport.jacobian import save_jacobian

    grid = dict(lon_min=LON0, lon_max=LON0 + NX * RES, lat_min=LAT0, lat_max=LAT0 + NY * RES, res=RES)
    save_jacobian(tmp_path / "jacobian_hourly.npz", w["H"], w["rec"], w["hours"], grid)
    w["sel"].to_csv(tmp_path / "selected.csv", index=False)
    flux = sum(sectors.values())
    dims = ("time", "lat", "lon")
    ds = xr.Dataset({"flux": (dims, flux), **{f"flux_{k}": (dims, v) for k, v in sectors.items() if k not in drop}},
                    coords={"time": w["hours"].values, "lat": w["lat"], "lon": w["lon"]})
    ds.to_netcdf(tmp_path / "prior.nc")
    mid = LON0 + NX // 2 * RES
    feats = []
    for k, (n, x0, x1) in enumerate((("West", LON0 - 1, mid), ("East", mid, LON0 + 1))):
        ring = [[x0, LAT0 - 1], [x1, LAT0 - 1], [x1, LAT0 + 1], [x0, LAT0 + 1], [x0, LAT0 - 1]]
        feats.append({"type": "Feature", "properties": {"adcode": 440100 + k, "name": n, "name_en": n},
                      "geometry": {"type": "Polygon", "coordinates": [ring]}})
    (tmp_path / "d.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    return flux


def _run(tmp_path, name):
    o = tmp_path / name
    out = run_inversion(tmp_path / "jacobian_hourly.npz", tmp_path / "selected.csv", tmp_path / "prior.nc",
                        tmp_path / "d.geojson", o / "posterior.nc", o / "districts.csv", o / "modelled.csv",
                        o / "diagnostics.json", inversion_cfg=CFG, period_start="2025-01-02",
                        period_end="2025-01-04")
    return out, o


def _dense_signal(w, field, obs):
    """Independent reference: the dense Jacobian's receptor rows of the observations times the field."""
    Hd = w["H"].toarray()
    return Hd[obs["row"].to_numpy()] @ np.asarray(field, float).ravel()


def test_sector_columns_add_up_to_the_prior_enhancement(tmp_path):
    w = fake_world(seed=3)
    sectors = _sectors(w)
    _files(tmp_path, w, sectors)
    out, o = _run(tmp_path, "out")
    m = out.modelled
    cols = [c for c in m.columns if c.startswith("prior_") and c != "prior_model"]
    assert cols == ["prior_industry", "prior_road", "prior_bio", "prior_unattributed"]
    enh = (m["prior_model"] - m["background_prior"]).to_numpy()
    assert np.abs(enh).min() > 1.0  # a real signal (ppm), not zeros adding up to zero
    # conservation: the sector columns add up to the prior modelled enhancement H x_a
    np.testing.assert_allclose(m[cols].sum(axis=1).to_numpy(), enh, rtol=0, atol=1e-9)
    # each column is its sector through the same Jacobian (dense NumPy reference)
    for k, f in sectors.items():
        ref = _dense_signal(w, f, out.problem.obs)
        np.testing.assert_allclose(m[f"prior_{k}"].to_numpy(), ref, rtol=1e-12, atol=1e-12)
    assert np.abs(m["prior_unattributed"]).max() < 1e-9  # the three sectors are the whole prior
    assert (m["prior_bio"] < 0).all() and (m["prior_industry"] > 0).all()
    # the file: the same columns, printed with 6 decimals
    f = pd.read_csv(o / "modelled.csv")
    np.testing.assert_allclose(f[cols].sum(axis=1), f["prior_model"] - f["background_prior"], atol=5e-6)


def test_a_sector_the_file_lacks_is_unattributed(tmp_path):
    w = fake_world(seed=3)
    sectors = _sectors(w)
    _files(tmp_path, w, sectors, drop=("road",))
    out, _ = _run(tmp_path, "out")
    m = out.modelled
    assert "prior_road" not in m
    ref = _dense_signal(w, sectors["road"], out.problem.obs)
    assert np.abs(ref).min() > 0.5
    np.testing.assert_allclose(m["prior_unattributed"].to_numpy(), ref, rtol=1e-10, atol=1e-10)


def test_sector_columns_change_no_other_output(tmp_path):
    """With and without sector fields in prior.nc: the same districts.csv, posterior.nc and the
    same modelled.csv apart from the added columns."""
    w = fake_world(seed=4)
    sectors = _sectors(w)
    _files(tmp_path, w, sectors)
    a, oa = _run(tmp_path, "with")
    flux = sum(sectors.values())
    xr.Dataset({"flux": (("time", "lat", "lon"), flux)},
               coords={"time": w["hours"].values, "lat": w["lat"], "lon": w["lon"]}).to_netcdf(tmp_path / "prior.nc")
    b, ob = _run(tmp_path, "without")
    assert not [c for c in b.modelled.columns if c.startswith("prior_") and c != "prior_model"]
    pd.testing.assert_frame_equal(a.modelled[list(b.modelled.columns)], b.modelled, check_exact=True)
    assert (oa / "districts.csv").read_bytes() == (ob / "districts.csv").read_bytes()
    with xr.open_dataset(oa / "posterior.nc") as x, xr.open_dataset(ob / "posterior.nc") as y:
        xr.testing.assert_identical(x, y)


def test_aggregate_covariance_in_diagnostics(tmp_path):
    """diagnostics.json ``aggregate_covariance``: symmetric, its diagonal the σ² of districts.csv, and
    the prior one equals the solve's A Q Aᵀ."""
    w = fake_world(seed=3)
    _files(tmp_path, w, _sectors(w))
    out, o = _run(tmp_path, "out")
    d = json.loads((o / "diagnostics.json").read_text())["aggregate_covariance"]
    assert d["aggregates"] == ["West", "East", "Guangzhou"] and d["units"] == "t2"
    post, prior = np.array(d["posterior"]), np.array(d["prior"])
    np.testing.assert_array_equal(post, out.result.agg_post_cov)  # JSON floats round-trip exactly
    np.testing.assert_array_equal(prior, out.result.agg_prior_cov)
    np.testing.assert_allclose(post, post.T, rtol=1e-12)
    table = pd.read_csv(o / "districts.csv")
    np.testing.assert_allclose(np.sqrt(np.diag(post)), table["posterior_sigma_t"], rtol=1e-5)
    np.testing.assert_allclose(np.sqrt(np.diag(prior)), table["prior_sigma_t"], rtol=1e-5)
    # the city is the sum of its two districts: its variance is the sum of the 2x2 block
    assert post[2, 2] == pytest.approx(post[:2, :2].sum(), rel=1e-9)
