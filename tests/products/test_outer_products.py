"""Products of a nested run (issue 19): the CF flux product carries the outer cells on their own grid
and the outer totals (checked against flux_product.cdl + flux_product_outer.cdl and by the CF
checker), the district table stays inner-only, the outer map and the report's outer tables."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from products.flux_netcdf import write_flux_product
from products.inputs import ProductInputError
from products.outer import outer_map, outer_report_tables

REPO = Path(__file__).resolve().parents[2]
CDL = REPO / "workflow" / "report" / "flux_product.cdl"
sys.path.insert(0, str(REPO / "tests" / "inversion"))
from test_nested_inversion import CFG, world  # noqa: E402

from inversion.run import invert, write_outputs  # noqa: E402


@pytest.fixture(scope="module")
def nested_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("nested_run")
    inputs, _ = world()
    out = invert(inputs, CFG, "2025-01-02", "2025-01-04")
    paths = {k: d / f for k, f in (("posterior", "posterior.nc"), ("districts", "districts.csv"),
                                   ("modelled", "modelled.csv"), ("diagnostics", "diagnostics.json"),
                                   ("outer", "outer.csv"))}
    write_outputs(out, paths["posterior"], paths["districts"], paths["modelled"], paths["diagnostics"],
                  paths["outer"])
    # a district file for the two fake districts (the product names them)
    geo = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"adcode": 440100 + i, "name": n, "name_en": n},
         "geometry": {"type": "Polygon", "coordinates": [[[113.0 + 0.06 * i, 23.0], [113.06 + 0.06 * i, 23.0],
                                                          [113.06 + 0.06 * i, 23.12], [113.0 + 0.06 * i, 23.12],
                                                          [113.0 + 0.06 * i, 23.0]]]}}
        for i, n in enumerate(["West", "East"])]}
    paths["geojson"] = d / "districts.geojson"
    paths["geojson"].write_text(json.dumps(geo))
    paths["dir"] = d
    return out, paths


def test_nested_flux_product_layout_and_values(nested_run):
    out, p = nested_run
    prod = p["dir"] / "flux_2025-01.nc"
    write_flux_product(p["posterior"], p["districts"], prod, p["geojson"], month="2025-01", template=CDL,
                       outer_csv=p["outer"])
    table = pd.read_csv(p["outer"])
    with xr.open_dataset(prod) as ds, xr.open_dataset(p["posterior"]) as post:
        assert ds.sizes["district"] == 2 and list(ds["outer_region"].values) == ["outer ring", "Eastcity"]
        np.testing.assert_allclose(ds["posterior_outer_total"].values, table["posterior_t"].to_numpy(), rtol=1e-12)
        np.testing.assert_allclose(ds["posterior_outer_total_sigma"].values, table["posterior_sigma_t"].to_numpy(),
                                   rtol=1e-12)
        sel = (post["time"].values >= np.datetime64("2025-01-02")) & (post["time"].values < np.datetime64("2025-01-04"))
        np.testing.assert_array_equal(ds["posterior_flux_outer"].values,
                                      post["posterior_flux_outer"].values[sel].astype(np.float32))
        hole = np.isnan(ds["posterior_flux_sigma_outer"].values)
        assert hole.sum() == 4 and ds.attrs["n_outer"] == 12
        # the district table is the inner domain's alone
        assert "outer ring" not in list(ds["district"].values)
    with pytest.raises(ProductInputError, match="outer.csv"):
        write_flux_product(p["posterior"], p["districts"], p["dir"] / "x.nc", p["geojson"], month="2025-01",
                           template=CDL)


def test_nested_flux_product_passes_the_cf_checker(nested_run, tmp_path):
    pytest.importorskip("compliance_checker.runner", reason="pip install -e '.[test]'")
    from test_cf_check import _cf_report, _messages

    _, p = nested_run
    prod = tmp_path / "flux_2025-01.nc"
    write_flux_product(p["posterior"], p["districts"], prod, p["geojson"], month="2025-01", template=CDL,
                       outer_csv=p["outer"])
    report = _cf_report(prod, tmp_path)
    assert _messages(report, "high_priorities") == []
    assert _messages(report, "medium_priorities") == []


def test_outer_map_and_report_tables(nested_run):
    out, p = nested_run
    paths = outer_map(p["posterior"], p["dir"])
    assert [x.name for x in paths] == ["outer_posterior.png", "outer_change.png"]
    assert all(x.stat().st_size > 5000 for x in paths)
    kt, shares = outer_report_tables(p["outer"], out.diagnostics)
    assert kt["region"].tolist() == ["outer ring", "Eastcity"]
    np.testing.assert_allclose(kt["posterior_kt"].to_numpy() * 1e3, out.outer["posterior_t"].to_numpy(), rtol=1e-5)
    assert set(shares["site"]) == {"AAA", "BBB"}
    for _, r in shares.iterrows():
        assert r["prior_outer_share_pct"] == pytest.approx(100 * out.diagnostics["outer_signal_share"][r["site"]]["prior"])


@pytest.mark.parametrize("language", ["en", "both"])
def test_report_has_the_outer_section(nested_run, fake_run, tmp_path, language):
    """The report of a nested run: the outer table (kt) and each site's outer share, in both languages;
    the outer maps drawn into the maps directory appear as figures."""
    from products.report import build_report

    out, p = nested_run
    diag = json.loads(fake_run["diagnostics"].read_text())
    diag["outer_signal_share"] = out.diagnostics["outer_signal_share"]
    fake_run["diagnostics"].write_text(json.dumps(diag))
    maps = tmp_path / "maps"
    maps.mkdir()
    outer_map(p["posterior"], maps)
    html = build_report(month="2025-01", districts_csv=fake_run["districts"], diagnostics_json=fake_run["diagnostics"],
                        modelled_csv=fake_run["modelled"], selected_csv=fake_run["selected"],
                        stations_yaml=fake_run["stations"], maps_dir=maps, days=["20250101"], language=language,
                        districts_geojson=fake_run["geojson"], outer_csv=p["outer"])
    sec = html.split('id="outer"')[1].split("<h2")[0]
    ring = out.outer.iloc[0]
    assert f"{ring.posterior_t / 1e3:,.1f} ± {ring.posterior_sigma_t / 1e3:,.1f}" in sec
    assert "Eastcity" in sec and sec.count("<figure>") == 2
    share = 100 * out.diagnostics["outer_signal_share"]["AAA"]["prior"]
    assert f"{share:,.1f}" in sec
    if language == "both":
        assert "外围" in sec
    # no outer section without outer.csv
    html2 = build_report(month="2025-01", districts_csv=fake_run["districts"], diagnostics_json=fake_run["diagnostics"],
                         modelled_csv=fake_run["modelled"], selected_csv=fake_run["selected"],
                         stations_yaml=fake_run["stations"], maps_dir=maps, days=["20250101"], language="en")
    assert 'id="outer"' not in html2


def test_footprint_sensitivity_of_a_nested_jacobian_is_the_inner_part(tmp_path):
    """products.figures sums each site's Jacobian rows per cell: on a nested Jacobian (written by
    transport.jacobian.save_jacobian with an outer grid) the outer columns must not fold onto inner
    cells; the result equals the inner columns' sums computed here."""
    from products.figures import footprint_sensitivity
    from transport.jacobian import save_jacobian
    from test_nested_inversion import INNER, NESTED, OUTER

    inputs, w = world()
    path = tmp_path / "jacobian_hourly.npz"
    save_jacobian(path, w["H"], inputs.receptors, inputs.hours, INNER.as_dict(),
                  outer_grid={k: getattr(OUTER, k) for k in ("lon_min", "lon_max", "lat_min", "lat_max", "res")})
    sens = footprint_sensitivity(path)
    H = w["H"].tocoo()
    cell = H.col % NESTED.n_cells
    inner = cell < NESTED.n_inner
    total = np.bincount(cell[inner], weights=H.data[inner], minlength=NESTED.n_inner).reshape(INNER.shape)
    np.testing.assert_allclose(sens.total, total, rtol=1e-12)
    assert H.data[~inner].sum() > 0  # the outer columns exist and were left out
