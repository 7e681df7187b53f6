"""The figures scientists look for in a month's report, each with the numbers behind it:

* :func:`footprint_sensitivity` — each station's mean footprint (the standard STILT plot) and the
  network's sensitivity (sum of every footprint), from the month's Jacobian;
* :func:`block_averaging_kernel`, :func:`district_averaging_kernel` — the averaging kernel of block
  means and district totals, 1 − σ²_post/σ²_prior, from posterior.nc and districts.csv;
* :func:`district_correlation` — the district posterior correlation matrix, from diagnostics.json
  ``aggregate_covariance``;
* :func:`transport_losses` — HYSPLIT failures and the share of particles that left the domain, per
  receptor, from the site-day footprint files and footprints/failures.csv;
* the target-tank calibration check (:func:`stations.target.target_check`);
* :func:`sector_signal` — what each prior sector contributes to each site's modelled signal, from
  modelled.csv's ``prior_<sector>`` columns.

Each ``*_png`` function draws one figure as PNG bytes; :func:`network_figures` makes every figure the
run's files allow, with its caption (``CAPTIONS``: ``{"en", "zh"}``, how to read the figure), for the
report section "What the network sees" (docs/report.md, "Figures").
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402

from gzcarbon.districts import read_districts  # noqa: E402
from gzcarbon.grid import Grid  # noqa: E402
from gzcarbon.names import CITY  # noqa: E402

from .flux_netcdf import block_edges, posterior_grid  # noqa: E402
from .i18n import district_msg, tr  # noqa: E402
from .inputs import ProductInputError, load_districts_table, load_posterior  # noqa: E402
from .maps import PC, _map_axes, _overlay, _png_bytes  # noqa: E402

log = logging.getLogger(__name__)

SECTOR_PREFIX = "prior_"
NOT_SECTORS = ("prior_model",)
#: footprints below this fraction of the largest are not coloured (log scale over four decades)
LOG_DECADES = 4

CAPTIONS = {
    "mean_footprints": {
        "en": "Mean footprint of each station over the month (time-integrated sensitivity of one "
              "observation to a constant flux, ppm per µmol m⁻² s⁻¹ per cell, log scale; triangles: "
              "stations). Colours span four decades: the dark core is the area the station mostly "
              "sees; a footprint stretched one way shows the month's prevailing wind.",
        "zh": "各站点本月平均足迹（单次观测对恒定通量的时间积分敏感度，每网格 ppm/(µmol m⁻² s⁻¹)，"
              "对数色标；三角形为站点）。色标跨四个数量级：深色核心是站点主要“看到”的区域，"
              "足迹向某一方向拉长表示本月的盛行风向。"},
    "network_sensitivity": {
        "en": "Sensitivity of the whole network: the sum of every observation's footprint (ppm per "
              "µmol m⁻² s⁻¹ per cell, log scale). Where it is high, a flux change shows up in many "
              "observations; where it is near zero (pale), the observations cannot correct the prior.",
        "zh": "整个观测网络的敏感度：所有观测足迹之和（每网格 ppm/(µmol m⁻² s⁻¹)，对数色标）。"
              "数值高处，通量变化会反映在许多观测中；接近零（浅色）处，观测无法修正先验。"},
    "averaging_kernel": {
        "en": "Averaging kernel 1 − σ²_post/σ²_prior: the share of the prior variance the observations "
              "resolve, for the period-mean flux of each coarse block (left) and for each district "
              "total (right). 1: fully determined by the data; 0: the posterior is the prior. It is the "
              "diagonal of the averaging kernel of these aggregates, computed exactly from the "
              "inversion's prior and posterior σ.",
        "zh": "平均核 1 − σ²后验/σ²先验：观测所解析的先验方差比例，左图为各粗网格块的时段平均通量，"
              "右图为各区总量。1 表示完全由观测确定；0 表示后验等于先验。它是这些聚合量平均核的"
              "对角元，由反演的先验与后验 σ 精确计算。"},
    "district_correlation": {
        "en": "Posterior error correlation between district totals (exact, from the inversion's "
              "posterior covariance). Strongly negative (blue) pairs are districts the network cannot "
              "tell apart: it constrains their sum better than how the emissions split between them.",
        "zh": "各区总量后验误差相关系数（由反演的后验协方差精确计算）。强负相关（蓝色）的两区是"
              "观测网络无法区分的：网络对两区之和的约束强于对两区之间排放分配的约束。"},
    "transport_losses": {
        "en": "Transport: share of each receptor's particles that left the meteorology domain before the "
              "end of the back-trajectory time (left; dots are receptors, bar is the median), and "
              "receptors with a footprint and receptors HYSPLIT failed on per site (right). Sensitivity "
              "to fluxes outside the domain is missing for particles that left early.",
        "zh": "传输：各受体粒子在后向轨迹结束前离开气象场区域的比例（左；点为受体，横线为中位数），"
              "以及各站点有足迹的受体数和 HYSPLIT 失败的受体数（右）。提前离开的粒子缺失区域外通量的敏感度。"},
    "target_tank": {
        "en": "Target-tank check: calibrated − assigned value of every target-tank run (ppm). The grey "
              "band is the WMO compatibility goal; dashed lines are the limit beyond which the pipeline "
              "flags the period (stations.target_tank.max_bias). Runs inside the band mean the "
              "calibration holds.",
        "zh": "目标气瓶检查：每次目标气瓶测量的标定值减标称值（ppm）。灰色带为 WMO 可比性目标；"
              "虚线为流程标记该时段的限值（stations.target_tank.max_bias）。落在灰色带内表示标定可靠。"},
    "sector_signal": {
        "en": "What each sector of the prior contributes to each site's modelled CO₂ enhancement: mean "
              "over the observations used, ppm (the prior flux of each sector through the same "
              "footprints; bars above zero add, the biosphere's uptake below zero subtracts; diamond: "
              "the prior modelled enhancement, the sum of the bars).",
        "zh": "先验各部门对各站点模拟 CO₂ 增量的贡献：所用观测的平均值，ppm（各部门先验通量经同一足迹"
              "计算；零线以上的柱为正贡献，生物圈吸收在零线以下为负贡献；菱形为先验模拟增量，即各柱之和）。"},
}


def caption(key: str, lang: str = "en") -> str:
    """The caption of figure ``key`` in ``lang`` (``zh``, ``en`` or ``both``: `products.i18n.tr`)."""
    return tr(CAPTIONS[key], lang)


def fill(msg: dict, **fields) -> dict:
    """A ``{"en", "zh"}`` message with its ``str.format`` fields filled (file names stay as they are)."""
    return {code: text.format(**fields) for code, text in msg.items()}


#: what the Missing list says when a figure cannot be drawn ({"en", "zh"}; fields filled by `fill`)
MISSING = {
    "no_jacobian": {"en": "figures mean footprints and network sensitivity (no Jacobian {file})",
                    "zh": "平均足迹图和网络敏感度图（无雅可比矩阵文件 {file}）"},
    "no_footprint": {"en": "figures mean footprints and network sensitivity (no receptor has a footprint)",
                     "zh": "平均足迹图和网络敏感度图（没有受体有足迹）"},
    "no_posterior": {"en": "figure averaging kernel (posterior.nc {posterior}, districts.csv {districts})",
                     "zh": "平均核图（posterior.nc {posterior}，districts.csv {districts}）"},
    "no_covariance": {"en": "figure district correlation (diagnostics.json has no aggregate_covariance: "
                            "rerun the inversion)",
                      "zh": "各区相关系数图（diagnostics.json 中没有 aggregate_covariance：请重新运行反演）"},
    "no_sectors": {"en": "figure prior signal by sector (modelled.csv has no prior_<sector> columns: rerun "
                         "the inversion)",
                   "zh": "分部门先验信号图（modelled.csv 中没有 prior_<sector> 列：请重新运行反演）"},
    "no_site_days": {"en": "figure transport losses (no site-day footprint files)",
                     "zh": "传输损失图（无站点日足迹文件）"},
    "no_target": {"en": "figure target tank (no target-tank run in obs/hourly/<site>/target_tank.csv)",
                  "zh": "目标气瓶图（obs/hourly/<site>/target_tank.csv 中没有目标气瓶测量）"},
}


# --------------------------------------------------------------------------------------------------
# numbers
# --------------------------------------------------------------------------------------------------
@dataclass
class Sensitivity:
    """Time-integrated footprints on the state grid (ppm per µmol m⁻² s⁻¹ per cell)."""

    lat_edges: np.ndarray
    lon_edges: np.ndarray
    sites: list
    mean: dict        # site -> (ny, nx) mean over the site's receptors with a footprint
    n_receptors: dict  # site -> receptors with a footprint
    total: np.ndarray  # (ny, nx) sum over every receptor: the network's sensitivity


def footprint_sensitivity(jacobian_path) -> Sensitivity:
    """Each site's mean footprint and the network's sensitivity from ``jacobian_hourly.npz``.

    A receptor's time-integrated footprint is its Jacobian row summed over the hours: the response to
    a constant unit flux in each cell (footprint mass outside the grid or the hourly axis is not in
    the Jacobian and not shown). Receptors without a footprint (HYSPLIT failed) are left out of the
    means and the sum. A nested Jacobian (config outer_grid): the inner cells' part."""
    from transport.jacobian import load_jacobian

    jac = load_jacobian(jacobian_path)
    grid = Grid.from_config(jac.grid)
    H = sp.csr_matrix(jac.H)
    ok = ~np.asarray(jac.missing, bool) if jac.missing is not None else np.ones(H.shape[0], bool)
    site_of = jac.receptors["site"].astype(str).to_numpy()
    sites = list(dict.fromkeys(site_of))
    n_all = int(jac.n_cells)  # a nested Jacobian's columns also hold the outer cells (after the inner ones)
    sums = {s: np.zeros(grid.n_cells) for s in sites}
    count = {s: int(((site_of == s) & ok).sum()) for s in sites}
    for s in sites:
        rows = np.flatnonzero((site_of == s) & ok)
        for k in range(0, rows.size, CHUNK_ROWS):  # a month's Jacobian is never copied whole
            sums[s] += _cell_sums(H[rows[k:k + CHUNK_ROWS]], n_all)[:grid.n_cells]
    mean = {s: (sums[s] / count[s]).reshape(grid.shape) for s in sites if count[s]}
    total = np.sum([sums[s] for s in sites], axis=0).reshape(grid.shape)
    return Sensitivity(grid.lat_edges, grid.lon_edges, sites, mean, count, total)


