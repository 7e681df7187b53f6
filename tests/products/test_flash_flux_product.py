"""The flash's flux product says it is preliminary (issue 21): title, product_status, data cut-off
and coverage, the same as flash.json; it passes the layout template (flux_product.cdl with
flux_product_flash.cdl) and the CF checker; its values are the month product's writer's."""

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from products.annual import FLASH_TITLE_PREFIX, flash_status, flash_template, write_flash
from products.cdl_template import check_against_template, read_template
from products.flux_netcdf import write_flux_product
from products.inputs import load_diagnostics

REPO = Path(__file__).resolve().parents[2]
CDL = REPO / "workflow" / "report" / "flux_product.cdl"
MONTH_DAYS, FLASH_DAYS = ["20250101", "20250102"], ["20250101"]


def _status(fake_run):
    return flash_status("2025-01", "2025-01-01", MONTH_DAYS, FLASH_DAYS, load_diagnostics(fake_run["diagnostics"]))


def _write(fake_run, name, flash=None):
    out = fake_run["R"] / name
    write_flux_product(fake_run["posterior"], fake_run["districts"], out, fake_run["geojson"], month="2025-01",
                       config={"month": "2025-01"}, template=CDL, flash=flash)
    return out


def test_flash_flux_product_is_marked_preliminary_like_flash_json(fake_run, tmp_path):
    out = _write(fake_run, "flash.nc", _status(fake_run))
    write_flash(tmp_path / "report.html", tmp_path / "flash.json", fake_run["districts"], fake_run["diagnostics"],
                month="2025-01", cutoff="2025-01-01", month_days=MONTH_DAYS, flash_days=FLASH_DAYS, language="en")
    status = json.loads((tmp_path / "flash.json").read_text())
    with xr.open_dataset(out) as ds:
        a = ds.attrs
        assert a["product_status"] == status["status"] == "preliminary"
        assert a["data_cutoff"] == status["cutoff"] == "2025-01-01"
        assert a["data_coverage"] == status["coverage"] == 0.5
        assert (a["days_inverted"], a["days_in_month_period"]) == (status["days_inverted"], 2) == (1, 2)
        assert a["n_obs"] == status["n_obs"] == 7
        assert a["title"].startswith("PRELIMINARY") and a["title"] == FLASH_TITLE_PREFIX + (
            "Guangzhou CO2 flux: prior and posterior of an urban analytical Bayesian inversion")
        assert "flux_2025-01.nc of the complete month" in a["superseded_by"]
        flash_values = {v: ds[v].values for v in ds.data_vars}
    # only the attributes differ from the month's product written from the same files
    month = _write(fake_run, "month.nc")
    with xr.open_dataset(month) as ds:
        assert "product_status" not in ds.attrs and not ds.attrs["title"].startswith("PRELIMINARY")
        for v, vals in flash_values.items():
            np.testing.assert_array_equal(ds[v].values, vals, err_msg=v)


def test_flash_template_check(fake_run):
    flash = _write(fake_run, "flash.nc", _status(fake_run))
    month = _write(fake_run, "month.nc")
    assert check_against_template(flash, flash_template(read_template(CDL))) == []
    # a flash product is not a month's product, and a month's product is not a flash
    text = "\n".join(check_against_template(flash, read_template(CDL)))
    assert "global attribute 'product_status' not in template" in text and "'title' = 'PRELIMINARY" in text
    text = "\n".join(check_against_template(month, flash_template(read_template(CDL))))
    assert "global attribute 'product_status' missing" in text and "data_cutoff' missing" in text


def test_flash_flux_product_passes_the_cf_checker(fake_run, tmp_path):
    pytest.importorskip("compliance_checker.runner", reason="pip install -e '.[test]'")
    from test_cf_check import _cf_report, _messages

    report = _cf_report(_write(fake_run, "flash.nc", _status(fake_run)), tmp_path)
    assert _messages(report, "high_priorities") == [] and _messages(report, "medium_priorities") == []
    assert report["scored_points"] == report["possible_points"] > 50
