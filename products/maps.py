"""PNG figures of a month: flux maps (cartopy, shipped district geometries only), station time
series, district bar chart, residual histograms and data availability.

Only the GeoJSON shipped in config/ is drawn: no Natural Earth data (no coastlines, no
features), so nothing is downloaded. Matplotlib runs on the Agg backend.

Language (``lang``, config ``report.language``): titles, axis labels and legends through
`products.i18n` (in ``both``: Chinese above English), district names in characters from the
districts GeoJSON; Chinese glyphs come from the shipped font (`products.fonts.rc`).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import cartopy.crs as ccrs  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib import patheffects  # noqa: E402
from matplotlib.colors import TwoSlopeNorm  # noqa: E402

from gzcarbon.atomic import atomic_write  # noqa: E402
from gzcarbon.config import ReportConfig  # noqa: E402
from gzcarbon.districts import read_districts  # noqa: E402
from gzcarbon.names import CITY, GASES  # noqa: E402

from . import fonts, i18n  # noqa: E402
from .flux_netcdf import _period, block_edges, posterior_grid  # noqa: E402
from .outer import is_nested, outer_map  # noqa: E402
from .settings import SELECT_HOURS_LOCAL, hours_per_day as window_hours  # noqa: E402
from .inputs import (  # noqa: E402
    load_districts_table,
    load_modelled,
    load_posterior,
    load_selected,
    load_stations,
)

log = logging.getLogger(__name__)

PC = ccrs.PlateCarree()
DPI = 110
_PNG_META = {"Software": None}  # same inputs -> same bytes
_HALO = [patheffects.withStroke(linewidth=2.2, foreground="white")]

# file names in the maps directory (the report embeds them in this order)
MAP_FILES = {
    "prior_flux": "prior_flux.png",
    "posterior_flux": "posterior_flux.png",
    "flux_difference": "flux_difference.png",
    "uncertainty_reduction": "uncertainty_reduction.png",
    "district_totals": "district_totals.png",
    "residuals": "residuals.png",
    "availability": "availability.png",
}
TIMESERIES = "timeseries_{site}.png"
#: config ``report.language`` by default
LANGUAGE = ReportConfig().language


def _t(text, lang, sep="\n", **fields) -> str:
    """A label in ``lang`` (``both``: Chinese, then English on the next line, or after ``sep``)."""
    return i18n.tr(text, lang, sep=sep, **fields)


@contextmanager
def _language(lang):
    """Draw with the shipped CJK font as fallback when the labels hold Chinese."""
    if lang == "en":
        yield
    else:
        with plt.rc_context(fonts.rc()):
            yield


def safe_name(text) -> str:
    """A file-name-safe version of a site id."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", str(text))


def _save(fig, path: Path) -> Path:
    """The figure as PNG at ``path`` through the atomic writer; closes it."""
    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=DPI, metadata=_PNG_META))
    finally:
        plt.close(fig)


def _map_axes(extent, title):
    fig = plt.figure(figsize=(7.0, 7.2))
    ax = fig.add_subplot(1, 1, 1, projection=PC)
    ax.set_extent(extent, crs=PC)
    ax.set_title(title, fontsize=11)
    gl = ax.gridlines(draw_labels=True, linewidth=0.3, color="0.6", alpha=0.6)
    gl.top_labels = gl.right_labels = False
    return fig, ax


def _overlay(ax, geoms, names, sites):
    ax.add_geometries(geoms, crs=PC, facecolor="none", edgecolor="0.15", linewidth=0.7, zorder=3)
    for g, n in zip(geoms, names):
        p = g.representative_point()
        ax.text(p.x, p.y, n, fontsize=7, color="0.1", ha="center", va="center",
                transform=PC, zorder=4, path_effects=_HALO)
    for s in sites:
        ax.plot(s["lon"], s["lat"], marker="^", color="k", markerfacecolor="yellow",
                markersize=8, transform=PC, zorder=5, linestyle="none")
        ax.text(s["lon"] + 0.015, s["lat"] + 0.012, str(s["id"]), fontsize=8, weight="bold",
                transform=PC, zorder=5, path_effects=_HALO)