#: Jacobian rows summed at a time
CHUNK_ROWS = 64


def _cell_sums(H_rows: sp.csr_matrix, n_cells: int) -> np.ndarray:
    """Σ over rows and hours of Jacobian rows: column ``hour * n_cells + cell`` adds to ``cell``."""
    return np.bincount(H_rows.indices % n_cells, weights=H_rows.data, minlength=n_cells)


def block_averaging_kernel(posterior_path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lat edges, lon edges, 1 − σ²_post/σ²_prior) of the period-mean flux of every coarse block of
    posterior.nc (NaN where the prior σ is 0)."""
    post = load_posterior(posterior_path)
    try:
        grid = posterior_grid(post, posterior_path)
        sp_ = post["prior_sigma_block"].values.astype(float)
        sq = post["posterior_sigma_block"].values.astype(float)
    finally:
        post.close()
    with np.errstate(divide="ignore", invalid="ignore"):
        ak = np.where(sp_ > 0, 1.0 - (sq / sp_) ** 2, np.nan)
    return block_edges(grid.lat_edges, sp_.shape[0]), block_edges(grid.lon_edges, sp_.shape[1]), ak


def district_averaging_kernel(districts_csv) -> pd.Series:
    """1 − σ²_post/σ²_prior of every district total and the city (index: district)."""
    t = load_districts_table(districts_csv)
    p, q = t["prior_sigma_t"].to_numpy(float), t["posterior_sigma_t"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return pd.Series(np.where(p > 0, 1.0 - (q / p) ** 2, np.nan), index=t.index, name="averaging_kernel")


def district_correlation(diagnostics: dict, source="diagnostics.json") -> pd.DataFrame | None:
    """The posterior correlation C_ij / (σ_i σ_j) of the district totals (the city row left out), from
    diagnostics ``aggregate_covariance``; None when the inversion did not write it."""
    cov = diagnostics.get("aggregate_covariance")
    if not isinstance(cov, dict):
        return None
    names = [str(n) for n in cov.get("aggregates", [])]
    C = np.asarray(cov.get("posterior"), dtype=float)
    if C.shape != (len(names), len(names)):
        raise ProductInputError(f"{source}: aggregate_covariance.posterior has shape {C.shape}, expected "
                                f"({len(names)}, {len(names)}) for its aggregates; rerun the inversion.")
    keep = [i for i, n in enumerate(names) if n != CITY]
    C = C[np.ix_(keep, keep)]
    s = np.sqrt(np.diag(C))
    with np.errstate(divide="ignore", invalid="ignore"):
        R = C / np.outer(s, s)
    names = [names[i] for i in keep]
    return pd.DataFrame(R, index=names, columns=names)


def transport_losses(site_day_files, failures_csv=None) -> pd.DataFrame:
    """One row per receptor of the month: ``site, receptor_id, left_domain_fraction, failed``.

    ``left_domain_fraction`` is the site-day file's value (share of particles that left the met
    domain before the end of the back trajectories; NaN for a receptor HYSPLIT failed on); the failed
    receptors come from ``footprints/failures.csv`` (and any receptor a file lists without a value)."""
    from transport.footprints import read_site_day

    rows = []
    for f in map(Path, site_day_files):
        with read_site_day(f) as ds:
            ids = [str(r) for r in ds["receptor"].values]
            frac = (ds["left_domain_fraction"].values.astype(float) if "left_domain_fraction" in ds
                    else np.full(len(ids), np.nan))
        rows += [{"site": f.parent.name, "receptor_id": r, "left_domain_fraction": v, "failed": False}
                 for r, v in zip(ids, frac)]
    df = pd.DataFrame(rows, columns=["site", "receptor_id", "left_domain_fraction", "failed"])
    if failures_csv is not None and Path(failures_csv).is_file() and Path(failures_csv).stat().st_size:
        fails = pd.read_csv(failures_csv, dtype=str)
        if len(fails):
            df = df[~df["receptor_id"].isin(set(fails["receptor_id"]))]
            df = pd.concat([df, pd.DataFrame({"site": fails["site"], "receptor_id": fails["receptor_id"],
                                              "left_domain_fraction": np.nan, "failed": True})],
                           ignore_index=True)
    return df.reset_index(drop=True)


def sector_signal(modelled: pd.DataFrame, used_only: bool = True) -> pd.DataFrame:
    """Mean prior signal per site (rows) and sector (columns, without the ``prior_`` prefix), ppm,
    over the observations used (``used == 1``), from modelled.csv; empty without sector columns."""
    cols = [c for c in modelled.columns if c.startswith(SECTOR_PREFIX) and c not in NOT_SECTORS]
    m = modelled[modelled["used"] == 1] if used_only and "used" in modelled else modelled
    if not cols or m.empty:
        return pd.DataFrame()
    out = m.groupby("site", sort=True)[cols].mean()
    out.columns = [c[len(SECTOR_PREFIX):] for c in cols]
    return out


# --------------------------------------------------------------------------------------------------
# drawing (``lang``: zh, en or both, the report's language; Chinese glyphs from `products.fonts`)
# --------------------------------------------------------------------------------------------------
#: labels inside the figures, {"en", "zh"}
LABELS = {
    "receptors": {"en": "{site} ({n} receptors)", "zh": "{site}（{n} 个受体）"},
    "foot_unit": {"en": "mean footprint, ppm / (µmol m⁻² s⁻¹) per cell",
                  "zh": "平均足迹，每网格 ppm/(µmol m⁻² s⁻¹)"},
    "sum_unit": {"en": "sum of footprints, ppm / (µmol m⁻² s⁻¹) per cell",
                 "zh": "足迹之和，每网格 ppm/(µmol m⁻² s⁻¹)"},
    "network": {"en": "Network sensitivity: sum of {n} footprints", "zh": "网络敏感度：{n} 个足迹之和"},
    "ak_blocks": {"en": "Block means: 1 − σ²_post/σ²_prior", "zh": "粗网格块平均：1 − σ²后验/σ²先验"},
    "ak_districts": {"en": "District totals", "zh": "各区总量"},
    "ak_axis": {"en": "1 − σ²_post/σ²_prior", "zh": "1 − σ²后验/σ²先验"},
    "city_total": {"en": "city total {v}", "zh": "全市总量 {v}"},
    "corr_title": {"en": "District totals: posterior error correlation", "zh": "各区总量：后验误差相关系数"},
    "corr_axis": {"en": "posterior correlation", "zh": "后验相关系数"},
    "left_axis": {"en": "particles that left the domain (%)", "zh": "离开区域的粒子（%）"},
    "left_title": {"en": "Left the met domain early", "zh": "提前离开气象场区域"},
    "with_foot": {"en": "with a footprint", "zh": "有足迹"},
    "failed": {"en": "HYSPLIT failed", "zh": "HYSPLIT 失败"},
    "receptor_axis": {"en": "receptors", "zh": "受体数"},
    "failed_title": {"en": "Receptors: {bad} of {n} failed", "zh": "受体：{n} 个中 {bad} 个失败"},
    "goal": {"en": "WMO goal ±{v} ppm", "zh": "WMO 目标 ±{v} ppm"},
    "limit": {"en": "flag limit ±{v} ppm", "zh": "标记限值 ±{v} ppm"},
    "bias_axis": {"en": "calibrated − assigned (ppm)", "zh": "标定值 − 标称值（ppm）"},
    "time_axis": {"en": "time (UTC)", "zh": "时间（UTC）"},
    "target_title": {"en": "Target tank: {n} runs at {sites} sites", "zh": "目标气瓶：{sites} 个站点，{n} 次测量"},
    "sector_axis": {"en": "mean prior signal (ppm)", "zh": "平均先验信号（ppm）"},
    "sector_title": {"en": "Prior modelled enhancement by sector", "zh": "分部门先验模拟增量"},
    "enhancement": {"en": "prior enhancement", "zh": "先验增量"},
    "industry": {"en": "industry", "zh": "工业"}, "road": {"en": "road", "zh": "交通"},
    "residential": {"en": "residential", "zh": "居民"}, "power": {"en": "power", "zh": "电力"},
    "bio": {"en": "biosphere", "zh": "生物圈"}, "unattributed": {"en": "unattributed", "zh": "未归入"},
    "total": {"en": "total", "zh": "总量"},
}


def _t(key, lang: str, sep: str = "\n", **fields) -> str:
    """A label in ``lang`` (``both``: Chinese, then English after ``sep``); ``key`` a LABELS key or a
    ``{"en", "zh"}`` message; an unknown sector name is shown as it is."""
    msg = LABELS.get(key, {"en": str(key), "zh": str(key)}) if isinstance(key, str) else key
    return tr(fill(msg, **fields), lang, sep=sep)


@contextmanager
def _language(lang: str):
    """Draw with the shipped CJK font as fallback when the labels hold Chinese."""
    if lang == "en":
        yield
    else:
        from . import fonts

        with plt.rc_context(fonts.rc()):
            yield


def _name(name_en: str, lang: str, names_zh: dict | None) -> str:
    return tr(district_msg(name_en, names_zh), lang, sep=" ")


def _log_norm(fields) -> LogNorm | None:
    vmax = max((float(np.nanmax(f)) for f in fields if np.size(f)), default=0.0)
    return LogNorm(vmin=vmax * 10.0 ** -LOG_DECADES, vmax=vmax) if vmax > 0 else None


def _district_shapes(geojson, lang: str = "en"):
    """(geometries, labels in ``lang``) of the districts file (empty without one)."""
    if geojson is None:
        return [], []
    ds = read_districts(geojson)
    return [d.geometry for d in ds], [_name(d.name_en, lang, {d.name_en: d.name}) for d in ds]


def district_names_zh(geojson) -> dict:
    """name_en -> Chinese ``name`` of the districts file (empty without one)."""
    return {d.name_en: d.name for d in read_districts(geojson)} if geojson is not None else {}


def _foot_panel(ax, field, lat_e, lon_e, norm):
    shown = np.ma.masked_less_equal(field, norm.vmin if norm else 0.0)
    return ax.pcolormesh(lon_e, lat_e, shown, cmap="YlGnBu", norm=norm, transform=PC, zorder=1, shading="flat")


def _png_bytes_loose(fig) -> bytes:
    """PNG bytes of a figure whose colour bar spans several axes (no tight layout)."""
    import io

    from .maps import _PNG_META, DPI

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata=_PNG_META, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def mean_footprints_png(sens: Sensitivity, geojson=None, stations=(), lang: str = "en") -> bytes:
    """One map per site of its mean footprint, log scale shared by every site."""
    sites = [s for s in sens.sites if s in sens.mean]
    if not sites:
        raise ValueError("no site has a receptor with a footprint: no mean footprint to draw")
    ncol = min(3, len(sites))
    nrow = -(-len(sites) // ncol)
    with _language(lang):
        fig = plt.figure(figsize=(4.2 * ncol, 4.4 * nrow + 0.6))
        norm = _log_norm([sens.mean[s] for s in sites])
        geoms, _ = _district_shapes(geojson)
        where = {str(s["id"]): s for s in stations}
        extent = [sens.lon_edges[0], sens.lon_edges[-1], sens.lat_edges[0], sens.lat_edges[-1]]
        m = None
        for k, s in enumerate(sites):
            ax = fig.add_subplot(nrow, ncol, k + 1, projection=PC)
            ax.set_extent(extent, crs=PC)
            m = _foot_panel(ax, sens.mean[s], sens.lat_edges, sens.lon_edges, norm)
            _overlay(ax, geoms, [""] * len(geoms), [where[s]] if s in where else [])
            ax.set_title(_t("receptors", lang, sep=" ", site=s, n=sens.n_receptors[s]), fontsize=10)
        fig.colorbar(m, ax=fig.axes, orientation="horizontal", shrink=0.6, pad=0.04,
                     label=_t("foot_unit", lang))
        return _png_bytes_loose(fig)


def network_sensitivity_png(sens: Sensitivity, geojson=None, stations=(), lang: str = "en") -> bytes:
    """The network's sensitivity (sum of every footprint) on a log scale, districts and stations."""
    with _language(lang):
        geoms, names = _district_shapes(geojson, lang)
        extent = [sens.lon_edges[0], sens.lon_edges[-1], sens.lat_edges[0], sens.lat_edges[-1]]
        fig, ax = _map_axes(extent, _t("network", lang, n=sum(sens.n_receptors.values())))
        norm = _log_norm([sens.total])
        m = _foot_panel(ax, sens.total, sens.lat_edges, sens.lon_edges, norm)
        _overlay(ax, geoms, names, [s for s in stations if str(s["id"]) in sens.sites])
        fig.colorbar(m, ax=ax, orientation="horizontal", pad=0.06, shrink=0.8, label=_t("sum_unit", lang))
        return _png_bytes(fig)


