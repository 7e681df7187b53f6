"""The CF flux product: layout against the CDL template, values round-trip, bad input."""

from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from products.cdl_template import check_against_template, parse_cdl, read_template
from products.flux_netcdf import write_flux_product
from products.inputs import ProductInputError

CDL = Path(__file__).resolve().parents[2] / "workflow" / "report" / "flux_product.cdl"


def _write(fake_run):
    out = fake_run["R"] / "flux_2025-01.nc"
    write_flux_product(fake_run["posterior"], fake_run["districts"], out, fake_run["geojson"],
                       month="2025-01", config={"month": "2025-01", "x": 1})
    return out


def test_product_matches_cdl_template(fake_run):
    out = _write(fake_run)
    tpl = read_template(CDL)
    assert len(tpl.variables) == 29 and "prior_flux" in tpl.variables
    assert tpl.variables["prior_flux"].dims == ("time", "lat", "lon")
    assert tpl.dims["nv"] == 2 and tpl.dims["time"] is None
    assert check_against_template(out, tpl) == []


def test_template_check_catches_deviations(fake_run):
    out = _write(fake_run)
    with netCDF4.Dataset(out, "a") as nc:
        nc["posterior_flux"].units = "kg m-2 s-1"
        nc.renameVariable("truth_city_total", "truth_total")
        nc.setncattr("extra", "x")
    problems = check_against_template(out, CDL)
    text = "\n".join(problems)
    assert "posterior_flux" in text and "units" in text
    assert "'truth_city_total' missing" in text
    assert "'truth_total' not in template" in text
    assert "'extra' not in template" in text


def test_values_round_trip(fake_run):
    out = _write(fake_run)
    ds = xr.open_dataset(out)
    # only the inversion period (second day) is in the product
    assert ds.sizes["time"] == 24
    assert pd.Timestamp(ds["time"].values[0]) == pd.Timestamp("2025-01-01T00:00")
    np.testing.assert_allclose(ds["posterior_flux"].values, fake_run["posterior_values"][24:], rtol=1e-6)
    np.testing.assert_allclose(ds["prior_flux"].values, fake_run["prior"][24:], rtol=1e-6)
    np.testing.assert_allclose(ds["time_bnds"].values[:, 1] - ds["time_bnds"].values[:, 0],
                               np.timedelta64(1, "h"))
    np.testing.assert_allclose(ds["lat_bnds"].values[0], [23.0, 23.01], atol=1e-9)
    np.testing.assert_allclose(ds["lon_bnds"].values[-1], [113.29, 113.30], atol=1e-9)
    # blocks of 4 cells: lon 10 cells -> 3 blocks, last one partial
    np.testing.assert_allclose(ds["lon_block_bnds"].values[:, 0], [113.20, 113.24, 113.28], atol=1e-9)
    np.testing.assert_allclose(ds["lon_block_bnds"].values[-1, 1], 113.30, atol=1e-9)
    np.testing.assert_allclose(ds["posterior_flux_sigma_block"].values, fake_run["sq"], rtol=1e-6)
    np.testing.assert_allclose(ds["uncertainty_reduction_block"].values,
                               1 - fake_run["sq"] / fake_run["sp"], rtol=1e-5)
    t = fake_run["table"].set_index("district")
    assert list(ds["district"].values) == ["Liwan", "Yuexiu", "Haizhu"]
    assert list(ds["district_adcode"].values) == [440103, 440104, 440105]
    assert list(ds["district_name"].values) == ["荔湾区", "越秀区", "海珠区"]
    np.testing.assert_allclose(ds["posterior_district_total"].values,
                               t.loc[["Liwan", "Yuexiu", "Haizhu"], "posterior_t"])
    np.testing.assert_allclose(ds["posterior_district_total_sigma"].values, [2000, 2500, 3000])
    assert float(ds["posterior_city_total"]) == 70001.5
    assert float(ds["truth_city_total"]) == 69500.0
    assert ds.attrs["Conventions"] == "CF-1.8" and ds.attrs["demo"] == "true"
    assert len(ds.attrs["config_sha256"]) == 64
    assert "posterior.nc sha256:" in ds.attrs["input_files"]
    assert "xarray=" in ds.attrs["package_versions"]
    ds.close()


