"""Issue 22.4: the CF flux product passes a CF checker, its attributes come from the config, and it
stores the run's resolved configuration.

The checker is the IOOS compliance-checker (PyPI ``compliance-checker``, in the ``[test]`` extra):
its ``cf:1.8`` suite reads the CF standard-name table shipped in its wheel, so it runs offline.
The product is written by the pipeline's own writer (``write_flux_product``, checked against the
CDL layout template) from the fake run of ``tests/products/conftest.py``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import xarray as xr
import yaml

from gzcarbon.config import ProductsConfig, load_config, validate_config
from gzcarbon.provenance import config_hash
from products.flux_netcdf import write_flux_product

REPO = Path(__file__).resolve().parents[2]
CDL = REPO / "workflow" / "report" / "flux_product.cdl"

checker = pytest.importorskip("compliance_checker.runner", reason="pip install -e '.[test]'")


def _cf_report(path: Path, tmp_path: Path) -> dict:
    """compliance-checker's cf:1.8 result as a dict (its JSON output)."""
    from compliance_checker.runner import CheckSuite, ComplianceChecker

    CheckSuite.load_all_available_checkers()
    out = tmp_path / "cf.json"
    ComplianceChecker.run_checker(str(path), ["cf:1.8"], 0, "normal", output_filename=str(out),
                                  output_format="json")
    return json.loads(out.read_text())["cf:1.8"]


def _messages(report: dict, priority: str) -> list[str]:
    return [f"{r['name']}: {m}" for r in report[priority] for m in r["msgs"]]


def _product(fake_run, config, **kw) -> Path:
    out = fake_run["R"] / "flux_2025-01.nc"
    write_flux_product(fake_run["posterior"], fake_run["districts"], out, fake_run["geojson"],
                       month="2025-01", config=config, template=CDL, **kw)
    return out


def test_flux_product_passes_the_cf_checker(fake_run, tmp_path):
    config = validate_config({"month": "2025-01"}, REPO)
    out = _product(fake_run, config)
    report = _cf_report(out, tmp_path)
    assert _messages(report, "high_priorities") == []        # errors
    assert _messages(report, "medium_priorities") == []      # warnings
    assert report["scored_points"] == report["possible_points"] > 50


def test_the_checker_sees_a_broken_product(fake_run, tmp_path):
    """The check can fail: a bad unit and a second latitude for the grid mapping are reported."""
    out = _product(fake_run, validate_config({"month": "2025-01"}, REPO))
    broken = tmp_path / "broken.nc"
    with xr.open_dataset(out, decode_times=False) as ds:
        ds = ds.load()
    ds["posterior_flux"].attrs["units"] = "furlongs per fortnight"
    ds["lat_block"].attrs["standard_name"] = "latitude"
    ds.to_netcdf(broken)
    errors = "\n".join(_messages(_cf_report(broken, tmp_path), "high_priorities"))
    assert "posterior_flux" in errors and "latitude" in errors


def test_attributes_come_from_the_config(fake_run):
    partial = {"month": "2025-01", "products": {
        "institution": "Guangzhou Institute of Geochemistry, CAS", "contact": "gzcarbon@example.org",
        "references": "docs/formats.md; Lin et al. (2003) doi:10.1029/2002JD003161"}}
    config = validate_config(dict(partial), REPO)
    p = load_config(config).products
    out = _product(fake_run, config, institution=p.institution, contact=p.contact, references=p.references)
    with xr.open_dataset(out) as ds:
        for key in ("institution", "contact", "references"):
            assert ds.attrs[key] == partial["products"][key]
    # without a contact the attribute says so (never a made-up address)
    default = _product(fake_run, validate_config({"month": "2025-01"}, REPO))
    with xr.open_dataset(default) as ds:
        assert ds.attrs["contact"] == "not set (config products.contact)"
        assert ds.attrs["references"] == ProductsConfig().references


def test_default_references_name_files_that_exist():
    refs = ProductsConfig().references
    paths = re.findall(r"\b(?:docs|config|tests|tools)/[\w./-]+\.\w+", refs)
    assert paths == ["docs/formats.md", "docs/inversion.md"]
    for p in paths:
        assert (REPO / p).is_file(), p
    assert len(re.findall(r"doi:10\.\d{4,}/\S+", refs)) == 3


def test_the_stored_configuration_is_the_runs_resolved_configuration(fake_run):
    """Reproducible from the output: the YAML in the product, loaded, equals the resolved config
    (every default filled in by ``validate_config``, as the Snakefile does) and hashes to
    ``config_sha256``; the typed configuration loaded from it equals the run's."""
    config = validate_config({"month": "2025-01", "sites": ["NST", "YXU"], "demo": {"days": 1, "seed": 11},
                              "transport": {"numpar": 50}}, REPO)
    out = _product(fake_run, config)
    with xr.open_dataset(out) as ds:
        stored = yaml.safe_load(ds.attrs["config_yaml"])
        assert stored == json.loads(json.dumps(config, default=str))
        assert ds.attrs["config_sha256"] == config_hash(stored) == config_hash(config)
    assert load_config(stored) == load_config(config)
    assert stored["transport"]["numpar"] == 50 and stored["demo"]["seed"] == 11
    assert len(stored["transport"]) > 5          # the defaults are stored, not only the overrides