def averaging_kernel_png(lat_e, lon_e, ak, district_ak: pd.Series, geojson=None, stations=(),
                         lang: str = "en") -> bytes:
    """Averaging kernel of block means (map) and of district totals (bars)."""
    with _language(lang):
        geoms, names = _district_shapes(geojson, lang)
        names_zh = district_names_zh(geojson)
        fig = plt.figure(figsize=(12.5, 6.2))
        ax = fig.add_subplot(1, 2, 1, projection=PC)
        ax.set_extent([lon_e[0], lon_e[-1], lat_e[0], lat_e[-1]], crs=PC)
        top = float(np.nanmax(ak)) if np.isfinite(ak).any() else 1.0
        m = ax.pcolormesh(lon_e, lat_e, np.ma.masked_invalid(ak), cmap="YlGnBu", vmin=0.0, vmax=max(0.05, top),
                          transform=PC, zorder=1, shading="flat")  # colours scaled to the largest block
        _overlay(ax, geoms, names, stations)
        ax.set_title(_t("ak_blocks", lang, sep=" "), fontsize=10)
        fig.colorbar(m, ax=ax, orientation="horizontal", pad=0.05, shrink=0.8)
        bx = fig.add_subplot(1, 2, 2)
        d = district_ak.drop(index=CITY, errors="ignore")
        y = np.arange(len(d))
        bx.barh(y, d.to_numpy(), color="#3a78b5", edgecolor="0.2")
        if CITY in district_ak.index:
            v = float(district_ak[CITY])
            bx.axvline(v, color="#d62728", linestyle="--", label=_t("city_total", lang, sep=" ", v=f"{v:.2f}"))
            bx.legend(frameon=False, fontsize=8, loc="lower right")
        bx.set_yticks(y, [_name(n, lang, names_zh) for n in d.index])
        bx.invert_yaxis()
        bx.set_xlim(0, min(1.0, max(0.1, 1.15 * float(np.nanmax(district_ak.to_numpy(float))))))
        bx.set_xlabel(_t("ak_axis", lang, sep=" "))
        bx.set_title(_t("ak_districts", lang, sep=" "), fontsize=10)
        return _png_bytes(fig)


