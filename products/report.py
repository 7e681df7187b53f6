"""The monthly report `{R}/report.html`: one self-contained HTML file, rendered from templates.

The page is ``products/templates/report.html`` (sections in order, with the problem box at the top),
its building blocks ``macros.html`` (table, figure, download link) and its style ``report.css``
(inline). `products.sections` turns the run's files into the plain data the template shows.

Escaping: the Jinja environment autoescapes, and every ``{{ expression }}`` goes through
:func:`_escape` (``html.escape`` with quotes) before it is written, so every text that comes from an
input file (a district, site or station name, a power-summary cell, a file name) is escaped. No
template marks anything safe. Images are inlined as base64 data URIs and the CSS is inline, so the
file makes no external request.

Language (config ``report.language``: ``zh``, ``en`` or ``both``): every text goes through
`products.i18n` (the template's filters ``tr``, ``tp``, ``tv``, ``fill``); district names in Chinese
come from the districts GeoJSON (``name``). With Chinese text, the page embeds a subset of the
shipped CJK font (`products.fonts`) cut to the characters it uses, as a ``data:`` URI.
"""

from __future__ import annotations

import html
import logging
from datetime import datetime, timezone
from pathlib import Path

import jinja2
import pandas as pd
from markupsafe import Markup

from gzcarbon.atomic import write_csv, write_text
from gzcarbon.config import ReportConfig
from gzcarbon.districts import read_districts
from gzcarbon.names import CITY
from gzcarbon.provenance import config_hash, input_list, package_versions

from . import i18n
from .annual import accounting_section, revision_section
from .budgets import CoveredMonth
from . import fonts
from .fonts import css_font_face
from .figures import RunFiles, place_figures
from .gas_report import gas_section
from .outer import outer_section
from .inputs import load_diagnostics, load_districts_table, load_modelled, load_selected, load_stations
from .problems import collect as collect_problems
from .settings import SELECT_HOURS_LOCAL, UTC_OFFSET_HOURS, hours_per_day as window_hours
from .sections import (  # noqa: F401  (fmt_kt, fmt_num, district_csv_table, ...: public through this module)
    MAP_KEYS,
    availability_section,
    budget_section,
    city_section,
    contribution_section,
    covered_month,
    diagnostics_section,
    district_csv_table,
    district_rows,
    district_section,
    fmt_kt,
    fmt_num,
    losses_section,
    map_figures,
    month_joint_or_error,
    period_of,
    power_section,
    recovery_sentence,
    station_contribution_tables,
    station_figures,
)

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parent / "templates"
#: config ``report.language`` by default
LANGUAGE = ReportConfig().language


def _escape(value):
    """Every expression of the templates: ``html.escape`` (quotes too); None is empty."""
    if isinstance(value, Markup):
        return value
    return Markup(html.escape("" if value is None else str(value), quote=True))


def _lenient(fn, *lang):
    """``fn`` of products.i18n; a text without a Chinese entry is shown in English with a warning
    (the page is still written; tests/products/test_report_language.py requires none)."""
    def call(msg, **fields):
        try:
            return fn(msg, *lang, **fields)
        except i18n.MissingTranslation as err:
            log.warning("report language: %s; shown in English", err.args[0])
            en = str(msg.get("en", "")) if isinstance(msg, dict) else str(msg)
            return fn({"en": en, "zh": en}, *lang, **fields)
    return call


def _cell(lang):
    def tv(value):
        return i18n.tr(value, lang) if isinstance(value, dict) else value
    return tv


def environment(language: str = LANGUAGE) -> jinja2.Environment:
    """The report's Jinja environment: templates of the package, autoescape, strict undefined, and
    the translation filters of `products.i18n` bound to ``language``."""
    i18n.codes(language)   # a clear error for an unknown language
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                             finalize=_escape, undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True)
    env.filters.update(
        tr=_lenient(i18n.tr, language), tp=_lenient(i18n.parts, language),
        tv=_cell(language), fill=_lenient(i18n.fill), joinmsg=i18n.joinmsg)
    env.globals["html_lang"] = "en" if language == "en" else "zh-CN"
    return env


def chinese_names(districts_geojson) -> dict[str, str]:
    """name_en -> Chinese name (``name``) of the districts file (empty without a file)."""
    if not districts_geojson:
        return {}
    return {d.name_en: d.name for d in read_districts(districts_geojson)}


def write_district_csv(districts_csv, out_path) -> Path:
    """`{R}/district_table.csv`: the district table in kt CO₂ with change and σ reduction (%)."""
    df = district_csv_table(load_districts_table(districts_csv))
    out = write_csv(df, out_path, index=False, float_format="%.6g")
    log.info("wrote %s (%d rows)", out, len(df))
    return out


