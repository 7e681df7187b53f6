"""Network design products (rule network_design_month, docs/network.md): a map of the city σ
reduction each candidate would give and a report page with the ranked table and the greedy steps."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from gzcarbon.atomic import atomic_write  # noqa: E402
from gzcarbon.districts import read_districts  # noqa: E402

from .maps import _HALO, PC, _map_axes, _overlay, _save  # noqa: E402


#: marker of each candidate type on the map (in-situ circle, column square, mobile diamond at its
#: start with its track drawn)
MARKERS = {"insitu": "o", "column": "s", "mobile": "D"}


def network_map(candidates: pd.DataFrame, greedy: pd.DataFrame, districts_geojson, stations, path,
                extent=None) -> Path:
    """Candidates coloured by the city σ reduction (%) each alone would give (marker by type; a
    mobile candidate's track drawn), the greedy choice numbered, the existing stations as
    triangles, the district outlines."""
    d = read_districts(districts_geojson)
    ends = candidates.dropna(subset=["to_lon", "to_lat"]) if "to_lon" in candidates else candidates.iloc[:0]
    lon = list(candidates["lon"]) + list(ends.get("to_lon", [])) + [s["lon"] for s in stations]
    lat = list(candidates["lat"]) + list(ends.get("to_lat", [])) + [s["lat"] for s in stations]
    if extent is None:
        b = [min(g.geometry.bounds[0] for g in d), max(g.geometry.bounds[2] for g in d),
             min(g.geometry.bounds[1] for g in d), max(g.geometry.bounds[3] for g in d)]
        extent = [min(b[0], min(lon)) - 0.05, max(b[1], max(lon)) + 0.05,
                  min(b[2], min(lat)) - 0.05, max(b[3], max(lat)) + 0.05]
    fig, ax = _map_axes(extent, "City σ reduction with one more site (%)")
    _overlay(ax, [g.geometry for g in d], [g.name_en for g in d], stations)
    kinds = candidates["type"] if "type" in candidates else pd.Series("insitu", index=candidates.index)
    red = candidates["city_sigma_reduction_pct"]
    norm = matplotlib.colors.Normalize(float(red.min()), float(max(red.max(), red.min() + 1e-9)))
    sc = None
    for kind, marker in MARKERS.items():
        m = (kinds == kind).to_numpy()
        if not m.any():
            continue
        c = candidates[m]
        if kind == "mobile" and "to_lon" in c:
            for r in c.itertuples():  # the track: a line from its start to its far end
                ax.plot([r.lon, r.to_lon], [r.lat, r.to_lat], color=plt.get_cmap("viridis")(norm(r.city_sigma_reduction_pct)),
                        lw=2.5, transform=PC, zorder=5)
        sc = ax.scatter(c["lon"], c["lat"], c=c["city_sigma_reduction_pct"], norm=norm, s=120, marker=marker,
                        cmap="viridis", edgecolors="k", linewidths=0.6, transform=PC, zorder=6, label=kind)
    for r in candidates.itertuples():
        what = {"column": "column", "mobile": "track"}.get(getattr(r, "type", "insitu"), f"{r.height:.0f} m")
        ax.text(r.lon + 0.015, r.lat - 0.03, f"{r.id} {what}", fontsize=7, transform=PC, zorder=6)
    ax.legend(loc="lower left", fontsize=7, title="candidate type", title_fontsize=7)
    for r in greedy[greedy["step"] > 0].itertuples():
        c = candidates.set_index("id").loc[r.id]
        ax.text(c["lon"], c["lat"], str(r.step), fontsize=8, color="k", weight="bold", ha="center",
                va="center", transform=PC, zorder=7, path_effects=_HALO)
    fig.colorbar(sc, ax=ax, shrink=0.7, label="city σ reduction (%)")
    return _save(fig, Path(path))


def _height(row) -> str:
    return f", {row['height']:.0f} m" if row.get("type", "insitu") != "column" else ""


def _type_counts(cand: pd.DataFrame) -> str:
    n = cand["type"].value_counts()
    return ", ".join(f"{int(n[k])} {k}" for k in MARKERS if k in n)


def best_of_types(cand: pd.DataFrame, names: list, current: list) -> pd.DataFrame:
    """The σ reduction (%) of every aggregate by the best candidate of each type (rows: aggregates,
    columns: current σ and one per type), the first rows of candidates.csv being the best."""
    sig_cols = [f"sigma_{n}" for n in names[:-1]] + ["city_sigma"]
    out = pd.DataFrame({"aggregate": names, "current σ (t)": current})
    for kind in MARKERS:
        c = cand[cand["type"] == kind]
        if len(c):
            best = c.iloc[0]
            out[f"+ {kind} {best['id']} (%)"] = [100.0 * (1 - float(best[k]) / b) for k, b in zip(sig_cols, current)]
    return out


def _best_html(df: pd.DataFrame) -> str:
    return df.to_html(index=False, float_format=lambda v: f"{v:,.2f}", border=0, classes="num", escape=True)


def _table_html(df: pd.DataFrame) -> str:
    return df.to_html(index=False, float_format=lambda v: f"{v:,.1f}", border=0, classes="num", escape=True)


def network_report(candidates_csv, greedy_csv, summary_json, map_png, out_path) -> Path:
    """network/report.html: what one more site would give (the section of docs/network.md)."""
    cand = pd.read_csv(candidates_csv, dtype={"id": str})
    g = pd.read_csv(greedy_csv, dtype={"id": str}).fillna({"id": "(current network)"})
    s = json.loads(Path(summary_json).read_text())
    png = base64.b64encode(Path(map_png).read_bytes()).decode()
    names = s["aggregates"]
    best = cand.iloc[0]
    sig_cols = ["city_sigma"] + [f"sigma_{n}" for n in names[:-1]]
    head = ["id", "type", "lon", "lat", "height", "n_obs", "city_sigma_reduction_pct"] + sig_cols
    k_sigma = {c: c.replace("sigma_", "σ ").replace("city_sigma", "σ city") + " (t)" for c in sig_cols}
    gt = g[["step", "id"] + sig_cols].rename(columns=k_sigma)
    ct = cand[head].rename(columns={**k_sigma, "city_sigma_reduction_pct": "city σ reduction (%)"})
    e = html.escape
    body = f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>Network design</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}} table{{border-collapse:collapse;font-size:12px}}
td,th{{padding:2px 6px;border-bottom:1px solid #ddd;text-align:right}}</style></head><body>
<h2>Where to measure next</h2>
<p>Exact posterior σ of the districts and the city (t CO₂ over the period) with one more site's observations
added to the current network: the inversion's own prior, Jacobian and errors, no OSSE (docs/network.md).
Current network: city σ {s['current_sigma_t'][-1]:,.0f} t (prior {s['prior_sigma_t'][-1]:,.0f} t);
{s['n_existing_obs']} observations. Candidates: {len(cand)} ({e(_type_counts(cand))}) over
{e(', '.join(s['candidate_days']))}; the in-situ candidates' model-data mismatch is correlated between sites
over {s['corr_length_km']:g} km; a column sensor measures at the selected hours (one column receptor each, no
daily surface offset, its background in R), a mobile candidate drives its line out and back over the same
hours (one segment per {s.get('mobile', {}).get('every_minutes', '?')} minutes, the mismatch floor of
observations.mobile).</p>
<p>Best single candidate: <b>{e(str(best['id']))}</b> ({e(str(best['type']))}{_height(best)}):
city σ {best['city_sigma']:,.0f} t, {best['city_sigma_reduction_pct']:.1f} % less.</p>
<img src="data:image/png;base64,{png}" alt="city sigma reduction per candidate" style="max-width:700px">
<h3>Greedy choice of {s['k']} sites (objective: σ of {e(s['objective'])})</h3>{_table_html(gt)}
<h3>Best of each type: district σ reduction (%)</h3>{_best_html(best_of_types(cand, names, s['current_sigma_t']))}
<h3>Every candidate alone</h3>{_table_html(ct)}
</body></html>"""
    return atomic_write(out_path, lambda p: Path(p).write_text(body, encoding="utf-8"))


