"""The report's section of each gas inverted besides CO2 (config ``species``: CH4, CO).

Per gas: the district table ± σ in tonnes of the gas (`{R}/<gas>/districts.csv`, exact posterior σ),
a sentence on the fit (`{R}/<gas>/diagnostics.json`) and, on the nested grid, on the outer ring
(`{R}/<gas>/outer.csv`, written by the same inversion job beside districts.csv), and the posterior flux map and the district bar
chart of `{R}/<gas>/maps/` (products.maps.make_gas_figures). Texts are ``{"en", "zh"}`` messages
(the gas's formula is the same in both languages), so every language of ``report.language`` works.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from gzcarbon.names import CITY, GASES

from .i18n import district_msg, fill
from .inputs import load_diagnostics, load_districts_table
from .maps import GAS_FORMULA, MAP_FILES
from .sections import Row, Table, csv_download, city_row_class, district_csv_table, file_figure, fmt_num

#: columns of the gas's district table: (key of districts.csv, header)
COLUMNS = (
    ("prior_t", {"en": "prior (t)", "zh": "先验（吨）"}),
    ("prior_sigma_t", {"en": "prior σ (t)", "zh": "先验 σ（吨）"}),
    ("posterior_t", {"en": "posterior (t)", "zh": "后验（吨）"}),
    ("posterior_sigma_t", {"en": "posterior σ (t)", "zh": "后验 σ（吨）"}),
)
TRUTH = ("truth_t", {"en": "truth (t)", "zh": "真值（吨）"})


def fmt_t(t) -> str:
    """Tonnes with one decimal ('–' when missing)."""
    return "–" if t is None or pd.isna(t) else fmt_num(float(t), 1)


def gas_table(table_: pd.DataFrame, names_zh=None) -> Table:
    """The district table of a gas as the template draws it (t of the gas, change and σ reduction %)."""
    cols = list(COLUMNS) + ([TRUTH] if table_["truth_t"].notna().any() else [])
    heads = [("district", {"en": "district", "zh": "区"})] + cols + [
        ("change", {"en": "change (%)", "zh": "变化（%）"}),
        ("reduction", {"en": "σ reduction (%)", "zh": "σ 降低（%）"})]
    rows = []
    for name, r in table_.iterrows():
        change = 100.0 * (r["posterior_t"] - r["prior_t"]) / r["prior_t"] if r["prior_t"] else math.nan
        red = 100.0 * (1.0 - r["posterior_sigma_t"] / r["prior_sigma_t"]) if r["prior_sigma_t"] else math.nan
        cells = [("district", district_msg(name, names_zh))] + [(k, fmt_t(r[k])) for k, _ in cols]
        cells += [("change", fmt_num(change, 1)), ("reduction", fmt_num(red, 0))]
        rows.append(Row(cells, city_row_class(dict(cells))))
    return Table([k for k, _ in heads], rows, {"district"}, [h for _, h in heads])


def fit_sentence(diag: dict, city: pd.Series, gas: str) -> dict:
    """Observations, χ²_r, DOFS and the city total (prior, posterior ± σ, truth) as a message."""
    f = GAS_FORMULA[gas]
    out = fill({"en": "{n} {gas} observations used, χ²_r {chi2}, DOFS {dofs}. City total over the period: prior "
                      "{prior} ± {ps} t, posterior {post} ± {qs} t.",
                "zh": "使用 {n} 个 {gas} 观测，χ²_r {chi2}，DOFS {dofs}。全市本时段总量：先验 {prior} ± {ps} 吨，"
                      "后验 {post} ± {qs} 吨。"},
               n=int(diag.get("n_obs", 0)), gas=f, chi2=fmt_num(diag.get("chi2_reduced", math.nan), 2),
               dofs=fmt_num(diag.get("dofs", math.nan), 1), prior=fmt_t(city["prior_t"]),
               ps=fmt_t(city["prior_sigma_t"]), post=fmt_t(city["posterior_t"]), qs=fmt_t(city["posterior_sigma_t"]))
    if pd.notna(city["truth_t"]):
        truth = fill({"en": " Demo truth: {truth} t.", "zh": "演示真值：{truth} 吨。"}, truth=fmt_t(city["truth_t"]))
        out = {k: out[k] + truth[k] for k in ("en", "zh")}
    return out


def ring_sentence(outer_csv, gas: str) -> dict | None:
    """The outer ring of a nested run (``outer.csv`` written with districts.csv by the gas's
    inversion): prior ± σ, posterior ± σ and the demo truth, t of the gas; None without the file."""
    p = Path(outer_csv)
    if not p.is_file():
        return None
    t = pd.read_csv(p)
    ring = t[t["kind"] == "ring"]
    if ring.empty:
        return None
    r = ring.iloc[0]
    f = GAS_FORMULA[gas]
    out = fill({"en": "Outer ring (the delta's coarse cells outside the inner box): prior {prior} ± {ps} t, "
                      "posterior {post} ± {qs} t {gas}.",
                "zh": "外圈（内域之外的三角洲粗网格）：先验 {prior} ± {ps} 吨，后验 {post} ± {qs} 吨 {gas}。"},
               prior=fmt_t(r["prior_t"]), ps=fmt_t(r["prior_sigma_t"]), post=fmt_t(r["posterior_t"]),
               qs=fmt_t(r["posterior_sigma_t"]), gas=f)
    if pd.notna(r.get("truth_t")):
        truth = fill({"en": " Demo truth: {truth} t.", "zh": "演示真值：{truth} 吨。"}, truth=fmt_t(r["truth_t"]))
        out = {k: out[k] + truth[k] for k in ("en", "zh")}
    return out


def _with_ring(sentence: dict, ring: dict | None) -> dict:
    return sentence if ring is None else {k: sentence[k] + " " + ring[k] for k in sentence}


def gas_section(gas: str, districts_csv, diagnostics_json, maps_dir, month: str, names_zh=None,
                missing: list | None = None) -> dict:
    """One gas's section: ``title``, ``note``, ``sentence``, ``table``, ``download``, ``figures``."""
    missing = missing if missing is not None else []
    f, label = GAS_FORMULA[gas], GASES[gas]["label"]
    table_ = load_districts_table(districts_csv)
    diag = load_diagnostics(diagnostics_json)
    figures = []
    for key, caption in (("posterior_flux", {"en": f"Posterior {f} flux, mean over the inversion period.",
                                             "zh": f"后验 {f} 通量，本时段平均。"}),
                         ("district_totals", {"en": f"District {f} emissions over the period: prior ± σ, "
                                                    "posterior ± σ and, in the demo, the truth.",
                                              "zh": f"各区本时段 {f} 排放：先验 ± σ、后验 ± σ，演示中还有真值。"})):
        p = Path(maps_dir) / MAP_FILES[key]
        if p.is_file():
            figures.append(file_figure(p, caption))
        else:
            missing.append(fill("figure {file}", file=f"{gas}/maps/{MAP_FILES[key]}"))
    return {
        "gas": gas,
        "title": {"en": f"{f} emissions", "zh": f"{f} 排放"},
        "note": {"en": f"{f} emitted over the period, t; σ are 1-σ, exact posterior uncertainties of the "
                       f"district sums. The same footprints as CO₂, the {f} prior and error model "
                       f"(results/{month}/{gas}/).",
                 "zh": f"本时段 {f} 排放（吨）；σ 为 1-σ 的区总量后验不确定性（精确）。与 CO₂ 相同的足迹，"
                       f"{f} 的先验与误差（results/{month}/{gas}/）。"},
        "sentence": _with_ring(fit_sentence(diag, table_.loc[CITY], gas),
                               ring_sentence(Path(districts_csv).parent / "outer.csv", gas)),
        "table": gas_table(table_, names_zh),
        "download": csv_download(district_csv_table(table_), f"districts_{label}_{month}.csv",
                                 {"en": f"Download the {f} district table (CSV, kt {f})",
                                  "zh": f"下载 {f} 各区表格（CSV，千吨 {f}）"}),
        "figures": figures,
    }