def plot_field_map(field, lat_edges, lon_edges, title, label, path, geoms, names, sites,
                   cmap="viridis", norm=None, vmin=None, vmax=None) -> Path:
    """One gridded field (lat, lon) on cell edges with districts and station markers."""
    extent = [lon_edges[0], lon_edges[-1], lat_edges[0], lat_edges[-1]]
    fig, ax = _map_axes(extent, title)
    m = ax.pcolormesh(lon_edges, lat_edges, np.ma.masked_invalid(field), cmap=cmap, norm=norm,
                      vmin=None if norm else vmin, vmax=None if norm else vmax,
                      transform=PC, zorder=1, shading="flat")
    _overlay(ax, geoms, names, sites)
    fig.colorbar(m, ax=ax, orientation="horizontal", pad=0.06, shrink=0.8, label=label)
    return _save(fig, Path(path))


def gas_text(msg: str, gas: str):
    """A CO₂ figure label (an English key of the i18n catalogue) for another gas: the same text with
    the gas's formula, as an {en, zh} message (the gas formula is the same in both languages)."""
    if gas == "co2":
        return msg
    sub = GAS_FORMULA[gas]
    return {"en": msg.replace("CO₂", sub), "zh": i18n.ZH[msg].replace("CO₂", sub)}


#: formula of each gas as the figures write it
GAS_FORMULA = {"co2": "CO₂", "ch4": "CH₄", "co": "CO"}


def flux_maps(posterior_path, geojson_path, stations, out_dir, lang: str = "en", gas: str = "co2") -> list[Path]:
    """prior, posterior, difference and uncertainty-reduction maps of the period (``gas``: the
    labels and units of gzcarbon.names.GASES)."""
    post = load_posterior(posterior_path)
    start, end = _period(post)
    sel = post.sel(time=slice(np.datetime64(start), np.datetime64(end) - np.timedelta64(1, "s")))
    prior = sel["prior_flux"].mean("time").values
    poster = sel["posterior_flux"].mean("time").values
    grid = posterior_grid(post, posterior_path)
    lat_e, lon_e = grid.lat_edges, grid.lon_edges
    sp = post["prior_sigma_block"].values.astype(float)
    sq = post["posterior_sigma_block"].values.astype(float)
    post.close()
    blat_e, blon_e = block_edges(lat_e, sp.shape[0]), block_edges(lon_e, sp.shape[1])
    districts = read_districts(geojson_path)
    names = [i18n.district_name(d.name_en, lang, {d.name_en: d.name}) for d in districts]
    geoms = [d.geometry for d in districts]
    out = Path(out_dir)
    period = i18n.fill("{start} to {end} UTC", start=f"{start:%Y-%m-%d %H:%M}", end=f"{end:%Y-%m-%d %H:%M}")
    unit = GASES[gas]["flux_units_text"]
    vmax = float(np.nanpercentile(np.concatenate([prior.ravel(), poster.ravel()]), 99.5))
    vmin = float(min(np.nanmin(prior), np.nanmin(poster), 0.0))
    if vmax <= vmin:
        vmax = vmin + 1.0
    paths = [
        plot_field_map(prior, lat_e, lon_e, _t(gas_text("Prior CO₂ flux, mean {period}", gas), lang, period=period), unit,
                       out / MAP_FILES["prior_flux"], geoms, names, stations, "magma_r",
                       vmin=vmin, vmax=vmax),
        plot_field_map(poster, lat_e, lon_e, _t(gas_text("Posterior CO₂ flux, mean {period}", gas), lang, period=period), unit,
                       out / MAP_FILES["posterior_flux"], geoms, names, stations, "magma_r",
                       vmin=vmin, vmax=vmax),
    ]
    diff = poster - prior
    # A few point-source cells carry corrections far larger than the rest: scale the colours to
    # the 99.5th percentile of |diff| so the spatial pattern stays visible (extremes saturate).
    absd = np.abs(diff[np.isfinite(diff)])
    lim = float(np.percentile(absd, 99.5)) if absd.size else 0.0
    lim = lim or (float(absd.max()) if absd.size else 0.0) or 1.0
    paths.append(plot_field_map(diff, lat_e, lon_e, _t("Posterior − prior flux (colours saturate at "
                                                       "the 99.5th percentile)", lang), unit,
                                out / MAP_FILES["flux_difference"], geoms, names, stations,
                                "RdBu_r", norm=TwoSlopeNorm(0.0, -lim, lim)))
    with np.errstate(divide="ignore", invalid="ignore"):
        ur = np.where(sp > 0, 1.0 - sq / sp, np.nan)
    paths.append(plot_field_map(ur, blat_e, blon_e, _t("Uncertainty reduction 1 − σ_post/σ_prior "
                                                       "(period-mean flux, coarse blocks)", lang),
                                _t("fraction", lang, sep=" / "),
                                out / MAP_FILES["uncertainty_reduction"], geoms, names, stations,
                                "YlGnBu", vmin=0.0, vmax=max(0.05, float(np.nanmax(ur)) if
                                                            np.isfinite(ur).any() else 1.0)))
    return paths


