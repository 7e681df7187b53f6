"""A year of operation (docs/year.md): the flash report of a month still running, flash-to-final
revisions, and the annual report with the months tied by their district factors.

* `write_flash` — results/<month>/flash/<cutoff>/: ``flash.json`` (status *preliminary*, cut-off,
  coverage) and a self-contained ``report.html`` of the flash inversion's district totals.
* `flash_revisions` — per district and cut-off: the flash's emission rate against the final
  month's (kt CO₂ per day: a flash covers fewer days than the month), with both σ.
* `annual_table` / `write_annual` — results/<year>/districts.csv and report.html: annual totals ±
  σ over the covered months with correlated months (`inversion.sequential.year_estimate`), months
  not covered listed as such (never counted as zero), monthly totals ± σ (figure), budget status,
  data availability per site and month, flash revisions, and the change from the previous year when
  its districts.csv exists.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from gzcarbon.atomic import write_csv, write_text
from gzcarbon.config import ReportConfig
from gzcarbon.names import CITY
from inversion.sequential import SequentialInputError, month_joint, year_estimate

from .budgets import CoveredMonth, budget_table, year_hours
from .inputs import ProductInputError, load_diagnostics, load_districts_table

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parent / "templates"
HOURS = pd.Timedelta(hours=1)
#: config ``report.language`` by default (the monthly report's)
LANGUAGE = ReportConfig().language


class AnnualInputError(ProductInputError):
    """A month's files cannot be combined into the year (names the file and the fix)."""


# ---------------------------------------------------------------------------------------------
# flash
# ---------------------------------------------------------------------------------------------
def flash_status(month: str, cutoff: str, month_days, flash_days, diagnostics: dict) -> dict:
    """flash.json: what a flash directory holds (status preliminary, cut-off, coverage)."""
    md, fd = [str(d) for d in month_days], [str(d) for d in flash_days]
    if not fd or any(d not in md for d in fd):
        raise ProductInputError(f"flash {month} {cutoff}: its days {fd} are not inverted days of the month {md}.")
    lost = diagnostics.get("observations_lost") or {}
    return {"status": "preliminary", "month": month, "cutoff": cutoff,
            "days_inverted": len(fd), "days_in_month_period": len(md),
            "coverage": len(fd) / len(md), "first_day": fd[0], "last_day": fd[-1],
            "period_start": diagnostics.get("period_start"), "period_end": diagnostics.get("period_end"),
            "n_obs": diagnostics.get("n_obs"), "n_selected": lost.get("n_selected"),
            "superseded_by": "../../districts.csv (the final month, when it exists)",
            "generated": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}


def render_page(template: str, language: str, **ctx) -> str:
    """A flash or annual page in ``language`` (config ``report.language``: zh, en, both), rendered
    with the monthly report's environment (`products.report.environment`: the translation filters
    of `products.i18n`, escaping of every value); with Chinese text, the shipped CJK font cut to the
    page's characters is embedded as the monthly report does (characters it lacks are logged)."""
    from markupsafe import Markup

    from . import fonts
    from .report import environment   # here: products.report imports this module

    tpl = environment(language).get_template(template)
    ctx["font_face"] = ""
    page = tpl.render(**ctx)
    if language != "en":
        lacking = fonts.missing_chars(page)
        if lacking:
            log.warning("characters not in the shipped CJK font: %s", "".join(lacking))
        css = fonts.css_font_face(page)   # made from constants and base64: the one unescaped value
        assert "<" not in css
        ctx["font_face"] = Markup(css)
        page = tpl.render(**ctx)
    return page


def _names_zh(districts_geojson) -> dict:
    from .report import chinese_names

    return chinese_names(districts_geojson)


def flash_table(table: pd.DataFrame, names_zh=None):
    """The flash report's district table (`products.sections.district_rows`, the posterior columns
    named for the flash): kt CO₂ over the flash days."""
    from .sections import city_row_class, district_rows
    from .sections import table as as_table

    rows = district_rows(table, names_zh).rename(columns={"posterior (kt)": "flash (kt)",
                                                          "posterior σ (kt)": "flash σ (kt)"})
    return as_table(rows, left_cols=("district",), row_class=city_row_class)


def write_flash(html_path, status_path, districts_csv, diagnostics_json, *, month: str, cutoff: str,
                month_days, flash_days, language: str = LANGUAGE, districts_geojson=None) -> dict:
    """flash.json and the flash's report.html (atomically); the report in ``language`` (config
    ``report.language``), district names in Chinese from ``districts_geojson``."""
    from .i18n import fill, fmt_date, fmt_month

    table = load_districts_table(districts_csv)
    diag = load_diagnostics(diagnostics_json)
    status = flash_status(month, cutoff, month_days, flash_days, diag)
    chi2 = diag.get("chi2_reduced")
    html = render_page(
        "flash.html", language, s=status, month_text=fmt_month(month), cutoff_text=fmt_date(cutoff),
        coverage=f"{100 * status['coverage']:.0f}",
        period=fill("Inversion period {start} – {end} · generated {generated}",
                    start=fmt_date(status["period_start"] or ""), end=fmt_date(status["period_end"] or ""),
                    generated=status["generated"]),
        chi2="" if chi2 is None else f"{chi2:.2f}", districts=flash_table(table, _names_zh(districts_geojson)))
    write_text(status_path, json.dumps(status, indent=2))
    write_text(html_path, html)
    log.info("flash %s cut-off %s: %d of %d days (%.0f %%), preliminary (%s)", month, cutoff,
             status["days_inverted"], status["days_in_month_period"], 100 * status["coverage"], language)
    return status