def district_correlation_png(R: pd.DataFrame, names_zh: dict | None = None, lang: str = "en") -> bytes:
    """Heat map of the district posterior correlations with their values."""
    n = len(R)
    with _language(lang):
        fig, ax = plt.subplots(figsize=(0.55 * n + 2.8 + (1.0 if lang == "both" else 0.0), 0.5 * n + 1.8))
        im = ax.imshow(R.to_numpy(), cmap="RdBu_r", vmin=-1.0, vmax=1.0)
        for i in range(n):
            for j in range(n):
                v = float(R.iat[i, j])
                if i != j and np.isfinite(v):
                    ax.text(j, i, f"{v:.2f}".replace("0.", "."), ha="center", va="center", fontsize=7,
                            color="white" if abs(v) > 0.6 else "0.15")
        ax.set_xticks(np.arange(n), [_name(c, lang, names_zh) for c in R.columns], rotation=45, ha="right")
        ax.set_yticks(np.arange(n), [_name(c, lang, names_zh) for c in R.index])
        fig.colorbar(im, ax=ax, fraction=0.045, pad=0.03, label=_t("corr_axis", lang, sep=" "))
        ax.set_title(_t("corr_title", lang), fontsize=11)
        return _png_bytes(fig)


def transport_losses_png(losses: pd.DataFrame, lang: str = "en") -> bytes:
    """Left-domain share per receptor (dots, median bar) and receptors with a footprint / failed."""
    sites = sorted(losses["site"].unique())
    with _language(lang):
        fig, (ax, bx) = plt.subplots(1, 2, figsize=(max(7.0, 1.1 * len(sites) + 4.5), 3.8))
        for i, s in enumerate(sites):
            v = losses.loc[(losses["site"] == s) & ~losses["failed"], "left_domain_fraction"].dropna().to_numpy()
            if v.size:
                jitter = (np.arange(v.size) % 7 - 3) * 0.04
                ax.plot(i + jitter, 100 * v, "o", color="#3a78b5", markersize=3, alpha=0.7)
                ax.plot([i - 0.3, i + 0.3], [100 * np.median(v)] * 2, "-", color="k", linewidth=2)
        ax.set_xticks(range(len(sites)), sites)
        ax.set_ylim(0, 100)
        ax.set_ylabel(_t("left_axis", lang))
        ax.set_title(_t("left_title", lang, sep=" "), fontsize=10)
        ok = [int(((losses["site"] == s) & ~losses["failed"]).sum()) for s in sites]
        bad = [int(((losses["site"] == s) & losses["failed"]).sum()) for s in sites]
        bx.bar(sites, ok, color="#2ca02c", label=_t("with_foot", lang, sep=" "))
        bx.bar(sites, bad, bottom=ok, color="#d62728", label=_t("failed", lang, sep=" "))
        bx.set_ylabel(_t("receptor_axis", lang))
        bx.set_ylim(0, 1.3 * max(1, max(np.add(ok, bad))))
        bx.yaxis.get_major_locator().set_params(integer=True)
        bx.set_title(_t("failed_title", lang, sep=" ", bad=sum(bad), n=sum(ok) + sum(bad)), fontsize=10)
        bx.legend(frameon=False, fontsize=8)
        return _png_bytes(fig)


