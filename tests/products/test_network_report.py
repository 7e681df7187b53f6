"""products.network: the map PNG and the report page of the network design show the design's numbers."""

import json

import pandas as pd
import pytest
from PIL import Image

from products.network import network_map, network_report

NAMES = ["West", "East", "Guangzhou"]


def _files(tmp_path):
    cand = pd.DataFrame({"id": ["MWE", "TTW", "CTW", "BYN"], "type": ["mobile", "insitu", "column", "insitu"],
                         "lon": [113.20, 113.325, 113.325, 113.30], "lat": [23.13, 23.105, 23.105, 23.30],
                         "height": [3.0, 400.0, 0.0, 60.0], "to_lon": [113.48, None, None, None],
                         "to_lat": [23.13, None, None, None], "n_obs": [16, 4, 4, 4],
                         "sigma_West": [2130.0, 2526.4, 2528.1, 2527.6], "sigma_East": [2801.0, 3008.1, 3013.4, 3003.4],
                         "city_sigma": [24052.0, 24128.2, 24144.0, 24144.1],
                         "city_sigma_reduction_pct": [0.3893, 0.0754, 0.0099, 0.0093],
                         "objective_sigma_reduction_pct": [0.3893, 0.0754, 0.0099, 0.0093]})
    greedy = pd.DataFrame({"step": [0, 1], "id": ["", "TTW"], "sigma_West": [2528.1, 2526.4],
                           "sigma_East": [3014.4, 3008.1], "city_sigma": [24146.4, 24128.2]})
    summary = {"aggregates": NAMES, "prior_sigma_t": [2551.8, 4144.6, 25775.9], "current_sigma_t": [2528.1, 3014.4, 24146.4],
               "objective": "Guangzhou", "k": 1, "corr_length_km": 10.0, "n_existing_obs": 47,
               "candidate_days": ["2025-01-01"], "mobile": {"every_minutes": 15}}
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
    assert "Candidates: 4 (2 insitu, 1 column, 1 mobile)" in page and "one segment per 15 minutes" in page
    assert "<b>MWE</b> (mobile, 3 m)" in page and "city σ 24,052 t, 0.4 % less" in page
    assert "data:image/png;base64," in page
    # best of each type: West 1 - 2130/2528.1 = 15.75 %, 1 - 2526.4/2528.1 = 0.07 %, column 0.00 %
    assert "+ insitu TTW (%)" in page and "+ column CTW (%)" in page and "+ mobile MWE (%)" in page
    for v in ("15.75", "0.07", "0.00", "7.08", "0.21", "0.03", "0.39", "0.08", "0.01"):
        assert f"<td>{v}</td>" in page, v
    # greedy: header + 2 steps; best of types: header + 3 aggregates; candidates: header + 4
    assert page.count("<tr") == (1 + 2) + (1 + 3) + (1 + 4)


def test_best_of_each_type_is_the_first_of_its_type(tmp_path):
    from products.network import best_of_types

    cand, _ = _files(tmp_path)
    t = best_of_types(cand, NAMES, [2528.1, 3014.4, 24146.4]).set_index("aggregate")
    assert list(t.columns) == ["current σ (t)", "+ insitu TTW (%)", "+ column CTW (%)", "+ mobile MWE (%)"]
    assert t.loc["West", "+ mobile MWE (%)"] == pytest.approx(100 * (1 - 2130.0 / 2528.1))
    assert t.loc["Guangzhou", "+ insitu TTW (%)"] == pytest.approx(100 * (1 - 24128.2 / 24146.4))