def _stations(stations_yaml, site_ids) -> list[dict]:
    stations = load_stations(stations_yaml)
    if site_ids is not None:
        stations = [s for s in stations if str(s["id"]) in {str(i) for i in site_ids}]
    return stations


def _budget(budgets, budget_history, month, table, diag, days, diagnostics_json, missing,
            names_zh=None, language="en") -> dict | None:
    """The budget section with the earlier months of the year and this one."""
    if not budgets:
        return None
    months = [covered_month(d, j) for d, j in budget_history]
    months = [m for m in months if m.month != month]
    months.append(CoveredMonth(month, table, *period_of(diag, days, diagnostics_json),
                               month_joint_or_error(diag, month, diagnostics_json)))
    return budget_section(budgets, months, month, set(table.index), missing, names_zh, language)


def _provenance(config, inputs) -> dict:
    return {"config_hash": config_hash(config or {}), "packages": package_versions(),
            "inputs": input_list(inputs)}


def _inputs(districts_csv, diagnostics_json, modelled_csv, selected_csv, stations_yaml, failures_csv,
            budgets, budget_history, flux_product, power_heatmap, power_summary) -> list:
    inputs = [districts_csv, diagnostics_json, modelled_csv, selected_csv, stations_yaml]
    inputs += [p for p in (failures_csv,) if p and Path(p).is_file()]
    inputs += [p for pair in (budget_history if budgets else ()) for p in pair]
    inputs += [p for p in (flux_product, power_heatmap, power_summary) if p]
    return inputs