def district_bar_chart(districts_path, path, lang: str = "en", names_zh=None, gas: str = "co2") -> Path:
    """Prior ± σ, posterior ± σ and truth (when present) per district, kt of the gas (CO2 by default)."""
    t = load_districts_table(districts_path)
    d = t.drop(index=CITY)
    x = np.arange(len(d))
    w = 0.38
    kt = 1e-3
    fig, ax = plt.subplots(figsize=(max(6.0, 0.8 * len(d) + 2), 4.5))
    ax.bar(x - w / 2, d["prior_t"] * kt, w, yerr=d["prior_sigma_t"] * kt, capsize=3,
           color="#bbbbbb", edgecolor="0.3", label=_t("prior ± σ", lang, sep=" / "))
    ax.bar(x + w / 2, d["posterior_t"] * kt, w, yerr=d["posterior_sigma_t"] * kt, capsize=3,
           color="#3a78b5", edgecolor="0.2", label=_t("posterior ± σ", lang, sep=" / "))
    if d["truth_t"].notna().any():
        ax.plot(x, d["truth_t"] * kt, "D", color="#d62728", markersize=6,
                label=_t("truth (demo)", lang, sep=" / "))
    ax.set_xticks(x, [i18n.district_name(n, lang, names_zh) for n in d.index], rotation=35, ha="right")
    ax.set_ylabel(_t(gas_text("kt CO₂ over the period", gas), lang))
    ax.axhline(0, color="0.3", linewidth=0.6)
    ax.legend(frameon=False)
    ax.set_title(_t(gas_text("District CO₂ emissions", gas), lang, sep=" / "))
    fig.tight_layout()
    return _save(fig, Path(path))


def site_timeseries(modelled: pd.DataFrame, site: str, path, lang: str = "en") -> Path:
    """Observed, prior-modelled, posterior-modelled and background at one site."""
    m = modelled[modelled["site"] == site].sort_values("time")
    fig, ax = plt.subplots(figsize=(9.0, 3.6))
    t = m["time"].dt.tz_convert(None)
    def lab(text):
        return _t(text, lang, sep=" / ")

    ax.plot(t, m["observed"], "o", color="k", markersize=3.5, label=lab("observed"))
    ax.plot(t, m["prior_model"], "s", color="#7f7f7f", markersize=3, label=lab("prior model"))
    ax.plot(t, m["posterior_model"], "^", color="#1f77b4", markersize=3.5, label=lab("posterior model"))
    if m["background_prior"].notna().any():
        ax.plot(t, m["background_prior"], "_", color="#2ca02c", markersize=8,
                label=lab("background (prior)"))
    if m["background_posterior"].notna().any():
        ax.plot(t, m["background_posterior"], "_", color="#d62728", markersize=8,
                label=lab("background (posterior)"))
    ax.set_ylabel(lab("CO₂ (ppm)"))
    ax.set_xlabel(lab("time (UTC)"))
    ax.set_title(_t("{site}: observed and modelled CO₂ ({n} hours used)", lang, sep=" / ", site=site, n=len(m)))
    ax.legend(fontsize=7, ncol=5, frameon=False, loc="upper left")
    fig.autofmt_xdate()
    fig.tight_layout()
    return _save(fig, Path(path))


