"""Issue 14.3 (products): the typed configuration is the one source of the products' settings.

- the CF flux product's ``institution`` is config ``products.institution`` (the CDL template
  accepts any value), the script path and the Python API given the same partial config write the
  same product;
- the report's settings (``report_pdf``, ``budgets``, the stations' UTC offset and selection
  window) reach ``write_report`` typed, the same from the pipeline's script as from
  ``products.settings.report_settings`` with the same partial config; the library defaults are
  the config's.
"""

import copy
import inspect
import re
import runpy
from pathlib import Path

import xarray as xr

from gzcarbon.config import ProductsConfig, load_config, validate_config
from products import maps, problems, report
from products.cdl_template import check_against_template, read_template
from products.flux_netcdf import build_flux_dataset, write_flux_product
from products.settings import hours_per_day, report_settings
from pipeline_conftest import script_object

REPO = Path(__file__).resolve().parents[2]
CDL = REPO / "workflow" / "report" / "flux_product.cdl"
RULES = (REPO / "workflow" / "rules" / "products.smk").read_text(encoding="utf-8")


_snakemake = script_object


def _script(name: str, sm) -> None:
    runpy.run_path(str(REPO / "workflow" / "scripts" / name), init_globals={"snakemake": sm},
                   run_name="__main__")


def test_flux_product_institution_from_the_config(fake_run, tmp_path):
    partial = {"products": {"institution": "Guangzhou Institute of Geochemistry, CAS"}}
    config = validate_config(copy.deepcopy(partial), REPO)
    assert 'institution=config["products"]["institution"]' in RULES     # a param: a rerun trigger
    by_script = tmp_path / "script.nc"
    inputs = {"posterior": str(fake_run["posterior"]), "districts": str(fake_run["districts"]),
              "geojson": str(fake_run["geojson"]), "template": str(CDL)}
    _script("flux_product.py", _snakemake(inputs, {"out": str(by_script)},
                                          {"demo": True, **{k: config["products"][k] for k in
                                                                       ("institution", "contact", "references")}},
                                          tmp_path / "flux.log", config))
    by_api = tmp_path / "api.nc"
    write_flux_product(fake_run["posterior"], fake_run["districts"], by_api, fake_run["geojson"],
                       month="2025-01", config=config, inputs=list(inputs.values())[:3], demo=True,
                       template=CDL, institution=load_config(partial).products.institution)
    assert check_against_template(by_script, CDL) == [] and check_against_template(by_api, CDL) == []
    assert read_template(CDL).attrs["institution"].any_value
    with xr.open_dataset(by_script) as a, xr.open_dataset(by_api) as b:
        assert a.attrs["institution"] == b.attrs["institution"] == partial["products"]["institution"]
        for k in set(a.attrs) - {"date_created", "history"}:
            assert a.attrs[k] == b.attrs[k], k
        xr.testing.assert_identical(a.drop_attrs(), b.drop_attrs())
    # from Python without the setting: the config's default
    ds = build_flux_dataset(fake_run["posterior"], fake_run["districts"], fake_run["geojson"], month="2025-01")
    assert ds.attrs["institution"] == ProductsConfig().institution


def test_report_settings_of_a_partial_config():
    partial = {"report_pdf": "none", "budgets": {2025: {"Liwan": 4000}},
               "stations": {"utc_offset_hours": 7, "select_hours_local": [22, 6]}}
    s = report_settings(partial)
    assert s == {"pdf_engine": "none", "budgets": {"2025": {"Liwan": 4000.0}}, "utc_offset_hours": 7,
                 "select_hours_local": (22, 6), "hours_per_day": 8, "language": "both"}
    assert [hours_per_day(w) for w in ((12, 16), (0, 24), (23, 1), (6, 5))] == [4, 24, 2, 23]
    # the library's defaults are the config's (an empty config)
    d = report_settings({})
    for fn in (report.build_report, problems.collect):
        params = inspect.signature(fn).parameters
        assert params["utc_offset_hours"].default == d["utc_offset_hours"], fn.__name__
        assert tuple(params["select_hours_local"].default) == d["select_hours_local"], fn.__name__
    assert inspect.signature(maps.make_all_figures).parameters["hours_per_day"].default == d["hours_per_day"]
    assert d["pdf_engine"] == load_config({}).report_pdf and d["budgets"] == {}


def _strip_time(html: str) -> str:
    return re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", "<generated>", html)


def test_report_script_equals_python_api(fake_run, tmp_path):
    partial = {"report_pdf": "none", "budgets": {"2025": {"Liwan": 4000, "Guangzhou": 30000}},
               "stations": {"utc_offset_hours": 7, "select_hours_local": [11, 17]}}
    config = validate_config(copy.deepcopy(partial), REPO)
    for key in ('pdf_engine=config["report_pdf"]', 'budgets=config["budgets"]',
                'utc_offset=config["stations"]["utc_offset_hours"]',
                'hours_local=config["stations"]["select_hours_local"]',
                'language=config["report"]["language"]'):
        assert key in RULES, key
    maps_dir = tmp_path / "maps"
    maps.make_all_figures(fake_run["posterior"], fake_run["districts"], fake_run["modelled"],
                          fake_run["selected"], fake_run["stations"], fake_run["geojson"], maps_dir,
                          days=["20250101"], hours_per_day=6)
    inputs = {"districts": str(fake_run["districts"]), "diagnostics": str(fake_run["diagnostics"]),
              "modelled": str(fake_run["modelled"]), "selected": str(fake_run["selected"]),
              "stations": str(fake_run["stations"]), "maps": str(maps_dir), "flux": str(tmp_path / "none.nc"),
              "power_heatmap": str(fake_run["heatmap"]), "power_summary": str(fake_run["summary"]),
              "failures": str(tmp_path / "failures.csv"), "hourly": [], "budget_districts": [],
              "budget_diagnostics": [],
              # the figures of products/figures.py are not drawn without a Jacobian (tested in test_figures_*)
              "jacobian": None, "posterior": None, "footprints": [], "geojson": None}
    params = {"site_ids": ["AAA", "BBB"], "days": ["20250101"], "demo": True, "budgets": config["budgets"],
              "budget_existing": [], "pdf_engine": config["report_pdf"],
              "utc_offset": config["stations"]["utc_offset_hours"],
              "hours_local": config["stations"]["select_hours_local"],
              "language": config["report"]["language"],
              # as rule report gives them: no flash report of the month yet, CO2 only
              "flash_dirs": [], "gases": []}
    out = {"html": str(tmp_path / "script.html"), "table": str(tmp_path / "table.csv")}
    _script("report.py", _snakemake(inputs, out, params, tmp_path / "report.log", config))

    api = report.write_report(
        tmp_path / "api.html", month="2025-01", districts_csv=fake_run["districts"],
        diagnostics_json=fake_run["diagnostics"], modelled_csv=fake_run["modelled"],
        selected_csv=fake_run["selected"], stations_yaml=fake_run["stations"], maps_dir=maps_dir,
        flux_product=inputs["flux"], power_heatmap=fake_run["heatmap"], power_summary=fake_run["summary"],
        site_ids=params["site_ids"], days=params["days"], config=config, demo=True, budget_history=[],
        failures_csv=inputs["failures"], hourly_dirs=[], **report_settings(partial))
    script_html = Path(out["html"]).read_text(encoding="utf-8")
    assert "Carbon budgets" in script_html and not Path(out["html"]).with_suffix(".pdf").exists()
    assert _strip_time(script_html) == _strip_time(api.read_text(encoding="utf-8"))