def target_tank_png(runs: pd.DataFrame, summary: pd.DataFrame, lang: str = "en") -> bytes:
    """Target-tank bias of every run against time per site, WMO goal band and the acting limit."""
    goal = float(np.nanmax(summary["goal"])) if summary["goal"].notna().any() else np.nan
    limit = float(np.nanmax(summary["max_bias"])) if summary["max_bias"].notna().any() else np.nan
    with _language(lang):
        fig, ax = plt.subplots(figsize=(9.0, 3.8))
        if np.isfinite(goal):
            ax.axhspan(-goal, goal, color="0.88", label=_t("goal", lang, sep=" ", v=f"{goal:g}"))
        if np.isfinite(limit):
            for sign in (-1, 1):
                ax.axhline(sign * limit, color="#d62728", linestyle="--", linewidth=1,
                           label=_t("limit", lang, sep=" ", v=f"{limit:g}") if sign > 0 else None)
        for s, g in runs.groupby("site", sort=True):
            ax.plot(pd.DatetimeIndex(g["time"]), g["bias"], "o-", markersize=4, linewidth=0.8, label=str(s))
        ax.axhline(0, color="0.3", linewidth=0.6)
        top = max(np.nan_to_num(limit), np.nan_to_num(goal), float(runs["bias"].abs().max()))
        ax.set_ylim(-1.25 * top, 1.6 * top)  # room for the legend above the limit line
        ax.set_ylabel(_t("bias_axis", lang))
        ax.set_xlabel(_t("time_axis", lang, sep=" "))
        ax.set_title(_t("target_title", lang, sep=" ", n=len(runs), sites=runs["site"].nunique()), fontsize=10)
        ax.legend(fontsize=7, ncol=4, frameon=False, loc="upper left")
        fig.autofmt_xdate()
        return _png_bytes(fig)


