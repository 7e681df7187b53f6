"""products.network: the map PNG and the report page of the network design show the design's numbers."""

import json

import pandas as pd
from PIL import Image

from products.network import network_map, network_report

NAMES = ["West", "East", "Guangzhou"]


def _files(tmp_path):
    cand = pd.DataFrame({"id": ["TTW", "BYN"], "type": "insitu", "lon": [113.325, 113.30], "lat": [23.105, 23.30],
                         "height": [400.0, 60.0], "n_obs": [4, 4], "sigma_West": [2526.4, 2527.6],
                         "sigma_East": [3008.1, 3003.4], "city_sigma": [24128.2, 24144.1],
                         "city_sigma_reduction_pct": [0.0754, 0.0093], "objective_sigma_reduction_pct": [0.0754, 0.0093]})
    greedy = pd.DataFrame({"step": [0, 1], "id": ["", "TTW"], "sigma_West": [2528.1, 2526.4],
                           "sigma_East": [3014.4, 3008.1], "city_sigma": [24146.4, 24128.2]})
    summary = {"aggregates": NAMES, "prior_sigma_t": [2551.8, 4144.6, 25775.9], "current_sigma_t": [2528.1, 3014.4, 24146.4],
               "objective": "Guangzhou", "k": 1, "corr_length_km": 10.0, "n_existing_obs": 47,
               "candidate_days": ["2025-01-01"]}
    cand.to_csv(tmp_path / "candidates.csv", index=False)
    greedy.to_csv(tmp_path / "greedy.csv", index=False)
    (tmp_path / "design.json").write_text(json.dumps(summary))
    return cand, greedy


def test_map_and_report_show_the_design(tmp_path):
    cand, greedy = _files(tmp_path)
    stations = [{"id": "YXU", "lon": 113.28, "lat": 23.13}]
    png = network_map(cand, greedy, "config/districts.geojson", stations, tmp_path / "map.png")
    with Image.open(png) as im:
        assert im.format == "PNG" and im.size[0] > 500
    page = network_report(tmp_path / "candidates.csv", tmp_path / "greedy.csv", tmp_path / "design.json",
                          png, tmp_path / "report.html").read_text()
    assert "city σ 24,146 t (prior 25,776 t)" in page
    assert "<b>TTW</b> (insitu, 400 m)" in page and "city σ 24,128 t, 0.1 % less" in page
    assert "data:image/png;base64," in page
    assert page.count("<tr") == 1 + 2 + 1 + 2  # greedy: header + 2 steps; candidates: header + 2