#: a flash flux product's title: the month's title after this prefix (workflow/report/flux_product_flash.cdl)
FLASH_TITLE_PREFIX = "PRELIMINARY (flash report, superseded by the complete month): "
FLASH_TEMPLATE = Path(__file__).resolve().parents[1] / "workflow" / "report" / "flux_product_flash.cdl"


def flash_attributes(status: dict) -> dict:
    """The global attributes that mark a flash flux product preliminary (from `flash_status`: the
    same cut-off and coverage as flash.json)."""
    m = status["month"]
    return {"product_status": "preliminary", "data_cutoff": str(status["cutoff"]),
            "days_inverted": int(status["days_inverted"]), "days_in_month_period": int(status["days_in_month_period"]),
            "data_coverage": float(status["coverage"]), "n_obs": int(status["n_obs"] or 0),
            "superseded_by": f"flux_{m}.nc of the complete month (results/{m}/), when it exists"}


def flash_template(template):
    """The layout of a flash flux product: ``template`` (a `products.cdl_template.Template` of the
    month's product) with the attributes of flux_product_flash.cdl and the prefixed title."""
    from .cdl_template import Attr, read_template

    template.attrs.update(read_template(FLASH_TEMPLATE).attrs)
    title = template.attrs["title"]
    template.attrs["title"] = Attr(FLASH_TITLE_PREFIX + str(title.value), title.any_value)
    return template


def _period_days(diag: dict, where) -> float:
    try:
        start, end = pd.Timestamp(diag["period_start"]), pd.Timestamp(diag["period_end"])
    except (KeyError, ValueError) as err:
        raise ProductInputError(f"{where}: no period_start/period_end ({err}); re-run the inversion.") from None
    return (end - start) / pd.Timedelta(days=1)


def flash_revisions(final_districts_csv, final_diagnostics_json, flash_dirs) -> pd.DataFrame:
    """One row per flash cut-off and district: flash and final emission rates (kt/day) ± σ and the
    revision final − flash (kt/day, % of the flash, in flash σ). Empty without flash directories."""
    if not flash_dirs:
        return pd.DataFrame()
    final = load_districts_table(final_districts_csv)
    d_final = _period_days(load_diagnostics(final_diagnostics_json), final_diagnostics_json)
    rows = []
    for fdir in flash_dirs:
        fdir = Path(fdir)
        status = json.loads((fdir / "flash.json").read_text())
        fl = load_districts_table(fdir / "districts.csv")
        d_flash = _period_days(load_diagnostics(fdir / "diagnostics.json"), fdir / "diagnostics.json")
        for name in final.index:
            if name not in fl.index:
                continue
            a, sa = fl.loc[name, "posterior_t"] / d_flash / 1e3, fl.loc[name, "posterior_sigma_t"] / d_flash / 1e3
            b, sb = final.loc[name, "posterior_t"] / d_final / 1e3, final.loc[name, "posterior_sigma_t"] / d_final / 1e3
            rows.append({"cutoff": status["cutoff"], "district": name, "flash_days": d_flash, "final_days": d_final,
                         "flash_kt_per_day": a, "flash_sigma_kt_per_day": sa,
                         "final_kt_per_day": b, "final_sigma_kt_per_day": sb,
                         "revision_kt_per_day": b - a, "revision_pct": 100 * (b - a) / a if a else np.nan,
                         "revision_in_flash_sigma": (b - a) / sa if sa > 0 else np.nan})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# the year
# ---------------------------------------------------------------------------------------------
@dataclass
class MonthFiles:
    month: str
    districts_csv: Path
    diagnostics_json: Path


def covered_months(year: int, results_dir, months: list[str]) -> list[MonthFiles]:
    """The months of `year` among `months` (in order), with their files (which must exist)."""
    out = []
    for m in sorted(set(months)):
        if not m.startswith(f"{year:04d}-"):
            continue
        base = Path(results_dir) / m
        out.append(MonthFiles(m, base / "districts.csv", base / "diagnostics.json"))
    return out


def _covered(mf: MonthFiles) -> tuple[CoveredMonth, dict]:
    diag = load_diagnostics(mf.diagnostics_json)
    table = load_districts_table(mf.districts_csv)
    try:
        joint = month_joint(diag, mf.month, str(mf.diagnostics_json))
    except SequentialInputError as err:
        raise AnnualInputError(str(err)) from None
    try:
        start, end = pd.Timestamp(diag["period_start"]), pd.Timestamp(diag["period_end"])
    except (KeyError, ValueError) as err:
        raise AnnualInputError(f"{mf.diagnostics_json}: no period_start/period_end ({err}); re-run the "
                               "month's inversion.") from None
    naive = [t.tz_convert(None) if t.tzinfo else t for t in (start, end)]
    return CoveredMonth(mf.month, table, naive[0], naive[1], joint), diag