SECTOR_COLOURS = {"industry": "#8c564b", "road": "#ff7f0e", "residential": "#9467bd", "power": "#d62728",
                  "bio": "#2ca02c", "unattributed": "#7f7f7f"}


def sector_signal_png(sig: pd.DataFrame, lang: str = "en") -> bytes:
    """Stacked bars of the mean prior signal per sector at each site (negative parts below zero)."""
    sites = list(sig.index)
    x = np.arange(len(sites))
    with _language(lang):
        fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(sites) + 3.5), 4.2))
        up, down = np.zeros(len(sites)), np.zeros(len(sites))
        cycle = iter(plt.rcParams["axes.prop_cycle"].by_key()["color"])
        for sector in sig.columns:
            v = sig[sector].to_numpy(float)
            pos, neg = np.where(v > 0, v, 0.0), np.where(v < 0, v, 0.0)
            colour = SECTOR_COLOURS.get(sector) or next(cycle)
            label = _t(sector, lang, sep=" ")
            ax.bar(x, pos, 0.6, bottom=up, color=colour, edgecolor="0.2", linewidth=0.4, label=label)
            ax.bar(x, neg, 0.6, bottom=down, color=colour, edgecolor="0.2", linewidth=0.4)
            up, down = up + pos, down + neg
        ax.plot(x, sig.sum(axis=1).to_numpy(), "D", color="k", markersize=6, label=_t("enhancement", lang, sep=" "))
        ax.axhline(0, color="0.2", linewidth=0.7)
        ax.set_xticks(x, sites)
        ax.set_ylabel(_t("sector_axis", lang))
        ax.set_title(_t("sector_title", lang, sep=" "), fontsize=11)
        ax.legend(frameon=False, fontsize=8, ncol=1, loc="center left", bbox_to_anchor=(1.0, 0.5))
        return _png_bytes(fig)


