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
import io
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd

from gzcarbon.atomic import write_csv, write_text
from gzcarbon.names import CITY
from inversion.sequential import SequentialInputError, month_joint, year_estimate

from .budgets import CoveredMonth, budget_table, year_hours
from .inputs import ProductInputError, load_diagnostics, load_districts_table

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parent / "templates"
HOURS = pd.Timedelta(hours=1)


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


def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                              undefined=jinja2.StrictUndefined)


def _kt(v) -> str:
    return "—" if v is None or not np.isfinite(v) else f"{v / 1e3:,.2f}"


def _district_rows(table: pd.DataFrame) -> list[list[str]]:
    rows = []
    for name, r in table.iterrows():
        rows.append([str(name), _kt(r["prior_t"]), _kt(r["prior_sigma_t"]), _kt(r["posterior_t"]),
                     _kt(r["posterior_sigma_t"])])
    return rows


def write_flash(html_path, status_path, districts_csv, diagnostics_json, *, month: str, cutoff: str,
                month_days, flash_days) -> dict:
    """flash.json and the flash's report.html (atomically)."""
    table = load_districts_table(districts_csv)
    diag = load_diagnostics(diagnostics_json)
    status = flash_status(month, cutoff, month_days, flash_days, diag)
    html = _env().get_template("flash.html").render(
        s=status, month=month, header=["district", "prior (kt)", "prior σ", "flash (kt)", "flash σ"],
        rows=_district_rows(table), chi2=diag.get("chi2_reduced"), css=(TEMPLATES / "report.css").read_text())
    write_text(status_path, json.dumps(status, indent=2))
    write_text(html_path, html)
    log.info("flash %s cut-off %s: %d of %d days (%.0f %%), preliminary", month, cutoff,
             status["days_inverted"], status["days_in_month_period"], 100 * status["coverage"])
    return status


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


def monthly_figure_png(monthly: pd.DataFrame, year: int) -> bytes:
    """Monthly district totals ± σ through the year (small multiples; uncovered months left empty)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(monthly["district"]))
    n = len(names)
    ncol = 4
    nrow = -(-n // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(12, 2.4 * nrow), squeeze=False, sharex=True)
    x_all = np.arange(1, 13)
    for ax, name in zip(axes.ravel(), names):
        g = monthly[monthly["district"] == name]
        x = np.array([int(m[5:7]) for m in g["month"]])
        ax.errorbar(x - 0.1, g["own_t"] / 1e3, yerr=g["own_sigma_t"] / 1e3, fmt="o", ms=3, color="0.6",
                    label="month alone")
        ax.errorbar(x + 0.1, g["year_t"] / 1e3, yerr=g["year_sigma_t"] / 1e3, fmt="o", ms=3, color="C0",
                    label="year (correlated months)")
        if g["truth_t"].notna().all():
            ax.plot(x, g["truth_t"] / 1e3, "x", color="C3", label="demo truth")
        ax.set_title(name, fontsize=9)
        ax.set_xticks(x_all)
        ax.set_xlim(0.5, 12.5)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    axes[0, 0].set_ylabel("kt CO₂ per inverted period")
    axes[0, 0].legend(fontsize=6)
    fig.suptitle(f"Monthly district totals ± 1σ, {year} (months without results are empty)", fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def _fmt_table(df: pd.DataFrame, nd: int = 2) -> tuple[list, list]:
    def f(v):
        if isinstance(v, (float, np.floating)):
            return "—" if not np.isfinite(v) else f"{v:,.{nd}f}"
        return str(v)
    return list(df.columns), [[f(v) for v in row] for row in df.itertuples(index=False)]


def _annual_view(y: Year) -> dict:
    t = y.table.set_index("district")
    city_last = [n for n in t.index if n != CITY] + ([CITY] if CITY in t.index else [])
    show = pd.DataFrame({
        "district": city_last,
        "prior (kt)": [t.loc[n, "prior_t"] / 1e3 for n in city_last],
        "prior σ": [t.loc[n, "prior_sigma_t"] / 1e3 for n in city_last],
        "posterior (kt)": [t.loc[n, "posterior_t"] / 1e3 for n in city_last],
        "posterior σ": [t.loc[n, "posterior_sigma_t"] / 1e3 for n in city_last],
        "σ if months were independent": [t.loc[n, "posterior_sigma_independent_t"] / 1e3 for n in city_last],
        "truth (kt)": [t.loc[n, "truth_t"] / 1e3 for n in city_last],
    })
    if show["truth (kt)"].isna().all():
        show = show.drop(columns="truth (kt)")
    return dict(zip(("header", "rows"), _fmt_table(show)))


def write_annual(out_csv, out_html, year: int, month_files: list[MonthFiles], *, budgets=None,
                 flash_dirs: dict | None = None, previous_csv=None) -> Year:
    """results/<year>/districts.csv and report.html (atomically)."""
    y = annual_table(year, month_files)
    write_csv(y.table, out_csv, index=False, float_format="%.6g")
    budget = pd.DataFrame()
    if budgets and str(year) in {str(k) for k in budgets}:
        budget = budget_table(budgets, y.covered, y.covered[-1].month)
    revisions = []
    for mf in month_files:
        dirs = (flash_dirs or {}).get(mf.month) or []
        rv = flash_revisions(mf.districts_csv, mf.diagnostics_json, dirs)
        if not rv.empty:
            revisions.append(rv.assign(month=mf.month))
    rev = pd.concat(revisions) if revisions else pd.DataFrame()
    yoy = year_on_year(y.table, previous_csv) if previous_csv else pd.DataFrame()
    png = monthly_figure_png(y.monthly, year)
    avail = y.availability.copy()
    avail_view = ([["site"] + [c[5:] for c in avail.columns]],
                  [[s] + ["not covered" if not np.isfinite(v) else f"{int(v)}" for v in avail.loc[s]]
                   for s in avail.index])
    bud_view = None
    if not budget.empty:
        b = budget.reset_index()[["district", "budget_kt", "emitted_kt", "emitted_sigma_kt",
                                  "projected_year_kt", "projected_year_sigma_kt", "p_exceed", "status",
                                  "error_model"]]
        bud_view = dict(zip(("header", "rows"), _fmt_table(b)))
    rev_view = None
    if not rev.empty:
        r = rev[["month", "cutoff", "district", "flash_kt_per_day", "final_kt_per_day", "revision_pct",
                 "revision_in_flash_sigma"]]
        rev_view = dict(zip(("header", "rows"), _fmt_table(r)))
    yoy_view = dict(zip(("header", "rows"), _fmt_table(yoy))) if not yoy.empty else None
    html = _env().get_template("annual.html").render(
        year=year, y=y, css=(TEMPLATES / "report.css").read_text(), annual=_annual_view(y),
        covered=", ".join(c.month for c in y.covered), missing=", ".join(y.missing) or "none",
        figure=base64.b64encode(png).decode(), availability={"header": avail_view[0][0], "rows": avail_view[1]},
        budget=bud_view, revisions=rev_view, yoy=yoy_view,
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
    write_text(out_html, html)
    log.info("year %d: %d month(s) covered (%s), not covered: %s; %s", year, len(y.covered),
             ", ".join(c.month for c in y.covered), ", ".join(y.missing) or "none", y.error_model)
    return y


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