@dataclass
class Year:
    """What the annual report shows (tables in t or kt as named)."""

    year: int
    covered: list  # CoveredMonth, in order
    missing: list  # months of the year not covered
    table: pd.DataFrame  # districts.csv of the year
    monthly: pd.DataFrame  # month × district: smoothed totals ± σ, the month's own ± σ
    availability: pd.DataFrame  # site × month: observations used (NaN: month not covered)
    error_model: str
    factor_mean: np.ndarray | None = None
    factor_sigma: np.ndarray | None = None


def annual_table(year: int, month_files: list[MonthFiles]) -> Year:
    """The year's district table from the covered months (in order). Correlated months when every
    month carries `district_factors_joint`, else independent months (said in `error_model`)."""
    if not month_files:
        raise AnnualInputError(f"year {year}: no month of {year} has results; run at least one month "
                               f"(snakemake --cores 2 --config year={year} 'months=[{year}-01]').")
    pairs = [_covered(mf) for mf in month_files]
    covered = [c for c, _ in pairs]
    names = list(covered[0].table.index)
    for c, mf in zip(covered[1:], month_files[1:]):
        if list(c.table.index) != names:
            raise AnnualInputError(f"{mf.districts_csv}: districts {list(c.table.index)} differ from "
                                   f"{month_files[0].districts_csv}'s {names}; one districts file for the year.")
    have = {c.month for c in covered}
    missing = [f"{year:04d}-{i:02d}" for i in range(1, 13) if f"{year:04d}-{i:02d}" not in have]
    est = year_estimate([c.joint for c in covered]) if all(c.joint is not None for c in covered) else None
    if est is not None and est.aggregates != names:
        raise AnnualInputError(f"{month_files[0].diagnostics_json}: district_factors_joint aggregates "
                               f"{est.aggregates} differ from districts.csv {names}; re-run the inversion.")
    post = sum(c.table["posterior_t"] for c in covered)
    indep_sd = np.sqrt(sum(c.table["posterior_sigma_t"] ** 2 for c in covered))
    prior = sum(c.table["prior_t"] for c in covered)
    prior_sd = np.sqrt(sum(c.table["prior_sigma_t"] ** 2 for c in covered))
    hours = sum((c.end - c.start) / HOURS for c in covered)
    truth = sum(c.table["truth_t"] for c in covered)  # NaN when one month has none
    table = pd.DataFrame({"district": names, "months_covered": len(covered),
                          "months_not_covered": " ".join(missing) or "none",
                          "covered_hours": hours, "year_hours": year_hours(year),
                          "prior_t": prior.to_numpy(), "prior_sigma_t": prior_sd.to_numpy(),
                          "posterior_t": post.to_numpy(), "posterior_sigma_t": indep_sd.to_numpy(),
                          "posterior_sigma_independent_t": indep_sd.to_numpy(), "truth_t": truth.to_numpy()})
    error_model = "independent months"
    if est is not None:
        table["prior_t"], table["prior_sigma_t"] = est.prior_total_mean, est.prior_total_sigma
        table["posterior_t"], table["posterior_sigma_t"] = est.total_mean, est.total_sigma
        error_model = "correlated months (district factors shared by the year)"
    table["error_model"] = error_model
    monthly = _monthly(covered, est)
    avail = _availability([d for _, d in pairs], [c.month for c in covered], year)
    return Year(year, covered, missing, table, monthly, avail, error_model,
                None if est is None else est.factor_mean,
                None if est is None else np.sqrt(np.diag(est.factor_cov)))


def _monthly(covered: list[CoveredMonth], est) -> pd.DataFrame:
    rows = []
    for i, c in enumerate(covered):
        for j, name in enumerate(c.table.index):
            r = c.table.loc[name]
            rows.append({"month": c.month, "district": name, "own_t": r["posterior_t"],
                         "own_sigma_t": r["posterior_sigma_t"],
                         "year_t": est.monthly_mean[i, j] if est is not None else r["posterior_t"],
                         "year_sigma_t": est.monthly_sigma[i, j] if est is not None else r["posterior_sigma_t"],
                         "truth_t": r["truth_t"]})
    return pd.DataFrame(rows)


def _availability(diags: list[dict], months: list[str], year: int) -> pd.DataFrame:
    """Observations used per site (rows) and month (columns, all twelve; NaN = not covered)."""
    cols = [f"{year:04d}-{i:02d}" for i in range(1, 13)]
    sites = sorted({s for d in diags for s in (d.get("per_site") or {})})
    out = pd.DataFrame(np.nan, index=pd.Index(sites, name="site"), columns=cols)
    for d, m in zip(diags, months):
        for s in sites:
            out.loc[s, m] = float((d.get("per_site") or {}).get(s, {}).get("n", 0))
    return out