# --------------------------------------------------------------------------------------------------
# the report's section
# --------------------------------------------------------------------------------------------------
FIGURE_KEYS = ("mean_footprints", "network_sensitivity", "averaging_kernel", "district_correlation",
               "transport_losses", "target_tank", "sector_signal")


@dataclass
class RunFiles:
    """The files of a month the figures are drawn from (any may be None: its figures are skipped and
    named as missing)."""

    jacobian: object = None        # {R}/jacobian_hourly.npz
    posterior: object = None       # {R}/posterior.nc
    districts: object = None       # {R}/districts.csv
    diagnostics: dict | None = None  # {R}/diagnostics.json, loaded
    modelled: pd.DataFrame | None = None  # {R}/modelled.csv, loaded
    footprints: tuple = ()         # {R}/footprints/{site}/{day}.nc
    failures: object = None        # {R}/footprints/failures.csv
    hourly_dirs: tuple = ()        # {R}/obs/hourly/{site}
    geojson: object = None         # the districts
    stations: tuple = ()           # stations.yaml entries of the run's sites


def _have(path) -> bool:
    return path is not None and Path(path).is_file()


def _sensitivity_pngs(f: RunFiles, out: dict, missing: list, lang: str) -> None:
    if not _have(f.jacobian):
        missing.append(fill(MISSING["no_jacobian"], file=f.jacobian))
        return
    sens = footprint_sensitivity(f.jacobian)
    if not sens.mean:
        missing.append(fill(MISSING["no_footprint"]))
        return
    out["mean_footprints"] = mean_footprints_png(sens, f.geojson, f.stations, lang)
    out["network_sensitivity"] = network_sensitivity_png(sens, f.geojson, f.stations, lang)


