"""District carbon budgets: posterior emissions to date against an annual budget, with σ.

Config (``budgets``): ``{YEAR: {district name_en or "Guangzhou": kt CO2 per calendar year}}``.

How the comparison is made (docs/report.md, "Carbon budgets"):

- *Covered hours* ``T_c``: the inverted periods of the budget year up to and including the
  report's month (``[period_start, period_end)`` of each month's diagnostics.json; in the demo
  only the first ``demo.days`` days of each month). Months of the year without results are
  listed as not covered.
- *Emitted* ``E`` over the covered months, ± σ_E, with correlated months
  (`inversion.sequential`, docs/year.md): the district factors are one bias for the whole year,
  carried from month to month, so ``E`` and ``σ_E`` are the sum of the months' totals given all
  covered months' data, with their cross-covariances. Only when a month's diagnostics.json has no
  ``district_factors_joint`` (no district factors, or an older run) are months summed as
  independent (``E = Σ_m posterior_t(m)``, ``σ_E = sqrt(Σ_m σ_m²)``); the ``error_model`` column
  says which, and ``emitted_independent_sigma_kt`` always gives the independent σ.
- *Pro-rated budget*: ``B_c = B · T_c / T_year`` (budget spread evenly over the hours of the year,
  UTC). ``used = E / B_c`` with ``σ_used = σ_E / B_c``.
- *To date* (1 January 00 UTC to the end of the report's period, ``T_e`` hours): emissions
  ``E · T_e / T_c``, budget ``B · T_e / T_year``; uncovered time is assumed to emit at the mean
  rate of the covered hours, and σ is scaled by the same factor (the error of that extrapolation
  itself is not in σ; the coverage column says how much is extrapolated).
- *Year at this rate*: ``P = E · T_year / T_c`` ± the scaled σ;
  ``P(exceed) = Φ((P − B) / σ_P)`` (Gaussian posterior).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from inversion.sequential import MonthJoint, SequentialInputError, year_estimate

from gzcarbon.names import CITY

from .inputs import ProductInputError

HOURS = pd.Timedelta(hours=1)


class BudgetConfigError(ValueError):
    """The `budgets` config is malformed or names an unknown district."""


@dataclass(frozen=True)
class CoveredMonth:
    """One inverted month: its district table (tonnes) and inverted period (UTC, end exclusive)."""

    month: str
    table: pd.DataFrame
    start: pd.Timestamp
    end: pd.Timestamp
    joint: MonthJoint | None = None  # diagnostics.json district_factors_joint (correlated months)

    @property
    def hours(self) -> float:
        return (self.end - self.start) / HOURS


def parse_budgets(budgets, known=None) -> dict[int, dict[str, float]]:
    """Validate the `budgets` config: {year: {district: kt >= 0}} with int years.

    `known`: allowed district names (name_en and 'Guangzhou'); an unknown name is an error.
    """
    if not budgets:
        return {}
    if not isinstance(budgets, dict):
        raise BudgetConfigError(f"config key 'budgets' must map YEAR -> {{district: kt CO2}}, "
                                f"got {type(budgets).__name__}.")
    out: dict[int, dict[str, float]] = {}
    for y, per in budgets.items():
        ys = str(y)
        if not (ys.isdigit() and len(ys) == 4):
            raise BudgetConfigError(f"config key 'budgets.{ys}': the year must be four digits "
                                    "(e.g. \"2025\").")
        if not isinstance(per, dict) or not per:
            raise BudgetConfigError(f"config key 'budgets.{ys}' must map district name_en -> "
                                    "kt CO2 per year.")
        row = {}
        for name, kt in per.items():
            key = f"budgets.{ys}.{name}"
            if known is not None and str(name) not in known:
                raise BudgetConfigError(
                    f"config key '{key}': unknown district; use one of {sorted(known)} "
                    f"(name_en of the districts file, or '{CITY}' for the city).")
            try:
                v = float(kt)
            except (TypeError, ValueError):
                raise BudgetConfigError(f"config key '{key}': {kt!r} is not a number (kt CO2).") from None
            if not math.isfinite(v) or v <= 0:
                raise BudgetConfigError(f"config key '{key}': budget must be a positive number of kt "
                                        f"CO2 per year, got {kt!r}.")
            row[str(name)] = v
        out[int(ys)] = row
    return out


def year_hours(year: int) -> float:
    return (pd.Timestamp(year + 1, 1, 1) - pd.Timestamp(year, 1, 1)) / HOURS


def _phi(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def budget_table(budgets, months: list[CoveredMonth], report_month: str) -> pd.DataFrame:
    """One row per budgeted district of the report month's year (kt CO2, hours, %).

    `months`: the covered months (the report's own month must be among them); months of other
    years or later than `report_month` are ignored. Empty DataFrame when no budget for the year.
    """
    year = int(report_month[:4])
    parsed = parse_budgets(budgets)
    per = parsed.get(year)
    if not per:
        return pd.DataFrame()
    use = sorted((m for m in months if m.month[:4] == str(year) and m.month <= report_month),
                 key=lambda m: m.month)
    if not use or use[-1].month != report_month:
        raise ProductInputError(f"no inverted period for the report month {report_month}; "
                                "cannot compare with the budget.")
    t_c = sum(m.hours for m in use)
    t_y = year_hours(year)
    t_e = (use[-1].end - pd.Timestamp(year, 1, 1)) / HOURS
    if t_c <= 0:
        raise ProductInputError(f"the inverted periods of {year} have no hours.")
    corr = correlated_year(use)
    rows = []
    for name, b in per.items():
        e_t, var_t, present = 0.0, 0.0, []
        for m in use:
            if name in m.table.index:
                r = m.table.loc[name]
                e_t += float(r["posterior_t"])
                var_t += float(r["posterior_sigma_t"]) ** 2
                present.append(m.month)
        if len(present) != len(use):
            lacking = sorted({m.month for m in use} - set(present))
            raise ProductInputError(f"district '{name}' has a budget but no row in districts.csv "
                                    f"of {', '.join(lacking)}.")
        s_ind = math.sqrt(var_t) / 1e3
        if corr is not None and name in corr.aggregates:
            i = corr.aggregates.index(name)
            e_t, var_t = float(corr.total_mean[i]), float(corr.total_cov[i, i])
        e, s = e_t / 1e3, math.sqrt(var_t) / 1e3
        b_c = b * t_c / t_y
        proj, s_proj = e * t_y / t_c, s * t_y / t_c
        p_ex = _phi((proj - b) / s_proj) if s_proj > 0 else float(proj > b)
        rows.append({
            "district": name,
            "budget_kt": b,
            "months": ", ".join(present),
            "covered_hours": t_c,
            "coverage_to_date": t_c / t_e if t_e > 0 else np.nan,
            "emitted_kt": e,
            "emitted_sigma_kt": s,
            "emitted_independent_sigma_kt": s_ind,
            "error_model": "correlated months" if corr is not None and name in corr.aggregates
            else "independent months",
            "budget_covered_kt": b_c,
            "used_pct": 100 * e / b_c,
            "used_sigma_pct": 100 * s / b_c,
            "to_date_kt": e * t_e / t_c,
            "to_date_sigma_kt": s * t_e / t_c,
            "budget_to_date_kt": b * t_e / t_y,
            "projected_year_kt": proj,
            "projected_year_sigma_kt": s_proj,
            "p_exceed": p_ex,
            "status": status(p_ex),
        })
    df = pd.DataFrame(rows).set_index("district")
    order = [n for n in df.index if n != CITY] + ([CITY] if CITY in df.index else [])
    return df.loc[order]


def correlated_year(months: list[CoveredMonth]):
    """`inversion.sequential.YearEstimate` of the months (in order) when every one carries its
    ``district_factors_joint``; None otherwise (then months are summed as independent)."""
    if not months or any(m.joint is None for m in months):
        return None
    try:
        return year_estimate([m.joint for m in months])
    except SequentialInputError as err:
        raise ProductInputError(f"correlated months of the budget year: {err}") from None


def status(p_exceed: float) -> str:
    """Plain words for the probability of exceeding the annual budget at the current rate."""
    if p_exceed >= 0.84:
        return "likely over budget"
    if p_exceed <= 0.16:
        return "within budget"
    return "uncertain"


def missing_months(report_month: str, months: list[CoveredMonth]) -> list[str]:
    """Months of the report's year, up to the report month, without an inverted period."""
    y, mm = int(report_month[:4]), int(report_month[5:7])
    have = {m.month for m in months}
    return [f"{y}-{i:02d}" for i in range(1, mm + 1) if f"{y}-{i:02d}" not in have]
