"""Determinism (issue 8 item 4): two runs of the tiny configuration, in different directories,
give identical products — every NetCDF variable bit for bit (attributes too, time stamps aside),
every CSV byte for byte, the Jacobian arrays, and diagnostics.json without its timings."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import xarray as xr

from pipeline_conftest import MONTH, product_differences, product_files, run_tiny


@pytest.mark.slow
def test_two_tiny_runs_give_identical_products(tiny_reference_run, tmp_path):
    second = run_tiny(tmp_path / "second")
    files = product_files(second)
    # the comparison covers every product of the month (not a vacuous pass)
    for need in (f"flux_{MONTH}.nc", "posterior.nc", "prior.nc", "districts.csv", "modelled.csv",
                 "diagnostics.json", "jacobian_hourly.npz", "district_table.csv",
                 "power/emission_factors.nc", "obs/selected.csv", "footprints/NST/20250101.nc"):
        assert f"results/{MONTH}/{need}" in files
    assert product_differences(tiny_reference_run, second) == []


def test_product_comparison_detects_a_one_ulp_change(tmp_path):
    """The comparer is bit-exact: one float changed by one unit in the last place is reported,
    and so is a changed CSV cell; an attribute holding a time stamp is not."""
    for d in ("a", "b"):
        res = tmp_path / d / "results" / MONTH
        res.mkdir(parents=True)
        x = np.linspace(0, 1, 7)
        if d == "b":
            x[3] = np.nextafter(x[3], 2.0)
        xr.Dataset({"v": ("t", x)}, attrs={"date_created": d, "title": "t"}).to_netcdf(res / "p.nc")
        (res / "t.csv").write_text("a,b\n1,2\n" if d == "a" else "a,b\n1,3\n")
        (res / "diagnostics.json").write_text('{"n_obs": 4, "seconds": %d}' % (1 if d == "a" else 2))
    diff = product_differences(tmp_path / "a", tmp_path / "b")
    assert len(diff) == 2
    assert any("p.nc:v: values differ" in d for d in diff)
    assert any("t.csv: CSV differs" in d for d in diff)
    shutil.copy(tmp_path / "a" / "results" / MONTH / "t.csv", tmp_path / "b" / "results" / MONTH)
    assert len(product_differences(tmp_path / "a", tmp_path / "b")) == 1