def residual_histograms(modelled: pd.DataFrame, path, lang: str = "en") -> Path:
    """Observed − modelled for prior and posterior, all sites."""
    rp = (modelled["observed"] - modelled["prior_model"]).dropna()
    rq = (modelled["observed"] - modelled["posterior_model"]).dropna()
    fig, ax = plt.subplots(figsize=(6.0, 3.8))
    both = np.concatenate([rp.values, rq.values]) if len(rp) + len(rq) else np.zeros(1)
    bins = np.linspace(np.nanmin(both) - 0.5, np.nanmax(both) + 0.5, 31)
    ax.hist(rp, bins=bins, alpha=0.6, color="#7f7f7f",
            label=_t("prior: mean {m}, sd {s}", lang, sep=" / ", m=f"{rp.mean():.2f}", s=f"{rp.std():.2f}"))
    ax.hist(rq, bins=bins, alpha=0.6, color="#1f77b4",
            label=_t("posterior: mean {m}, sd {s}", lang, sep=" / ", m=f"{rq.mean():.2f}", s=f"{rq.std():.2f}"))
    ax.set_xlabel(_t("observed − modelled (ppm)", lang, sep=" / "))
    ax.set_ylabel(_t("hours", lang, sep=" / "))
    ax.legend(frameon=False, fontsize=8)
    ax.set_title(_t("Residuals, all sites", lang, sep=" / "))
    fig.tight_layout()
    return _save(fig, Path(path))


def availability_table(selected: pd.DataFrame, modelled: pd.DataFrame, site_ids, days,
                       hours_per_day: int) -> pd.DataFrame:
    """Per site: selected hours, expected hours, fraction, hours used, first/last time."""
    rows = []
    expected = len(days) * hours_per_day
    for s in site_ids:
        sel = selected[selected["site"] == s]
        if "intake_height" in sel and len(sel):
            sel = sel[sel["intake_height"] == sel["intake_height"].max()]
        n_sel = int(sel["time"].nunique())
        used = int((modelled["site"] == s).sum())
        rows.append({
            "site": s,
            "selected_hours": n_sel,
            "expected_hours": expected,
            "fraction": n_sel / expected if expected else np.nan,
            "used_in_inversion": used,
            "first": sel["time"].min() if n_sel else pd.NaT,
            "last": sel["time"].max() if n_sel else pd.NaT,
        })
    return pd.DataFrame(rows)