def year_on_year(table: pd.DataFrame, previous_csv) -> pd.DataFrame:
    """Change from the previous year's districts.csv (per day of covered time, kt/day), σ assuming the
    two years' errors independent (stated in the report)."""
    prev = pd.read_csv(previous_csv).set_index("district")
    cur = table.set_index("district")
    rows = []
    for name in cur.index:
        if name not in prev.index:
            continue
        a = prev.loc[name, "posterior_t"] / (prev.loc[name, "covered_hours"] / 24) / 1e3
        sa = prev.loc[name, "posterior_sigma_t"] / (prev.loc[name, "covered_hours"] / 24) / 1e3
        b = cur.loc[name, "posterior_t"] / (cur.loc[name, "covered_hours"] / 24) / 1e3
        sb = cur.loc[name, "posterior_sigma_t"] / (cur.loc[name, "covered_hours"] / 24) / 1e3
        rows.append({"district": name, "previous_kt_per_day": a, "this_kt_per_day": b, "change_pct": 100 * (b - a) / a,
                     "change_sigma_pct": 100 * np.hypot(sa, sb) / a})
    return pd.DataFrame(rows)


@contextlib.contextmanager
def _figure_language(lang: str):
    """Draw with the shipped CJK font as fallback when the labels hold Chinese."""
    import matplotlib.pyplot as plt

    from . import fonts

    if lang == "en":
        yield
    else:
        with plt.rc_context(fonts.rc()):
            yield


def monthly_figure_png(monthly: pd.DataFrame, year: int, lang: str = LANGUAGE, names_zh=None) -> bytes:
    """Monthly district totals ± σ through the year (small multiples; uncovered months left empty);
    labels in ``lang``, district names in Chinese from ``names_zh``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .i18n import district_name, tr

    names = list(dict.fromkeys(monthly["district"]))
    n = len(names)
    ncol = 4
    nrow = -(-n // ncol)
    with _figure_language(lang):
        fig, axes = plt.subplots(nrow, ncol, figsize=(12, 2.4 * nrow), squeeze=False, sharex=True)
        x_all = np.arange(1, 13)
        for ax, name in zip(axes.ravel(), names):
            g = monthly[monthly["district"] == name]
            x = np.array([int(m[5:7]) for m in g["month"]])
            ax.errorbar(x - 0.1, g["own_t"] / 1e3, yerr=g["own_sigma_t"] / 1e3, fmt="o", ms=3, color="0.6",
                        label=tr("month alone", lang))
            ax.errorbar(x + 0.1, g["year_t"] / 1e3, yerr=g["year_sigma_t"] / 1e3, fmt="o", ms=3, color="C0",
                        label=tr("year (correlated months)", lang))
            if g["truth_t"].notna().all():
                ax.plot(x, g["truth_t"] / 1e3, "x", color="C3", label=tr("truth (demo)", lang))
            ax.set_title(district_name(name, lang, names_zh), fontsize=9)
            ax.set_xticks(x_all)
            ax.set_xlim(0.5, 12.5)
            ax.tick_params(labelsize=7)
        for ax in axes.ravel()[n:]:
            ax.axis("off")
        axes[0, 0].set_ylabel(tr("kt CO₂ per inverted period", lang, sep="\n"))
        axes[0, 0].legend(fontsize=6)
        fig.suptitle(tr("Monthly district totals ± 1σ, {year} (months without results are empty)", lang,
                        year=year), fontsize=10)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=90)
        plt.close(fig)
    return buf.getvalue()


def _num(v, nd: int = 2) -> str:
    """A number of the annual report's tables (``–`` for NaN; the digits of both languages)."""
    from .sections import fmt_num

    return fmt_num(v, nd)


def _pm(a, b, nd: int = 2) -> str:
    return f"{_num(a, nd)} ± {_num(b, nd)}"


def months_msg(months) -> dict:
    """Months as one ``{"en", "zh"}`` text: ``2025-01, 2025-02`` / ``2025年1月、2025年2月``."""
    from .i18n import fmt_month

    shown = [fmt_month(m) for m in months]
    return {"en": ", ".join(m["en"] for m in shown) or "–", "zh": "、".join(m["zh"] for m in shown) or "–"}


def _city_last(t: pd.DataFrame) -> list:
    return [n for n in t.index if n != CITY] + ([CITY] if CITY in t.index else [])


def _annual_view(y: Year, names_zh=None):
    """The annual totals (kt) as a `products.sections.Table`."""
    from .i18n import district_msg
    from .sections import city_row_class, table

    t = y.table.set_index("district")
    order = _city_last(t)
    show = pd.DataFrame({
        "district": [district_msg(n, names_zh) for n in order],
        "prior (kt)": [_num(t.loc[n, "prior_t"] / 1e3) for n in order],
        "prior σ (kt)": [_num(t.loc[n, "prior_sigma_t"] / 1e3) for n in order],
        "posterior (kt)": [_num(t.loc[n, "posterior_t"] / 1e3) for n in order],
        "posterior σ (kt)": [_num(t.loc[n, "posterior_sigma_t"] / 1e3) for n in order],
        "σ if months were independent (kt)": [_num(t.loc[n, "posterior_sigma_independent_t"] / 1e3) for n in order],
        "truth (kt)": [_num(t.loc[n, "truth_t"] / 1e3) for n in order],
    })
    if t["truth_t"].isna().all():
        show = show.drop(columns="truth (kt)")
    return table(show, left_cols=("district",), row_class=city_row_class)