def test_real_data_without_truth_has_fill_values(fake_run):
    t = fake_run["table"].copy()
    t["truth_t"] = np.nan
    t.to_csv(fake_run["districts"], index=False)
    out = _write(fake_run)
    assert check_against_template(out, CDL) == []
    with xr.open_dataset(out) as ds:
        assert np.isnan(ds["truth_district_total"].values).all()
        assert ds.attrs["demo"] == "false"


def test_missing_city_total_is_a_clear_error(fake_run):
    t = fake_run["table"]
    t[t["district"] != "Guangzhou"].to_csv(fake_run["districts"], index=False)
    with pytest.raises(ProductInputError, match=r"districts\.csv.*Guangzhou"):
        _write(fake_run)


def test_missing_variable_is_a_clear_error(fake_run):
    with xr.open_dataset(fake_run["posterior"]) as src:
        ds = src.load()
    ds.drop_vars("posterior_sigma_block").to_netcdf(fake_run["posterior"])
    with pytest.raises(ProductInputError, match=r"posterior\.nc.*posterior_sigma_block"):
        _write(fake_run)


def test_cdl_parser_values():
    tpl = parse_cdl('netcdf x {\ndimensions:\n\ta = 3 ;\n\tb = 5 ; // any\nvariables:\n'
                    '\tfloat v(a, b) ;\n\t\tv:_FillValue = NaNf ;\n\t\tv:scale = 2.5 ;\n'
                    '\t\tv:units = "m s-1" ; // any\n\n// global attributes:\n'
                    '\t\t:title = "a \\"q\\" b" ;\n}\n')
    assert tpl.dims == {"a": 3, "b": None}
    v = tpl.variables["v"]
    assert v.dtype == np.float32 and v.dims == ("a", "b")
    assert np.isnan(v.attrs["_FillValue"].value) and v.attrs["scale"].value == 2.5
    assert v.attrs["units"].any_value and not v.attrs["scale"].any_value
    assert tpl.attrs["title"].value == 'a "q" b'


def test_open_and_district_table(fake_run):
    from products import district_table, open_flux_product

    _write(fake_run)
    ds = open_flux_product("2025-01", results_dir=fake_run["R"].parent)
    df = district_table(ds)
    assert list(df.index) == ["Liwan", "Yuexiu", "Haizhu", "Guangzhou"]
    np.testing.assert_allclose(df["posterior_kt"], [13.0004, 21.0009, 36.0002, 70.0015])
    np.testing.assert_allclose(df.loc["Guangzhou", "posterior_sigma_kt"], 4.1)
    ds.close()


def test_product_carries_its_configuration(fake_run):
    """Issue 22: the product stores the configuration itself (reproducible from its output), its hash
    is that configuration's, and `references` names files of the repository only."""
    import yaml

    from gzcarbon.provenance import config_hash

    config = {"month": "2025-01", "grid": {"lon_min": 113.2, "res": 0.01}, "sites": ["AAA", "BBB"],
              "budgets": {"2025": {"Liwan": 4000.5}}, "demo": {"enabled": True, "seed": 7}}
    out = fake_run["R"] / "flux_2025-01.nc"
    write_flux_product(fake_run["posterior"], fake_run["districts"], out, fake_run["geojson"],
                       month="2025-01", config=config, template=CDL)
    with xr.open_dataset(out) as ds:
        back = yaml.safe_load(ds.attrs["config_yaml"])
        assert back == config
        assert ds.attrs["config_sha256"] == config_hash(back) == config_hash(config)
        assert "shared" not in ds.attrs["references"] and "docs/formats.md" in ds.attrs["references"]
    for ref in ("docs/formats.md", "docs/inversion.md"):
        assert (Path(__file__).resolve().parents[2] / ref).is_file()
