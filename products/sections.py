"""The sections of the monthly report as plain data (text, numbers formatted as strings, PNG data
URIs) for the templates in ``products/templates/``. Nothing here writes HTML: the template does,
and escapes every value (products.report).

Each ``*_section`` function returns what one part of the page shows and appends to ``missing``
what it expected and did not find.

Language: every text here is either an English text of the catalogue ``products.i18n.ZH`` (labels,
captions, table headers) or a ``{"en", "zh"}`` message (``i18n.fill``: sentences with numbers);
the template translates both for config ``report.language``. District names are ``{"en", "zh"}``
messages (``i18n.district_msg``) when the caller passes the Chinese names (``names_zh``).
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from gzcarbon.names import CITY

from inversion.sequential import SequentialInputError, month_joint

from .budgets import CoveredMonth, budget_table, missing_months, parse_budgets
from .i18n import district_msg, fill, known
from .inputs import ProductInputError, load_diagnostics, load_districts_table
from .maps import MAP_FILES, TIMESERIES, availability_table, budget_chart_png, safe_name, station_contribution_png

CAPTIONS = {
    "prior_flux": "Prior CO₂ flux, mean over the inversion period, with district boundaries "
                  "and stations (triangles).",
    "posterior_flux": "Posterior CO₂ flux, same period and colour scale as the prior.",
    "flux_difference": "Posterior − prior flux (red: the inversion increased emissions).",
    "uncertainty_reduction": "Uncertainty reduction 1 − σ_post/σ_prior of the period-mean flux "
                             "on coarse blocks.",
    "district_totals": "District emissions over the period: prior ± σ, posterior ± σ and, in "
                       "the demo, the truth.",
    "residuals": "Observed − modelled CO₂ before (prior) and after (posterior) the inversion.",
    "availability": "Fraction of the selection-window hours present per site and day.",
}
MAP_KEYS = ("prior_flux", "posterior_flux", "flux_difference", "uncertainty_reduction")


# --- building blocks ------------------------------------------------------------------------------
@dataclass
class Row:
    cells: list[tuple[str, object]]   # (column, shown value)
    cls: str = ""


@dataclass
class Table:
    """A table as the template draws it: header, rows of shown values, left-aligned columns."""

    columns: list[str]
    rows: list[Row]
    left: set[str] = field(default_factory=set)
    headers: list = field(default_factory=list)   # shown headers (catalogue texts or messages)

    def __post_init__(self):
        if not self.headers:
            self.headers = list(self.columns)


@dataclass
class Figure:
    src: str        # data:image/png;base64,…
    caption: object   # catalogue text or {"en", "zh"} message


@dataclass
class Download:
    href: str       # data:text/csv;base64,…
    filename: str
    label: object


def fmt_kt(t) -> str:
    """Tonnes -> 'kt' string with one decimal ('–' when missing)."""
    if t is None or (isinstance(t, float) and math.isnan(t)) or pd.isna(t):
        return "–"
    return f"{float(t) / 1e3:,.1f}"


def fmt_num(x, nd=2) -> str:
    """A number with ``nd`` decimals and thousands separators ('–' for NaN; other values as text)."""
    try:
        x = float(x)
    except (TypeError, ValueError):
        return "" if x is None else str(x)
    if math.isnan(x):
        return "–"
    return f"{x:,.{nd}f}"


def table(df: pd.DataFrame, left_cols=(), row_class=None, data_columns=False) -> Table:
    """A DataFrame (values already formatted by the caller) as a :class:`Table`. Its column names
    are catalogue texts, or with ``data_columns`` names from an input file (:func:`i18n.known`)."""
    cols = [str(c) for c in df.columns]
    rows = [Row([(str(c), r[c]) for c in df.columns], (row_class(r) or "") if row_class else "")
            for _, r in df.iterrows()]
    return Table(cols, rows, {str(c) for c in left_cols},
                 [known(c) for c in cols] if data_columns else list(cols))


def png_figure(png: bytes, caption: str) -> Figure:
    return Figure("data:image/png;base64," + base64.b64encode(png).decode("ascii"), caption)


def file_figure(path, caption: str) -> Figure:
    return png_figure(Path(path).read_bytes(), caption)


def csv_download(df: pd.DataFrame, filename: str, label: str) -> Download:
    """A link that downloads `df` as CSV from a data: URI (no request leaves the file)."""
    data = base64.b64encode(df.to_csv(index=False).encode("utf-8")).decode("ascii")
    return Download(f"data:text/csv;base64,{data}", filename, label)


def _en(v) -> str:
    """The English text of a cell (a message's ``en``)."""
    return str(v["en"]) if isinstance(v, dict) else str(v)


def city_row_class(r) -> str:
    return "total" if _en(r["district"]) == CITY else ""


# --- city and districts ---------------------------------------------------------------------------
def district_csv_table(table_: pd.DataFrame) -> pd.DataFrame:
    """The district table as numbers (kt CO₂, %), for the CSV product and the download link."""
    out = pd.DataFrame(index=table_.index)
    for c in ("prior", "prior_sigma", "posterior", "posterior_sigma", "truth"):
        out[f"{c}_kt"] = table_[f"{c}_t"] / 1e3
    out["change_kt"] = out["posterior_kt"] - out["prior_kt"]
    out["change_pct"] = 100 * out["change_kt"] / out["prior_kt"].where(out["prior_kt"] != 0)
    out["sigma_reduction_pct"] = 100 * (1 - out["posterior_sigma_kt"]
                                        / out["prior_sigma_kt"].where(out["prior_sigma_kt"] != 0))
    return out.reset_index()


def district_rows(table_: pd.DataFrame, names_zh=None) -> pd.DataFrame:
    """The district table as displayed (kt CO₂; change and uncertainty reduction in %); district
    names as messages with their Chinese names ``names_zh`` (name_en -> name)."""
    has_truth = table_["truth_t"].notna().any()
    out = []
    for name, r in table_.iterrows():
        change = (100.0 * (r["posterior_t"] - r["prior_t"]) / r["prior_t"]
                  if r["prior_t"] else float("nan"))
        ur = (100.0 * (1.0 - r["posterior_sigma_t"] / r["prior_sigma_t"])
              if r["prior_sigma_t"] else float("nan"))
        row = {
            "district": district_msg(name, names_zh),
            "prior (kt)": fmt_kt(r["prior_t"]),
            "prior σ (kt)": fmt_kt(r["prior_sigma_t"]),
            "posterior (kt)": fmt_kt(r["posterior_t"]),
            "posterior σ (kt)": fmt_kt(r["posterior_sigma_t"]),
            "change (%)": fmt_num(change, 1),
            "σ reduction (%)": fmt_num(ur, 0),
        }
        if has_truth:
            row["truth (kt)"] = fmt_kt(r["truth_t"])
        out.append(row)
    return pd.DataFrame(out)


def recovery_sentence(city: pd.Series) -> dict | str:
    """How well the posterior city total recovers the truth (demo): a ``{"en", "zh"}`` message
    ("" without a truth)."""
    truth = city["truth_t"]
    if pd.isna(truth):
        return ""
    post, sig, prior = city["posterior_t"], city["posterior_sigma_t"], city["prior_t"]
    err = post - truth
    perr = prior - truth
    z = abs(err) / sig if sig > 0 else float("inf")
    within = known("within 1 σ" if z <= 1 else "within 2 σ" if z <= 2 else "outside 2 σ")
    removed = (100.0 * (1 - abs(err) / abs(perr))) if perr else float("nan")
    rel = 100.0 * err / truth if truth else float("nan")
    prel = 100.0 * perr / truth if truth else float("nan")
    s = fill("The demo world's true city total is {truth} kt CO₂. The prior gives {prior} kt (error "
             "{prel} %); the posterior gives {post} ± {sig} kt (error {rel} %, {z} σ: {within}).",
             truth=fmt_kt(truth), prior=fmt_kt(prior), prel=f"{prel:+.1f}", post=fmt_kt(post),
             sig=fmt_kt(sig), rel=f"{rel:+.1f}", z=f"{z:.1f}", within=within)
    if not math.isnan(removed):
        more = (fill(" The inversion removed {p} % of the prior's error.", p=f"{removed:.0f}")
                if removed >= 0 else
                fill(" The inversion moved the total away from the truth ({p} % more error than the "
                     "prior).", p=f"{-removed:.0f}"))
        s = {c: s[c] + more[c] for c in s}
    return s


def city_section(city: pd.Series, demo: bool, missing: list[str]) -> dict:
    """City total: prior, posterior ± σ, uncertainty reduction, truth and how well it is recovered."""
    ur = (100.0 * (1 - city["posterior_sigma_t"] / city["prior_sigma_t"])
          if city["prior_sigma_t"] else float("nan"))
    rows = [
        ("Prior", fill("{a} ± {b} kt", a=fmt_kt(city['prior_t']), b=fmt_kt(city['prior_sigma_t']))),
        ("Posterior", fill("{a} ± {b} kt", a=fmt_kt(city['posterior_t']),
                           b=fmt_kt(city['posterior_sigma_t']))),
        ("Uncertainty reduction", fill("{p} %", p=fmt_num(ur, 0))),
    ]
    if pd.notna(city["truth_t"]):
        rows.append(("Truth (demo world)", fill("{a} kt", a=fmt_kt(city['truth_t']))))
    sentence = recovery_sentence(city)
    if not sentence and demo:
        missing.append("demo truth (truth_t) for the city total")
    return {"rows": rows, "sentence": sentence}


def district_section(table_: pd.DataFrame, month: str, names_zh=None) -> dict:
    return {"table": table(district_rows(table_, names_zh), left_cols=("district",),
                           row_class=city_row_class),
            "download": csv_download(district_csv_table(table_), f"districts_{month}.csv",
                                     "Download the district table (CSV, kt CO₂)"),
            "figures": []}


# --- budgets --------------------------------------------------------------------------------------
def period_of(diag: dict, days, source) -> tuple[pd.Timestamp, pd.Timestamp]:
    """[start, end) of an inverted period (UTC, naive) from diagnostics.json, else from days."""
    def naive(t):
        t = pd.Timestamp(t)
        return t.tz_convert(None) if t.tzinfo else t

    if "period_start" in diag and "period_end" in diag:
        try:
            return naive(diag["period_start"]), naive(diag["period_end"])
        except ValueError as err:
            raise ProductInputError(f"{source}: period_start/period_end are not ISO times ({err}).") \
                from err
    if days:
        return (pd.Timestamp(str(days[0])),
                pd.Timestamp(str(days[-1])) + pd.Timedelta(days=1))
    raise ProductInputError(f"{source}: keys 'period_start' and 'period_end' missing; "
                            "rerun the inversion (docs/formats.md).")


def covered_month(districts_csv, diagnostics_json, month=None, days=None) -> CoveredMonth:
    """An inverted month for the budget comparison ({R}/districts.csv + {R}/diagnostics.json)."""
    month = month or Path(districts_csv).resolve().parent.name
    diag = load_diagnostics(diagnostics_json)
    start, end = period_of(diag, days, diagnostics_json)
    return CoveredMonth(month, load_districts_table(districts_csv), start, end,
                        month_joint_or_error(diag, month, diagnostics_json))


def month_joint_or_error(diag: dict, month: str, source):
    """The month's ``district_factors_joint`` (inversion.sequential.MonthJoint) or None; a malformed
    entry is a ProductInputError naming the file."""
    try:
        return month_joint(diag, month, str(source))
    except SequentialInputError as err:
        raise ProductInputError(str(err)) from None


def _pm(a, b, nd=1) -> str:
    return f"{fmt_num(a, nd)} ± {fmt_num(b, nd)}"


def budget_section(budgets, months: list[CoveredMonth], report_month: str, known_districts,
                   missing: list, names_zh=None, lang: str = "en") -> dict | None:
    """The 'Carbon budgets' section (None when no budget is configured for the year)."""
    if not budgets or not parse_budgets(budgets, known=known_districts).get(int(report_month[:4])):
        return None
    bt = budget_table(budgets, months, report_month)
    gaps = missing_months(report_month, months)
    for g in gaps:
        missing.append(fill("budget: no inversion results for {month} (extrapolated from covered hours)",
                            month=g))
    show = pd.DataFrame({
        "district": [district_msg(d, names_zh) for d in bt.index],
        "budget (kt/yr)": [fmt_num(v, 1) for v in bt["budget_kt"]],
        "covered": [fill("{h} h ({p} %)", h=f"{h:.0f}", p=f"{100 * c:.0f}") for h, c in
                    zip(bt["covered_hours"], bt["coverage_to_date"])],
        "emitted (kt)": [_pm(a, b, 2) for a, b in zip(bt["emitted_kt"], bt["emitted_sigma_kt"])],
        "pro-rated budget (kt)": [fmt_num(v, 2) for v in bt["budget_covered_kt"]],
        "used (%)": [_pm(a, b, 0) for a, b in zip(bt["used_pct"], bt["used_sigma_pct"])],
        "to date (kt)": [_pm(a, b, 1) for a, b in zip(bt["to_date_kt"], bt["to_date_sigma_kt"])],
        "budget to date (kt)": [fmt_num(v, 1) for v in bt["budget_to_date_kt"]],
        "year at this rate (kt)": [_pm(a, b, 0) for a, b in
                                   zip(bt["projected_year_kt"], bt["projected_year_sigma_kt"])],
        "P(exceed)": [fill("{p} %", p=f"{100 * p:.0f}") for p in bt["p_exceed"]],
        "status": [known(v) for v in bt["status"]],
    })
    return {"year": report_month[:4], "months": bt["months"].iloc[0] if len(bt) else "", "gaps": gaps,
            "table": table(show, left_cols=("district", "status"), row_class=city_row_class),
            "figure": png_figure(budget_chart_png(bt, lang, names_zh), "Share of the pro-rated budget used per district "
                                 "(± 1σ); dashed: 100 %."),
            "download": csv_download(bt.reset_index(), f"budgets_{report_month}.csv",
                                     "Download the budget comparison (CSV)")}


# --- figures and stations -------------------------------------------------------------------------
def map_figures(maps_dir: Path, keys, missing: list[str]) -> list[Figure]:
    """The figures of ``keys`` found in the maps directory (the others listed as missing)."""
    out = []
    for key in keys:
        p = maps_dir / MAP_FILES[key]
        if p.is_file():
            out.append(file_figure(p, CAPTIONS[key]))
        else:
            missing.append(fill("figure {file}", file=MAP_FILES[key]))
    return out


def station_figures(maps_dir: Path, ids, names: dict, missing: list[str]) -> list[Figure]:
    out = []
    for s in ids:
        p = maps_dir / TIMESERIES.format(site=safe_name(s))
        if p.is_file():
            out.append(file_figure(p, fill("{site} ({name}): observed, prior-modelled and "
                                           "posterior-modelled CO₂ with background.",
                                           site=s, name=names.get(s, s))))
        else:
            missing.append(fill("time series of site {site} (no observation used)", site=s))
    return out + map_figures(maps_dir, ("residuals",), missing)


def station_contribution_tables(contrib: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(loss, summary) from diagnostics ``station_contributions`` (inversion.run.station_contributions).

    ``loss``: stations × aggregates, the uncertainty reduction (1 − σ_post/σ_prior, in points of
    σ_prior) lost when the station is left out, = 100 (σ_without − σ_all) / σ_prior.
    ``summary``: per station, the city's uncertainty reduction with that station alone, the city's
    loss without it, and the district it constrains most with that loss.
    """
    names = list(contrib["aggregates"])
    pr = np.asarray(contrib["prior_sigma_t"], float)
    po = np.asarray(contrib["posterior_sigma_t"], float)
    sites = [s for s in contrib["sites"] if s in contrib.get("without", {})]
    with np.errstate(divide="ignore", invalid="ignore"):
        loss = pd.DataFrame([100.0 * (np.asarray(contrib["without"][s], float) - po) / pr for s in sites],
                            index=sites, columns=names)
        alone = {s: 100.0 * (1.0 - np.asarray(contrib["only"][s], float) / pr)
                 for s in sites if s in contrib.get("only", {})}
    city = names.index(CITY) if CITY in names else len(names) - 1
    district_cols = [n for i, n in enumerate(names) if i != city]
    rows = []
    for s in sites:
        top = loss.loc[s, district_cols].astype(float).idxmax() if district_cols else ""
        rows.append({"station": s,
                     "city σ reduction with this station alone (%)": alone[s][city] if s in alone else np.nan,
                     "city σ reduction lost without it (points)": loss.loc[s, names[city]],
                     "district it constrains most": top,
                     "σ reduction lost there (points)": loss.loc[s, top] if top else np.nan})
    return loss, pd.DataFrame(rows)


def contribution_section(diag: dict, names: dict, names_zh=None, lang: str = "en") -> dict | None:
    """What each station contributes (None when the inversion did not compute it)."""
    contrib = diag.get("station_contributions")
    if not isinstance(contrib, dict) or not contrib.get("without"):
        return None
    loss, summary = station_contribution_tables(contrib)
    show = summary.copy()
    show.insert(1, "name", [names.get(s, s) for s in show["station"]])
    for c in show.columns[2:]:
        if c != "district it constrains most":
            show[c] = [fmt_num(v, 1) for v in show[c]]
    show["district it constrains most"] = [district_msg(d, names_zh) if d else ""
                                           for d in show["district it constrains most"]]
    return {"table": table(show, left_cols=("station", "name", "district it constrains most")),
            "figure": png_figure(station_contribution_png(loss, lang, names_zh), "Uncertainty reduction (points of the "
                                 "prior σ) lost when the station is left out, per district and for the city.")}


def power_section(heatmap, summary, missing: list, names_zh=None) -> dict:
    """The power factor heat map and the monthly summary table (either may be missing)."""
    out: dict = {"figure": None, "table": None}
    if heatmap and Path(heatmap).is_file():
        out["figure"] = file_figure(heatmap, "Hourly consumption-based electricity emission factor per "
                                             "district (kg CO₂/kWh).")
    else:
        missing.append(fill("power factor heat map ({file})", file=heatmap or known("not given")))
    if summary and Path(summary).is_file():
        try:
            df = pd.read_csv(summary)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
            missing.append(fill("power summary table unreadable ({file}: {err})", file=summary, err=err))
        else:
            shown = df.copy()
            if "district" in shown:
                shown["district"] = [district_msg(d, names_zh) for d in shown["district"]]
            shown.columns = [str(c).replace("_", " ") for c in shown.columns]  # wrappable headers
            for c in shown.columns:
                if pd.api.types.is_float_dtype(shown[c]):
                    shown[c] = shown[c].map(lambda v: fmt_num(v, 3))
            out["table"] = table(shown, left_cols=tuple(shown.columns[:1]), data_columns=True)
    else:
        missing.append(fill("power summary table ({file})", file=summary or known("not given")))
    return out


# --- diagnostics and availability -----------------------------------------------------------------
DIAGNOSTIC_KEYS = [("n_obs", "observations used", 0), ("n_obs_matched", "observations with a footprint", 0),
                   ("n_state", "state size", 0),
                   ("chi2_reduced", "reduced χ² (≈ 1 when errors are consistent)", 2),
                   ("dofs", "degrees of freedom for signal (DOFS)", 1), ("solver", "solver", None),
                   ("seconds", "solve time (s)", 1)]


def _txt(v) -> str:
    return "" if v is None else str(v)


def _diagnostic_rows(diag: dict) -> list[tuple[str, str]]:
    rows = []
    for k, label, nd in DIAGNOSTIC_KEYS:
        if k in diag:
            v = diag[k]
            rows.append((label, v if nd is None or isinstance(v, str) else fmt_num(v, nd)))
    chi = diag.get("chi2_test")
    if isinstance(chi, dict) and "p_value" in chi:
        rows.append(("innovation χ² = dᵀ(H Q Hᵀ + R)⁻¹d, degrees of freedom",
                     f"{fmt_num(chi.get('value'), 1)}, {_txt(chi.get('dof'))}"))
        rows.append((fill("p-value P(χ² ≥ observed) (a problem below {p}); P(χ² ≤ observed)",
                          p=_txt(chi.get('p_min'))),
                     f"{float(chi['p_value']):.3g}; {float(chi.get('p_value_lower', float('nan'))):.3g}"))
    scr = diag.get("innovation_screen")
    if isinstance(scr, dict) and "n_flagged" in scr:
        rows.append((fill("innovation screen (|d| > {k} σ, action {action}): flagged, excluded",
                          k=_txt(scr.get('threshold_sigma')), action=_txt(scr.get('action'))),
                     f"{scr['n_flagged']}, {scr.get('n_excluded', 0)}"))
    return rows


def _residuals_table(top) -> Table | None:
    if not isinstance(top, list) or not top:
        return None
    recs = [{"site": o.get("site"), "time (UTC)": o.get("time"), "observed (ppm)": fmt_num(o.get("observed"), 2),
             "prior model (ppm)": fmt_num(o.get("prior_model"), 2),
             "innovation (ppm)": fmt_num(o.get("innovation_ppm"), 2), "σ (ppm)": fmt_num(o.get("sigma_ppm"), 2),
             "normalised": fmt_num(o.get("normalised"), 2),
             "used": known("yes" if o.get("used", True) else "no (screened)")}
            for o in top if isinstance(o, dict)]
    return table(pd.DataFrame(recs), left_cols=("site", "time (UTC)"))


def _per_site_table(per_site) -> Table | None:
    if not isinstance(per_site, dict) or not per_site:
        return None
    recs = []
    for site, st in per_site.items():
        rec = {"site": site}
        if isinstance(st, dict):
            for k, v in st.items():
                rec[k] = fmt_num(v, 2) if isinstance(v, (int, float)) else v
        recs.append(rec)
    return table(pd.DataFrame(recs), left_cols=("site",), data_columns=True)


def _factors_table(factors, names_zh=None) -> Table | None:
    if not isinstance(factors, dict) or not factors:
        return None
    recs = [{"factor": district_msg(name, names_zh) if f.get("kind") == "district" else name,
             "kind": known(f.get("kind", "")),
             "posterior change (%)": fmt_num(100 * f["posterior"], 1),
             "σ prior (%)": fmt_num(100 * f["prior_sigma"], 1),
             "σ posterior (%)": fmt_num(100 * f["posterior_sigma"], 1)}
            for name, f in factors.items() if isinstance(f, dict) and "posterior" in f]
    return table(pd.DataFrame(recs), left_cols=("factor", "kind")) if recs else None


def _cv_cells(rec: dict) -> dict:
    """One cross-validation record (inversion.crossval) as shown values: prior → posterior pairs."""
    def pair(key, nd):
        return f"{fmt_num(rec.get('prior_' + key), nd)} → {fmt_num(rec.get('posterior_' + key), nd)}"
    return {"n": _txt(rec.get("n")), "RMSE prior → posterior (ppm)": pair("rmse", 2),
            "bias prior → posterior (ppm)": pair("bias", 2), "correlation prior → posterior": pair("corr", 2),
            "χ²_r": fmt_num(rec.get("chi2_reduced"), 2)}


def cross_validation_section(diag: dict) -> dict | None:
    """diagnostics ``cross_validation``: a table per left-out site (with the city σ reduction lost
    without it, from ``station_contributions``) and per block of days, pooled rows, skip reasons."""
    cv = diag.get("cross_validation")
    if not isinstance(cv, dict):
        return None
    sc = diag.get("station_contributions") if isinstance(diag.get("station_contributions"), dict) else {}
    lost = {}
    if sc.get("without"):
        summary = station_contribution_tables(sc)[1]
        lost = dict(zip(summary["station"], summary["city σ reduction lost without it (points)"]))
    summ = cv.get("summary") or {}
    sites = [{"left out": s, **_cv_cells(r), "city σ reduction lost without it (points)": fmt_num(lost.get(s), 1)}
             for s, r in (cv.get("sites") or {}).items()]
    if sites and summ.get("sites"):
        sites.append({"left out": known("every site (pooled)"), **_cv_cells(summ["sites"]),
                      "city σ reduction lost without it (points)": ""})
    days = [{"left out": r.get("fold", ""), **_cv_cells(r)} for r in cv.get("days") or []]
    if days and summ.get("days"):
        days.append({"left out": known("every day (pooled)"), **_cv_cells(summ["days"])})

    def total(r):
        return "total" if "pooled" in _en(r["left out"]) else ""

    return {"sites": table(pd.DataFrame(sites), left_cols=("left out",), row_class=total) if sites else None,
            "days": table(pd.DataFrame(days), left_cols=("left out",), row_class=total) if days else None,
            "skipped": [f"{k}: {v}" for k, v in (cv.get("skipped") or {}).items()],
            "improved": [fill("{n} of {m} sites" if k == "sites" else "{n} of {m} blocks of days",
                              n=s['n_folds_improved'], m=s['n_folds'])
                         for k, s in summ.items() if s]}


def diagnostics_section(diag: dict, names_zh=None) -> dict:
    """Solve statistics, χ² test, screen counts, largest residuals, residuals per site, factors,
    cross-validation."""
    return {"rows": _diagnostic_rows(diag),
            "residuals": _residuals_table(diag.get("largest_normalised_residuals")),
            "per_site": _per_site_table(diag.get("per_site")),
            "factors": _factors_table(diag.get("factors"), names_zh),
            "cross_validation": cross_validation_section(diag)}


def availability_section(selected, modelled, ids, days, hours_per_day: int, names: dict,
                         maps_dir: Path, missing: list[str]) -> dict:
    """Selected and used hours per site, with the availability figure."""
    av = availability_table(selected, modelled[modelled["used"] == 1], ids, list(days), hours_per_day)
    for _, r in av.iterrows():
        if r["selected_hours"] == 0:
            missing.append(fill("observations of site {site} (no selected hour)", site=r['site']))
    show = pd.DataFrame({
        "site": av["site"],
        "name": [names.get(s, s) for s in av["site"]],
        "selected hours": av["selected_hours"],
        "expected hours": av["expected_hours"],
        "coverage (%)": [fmt_num(100 * f, 0) for f in av["fraction"]],
        "used in inversion": av["used_in_inversion"],
        "first (UTC)": [("–" if pd.isna(t) else f"{t:%Y-%m-%d %H:%M}") for t in av["first"]],
        "last (UTC)": [("–" if pd.isna(t) else f"{t:%Y-%m-%d %H:%M}") for t in av["last"]],
    })
    return {"table": table(show, left_cols=("site", "name")),
            "figures": map_figures(maps_dir, ("availability",), missing)}


def losses_section(losses: pd.DataFrame | None, recorded: bool) -> dict:
    """The table stage → reason → count of receptors and observations that did not make it."""
    has = losses is not None and len(losses)
    if has:
        losses = losses.assign(stage=[known(v) for v in losses["stage"]],
                               reason=[known(v) for v in losses["reason"]])
    return {"table": table(losses, left_cols=("stage", "reason")) if has else None, "recorded": recorded}