def _accounting_view(y: Year, accounting_files: dict | None, names_zh=None):
    """(the two accountings of the year as a Table, or None and a note naming the months without)."""
    from .i18n import district_msg, fill
    from .sections import city_row_class, table

    acc, lacking = annual_accounting(y, accounting_files or {})
    if lacking:
        return None, fill("No accounting.csv for {months}: the two accountings of the year are not summed "
                          "(re-run those months' rule accounting).", months=months_msg(lacking))
    acc = acc.set_index("district")
    order = _city_last(acc)
    show = pd.DataFrame({
        "district": [district_msg(n, names_zh) for n in order],
        "territorial (kt)": [_num(acc.loc[n, "territorial_t"] / 1e3) for n in order],
        "σ (kt)": [_num(acc.loc[n, "sigma_t"] / 1e3) for n in order],
        "own power plants (kt)": [_num(acc.loc[n, "own_power_plants_t"] / 1e3) for n in order],
        "consumed electricity (kt)": [_num(acc.loc[n, "consumed_electricity_t"] / 1e3) for n in order],
        "consumption-based (kt)": [_num(acc.loc[n, "consumption_based_t"] / 1e3) for n in order],
    })
    return table(show, left_cols=("district",), row_class=city_row_class), ""


def annual_map_png(ds, year: int, lang: str = LANGUAGE) -> bytes:
    """Mean posterior flux and posterior − prior over the year's covered hours (two panels), labels
    in ``lang``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .i18n import tr

    with _figure_language(lang):
        fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
        lon, lat = ds["lon"].values, ds["lat"].values
        ext = (lon[0], lon[-1], lat[0], lat[-1])
        units = ds["posterior_flux_mean"].attrs.get("units", "")
        im = axes[0].imshow(ds["posterior_flux_mean"].values, origin="lower", extent=ext, cmap="magma_r")
        fig.colorbar(im, ax=axes[0], label=units)
        axes[0].set_title(tr("posterior flux, mean over {n} h of {year}", lang, sep="\n", n=int(ds["n_hours"]),
                             year=year), fontsize=9)
        d = ds["posterior_minus_prior"].values
        lim = float(np.nanmax(np.abs(d))) or 1.0
        im = axes[1].imshow(d, origin="lower", extent=ext, cmap="RdBu_r", vmin=-lim, vmax=lim)
        fig.colorbar(im, ax=axes[1], label=units)
        axes[1].set_title(tr("posterior − prior", lang), fontsize=9)
        for ax in axes:
            ax.set_xlabel(tr("lon (°E)", lang), fontsize=8)
            ax.tick_params(labelsize=7)
        axes[0].set_ylabel(tr("lat (°N)", lang), fontsize=8)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=80)
        plt.close(fig)
    return buf.getvalue()


def _flux_view(year: int, flux_files: dict | None, covered: list, out_flux, lang: str = LANGUAGE):
    """(annual map PNG base64 or None, a note or "") from the covered months' flux products."""
    from .i18n import fill

    have = [m for m in covered if (flux_files or {}).get(m) and Path(flux_files[m]).is_file()]
    lacking = [m for m in covered if m not in have]
    note = ("" if not lacking else fill("No flux product for {lacking}: the map averages {have} only.",
                                        lacking=months_msg(lacking), have=months_msg(have)))
    if not have:
        return None, note
    files = [flux_files[m] for m in have]
    ds = write_annual_flux(out_flux, year, files, months=have) if out_flux else annual_flux(files)
    return base64.b64encode(annual_map_png(ds, year, lang)).decode(), note


def _budget_view(budgets, y: Year, names_zh=None):
    """The budget status of the year (at the last covered month) as a Table, or None."""
    from .i18n import district_msg, fill, known
    from .sections import city_row_class, table

    if not budgets or str(y.year) not in {str(k) for k in budgets}:
        return None
    b = budget_table(budgets, y.covered, y.covered[-1].month)
    show = pd.DataFrame({
        "district": [district_msg(n, names_zh) for n in b.index],
        "budget (kt/yr)": [_num(v, 1) for v in b["budget_kt"]],
        "emitted (kt)": [_pm(a, s) for a, s in zip(b["emitted_kt"], b["emitted_sigma_kt"])],
        "year at this rate (kt)": [_pm(a, s, 0) for a, s in zip(b["projected_year_kt"], b["projected_year_sigma_kt"])],
        "P(exceed)": [fill("{p} %", p=f"{100 * p:.0f}") for p in b["p_exceed"]],
        "status": [known(v) for v in b["status"]],
        "error model": [known(v) for v in b["error_model"]],
    })
    return table(show, left_cols=("district", "status", "error model"), row_class=city_row_class)


def _availability_view(avail: pd.DataFrame):
    """Observations used per site and month ("not covered" for months without results)."""
    from .i18n import known
    from .sections import table

    show = pd.DataFrame({"site": list(avail.index)})
    for c in avail.columns:
        show[c] = [known("not covered") if not np.isfinite(v) else f"{int(v)}" for v in avail[c]]
    t = table(show, left_cols=("site",))
    t.headers = ["site"] + [{"en": c[5:], "zh": f"{int(c[5:])}月"} for c in avail.columns]
    return t