def build_report(
    *,
    month: str,
    districts_csv,
    diagnostics_json,
    modelled_csv,
    selected_csv,
    stations_yaml,
    maps_dir,
    flux_product=None,
    power_heatmap=None,
    power_summary=None,
    site_ids=None,
    days=None,
    hours_per_day: int | None = None,
    config: dict | None = None,
    demo: bool | None = None,
    budgets: dict | None = None,
    budget_history=(),
    failures_csv=None,
    hourly_dirs=None,
    utc_offset_hours: float = UTC_OFFSET_HOURS,
    select_hours_local=SELECT_HOURS_LOCAL,
    language: str = LANGUAGE,
    jacobian=None,
    posterior_nc=None,
    footprint_files=None,
    districts_geojson=None,
    flash_dirs=(),
    gases=(),
    outer_csv=None,
    accounting_csv=None,
) -> str:
    """The report as an HTML string.

    ``budgets``: config ``budgets`` ({year: {district: kt CO₂/yr}}); ``budget_history``: pairs
    (districts.csv, diagnostics.json) of earlier inverted months of the same year.
    ``failures_csv`` (footprints/failures.csv), ``hourly_dirs`` (obs/hourly/<site>), the UTC offset and
    selection window: what the problem box and the table of what did not make it read
    (`products.problems`); any of them may be absent. ``hours_per_day``: selected hours per day
    (default: those of ``select_hours_local``). Settings not given take the config's defaults;
    :func:`products.settings.report_settings` gives all of them from a (partial) config, as the
    pipeline passes them. ``jacobian`` (jacobian_hourly.npz), ``posterior_nc``, ``footprint_files``
    (site-day files), ``districts_geojson``: with ``jacobian`` given, the figures of `products.figures`
    are added (what cannot be drawn is listed as missing); without it they are not drawn.
    ``language``: ``zh``, ``en`` or ``both`` (config ``report.language``); ``districts_geojson``: the
    districts file whose ``name`` gives the Chinese district names (without it: ``name_en``).
    ``flash_dirs``: the month's flash directories (results/<month>/flash/<cutoff>/, docs/year.md);
    when given, the section "Flash reports: revisions" (`products.annual.revision_section`).
    ``gases``: one ``(gas, districts.csv, diagnostics.json, maps dir)`` per other gas inverted
    (config ``species``): a section each (`products.gas_report`). ``outer_csv``: outer.csv of a
    nested run (config ``outer_grid``): the section on the outer domain (`products.outer.outer_section`).
    ``accounting_csv``: the month's accounting.csv (rule accounting): the section "Two accountings"
    (territorial and consumption-based CO₂ per district, `products.annual.accounting_section`).
    """
    env = environment(language)
    names_zh = chinese_names(districts_geojson)
    if hours_per_day is None:
        hours_per_day = window_hours(select_hours_local)
    missing: list[str] = []
    table = load_districts_table(districts_csv)
    city = table.loc[CITY]
    diag = load_diagnostics(diagnostics_json)
    modelled = load_modelled(modelled_csv)
    selected = load_selected(selected_csv)
    stations = _stations(stations_yaml, site_ids)
    ids = [str(s["id"]) for s in stations]
    names = {str(s["id"]): s.get("name", s["id"]) for s in stations}
    if days is None:
        days = sorted(set(selected["time"].dt.strftime("%Y%m%d")))
    demo = bool(pd.notna(city["truth_t"])) if demo is None else demo
    maps_dir = Path(maps_dir)

    # the order of these calls is the order of the Missing list
    ctx = {"city": city_section(city, demo, missing), "districts": district_section(table, month, names_zh)}
    ctx["flash_revisions"] = revision_section(districts_csv, diagnostics_json, flash_dirs)
    ctx["budget"] = _budget(budgets, budget_history, month, table, diag, days, diagnostics_json, missing,
                            names_zh, language)
    ctx["accounting"] = accounting_section(accounting_csv, names_zh)
    ctx["maps"] = map_figures(maps_dir, MAP_KEYS, missing)
    ctx["outer"] = outer_section(outer_csv, diag, maps_dir, missing) if outer_csv else None
    ctx["gases"] = [gas_section(g, d, j, m, month, names_zh, missing) for g, d, j, m in gases]
    ctx["districts"]["figures"] = map_figures(maps_dir, ("district_totals",), missing)
    ctx["station_figures"] = station_figures(maps_dir, ids, names, missing)
    if jacobian is not None:
        place_figures(ctx, RunFiles(jacobian, posterior_nc, districts_csv, diag, modelled, tuple(footprint_files or ()),
                                    failures_csv, tuple(hourly_dirs or ()), districts_geojson, tuple(stations)), missing,
                      lang=language)
    ctx["contributions"] = contribution_section(diag, names, names_zh, language)
    ctx["availability"] = availability_section(selected, modelled, ids, days, hours_per_day, names,
                                               maps_dir, missing)
    ctx["power"] = power_section(power_heatmap, power_summary, missing, names_zh)
    probs = collect_problems(diag, selected, failures_csv, hourly_dirs, days, utc_offset_hours,
                             select_hours_local)
    ctx["problems"] = [p if isinstance(p, dict) else i18n.known(p) for p in probs["problems"]]
    ctx["lost"] = losses_section(probs["losses"], recorded="observations_lost" in diag)
    ctx["diagnostics"] = diagnostics_section(diag, names_zh)
    if flux_product is not None and not Path(flux_product).is_file():
        missing.append(i18n.fill("flux product {file}", file=flux_product))
    ctx["provenance"] = _provenance(config, _inputs(
        districts_csv, diagnostics_json, modelled_csv, selected_csv, stations_yaml, failures_csv, budgets,
        budget_history, flux_product, power_heatmap, power_summary))
    ctx.update(
        month=month, demo=demo, missing=missing, month_text=i18n.fmt_month(month),
        period_start_text=i18n.fmt_date(diag.get("period_start", days[0] if days else "")),
        period_end_text=i18n.fmt_date(diag.get("period_end", days[-1] if days else "")),
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        flux_name=Path(flux_product).name if flux_product else f"flux_{month}.nc",
        font_face="",
    )
    template = env.get_template("report.html")
    page = template.render(**ctx)
    if language != "en":   # the CJK font, cut to the characters of this page
        lacking = fonts.missing_chars(page)
        if lacking:   # drawn by whatever font the reader has, or as boxes: say so
            log.warning("characters not in the shipped CJK font: %s", "".join(lacking))
            missing.append(i18n.fill("characters without a glyph in the shipped CJK font: {chars} "
                                     "(products/fonts/README.md)", chars=" ".join(lacking)))
        # CSS made here from constants and base64 (no input text, no '<'): the one value not escaped
        css = css_font_face(page)
        assert "<" not in css
        ctx["font_face"] = Markup(css)
        page = template.render(**ctx)
    return page


def write_report(out_path, pdf_engine: str | None = None, **kwargs) -> Path:
    """Build the report and write it atomically; returns the path of the HTML.

    ``pdf_engine``: None = HTML only; ``auto``/``weasyprint``/``chromium`` = also write the PDF
    beside it (products.pdf.write_pdf; skipped with a logged note when no engine is installed).
    A PDF engine failure is logged and does not fail the report; a stale PDF is removed.
    """
    out = write_text(out_path, build_report(**kwargs))
    log.info("wrote %s (%.0f kB)", out, out.stat().st_size / 1024)
    if pdf_engine is not None:
        from .pdf import write_pdf

        pdf = out.with_suffix(".pdf")
        try:
            written = write_pdf(out, pdf, engine=pdf_engine)
        except Exception as err:  # noqa: BLE001 - the PDF is optional; the HTML is the product
            log.warning("PDF of %s failed (%s: %s); only the HTML was written.", out,
                        type(err).__name__, err)
            written = None
        if written is None and pdf.exists():
            pdf.unlink()
            log.info("removed %s from an earlier run (it no longer matches the HTML).", pdf)
    return out