def availability_plot(selected: pd.DataFrame, site_ids, days, hours_per_day: int, path,
                      lang: str = "en") -> Path:
    """Site × day grid of the fraction of selection-window hours present."""
    mat = np.zeros((len(site_ids), len(days)))
    day_index = {d: j for j, d in enumerate(days)}
    for i, s in enumerate(site_ids):
        sel = selected[selected["site"] == s]
        for d, n in sel.groupby(sel["time"].dt.strftime("%Y%m%d"))["time"].nunique().items():
            if d in day_index:
                mat[i, day_index[d]] = n / hours_per_day
    fig, ax = plt.subplots(figsize=(max(5.0, 0.3 * len(days) + 3), 0.45 * len(site_ids) + 1.6))
    im = ax.imshow(mat, vmin=0, vmax=1, cmap="Greens", aspect="auto")
    ax.set_yticks(range(len(site_ids)), site_ids)
    step = max(1, len(days) // 10)
    ax.set_xticks(range(0, len(days), step), [days[j][-2:] for j in range(0, len(days), step)])
    ax.set_xlabel(_t("day of month (UTC)", lang, sep=" / "))
    ax.set_title(_t("Selected hours / window hours", lang, sep=" / "))
    fig.colorbar(im, ax=ax, shrink=0.8)
    fig.tight_layout()
    return _save(fig, Path(path))


def _partial_dir(out_dir) -> tuple[Path, Path]:
    """(final, partial): the figures are drawn into the empty hidden sibling ``partial``, which
    :func:`_replace_dir` renames to ``final`` only when all are written, so a killed job never
    leaves a half-filled directory that looks finished."""
    final = Path(out_dir)
    final.parent.mkdir(parents=True, exist_ok=True)
    out = final.with_name(f".{final.name}.partial")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir()
    return final, out


def _replace_dir(out: Path, final: Path) -> None:
    if final.exists():
        shutil.rmtree(final)
    os.replace(out, final)


def make_all_figures(posterior_path, districts_path, modelled_path, selected_path, stations_path,
                     geojson_path, out_dir, *, site_ids=None, days=None,
                     hours_per_day: int = window_hours(SELECT_HOURS_LOCAL),
                     language: str = LANGUAGE) -> list[Path]:
    """Every PNG of the month into `out_dir`; returns the paths written. ``language``: of the
    labels (config ``report.language``: zh, en or both).

    The figures are drawn into a temporary sibling directory that replaces `out_dir` only when
    all are written, so a killed job never leaves a half-filled directory that looks finished.
    """
    final, out = _partial_dir(out_dir)
    stations = load_stations(stations_path)
    if site_ids is not None:
        stations = [s for s in stations if s["id"] in set(site_ids)]
    ids = [str(s["id"]) for s in stations]
    modelled = load_modelled(modelled_path)
    selected = load_selected(selected_path)
    if days is None:
        days = sorted(set(selected["time"].dt.strftime("%Y%m%d")))
    i18n.codes(language)
    names_zh = {d.name_en: d.name for d in read_districts(geojson_path)}
    with _language(language):
        paths = flux_maps(posterior_path, geojson_path, stations, out, language)
        paths.append(district_bar_chart(districts_path, out / MAP_FILES["district_totals"], language,
                                        names_zh))
        paths.append(residual_histograms(modelled, out / MAP_FILES["residuals"], language))
        paths.append(availability_plot(selected, ids, list(days), hours_per_day,
                                       out / MAP_FILES["availability"], language))
        for s in ids:
            if (modelled["site"] == s).any():
                paths.append(site_timeseries(modelled, s, out / TIMESERIES.format(site=safe_name(s)),
                                             language))
        with xr.open_dataset(posterior_path) as post:
            nested = is_nested(post)
        if nested:  # the outer cells of a nested run (config outer_grid)
            paths += outer_map(posterior_path, out, lang="zh" if language == "zh" else "en")
    _replace_dir(out, final)
    paths = [final / p.name for p in paths]
    log.info("wrote %d figures to %s", len(paths), final)
    return paths


def _png_bytes(fig) -> bytes:
    """The figure as PNG bytes (tight layout, the module's DPI and metadata); closes it."""
    import io

    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata=_PNG_META)
    plt.close(fig)
    return buf.getvalue()


def budget_chart_png(table: pd.DataFrame, lang: str = "en", names_zh=None) -> bytes:
    """Share of the pro-rated budget used per district (± 1σ), as PNG bytes (for the report).

    `table`: products.budgets.budget_table output (used_pct, used_sigma_pct by district).
    """
    with _language(lang):
        return _budget_chart(table, lang, names_zh)