def _revision_view(month_files, flash_dirs, names_zh=None):
    from .i18n import district_msg, fmt_date, fmt_month
    from .sections import table

    revisions = []
    for mf in month_files:
        dirs = (flash_dirs or {}).get(mf.month) or []
        rv = flash_revisions(mf.districts_csv, mf.diagnostics_json, dirs)
        if not rv.empty:
            revisions.append(rv.assign(month=mf.month))
    if not revisions:
        return None
    r = pd.concat(revisions)
    show = pd.DataFrame({
        "month": [fmt_month(m) for m in r["month"]], "cut-off": [fmt_date(c) for c in r["cutoff"]],
        "district": [district_msg(n, names_zh) for n in r["district"]],
        "flash (kt/day)": [_pm(a, s) for a, s in zip(r["flash_kt_per_day"], r["flash_sigma_kt_per_day"])],
        "final (kt/day)": [_pm(a, s) for a, s in zip(r["final_kt_per_day"], r["final_sigma_kt_per_day"])],
        "revision (%)": [_num(v, 1) for v in r["revision_pct"]],
        "revision (flash σ)": [_num(v) for v in r["revision_in_flash_sigma"]],
    })
    return table(show, left_cols=("month", "cut-off", "district"))


def _yoy_view(table_: pd.DataFrame, previous_csv, names_zh=None):
    from .i18n import district_msg
    from .sections import table

    if not previous_csv:
        return None
    yoy = year_on_year(table_, previous_csv)
    if yoy.empty:
        return None
    show = pd.DataFrame({
        "district": [district_msg(n, names_zh) for n in yoy["district"]],
        "previous year (kt/day)": [_num(v, 3) for v in yoy["previous_kt_per_day"]],
        "this year (kt/day)": [_num(v, 3) for v in yoy["this_kt_per_day"]],
        "change (%)": [_num(v) for v in yoy["change_pct"]],
        "σ of the change (%)": [_num(v) for v in yoy["change_sigma_pct"]],
    })
    return table(show, left_cols=("district",))


