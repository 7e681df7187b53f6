"""The monthly report `{R}/report.html`: one self-contained HTML file.

Images are inlined as base64 data URIs and the CSS is inline, so the file makes no external
request. Every text that comes from an input file is escaped with html.escape.
"""

from __future__ import annotations

import base64
import html
import logging
import math
import os
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from .budgets import CoveredMonth, budget_table, missing_months, parse_budgets
from .inputs import (
    CITY,
    ProductInputError,
    load_diagnostics,
    load_districts_table,
    load_modelled,
    load_selected,
    load_stations,
)
from .maps import MAP_FILES, TIMESERIES, availability_table, budget_chart_png, safe_name, station_contribution_png
from .problems import collect as collect_problems
from gzcarbon.provenance import config_hash, input_list, package_versions

log = logging.getLogger(__name__)

CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:0 auto;max-width:1100px;
padding:1.2em 2em;color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:2px solid #3a78b5;padding-bottom:.15em;
margin-top:1.8em}table{border-collapse:collapse;margin:.6em 0 1em;font-size:.92em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}th{background:#eef3f8}
td.l,th.l{text-align:left}tr.total td{font-weight:bold;background:#f6f6f6}
.muted{color:#666;font-size:.9em}.box{background:#f3f7fb;border-left:4px solid #3a78b5;
padding:.6em 1em;margin:1em 0}.warn{background:#fff6e5;border-left:4px solid #e69500;
padding:.6em 1em}.problems{background:#fdecea;border:2px solid #c62828;border-left-width:6px;
padding:.6em 1em;margin:1em 0}.problems h2{border:none;margin-top:.2em;color:#b71c1c}figure{margin:1em 0;display:inline-block;vertical-align:top}
figure img{max-width:100%;border:1px solid #ddd}figcaption{font-size:.85em;color:#555}
.grid2 figure{width:49%}code{background:#f2f2f2;padding:0 .25em}
figure{max-width:100%;box-sizing:border-box}figure img{height:auto}
th{overflow-wrap:anywhere}.tw{overflow:auto;max-width:100%}pre{white-space:pre-wrap;
overflow-wrap:anywhere}
@page{size:A4;margin:12mm}
@media print{body{max-width:none;padding:0;font-size:10pt}h2{break-after:avoid}
figure,table,.box{break-inside:avoid}.grid2 figure{width:48%}}
"""

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


def esc(x) -> str:
    """HTML-escaped text of any value (quotes too)."""
    return html.escape("" if x is None else str(x), quote=True)


def fmt_kt(t) -> str:
    """Tonnes -> 'kt' string with one decimal ('–' when missing)."""
    if t is None or (isinstance(t, float) and math.isnan(t)) or pd.isna(t):
        return "–"
    return f"{float(t) / 1e3:,.1f}"


def fmt_num(x, nd=2) -> str:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return esc(x)
    if math.isnan(x):
        return "–"
    return f"{x:,.{nd}f}"


def img_tag(path, alt: str) -> str:
    return png_tag(Path(path).read_bytes(), alt)


def png_tag(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{data}">'


def csv_download(df: pd.DataFrame, filename: str, label: str) -> str:
    """A link that downloads `df` as CSV from a data: URI (no request leaves the file)."""
    data = base64.b64encode(df.to_csv(index=False).encode("utf-8")).decode("ascii")
    return (f'<p><a download="{esc(filename)}" href="data:text/csv;base64,{data}">'
            f"{esc(label)}</a></p>")


def district_csv_table(table: pd.DataFrame) -> pd.DataFrame:
    """The district table as numbers (kt CO₂, %), for the CSV product and the download link."""
    out = pd.DataFrame(index=table.index)
    for c in ("prior", "prior_sigma", "posterior", "posterior_sigma", "truth"):
        out[f"{c}_kt"] = table[f"{c}_t"] / 1e3
    out["change_kt"] = out["posterior_kt"] - out["prior_kt"]
    out["change_pct"] = 100 * out["change_kt"] / out["prior_kt"].where(out["prior_kt"] != 0)
    out["sigma_reduction_pct"] = 100 * (1 - out["posterior_sigma_kt"]
                                        / out["prior_sigma_kt"].where(out["prior_sigma_kt"] != 0))
    return out.reset_index()


def write_district_csv(districts_csv, out_path) -> Path:
    """`{R}/district_table.csv`: the district table in kt CO₂ with change and σ reduction (%)."""
    df = district_csv_table(load_districts_table(districts_csv))
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    df.to_csv(tmp, index=False, float_format="%.6g")
    os.replace(tmp, out)
    log.info("wrote %s (%d rows)", out, len(df))
    return out


def figure(path, caption: str) -> str:
    return f"<figure>{img_tag(path, caption)}<figcaption>{esc(caption)}</figcaption></figure>"


def table_html(df: pd.DataFrame, left_cols=(), row_class=None) -> str:
    """A DataFrame as an escaped HTML table (numbers formatted by the caller as strings)."""
    head = "".join(f'<th class="{"l" if c in left_cols else ""}">{esc(c)}</th>' for c in df.columns)
    rows = []
    for _, r in df.iterrows():
        cls = f' class="{row_class(r)}"' if row_class and row_class(r) else ""
        cells = "".join(f'<td class="{"l" if c in left_cols else ""}">{esc(r[c])}</td>'
                        for c in df.columns)
        rows.append(f"<tr{cls}>{cells}</tr>")
    return (f'<div class="tw"><table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}'
            "</tbody></table></div>")


def district_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The district table as displayed (kt CO₂; change and uncertainty reduction in %)."""
    has_truth = table["truth_t"].notna().any()
    out = []
    for name, r in table.iterrows():
        change = (100.0 * (r["posterior_t"] - r["prior_t"]) / r["prior_t"]
                  if r["prior_t"] else float("nan"))
        ur = (100.0 * (1.0 - r["posterior_sigma_t"] / r["prior_sigma_t"])
              if r["prior_sigma_t"] else float("nan"))
        row = {
            "district": name,
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


def recovery_sentence(city: pd.Series) -> str:
    """How well the posterior city total recovers the truth (demo), as plain text."""
    truth = city["truth_t"]
    if pd.isna(truth):
        return ""
    post, sig, prior = city["posterior_t"], city["posterior_sigma_t"], city["prior_t"]
    err = post - truth
    perr = prior - truth
    z = abs(err) / sig if sig > 0 else float("inf")
    within = ("within 1 σ" if z <= 1 else "within 2 σ" if z <= 2 else "outside 2 σ")
    removed = (100.0 * (1 - abs(err) / abs(perr))) if perr else float("nan")
    rel = 100.0 * err / truth if truth else float("nan")
    prel = 100.0 * perr / truth if truth else float("nan")
    s = (f"The demo world's true city total is {fmt_kt(truth)} kt CO₂. The prior gives "
         f"{fmt_kt(prior)} kt (error {prel:+.1f} %); the posterior gives {fmt_kt(post)} ± "
         f"{fmt_kt(sig)} kt (error {rel:+.1f} %, {z:.1f} σ: {within}).")
    if not math.isnan(removed):
        s += (f" The inversion removed {removed:.0f} % of the prior's error."
              if removed >= 0 else
              f" The inversion moved the total away from the truth ({-removed:.0f} % more error "
              "than the prior).")
    return s


def _diagnostics_html(diag: dict) -> str:
    keys = [("n_obs", "observations used", 0), ("n_obs_matched", "observations with a footprint", 0),
            ("n_state", "state size", 0),
            ("chi2_reduced", "reduced χ² (≈ 1 when errors are consistent)", 2),
            ("dofs", "degrees of freedom for signal (DOFS)", 1), ("solver", "solver", None),
            ("seconds", "solve time (s)", 1)]
    rows = []
    for k, label, nd in keys:
        if k in diag:
            v = diag[k]
            val = esc(v) if nd is None or isinstance(v, str) else fmt_num(v, nd)
            rows.append(f'<tr><td class="l">{esc(label)}</td><td>{val}</td></tr>')
    chi = diag.get("chi2_test")
    if isinstance(chi, dict) and "p_value" in chi:
        rows.append('<tr><td class="l">innovation χ² = dᵀ(H Q Hᵀ + R)⁻¹d, degrees of freedom</td>'
                    f"<td>{fmt_num(chi.get('value'), 1)}, {esc(chi.get('dof'))}</td></tr>")
        rows.append('<tr><td class="l">p-value P(χ² ≥ observed) (a problem below '
                    f"{esc(chi.get('p_min'))}); P(χ² ≤ observed)</td>"
                    f"<td>{float(chi['p_value']):.3g}; {float(chi.get('p_value_lower', float('nan'))):.3g}</td></tr>")
    scr = diag.get("innovation_screen")
    if isinstance(scr, dict) and "n_flagged" in scr:
        rows.append(f'<tr><td class="l">innovation screen (|d| > {esc(scr.get("threshold_sigma"))} σ, '
                    f'action {esc(scr.get("action"))}): flagged, excluded</td>'
                    f"<td>{esc(scr['n_flagged'])}, {esc(scr.get('n_excluded', 0))}</td></tr>")
    out = f"<table><tbody>{''.join(rows)}</tbody></table>"
    top = diag.get("largest_normalised_residuals")
    if isinstance(top, list) and top:
        recs = [{"site": o.get("site"), "time (UTC)": o.get("time"), "observed (ppm)": fmt_num(o.get("observed"), 2),
                 "prior model (ppm)": fmt_num(o.get("prior_model"), 2),
                 "innovation (ppm)": fmt_num(o.get("innovation_ppm"), 2), "σ (ppm)": fmt_num(o.get("sigma_ppm"), 2),
                 "normalised": fmt_num(o.get("normalised"), 2),
                 "used": "yes" if o.get("used", True) else "no (screened)"}
                for o in top if isinstance(o, dict)]
        out += ("<p>Largest normalised residuals (innovation d = observed − prior model over its prior-predicted "
                "σ = √((H Q Hᵀ)ᵢᵢ + Rᵢᵢ)):</p>" + table_html(pd.DataFrame(recs), left_cols=("site", "time (UTC)")))
    per_site = diag.get("per_site")
    if isinstance(per_site, dict) and per_site:
        recs = []
        for site, st in per_site.items():
            rec = {"site": site}
            if isinstance(st, dict):
                for k, v in st.items():
                    rec[k] = fmt_num(v, 2) if isinstance(v, (int, float)) else v
            recs.append(rec)
        out += "<p>Residuals per site (ppm):</p>" + table_html(pd.DataFrame(recs), left_cols=("site",))
    factors = diag.get("factors")
    if isinstance(factors, dict) and factors:
        recs = [{"factor": name, "kind": f.get("kind", ""),
                 "posterior change (%)": fmt_num(100 * f["posterior"], 1),
                 "σ prior (%)": fmt_num(100 * f["prior_sigma"], 1),
                 "σ posterior (%)": fmt_num(100 * f["posterior_sigma"], 1)}
                for name, f in factors.items() if isinstance(f, dict) and "posterior" in f]
        if recs:
            out += ("<p>Scaling factors (relative change of a district's diffuse anthropogenic prior; "
                    "amplitude of a total-conserving diurnal-profile harmonic of a sector; relative "
                    "change of a day's biospheric uptake):</p>"
                    + table_html(pd.DataFrame(recs), left_cols=("factor", "kind")))
    return out


def _losses_html(losses: pd.DataFrame, recorded: bool = True) -> str:
    """The table stage → reason → count of receptors and observations that did not make it."""
    if losses is None or not len(losses):
        return ("<p>Nothing: every receptor has a footprint and every selected observation was used.</p>"
                if recorded else "<p class='muted'>Not recorded by this run's inversion (rerun it).</p>")
    return table_html(losses, left_cols=("stage", "reason"))


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


def _station_contribution_html(diag: dict, names: dict) -> str:
    contrib = diag.get("station_contributions")
    if not isinstance(contrib, dict) or not contrib.get("without"):
        return ""
    loss, summary = station_contribution_tables(contrib)
    show = summary.copy()
    show.insert(1, "name", [names.get(s, s) for s in show["station"]])
    for c in show.columns[2:]:
        if c != "district it constrains most":
            show[c] = [fmt_num(v, 1) for v in show[c]]
    return ("<p class='muted'>Exact posterior σ of every district and of the city recomputed from the "
            "same inversion with one station left out, and with one station alone. A station's value "
            "is the uncertainty reduction (1 − σ_post/σ_prior) lost without it; stations that see the "
            "same air share their value, so the losses do not add up to the total.</p>"
            + table_html(show, left_cols=("station", "name", "district it constrains most"))
            + figure_bytes(station_contribution_png(loss), "Uncertainty reduction (points of the prior σ) "
                           "lost when the station is left out, per district and for the city."))


def _power_html(heatmap, summary, missing) -> str:
    parts = []
    if heatmap and Path(heatmap).is_file():
        parts.append(figure(heatmap, "Hourly consumption-based electricity emission factor per "
                                     "district (kg CO₂/kWh)."))
    else:
        missing.append(f"power factor heat map ({heatmap or 'not given'})")
    if summary and Path(summary).is_file():
        try:
            df = pd.read_csv(summary)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
            missing.append(f"power summary table unreadable ({summary}: {err})")
        else:
            shown = df.copy()
            shown.columns = [str(c).replace("_", " ") for c in shown.columns]  # wrappable headers
            for c in shown.columns:
                if pd.api.types.is_float_dtype(shown[c]):
                    shown[c] = shown[c].map(lambda v: fmt_num(v, 3))
            parts.append(table_html(shown, left_cols=tuple(shown.columns[:1])))
    else:
        missing.append(f"power summary table ({summary or 'not given'})")
    return "".join(parts) or "<p>No power factor outputs available.</p>"


def _period_of(diag: dict, days, source) -> tuple[pd.Timestamp, pd.Timestamp]:
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
    start, end = _period_of(diag, days, diagnostics_json)
    return CoveredMonth(month, load_districts_table(districts_csv), start, end)


BUDGET_NOTE = (
    "Budgets are kt CO₂ per calendar year (config <code>budgets</code>). The budget is pro-rated "
    "evenly over the hours of the year: the covered hours (the inverted periods of this year, "
    "up to this report) get B·T<sub>c</sub>/T<sub>year</sub>. σ of the emissions adds the months' "
    "exact posterior σ in quadrature (months are independent). “To date” (1 January to the end "
    "of this period) and “year at this rate” extrapolate the covered mean rate to uncovered hours; "
    "their σ is scaled alike and does not include the error of that extrapolation. "
    "P(exceed) = Φ((year at this rate − budget)/σ). See docs/report.md.")


def budget_html(budgets, months: list[CoveredMonth], report_month: str, known, missing) -> str:
    """The 'Carbon budgets' section ('' when no budget is configured for the year)."""
    if not parse_budgets(budgets, known=known).get(int(report_month[:4])):
        return ""
    bt = budget_table(budgets, months, report_month)
    gaps = missing_months(report_month, months)
    for g in gaps:
        missing.append(f"budget: no inversion results for {g} (extrapolated from covered hours)")
    pm = lambda a, b, nd=1: f"{fmt_num(a, nd)} ± {fmt_num(b, nd)}"  # noqa: E731
    show = pd.DataFrame({
        "district": bt.index,
        "budget (kt/yr)": [fmt_num(v, 1) for v in bt["budget_kt"]],
        "covered": [f"{h:.0f} h ({100 * c:.0f} %)" for h, c in
                    zip(bt["covered_hours"], bt["coverage_to_date"])],
        "emitted (kt)": [pm(a, b, 2) for a, b in zip(bt["emitted_kt"], bt["emitted_sigma_kt"])],
        "pro-rated budget (kt)": [fmt_num(v, 2) for v in bt["budget_covered_kt"]],
        "used (%)": [pm(a, b, 0) for a, b in zip(bt["used_pct"], bt["used_sigma_pct"])],
        "to date (kt)": [pm(a, b, 1) for a, b in zip(bt["to_date_kt"], bt["to_date_sigma_kt"])],
        "budget to date (kt)": [fmt_num(v, 1) for v in bt["budget_to_date_kt"]],
        "year at this rate (kt)": [pm(a, b, 0) for a, b in
                                   zip(bt["projected_year_kt"], bt["projected_year_sigma_kt"])],
        "P(exceed)": [f"{100 * p:.0f} %" for p in bt["p_exceed"]],
        "status": bt["status"],
    })
    months_used = bt["months"].iloc[0] if len(bt) else ""
    out = (f"<p class='muted'>Year {esc(report_month[:4])}; months inverted: {esc(months_used)}"
           + (f"; not covered: {esc(', '.join(gaps))}" if gaps else "") + ".</p>")
    out += table_html(show, left_cols=("district", "status"),
                      row_class=lambda r: "total" if r["district"] == CITY else "")
    out += figure_bytes(budget_chart_png(bt), "Share of the pro-rated budget used per district "
                        "(± 1σ); dashed: 100 %.")
    out += f"<p class='muted'>{BUDGET_NOTE}</p>"
    out += csv_download(bt.reset_index(), f"budgets_{report_month}.csv",
                        "Download the budget comparison (CSV)")
    return out


def figure_bytes(png: bytes, caption: str) -> str:
    return f"<figure>{png_tag(png, caption)}<figcaption>{esc(caption)}</figcaption></figure>"


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
    hours_per_day: int = 4,
    config: dict | None = None,
    demo: bool | None = None,
    budgets: dict | None = None,
    budget_history=(),
    failures_csv=None,
    hourly_dirs=None,
    utc_offset_hours: float = 8.0,
    select_hours_local=(12, 16),
) -> str:
    """The report as an HTML string.

    ``budgets``: config ``budgets`` ({year: {district: kt CO₂/yr}}); ``budget_history``: pairs
    (districts.csv, diagnostics.json) of earlier inverted months of the same year.
    ``failures_csv`` (footprints/failures.csv), ``hourly_dirs`` (obs/hourly/<site>), the UTC offset and
    selection window: what the problem box and the table of what did not make it read
    (`products.problems`); any of them may be absent.
    """
    missing: list[str] = []
    table = load_districts_table(districts_csv)
    city = table.loc[CITY]
    diag = load_diagnostics(diagnostics_json)
    modelled = load_modelled(modelled_csv)
    selected = load_selected(selected_csv)
    stations = load_stations(stations_yaml)
    if site_ids is not None:
        stations = [s for s in stations if str(s["id"]) in {str(i) for i in site_ids}]
    ids = [str(s["id"]) for s in stations]
    if days is None:
        days = sorted(set(selected["time"].dt.strftime("%Y%m%d")))
    demo = bool(pd.notna(city["truth_t"])) if demo is None else demo
    maps_dir = Path(maps_dir)

    # --- city total
    ur_city = (100.0 * (1 - city["posterior_sigma_t"] / city["prior_sigma_t"])
               if city["prior_sigma_t"] else float("nan"))
    city_rows = [
        ("Prior", f"{fmt_kt(city['prior_t'])} ± {fmt_kt(city['prior_sigma_t'])} kt"),
        ("Posterior", f"{fmt_kt(city['posterior_t'])} ± {fmt_kt(city['posterior_sigma_t'])} kt"),
        ("Uncertainty reduction", f"{fmt_num(ur_city, 0)} %"),
    ]
    if pd.notna(city["truth_t"]):
        city_rows.append(("Truth (demo world)", f"{fmt_kt(city['truth_t'])} kt"))
    city_html = "<table><tbody>" + "".join(
        f'<tr><td class="l">{esc(a)}</td><td>{esc(b)}</td></tr>' for a, b in city_rows
    ) + "</tbody></table>"
    sentence = recovery_sentence(city)
    if sentence:
        city_html += f'<div class="box">{esc(sentence)}</div>'
    elif demo:
        missing.append("demo truth (truth_t) for the city total")

    # --- district table
    drows = district_rows(table)
    district_html = table_html(drows, left_cols=("district",),
                               row_class=lambda r: "total" if r["district"] == CITY else "")
    district_html += csv_download(district_csv_table(table), f"districts_{month}.csv",
                                  "Download the district table (CSV, kt CO₂)")

    # --- carbon budgets
    budget_part = ""
    if budgets:
        months = [covered_month(d, j) for d, j in budget_history]
        months = [m for m in months if m.month != month]
        months.append(CoveredMonth(month, table, *_period_of(diag, days, diagnostics_json)))
        budget_part = budget_html(budgets, months, month, set(table.index), missing)
    if budget_part:
        budget_part = "<h2>Carbon budgets</h2>\n" + budget_part

    # --- figures
    def fig_or_missing(key):
        p = maps_dir / MAP_FILES[key]
        if p.is_file():
            return figure(p, CAPTIONS[key])
        missing.append(f"figure {MAP_FILES[key]}")
        return ""

    maps_html = '<div class="grid2">' + "".join(
        fig_or_missing(k) for k in ("prior_flux", "posterior_flux", "flux_difference",
                                    "uncertainty_reduction")) + "</div>"
    bars_html = fig_or_missing("district_totals")

    names = {str(s["id"]): s.get("name", s["id"]) for s in stations}
    ts_parts = []
    for s in ids:
        p = maps_dir / TIMESERIES.format(site=safe_name(s))
        if p.is_file():
            ts_parts.append(figure(p, f"{s} ({names.get(s, s)}): observed, prior-modelled and "
                                      "posterior-modelled CO₂ with background."))
        else:
            missing.append(f"time series of site {s} (no observation used)")
    ts_html = "".join(ts_parts) + fig_or_missing("residuals")
    contrib_html = _station_contribution_html(diag, names)
    if contrib_html:
        contrib_html = "<h2>What each station contributes</h2>\n" + contrib_html

    # --- availability
    av = availability_table(selected, modelled[modelled["used"] == 1], ids, list(days), hours_per_day)
    for _, r in av.iterrows():
        if r["selected_hours"] == 0:
            missing.append(f"observations of site {r['site']} (no selected hour)")
    av_show = pd.DataFrame({
        "site": av["site"],
        "name": [names.get(s, s) for s in av["site"]],
        "selected hours": av["selected_hours"],
        "expected hours": av["expected_hours"],
        "coverage (%)": [fmt_num(100 * f, 0) for f in av["fraction"]],
        "used in inversion": av["used_in_inversion"],
        "first (UTC)": [("–" if pd.isna(t) else f"{t:%Y-%m-%d %H:%M}") for t in av["first"]],
        "last (UTC)": [("–" if pd.isna(t) else f"{t:%Y-%m-%d %H:%M}") for t in av["last"]],
    })
    av_html = table_html(av_show, left_cols=("site", "name")) + fig_or_missing("availability")

    power_html = _power_html(power_heatmap, power_summary, missing)
    probs = collect_problems(diag, selected, failures_csv, hourly_dirs, days, utc_offset_hours,
                             select_hours_local)
    losses_html = _losses_html(probs["losses"], recorded="observations_lost" in diag)
    problems_html = ""
    if probs["problems"]:
        problems_html = ('<div class="problems" id="problems"><h2>Problems in this run</h2><ul>'
                         + "".join(f"<li>{esc(p)}</li>" for p in probs["problems"]) + "</ul>"
                         + "<p><b>What did not make it into the inversion</b> (count per reason):</p>"
                         + losses_html + "</div>")
    diag_html = _diagnostics_html(diag)
    if flux_product is not None and not Path(flux_product).is_file():
        missing.append(f"flux product {flux_product}")

    period = f"{esc(diag.get('period_start', days[0] if days else ''))} – " \
             f"{esc(diag.get('period_end', days[-1] if days else ''))}"
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    inputs = [districts_csv, diagnostics_json, modelled_csv, selected_csv, stations_yaml]
    inputs += [p for p in (failures_csv,) if p and Path(p).is_file()]
    inputs += [p for pair in (budget_history if budgets else ()) for p in pair]
    inputs += [p for p in (flux_product, power_heatmap, power_summary) if p]
    prov = (f"<p class='muted'>config sha256 <code>{esc(config_hash(config or {}))}</code><br>"
            f"packages: {esc(package_versions())}</p><pre class='muted'>"
            f"{esc(input_list(inputs))}</pre>")
    missing_html = ("<ul>" + "".join(f"<li>{esc(m)}</li>" for m in missing) + "</ul>"
                    if missing else "<p>Nothing missing.</p>")
    demo_note = ('<p class="warn">Demo run: all inputs come from the synthetic Guangzhou world '
                 "(station positions are demo placements); the truth is known.</p>"
                 if demo else "")
    flux_name = esc(Path(flux_product).name if flux_product else f"flux_{month}.nc")

    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Guangzhou CO2 flux report {esc(month)}</title>
<style>{CSS}</style></head>
<body>
<h1>Guangzhou CO₂ flux report — {esc(month)}</h1>
<p class="muted">Inversion period {period} · generated {esc(now)} · flux product
<code>{flux_name}</code></p>
{problems_html}
{demo_note}
<h2>City total</h2>
{city_html}
<h2>Districts</h2>
<p class="muted">CO₂ emitted over the period, kt; σ are 1-σ, exact posterior uncertainties of
the district sums.</p>
{district_html}
{bars_html}
{budget_part}
<h2>Flux maps</h2>
{maps_html}
<h2>Stations: observed and modelled</h2>
{ts_html}
{contrib_html}
<h2>Power emission factors</h2>
{power_html}
<h2>Diagnostics</h2>
{diag_html}
<h2>Data availability</h2>
{av_html}
<p><b>What did not make it into the inversion</b> (receptors and observations, count per reason):</p>
{losses_html}
<h2>Missing</h2>
{missing_html}
<h2>Provenance</h2>
{prov}
</body></html>
"""


def write_report(out_path, pdf_engine: str | None = None, **kwargs) -> Path:
    """Build the report and write it atomically; returns the path of the HTML.

    ``pdf_engine``: None = HTML only; ``auto``/``weasyprint``/``chromium`` = also write the PDF
    beside it (products.pdf.write_pdf; skipped with a logged note when no engine is installed).
    A PDF engine failure is logged and does not fail the report; a stale PDF is removed.
    """
    text = build_report(**kwargs)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, out)
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
