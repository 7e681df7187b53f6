"""Network design on the inversion's own problem (inversion.network.network_design): a candidate
placed where an existing station is, with that station's errors, gives exactly the σ of the
inversion that has the station; the current network's σ is the inversion's; bad candidates stop."""

import numpy as np
import pandas as pd
import pytest

from gzcarbon.config import load_config
from inversion.network import candidate_table, check_current_sigma, network_design
from inversion.run import InversionInputs

from test_run import CFG, area, fake_world, invert_world, two_districts


def _nd(**kw):
    nd = load_config({}).network_design.as_dict()
    nd.update({"insitu": {"value_std_dev_ppm": 0.1, "background_sigma_ppm": 0.2}, "k": 1, **kw})
    return nd


def test_a_candidate_at_an_existing_station_gives_that_inversions_sigma(tmp_path):
    w = fake_world()
    names, F = two_districts()
    sel = w["sel"].assign(time=pd.to_datetime(w["sel"]["time"], utc=True).dt.tz_localize(None))
    args, rest = (w["H"], w["rec"], w["hours"]), (w["prior"], w["lat"], w["lon"], names, F, area(), CFG,
                                                 "2025-01-02", "2025-01-04")
    full = invert_world(*args, sel, *rest)
    only_a = invert_world(*args, sel[sel.site == "AAA"], *rest)
    assert not full.diagnostics["innovation_screen"]["n_flagged"]
    inputs = InversionInputs(*args, sel[sel.site == "AAA"], *rest[:6])
    rec_b = w["rec"][w["rec"].site == "BBB"]
    table = pd.DataFrame([{"id": "BBB", "type": "insitu", "lon": rec_b["lon"].iloc[0],
                           "lat": rec_b["lat"].iloc[0], "height": 100.0}])
    # the inversion treats its sites' errors as independent: so does this candidate (no correlation with
    # station AAA 7.5 km away; tests/inversion/test_network_stations.py checks the correlated case)
    res = network_design(inputs, CFG, _nd(station_correlation=False), table, w["H"][rec_b.index.to_numpy()],
                         rec_b.reset_index(drop=True), "2025-01-02", "2025-01-04")
    np.testing.assert_allclose(res.summary["current_sigma_t"], only_a.districts["posterior_sigma_t"], rtol=1e-9)
    row = res.candidates.iloc[0]
    got = [row["sigma_West"], row["sigma_East"], row["city_sigma"]]
    np.testing.assert_allclose(got, full.districts["posterior_sigma_t"], rtol=1e-8)
    assert row["n_obs"] == int((sel.site == "BBB").sum())
    assert res.greedy["id"].tolist() == ["", "BBB"]
    assert row["city_sigma_reduction_pct"] == pytest.approx(
        100 * (1 - full.districts["posterior_sigma_t"].iloc[-1] / only_a.districts["posterior_sigma_t"].iloc[-1]))
    # the check against the run's districts.csv: passes on the inversion's own, stops on another
    only_a.districts.to_csv(tmp_path / "d.csv", index=False)
    assert check_current_sigma(res, tmp_path / "d.csv") < 1e-9
    full.districts.to_csv(tmp_path / "other.csv", index=False)
    with pytest.raises(ValueError, match="differs from .*other.csv"):
        check_current_sigma(res, tmp_path / "other.csv")


def test_bad_candidates_stop_naming_the_candidate_and_the_fix():
    box, met = (112.9, 114.1, 22.5, 24.0), (111.0, 116.0, 21.0, 25.5)
    nd = _nd(candidates=[{"id": "FAR", "type": "insitu", "lon": 117.0, "lat": 23.0, "height": 50}])
    with pytest.raises(ValueError, match="candidate FAR .* outside the met domain"):
        candidate_table(nd, "config/districts.geojson", box, met, ["NST"])
    nd = _nd(candidates=[{"id": "NST", "type": "insitu", "lon": 113.3, "lat": 23.0, "height": 50}])
    with pytest.raises(ValueError, match=r"\['NST'\] are stations"):
        candidate_table(nd, "config/districts.geojson", box, met, ["NST"])
    with pytest.raises(ValueError, match="no candidates"):
        candidate_table(_nd(candidates=[]), "config/districts.geojson", box, met, ["NST"])
    nd = _nd(candidates=[], grid={"enabled": True, "spacing_km": 5.0, "height": 50.0}, max_candidates=12)
    with pytest.raises(ValueError, match=r"candidates > max_candidates = 12"):
        candidate_table(nd, "config/districts.geojson", box, met, ["NST"])


def test_grid_candidates_lie_inside_the_city_at_the_spacing():
    import shapely

    from gzcarbon.districts import read_districts
    from inversion.network import distance_km

    nd = _nd(candidates=[], grid={"enabled": True, "spacing_km": 20.0, "height": 50.0}, max_candidates=100)
    t = candidate_table(nd, "config/districts.geojson", (112.9, 114.1, 22.5, 24.0), (111, 116, 21, 25.5), [])
    city = shapely.union_all([d.geometry for d in read_districts("config/districts.geojson")])
    assert len(t) > 5 and all(city.contains(shapely.Point(r.lon, r.lat)) for r in t.itertuples())
    # nearest neighbours 20 km apart (to the 4-decimal rounding of the positions)
    d = distance_km(t.lon.to_numpy()[:, None], t.lat.to_numpy()[:, None], t.lon.to_numpy()[None], t.lat.to_numpy()[None])
    np.fill_diagonal(d, np.inf)
    assert np.median(d.min(axis=1)) == pytest.approx(20.0, abs=0.1)