def _budget_chart(table: pd.DataFrame, lang: str, names_zh) -> bytes:
    n = len(table)
    fig, ax = plt.subplots(figsize=(max(4.5, 0.7 * n + 2.5), 3.8))
    x = np.arange(n)
    colours = ["#d62728" if s == "likely over budget" else "#2ca02c" if s == "within budget"
               else "#e69500" for s in table["status"]]
    ax.bar(x, table["used_pct"], 0.6, yerr=table["used_sigma_pct"], capsize=4, color=colours,
           edgecolor="0.2")
    ax.axhline(100, color="0.2", linestyle="--", linewidth=1, label=_t("pro-rated budget", lang, sep=" / "))
    ax.set_xticks(x, [i18n.district_name(d, lang, names_zh) for d in table.index], rotation=30, ha="right")
    ax.set_ylabel(_t("% of pro-rated budget used", lang))
    ax.set_ylim(0, max(120.0, float(np.nanmax(table["used_pct"] + table["used_sigma_pct"])) * 1.1))
    ax.legend(frameon=False, loc="upper left")
    ax.set_xlim(-0.7, n - 0.3)
    ax.set_title(_t("Budget used over the covered hours (± 1σ)", lang, sep=" / "), fontsize=11)
    return _png_bytes(fig)


def station_contribution_png(loss: pd.DataFrame, lang: str = "en", names_zh=None) -> bytes:
    """Heat map of the uncertainty reduction lost without each station (PNG bytes, for the report).

    ``loss``: stations × aggregates (districts and the city), percentage points of σ_prior
    (`products.report.station_contribution_tables`).
    """
    with _language(lang):
        return _station_contribution(loss, lang, names_zh)


def _station_contribution(loss: pd.DataFrame, lang: str, names_zh) -> bytes:
    n_s, n_a = loss.shape
    fig, ax = plt.subplots(figsize=(max(5.0, 0.62 * n_a + 2.2), max(2.4, 0.42 * n_s + 1.4)))
    vmax = max(1.0, float(np.nanmax(loss.to_numpy())))
    im = ax.imshow(loss.to_numpy(), cmap="Blues", vmin=0.0, vmax=vmax, aspect="auto")
    for i in range(n_s):
        for j in range(n_a):
            v = float(loss.iat[i, j])
            ax.text(j, i, f"{v:.0f}" if abs(v) >= 0.5 else "", ha="center", va="center", fontsize=8,
                    color="white" if v > 0.6 * vmax else "0.15")
    ax.set_xticks(np.arange(n_a), [i18n.district_name(c, lang, names_zh) for c in loss.columns],
                  rotation=35, ha="right")
    ax.set_yticks(np.arange(n_s), loss.index)
    cb = fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
    cb.set_label(_t("points of σ reduction lost", lang))
    ax.set_title(_t("Uncertainty reduction lost without each station", lang, sep=" / "), fontsize=11)
    return _png_bytes(fig)


def make_gas_figures(posterior_path, districts_path, stations_path, geojson_path, out_dir, *, gas: str,
                     site_ids=None, language: str = LANGUAGE) -> list[Path]:
    """The maps of another gas (CH4, CO) into `out_dir`: prior, posterior, difference and
    uncertainty-reduction maps and the district bar chart, labelled with the gas and its units; written
    into a temporary sibling directory that replaces `out_dir` when all are written."""
    final, out = _partial_dir(out_dir)
    stations = load_stations(stations_path)
    if site_ids is not None:
        stations = [s for s in stations if s["id"] in set(site_ids)]
    i18n.codes(language)
    names_zh = {d.name_en: d.name for d in read_districts(geojson_path)}
    with _language(language):
        paths = flux_maps(posterior_path, geojson_path, stations, out, language, gas=gas)
        paths.append(district_bar_chart(districts_path, out / MAP_FILES["district_totals"], language,
                                        names_zh, gas=gas))
    _replace_dir(out, final)
    paths = [final / p.name for p in paths]
    log.info("wrote %d %s figures to %s", len(paths), gas, final)
    return paths