def _inversion_pngs(f: RunFiles, out: dict, missing: list, lang: str) -> None:
    if _have(f.posterior) and _have(f.districts):
        lat_e, lon_e, ak = block_averaging_kernel(f.posterior)
        out["averaging_kernel"] = averaging_kernel_png(lat_e, lon_e, ak, district_averaging_kernel(f.districts),
                                                       f.geojson, f.stations, lang)
    else:
        missing.append(fill(MISSING["no_posterior"], posterior=f.posterior, districts=f.districts))
    R = district_correlation(f.diagnostics) if f.diagnostics is not None else None
    if R is not None and len(R) > 1:
        out["district_correlation"] = district_correlation_png(R, district_names_zh(f.geojson), lang)
    else:
        missing.append(fill(MISSING["no_covariance"]))
    sig = sector_signal(f.modelled) if f.modelled is not None else pd.DataFrame()
    if len(sig):
        out["sector_signal"] = sector_signal_png(sig, lang)
    else:
        missing.append(fill(MISSING["no_sectors"]))


def _station_pngs(f: RunFiles, out: dict, missing: list, lang: str) -> None:
    from stations.target import target_check

    if f.footprints:
        out["transport_losses"] = transport_losses_png(transport_losses(f.footprints, f.failures), lang)
    else:
        missing.append(fill(MISSING["no_site_days"]))
    runs, summary = target_check(f.hourly_dirs) if f.hourly_dirs else (pd.DataFrame(), pd.DataFrame())
    if len(runs):
        out["target_tank"] = target_tank_png(runs, summary, lang)
    else:
        missing.append(fill(MISSING["no_target"]))


def figure_pngs(files: RunFiles, missing: list, lang: str = "en") -> dict:
    """{key: PNG bytes} of every figure of ``FIGURE_KEYS`` the files allow (in that order), labelled in
    ``lang`` (zh, en or both); what cannot be drawn is appended to ``missing`` with the reason."""
    out: dict = {}
    _sensitivity_pngs(files, out, missing, lang)
    _inversion_pngs(files, out, missing, lang)
    _station_pngs(files, out, missing, lang)
    return {k: out[k] for k in FIGURE_KEYS if k in out}


def network_figures(files: RunFiles, missing: list, lang: str = "en") -> list:
    """The report's figures (`products.sections.Figure`: PNG data URI and the caption as a
    ``{"en", "zh"}`` message the template translates) in ``FIGURE_KEYS`` order."""
    from .sections import png_figure

    return [png_figure(png, CAPTIONS[k]) for k, png in figure_pngs(files, missing, lang).items()]


#: where each figure goes in the report: the flux-map grid, under the district table, with the stations
PLACES = {"maps": ("network_sensitivity", "averaging_kernel"), "districts": ("district_correlation",),
          "stations": ("mean_footprints", "sector_signal", "transport_losses", "target_tank")}


def place_figures(ctx: dict, files: RunFiles, missing: list, lang: str = "en") -> dict:
    """Add the run's figures to the report context ``ctx`` (`products.report.build_report`): the
    network sensitivity and averaging kernel after the flux maps, the district correlation under the
    district table, the mean footprints, prior signal by sector, transport losses and target tank after
    the station time series; labels inside the figures in ``lang``. Returns {key: PNG bytes}."""
    from .sections import png_figure

    pngs = figure_pngs(files, missing, lang)
    slots = {"maps": ctx["maps"], "districts": ctx["districts"]["figures"], "stations": ctx["station_figures"]}
    for place, keys in PLACES.items():
        slots[place].extend(png_figure(pngs[k], CAPTIONS[k]) for k in keys if k in pngs)
    return pngs
