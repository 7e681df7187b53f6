"""A tiny, format-conformant fake run: 12 x 10 grid, 3 districts, 2 sites, 48 hours."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402
import yaml  # noqa: E402

EVIL = '<script>alert("x")</script>'
REPO = Path(__file__).resolve().parents[2]
CDL = REPO / "workflow" / "report" / "flux_product.cdl"


def _box(x0, x1, y0, y1):
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}


@pytest.fixture
def fake_run(tmp_path):
    rng = np.random.default_rng(42)
    R = tmp_path / "results" / "2025-01"
    (R / "obs").mkdir(parents=True)
    (R / "power").mkdir()
    # grid: lon 113.20-113.30 (10 cells), lat 23.00-23.12 (12 cells), blocks of 4 cells
    lon = 113.205 + 0.01 * np.arange(10)
    lat = 23.005 + 0.01 * np.arange(12)
    time = pd.date_range("2024-12-31", periods=48, freq="h")  # spin-up day + 1 period day
    prior = rng.gamma(2.0, 3.0, size=(48, 12, 10))
    posterior = prior * (1.0 + 0.2 * rng.standard_normal(prior.shape))
    sp = 1.0 + rng.random((3, 3))
    sq = sp * (0.3 + 0.6 * rng.random((3, 3)))
    post = xr.Dataset(
        {
            "prior_flux": (("time", "lat", "lon"), prior),
            "posterior_flux": (("time", "lat", "lon"), posterior),
            "correction": (("step", "lat", "lon"), np.zeros((4, 12, 10))),
            "prior_sigma_block": (("lat_block", "lon_block"), sp),
            "posterior_sigma_block": (("lat_block", "lon_block"), sq),
            "background_offset": (("day",), np.array([0.3])),
        },
        coords={"time": time, "lat": lat, "lon": lon},
        attrs={"period_start": "2025-01-01T00:00:00", "period_end": "2025-01-02T00:00:00"},
    )
    post.to_netcdf(R / "posterior.nc")

    districts = pd.DataFrame({
        "district": ["Liwan", "Yuexiu", "Haizhu", "Guangzhou"],
        "prior_t": [12345.6, 23456.7, 34567.8, 70370.1],
        "posterior_t": [13000.4, 21000.9, 36000.2, 70001.5],
        "prior_sigma_t": [5000.0, 6000.0, 7000.0, 11000.0],
        "posterior_sigma_t": [2000.0, 2500.0, 3000.0, 4100.0],
        "truth_t": [13500.0, 20500.0, 35500.0, 69500.0],
    })
    districts.to_csv(R / "districts.csv", index=False)

    geo = {"type": "FeatureCollection", "provenance": {"source": "test"}, "features": [
        {"type": "Feature", "properties": {"adcode": 440103, "name": "荔湾区", "name_en": "Liwan"},
         "geometry": _box(113.20, 113.25, 23.00, 23.06)},
        {"type": "Feature", "properties": {"adcode": 440104, "name": "越秀区", "name_en": "Yuexiu"},
         "geometry": _box(113.25, 113.30, 23.00, 23.06)},
        {"type": "Feature", "properties": {"adcode": 440105, "name": "海珠区", "name_en": "Haizhu"},
         "geometry": _box(113.20, 113.30, 23.06, 23.12)},
    ]}
    (tmp_path / "districts.geojson").write_text(json.dumps(geo, ensure_ascii=False), encoding="utf-8")

    stations = {"sites": [
        {"id": "AAA", "name": EVIL, "lon": 113.23, "lat": 23.03, "elevation": 10,
         "inlets": [{"height": 100, "valve": 1}]},
        {"id": "BBB", "name": "Bee & station", "lon": 113.27, "lat": 23.09, "elevation": 10,
         "inlets": [{"height": 30, "valve": 1}]},
    ]}
    (tmp_path / "stations.yaml").write_text(yaml.safe_dump(stations, allow_unicode=True))

    obs_t = pd.date_range("2025-01-01T04:00", periods=4, freq="h", tz="UTC")
    sel, mod = [], []
    for site, hgt, n in (("AAA", 100, 4), ("BBB", 30, 3)):
        for t in obs_t[:n]:
            bg = 420.0 + rng.normal(0, 0.5)
            obs = bg + 8 + rng.normal(0, 2)
            sel.append({"site": site, "time": t.isoformat(), "intake_height": hgt, "lon": 113.2,
                        "lat": 23.0, "value": obs, "value_std_dev": 0.1, "nvalue": 3000,
                        "background": bg, "background_sigma": 2.0})
            mod.append({"site": site, "time": t.isoformat(), "intake_height": hgt, "observed": obs,
                        "background_prior": bg, "background_posterior": bg + 0.3,
                        "prior_model": bg + 5 + rng.normal(0, 1),
                        "posterior_model": obs + rng.normal(0, 0.5)})
    pd.DataFrame(sel).to_csv(R / "obs" / "selected.csv", index=False)
    pd.DataFrame(mod).to_csv(R / "modelled.csv", index=False)
    (R / "diagnostics.json").write_text(json.dumps({
        "n_obs": 7, "n_state": 480, "chi2_reduced": 0.93, "dofs": 4.2, "solver": "cholesky",
        "seconds": 0.12, "period_start": "2025-01-01T00:00:00", "period_end": "2025-01-02T00:00:00",
        "per_site": {"AAA": {"prior_mean": 3.1, "prior_std": 2.0, "posterior_mean": 0.1,
                             "posterior_std": 0.5}},
        "factors": {"Liwan": {"kind": "district", "posterior": 0.0837, "prior_sigma": 0.25, "posterior_sigma": 0.2114}},
        "station_contributions": {
            "aggregates": ["Liwan", "Yuexiu", "Haizhu", "Guangzhou"], "sites": ["AAA", "BBB"],
            "prior_sigma_t": [5000.0, 6000.0, 7000.0, 11000.0],
            "posterior_sigma_t": [2000.0, 2500.0, 3000.0, 4100.0],
            "without": {"AAA": [4000.0, 2600.0, 3100.0, 6000.0], "BBB": [2100.0, 5000.0, 6000.0, 5000.0]},
            "only": {"AAA": [2100.0, 5500.0, 6500.0, 7000.0], "BBB": [4500.0, 2700.0, 3200.0, 9000.0]}},
    }))
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.imshow(rng.random((11, 24)))
    fig.savefig(R / "power" / "heatmap.png")
    plt.close(fig)
    pd.DataFrame({"district": ["Liwan", "Yuexiu", "Haizhu"],
                  "consumption_factor_mean": [0.41234, 0.39876, 0.40011],
                  "production_factor_mean": [0.0, 0.5, 0.61]}).to_csv(
        R / "power" / "summary.csv", index=False)
    return {
        "R": R, "posterior": R / "posterior.nc", "districts": R / "districts.csv",
        "geojson": tmp_path / "districts.geojson", "stations": tmp_path / "stations.yaml",
        "modelled": R / "modelled.csv", "selected": R / "obs" / "selected.csv",
        "diagnostics": R / "diagnostics.json", "heatmap": R / "power" / "heatmap.png",
        "summary": R / "power" / "summary.csv", "prior": prior, "posterior_values": posterior,
        "sp": sp, "sq": sq, "table": districts, "evil": EVIL, "cdl": CDL,
    }