def write_annual(out_csv, out_html, year: int, month_files: list[MonthFiles], *, budgets=None,
                 flash_dirs: dict | None = None, previous_csv=None, accounting_files: dict | None = None,
                 flux_files: dict | None = None, out_flux=None, pdf_engine: str | None = None,
                 language: str = LANGUAGE, districts_geojson=None) -> Year:
    """results/<year>/districts.csv and report.html (atomically); with ``flux_files`` ({month:
    flux_<month>.nc}) also the year's mean flux map (`annual_flux`, lazily; written to ``out_flux``
    when given), with ``accounting_files`` ({month: accounting.csv}) the two accountings of the year,
    with ``pdf_engine`` (config ``report_pdf``) the PDF beside the HTML (`products.pdf`). The report
    is in ``language`` (config ``report.language``: zh, en, both), district names in Chinese from
    ``districts_geojson``; the CSV does not depend on the language."""
    from .i18n import known

    names_zh = _names_zh(districts_geojson)
    y = annual_table(year, month_files)
    write_csv(y.table, out_csv, index=False, float_format="%.6g")
    accounting, accounting_note = _accounting_view(y, accounting_files, names_zh)
    flux_png, flux_note = _flux_view(year, flux_files, [c.month for c in y.covered], out_flux, language)
    png = monthly_figure_png(y.monthly, year, language, names_zh)
    hours = y.table[["covered_hours", "year_hours"]].iloc[0]
    html = render_page(
        "annual.html", language, year=year, y=y, annual=_annual_view(y, names_zh),
        covered=months_msg([c.month for c in y.covered]),
        missing=months_msg(y.missing) if y.missing else known("none"),
        covered_hours=f"{hours['covered_hours']:,.0f}", year_hours=f"{hours['year_hours']:,.0f}",
        error_model=known(y.error_model), figure=base64.b64encode(png).decode(),
        availability=_availability_view(y.availability), budget=_budget_view(budgets, y, names_zh),
        revisions=_revision_view(month_files, flash_dirs, names_zh),
        yoy=_yoy_view(y.table, previous_csv, names_zh), accounting=accounting, accounting_note=accounting_note,
        flux_map=flux_png, flux_note=flux_note, generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
    write_text(out_html, html)
    if pdf_engine is not None:
        _annual_pdf(Path(out_html), pdf_engine)
    log.info("year %d: %d month(s) covered (%s), not covered: %s; %s; report in %s", year, len(y.covered),
             ", ".join(c.month for c in y.covered), ", ".join(y.missing) or "none", y.error_model, language)
    return y


# ---------------------------------------------------------------------------------------------
# the year's flux maps: the months' flux products opened lazily (dask), reduced chunk by chunk
# ---------------------------------------------------------------------------------------------
#: the hourly fields of a month's flux_<month>.nc the annual map averages
ANNUAL_FLUX_VARS = ("prior_flux", "posterior_flux")


def open_months_lazily(flux_files, chunk_hours: int = 24):
    """The months' flux products as one lazy dataset (``xr.open_mfdataset``: nothing is read until a
    reduction asks for it; dask chunks of ``chunk_hours`` hours × the whole grid). Only
    `ANNUAL_FLUX_VARS` are kept; the months must share the grid (else an error naming the file)."""
    import xarray as xr

    files = [str(f) for f in flux_files]
    if not files:
        raise AnnualInputError("annual flux: no month's flux_<month>.nc given; run at least one month.")
    grids = []
    for f in files:
        with xr.open_dataset(f) as ds:
            missing = [v for v in ANNUAL_FLUX_VARS if v not in ds]
            if missing:
                raise AnnualInputError(f"{f}: no {missing} (time, lat, lon); re-run the month's flux_product.")
            grids.append((ds["lat"].values, ds["lon"].values))
    for f, (lat, lon) in zip(files[1:], grids[1:]):
        if lat.shape != grids[0][0].shape or lon.shape != grids[0][1].shape or not (
                np.allclose(lat, grids[0][0]) and np.allclose(lon, grids[0][1])):
            raise AnnualInputError(f"{f}: its grid differs from {files[0]}'s; one grid for the year (config grid).")

    def keep(ds):
        return ds[list(ANNUAL_FLUX_VARS)]

    return xr.open_mfdataset(files, combine="nested", concat_dim="time", preprocess=keep, data_vars="minimal",
                             coords="minimal", compat="override", join="override", parallel=False,
                             chunks={"time": int(chunk_hours)})


@contextlib.contextmanager
def _no_chunk_cache():
    """netCDF-C gives every variable of every open file a chunk cache (64 MB by default, set when the
    file is opened); xarray keeps the months' files open, so the caches would grow with the number of
    months. Each chunk is read once here: open (and read) with no cache, then restore the default."""
    import netCDF4

    old = netCDF4.get_chunk_cache()
    netCDF4.set_chunk_cache(0, 0, old[2])
    try:
        yield
    finally:
        netCDF4.set_chunk_cache(*old)


def annual_flux(flux_files, chunk_hours: int = 24):
    """The mean prior and posterior flux over every covered hour of the year (lat, lon; the months'
    flux units), from `open_months_lazily`: dask reduces one chunk of ``chunk_hours`` hours at a time
    (synchronous scheduler), so the memory is a few chunks and the result, whatever the number of
    months (netCDF's per-file chunk caches are switched off while reading: `_no_chunk_cache`). Returns an `xarray.Dataset` with ``prior_flux_mean``, ``posterior_flux_mean``,
    ``posterior_minus_prior`` and the number of hours ``n_hours``."""
    import dask

    with _no_chunk_cache():
        lazy = open_months_lazily(flux_files, chunk_hours)
    with _no_chunk_cache(), lazy, dask.config.set(scheduler="synchronous"):
        n = int(lazy.sizes["time"])
        sums = {v: lazy[v].astype("float64").sum("time") for v in ANNUAL_FLUX_VARS}
        out = dask.compute(sums)[0]
        units = str(lazy["posterior_flux"].attrs.get("units", ""))
        lat, lon = lazy["lat"].values, lazy["lon"].values
    import xarray as xr

    ds = xr.Dataset(coords={"lat": ("lat", lat, {"units": "degrees_north", "standard_name": "latitude"}),
                            "lon": ("lon", lon, {"units": "degrees_east", "standard_name": "longitude"})})
    for v in ANNUAL_FLUX_VARS:
        ds[f"{v}_mean"] = (("lat", "lon"), out[v].values / n,
                           {"units": units, "long_name": f"{v.split('_')[0]} flux, mean over the covered hours"})
    ds["posterior_minus_prior"] = ds["posterior_flux_mean"] - ds["prior_flux_mean"]
    ds["posterior_minus_prior"].attrs.update(units=units, long_name="posterior minus prior mean flux")
    ds["n_hours"] = ((), n, {"long_name": "hours averaged (the covered hours of the year)"})
    return ds


def write_annual_flux(out_nc, year: int, flux_files, chunk_hours: int = 24, months=None):
    """results/<year>/flux_<year>.nc: `annual_flux` of the covered months (atomically); ``months``:
    their names for the attributes (default: the files' directory names, results/<month>/)."""
    from gzcarbon.atomic import atomic_write

    ds = annual_flux(flux_files, chunk_hours)
    ds.attrs.update(title=f"Guangzhou CO2 flux, mean over the covered hours of {year}", year=int(year),
                    months=" ".join(months or [Path(f).parent.name for f in flux_files]),
                    source="the months' flux_<month>.nc, reduced lazily (products.annual.annual_flux)",
                    Conventions="CF-1.8")
    enc = {v: {"zlib": True, "complevel": 4} for v in ds.data_vars if ds[v].ndim == 2}
    atomic_write(out_nc, lambda p: ds.to_netcdf(p, encoding=enc))
    log.info("year %d: mean flux over %d hours of %d month(s) -> %s", year, int(ds["n_hours"]), len(flux_files), out_nc)
    return ds


# ---------------------------------------------------------------------------------------------
# the two accountings (power.accounting: results/<month>/accounting.csv) in the reports
# ---------------------------------------------------------------------------------------------
ACCOUNTING_COLUMNS = ("district", "territorial_t", "sigma_t", "own_power_plants_t", "consumed_electricity_t",
                      "consumption_based_t")


def read_accounting(path) -> pd.DataFrame:
    """A month's accounting.csv (docs/power.md, "Two accountings"), indexed by district."""
    try:
        a = pd.read_csv(path)
    except (OSError, pd.errors.ParserError) as err:
        raise ProductInputError(f"{path}: cannot be read ({err}); re-run rule accounting.") from None
    lack = [c for c in ACCOUNTING_COLUMNS if c not in a.columns]
    if lack:
        raise ProductInputError(f"{path}: no column(s) {lack}; re-run rule accounting (docs/power.md).")
    return a.set_index("district")


def accounting_section(accounting_csv, names_zh=None) -> dict | None:
    """The monthly report's table of the two accountings (t CO₂ over the period; None without the
    file): territorial ± σ, own power plants, consumed electricity, consumption-based ± σ."""
    from .i18n import district_msg
    from .sections import fmt_num, table

    if not accounting_csv or not Path(accounting_csv).is_file():
        return None
    a = read_accounting(accounting_csv)
    show = pd.DataFrame({
        "district": [district_msg(n, names_zh) for n in a.index],
        "territorial_t": [f"{fmt_num(v, 0)} ± {fmt_num(s, 0)}" for v, s in zip(a["territorial_t"], a["sigma_t"])],
        "own_power_plants_t": [fmt_num(v, 0) for v in a["own_power_plants_t"]],
        "consumed_electricity_t": [fmt_num(v, 0) for v in a["consumed_electricity_t"]],
        "consumption_based_t": [f"{fmt_num(v, 0)} ± {fmt_num(s, 0)}"
                                for v, s in zip(a["consumption_based_t"], a["sigma_t"])],
    })
    return {"table": table(show, left_cols=("district",), data_columns=True)}


def annual_accounting(y: Year, accounting_files: dict) -> tuple[pd.DataFrame, list]:
    """The two accountings of the year: the power columns summed over the covered months that have
    an accounting.csv, the territorial total and σ the year's (correlated months) — so
    consumption-based = territorial − own power plants + consumed electricity, σ the territorial σ
    (the power data are exact). Returns (table in t, covered months without accounting.csv); with any
    such month the table is empty (a partial sum would mix periods)."""
    lacking = [c.month for c in y.covered if not accounting_files.get(c.month)
               or not Path(accounting_files[c.month]).is_file()]
    if lacking:
        return pd.DataFrame(), lacking
    parts = [read_accounting(accounting_files[c.month]) for c in y.covered]
    t = y.table.set_index("district")
    own = sum(p["own_power_plants_t"] for p in parts).reindex(t.index)
    used = sum(p["consumed_electricity_t"] for p in parts).reindex(t.index)
    out = pd.DataFrame({"territorial_t": t["posterior_t"], "sigma_t": t["posterior_sigma_t"],
                        "own_power_plants_t": own, "consumed_electricity_t": used})
    out["consumption_based_t"] = out["territorial_t"] - out["own_power_plants_t"] + out["consumed_electricity_t"]
    return out.reset_index(), []


def _annual_pdf(html: Path, engine: str) -> Path | None:
    """report.pdf beside the annual report (`products.pdf.write_pdf`); an engine failure is logged
    and does not fail the report, a stale PDF is removed."""
    from .pdf import write_pdf

    pdf = html.with_suffix(".pdf")
    try:
        written = write_pdf(html, pdf, engine=engine)
    except Exception as err:  # noqa: BLE001 - the PDF is optional; the HTML is the product
        log.warning("PDF of %s failed (%s: %s); only the HTML was written.", html, type(err).__name__, err)
        written = None
    if written is None and pdf.exists():
        pdf.unlink()
        log.info("removed %s from an earlier run (it no longer matches the HTML).", pdf)
    return written


def revision_section(districts_csv, diagnostics_json, flash_dirs) -> dict | None:
    """The monthly report's "Flash reports: revisions" table (None without flash directories)."""
    from .sections import fmt_num, table

    rv = flash_revisions(districts_csv, diagnostics_json, list(flash_dirs or ()))
    if rv.empty:
        return None
    show = pd.DataFrame({
        "cut-off": rv["cutoff"], "district": rv["district"],
        "flash (kt/day)": [f"{fmt_num(a, 2)} ± {fmt_num(b, 2)}" for a, b in
                           zip(rv["flash_kt_per_day"], rv["flash_sigma_kt_per_day"])],
        "final (kt/day)": [f"{fmt_num(a, 2)} ± {fmt_num(b, 2)}" for a, b in
                           zip(rv["final_kt_per_day"], rv["final_sigma_kt_per_day"])],
        "revision (%)": [fmt_num(v, 1) for v in rv["revision_pct"]],
        "revision (flash σ)": [fmt_num(v, 2) for v in rv["revision_in_flash_sigma"]],
    })
    return {"table": table(show, left_cols=("cut-off", "district"))}
