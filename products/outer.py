"""Products of the nested state's outer domain (issue 19; config ``outer_grid``).

* the outer part of the CF flux product (`outer_product_variables`, template
  ``workflow/report/flux_product_outer.cdl`` merged with the main one by `nested_template`): the
  outer cells' hourly prior and posterior flux on their own grid (``olat``/``olon``, NaN under the
  inner box), the exact σ of each outer cell's period-mean flux, and the totals of ``outer.csv``
  (the outer ring and each neighbouring city or region) ± σ;
* `outer_map`: the map of the outer cells' period-mean posterior flux and of its change from the
  prior, with the neighbours' outlines and the inner box;
* `outer_report_tables`: the report's outer table and the outer share of each site's modelled
  enhancement (diagnostics ``outer_signal_share``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from gzcarbon.grid import edges_from_centres

from .inputs import ProductInputError

OUTER_TEMPLATE = Path(__file__).resolve().parents[1] / "workflow" / "report" / "flux_product_outer.cdl"
OUTER_COLUMNS = ("name", "kind", "prior_t", "posterior_t", "prior_sigma_t", "posterior_sigma_t", "truth_t")
OUTER_POSTERIOR_VARS = ("prior_flux_outer", "posterior_flux_outer", "prior_sigma_outer", "posterior_sigma_outer")


def is_nested(post: xr.Dataset) -> bool:
    """True when posterior.nc holds the outer cells (a nested run)."""
    return "posterior_flux_outer" in post.variables


def load_outer_table(path) -> pd.DataFrame:
    """``{R}/outer.csv`` (inversion.run, docs/formats.md), checked for its columns."""
    p = Path(path)
    if not p.exists():
        raise ProductInputError(f"{p}: file not found; rule inversion writes it when config outer_grid is enabled.")
    df = pd.read_csv(p)
    missing = [c for c in OUTER_COLUMNS if c not in df.columns]
    if missing:
        raise ProductInputError(f"{p}: column(s) {missing} missing; expected {list(OUTER_COLUMNS)} "
                                "(docs/formats.md, outer.csv); rerun rule inversion.")
    return df


def _bounds(edges: np.ndarray) -> np.ndarray:
    return np.stack([edges[:-1], edges[1:]], axis=1)


def outer_product_variables(post: xr.Dataset, outer_csv, tsel, to_units: float, flux_std: str, flux_units: str,
                            label: str) -> tuple[dict, dict, dict]:
    """(data variables, coordinates, global attributes) of the flux product's outer part from
    posterior.nc (``post``, hours ``tsel`` of the period) and outer.csv."""
    missing = [v for v in OUTER_POSTERIOR_VARS if v not in post.variables]
    if missing:
        raise ProductInputError(f"posterior.nc lacks {missing} of a nested run; rerun rule inversion.")
    table = load_outer_table(outer_csv)
    olat, olon = post["olat"].values.astype(float), post["olon"].values.astype(float)
    olat_e, olon_e = edges_from_centres(olat, "olat"), edges_from_centres(olon, "olon")

    def flux_attrs(long_name):
        return {"standard_name": flux_std, "long_name": long_name, "units": flux_units, "grid_mapping": "crs",
                "cell_methods": "time: mean area: mean"}

    def sigma_attrs(long_name):
        return {"standard_name": flux_std + " standard_error", "long_name": long_name, "units": flux_units,
                "grid_mapping": "crs", "cell_methods": "area: mean"}

    def total(long_name, summed=False):
        return {"long_name": long_name, "units": "t", **({"cell_methods": "area: sum"} if summed else {})}

    def field(name):
        return (post[name].isel(time=tsel).values * to_units).astype(np.float32)

    both = "(a neighbour: its inner and outer cells)"
    data = {
        "olat_bnds": (("olat", "nv"), _bounds(olat_e), {}),
        "olon_bnds": (("olon", "nv"), _bounds(olon_e), {}),
        "prior_flux_outer": (("time", "olat", "olon"), field("prior_flux_outer"), flux_attrs(
            f"prior {label} flux of the outer cells (coarse inventory; NaN under the inner box)")),
        "posterior_flux_outer": (("time", "olat", "olon"), field("posterior_flux_outer"), flux_attrs(
            f"posterior {label} flux of the outer cells (NaN under the inner box)")),
        "prior_flux_sigma_outer": (("olat", "olon"), (post["prior_sigma_outer"].values * to_units).astype(np.float32),
                                   sigma_attrs("prior 1-sigma uncertainty of the period-mean flux of each outer cell")),
        "posterior_flux_sigma_outer": (("olat", "olon"),
                                       (post["posterior_sigma_outer"].values * to_units).astype(np.float32),
                                       sigma_attrs("posterior 1-sigma uncertainty of the period-mean flux of each "
                                                   "outer cell (exact)")),
        "outer_region_kind": (("outer_region",), table["kind"].astype(str).to_numpy(dtype=object),
                              {"long_name": "ring (every outer cell), city or region"}),
        "prior_outer_total": (("outer_region",), table["prior_t"].to_numpy(float),
                              total(f"prior {label} emission over the period {both}", True)),
        "prior_outer_total_sigma": (("outer_region",), table["prior_sigma_t"].to_numpy(float),
                                    total("1-sigma uncertainty of prior_outer_total")),
        "posterior_outer_total": (("outer_region",), table["posterior_t"].to_numpy(float),
                                  total(f"posterior {label} emission over the period {both}", True)),
        "posterior_outer_total_sigma": (("outer_region",), table["posterior_sigma_t"].to_numpy(float),
                                        total("1-sigma uncertainty of posterior_outer_total (exact)")),
        "truth_outer_total": (("outer_region",), table["truth_t"].to_numpy(float),
                              total(f"true {label} emission over the period (demo world only)")),
    }
    coords = {
        "olat": ("olat", olat, {"long_name": "latitude of the outer cell centre", "units": "degrees_north",
                                "bounds": "olat_bnds"}),
        "olon": ("olon", olon, {"long_name": "longitude of the outer cell centre", "units": "degrees_east",
                                "bounds": "olon_bnds"}),
        "outer_region": ("outer_region", table["name"].astype(str).to_numpy(dtype=object),
                         {"long_name": "outer ring, or a neighbouring city or region (English name)"}),
    }
    attrs = {k: post.attrs[k] for k in ("outer_res", "outer_lon_min", "outer_lon_max", "outer_lat_min",
                                        "outer_lat_max", "n_outer") if k in post.attrs}
    return data, coords, attrs


def nested_template(template):
    """The product template of a nested run: ``template`` (a `products.cdl_template.Template`) with
    the dimensions, variables and global attributes of flux_product_outer.cdl added."""
    from pathlib import Path

    from gzcarbon.names import GASES

    from .cdl_template import parse_cdl

    text = Path(OUTER_TEMPLATE).read_text(encoding="utf-8")
    # a CH4 or CO product (`flux_netcdf.gas_template`): the outer part in the gas's names and units
    from .flux_netcdf import FLUX_STD, FLUX_UNITS, GAS_CF

    pf = template.variables.get("prior_flux")
    std = pf.attrs["standard_name"].value if pf is not None and "standard_name" in pf.attrs else FLUX_STD
    gas = next((g for g, v in GAS_CF.items() if v[0] == std), "co2")
    if gas != "co2":
        text = (text.replace(FLUX_STD, GAS_CF[gas][0]).replace(f'"{FLUX_UNITS}"', f'"{GAS_CF[gas][1]}"')
                .replace("CO2", GASES[gas]["label"]))
    outer = parse_cdl(text)
    template.dims.update(outer.dims)
    template.variables.update(outer.variables)
    template.attrs.update(outer.attrs)
    return template


# --------------------------------------------------------------------------------------------------
# figures and report tables
# --------------------------------------------------------------------------------------------------
def outer_period_means(posterior_path) -> dict:
    """Period means (over [period_start, period_end)) of the outer cells' prior and posterior flux,
    σ and the outer grid's edges, from posterior.nc."""
    with xr.open_dataset(posterior_path) as post:
        if not is_nested(post):
            raise ProductInputError(f"{posterior_path}: no outer cells (config outer_grid disabled)")
        t = pd.DatetimeIndex(post["time"].values)
        sel = (t >= pd.Timestamp(post.attrs["period_start"])) & (t < pd.Timestamp(post.attrs["period_end"]))
        out = {k: post[k].isel(time=sel).mean("time").values for k in ("prior_flux_outer", "posterior_flux_outer")}
        out.update({k: post[k].values for k in ("prior_sigma_outer", "posterior_sigma_outer")})
        out["olat_edges"] = edges_from_centres(post["olat"].values, "olat")
        out["olon_edges"] = edges_from_centres(post["olon"].values, "olon")
        out["inner_box"] = (float(edges_from_centres(post["lon"].values)[0]), float(edges_from_centres(post["lon"].values)[-1]),
                            float(edges_from_centres(post["lat"].values)[0]), float(edges_from_centres(post["lat"].values)[-1]))
    return out


def outer_map(posterior_path, out_dir, neighbour_geoms=(), neighbour_names=(), lang: str = "en") -> list[Path]:
    """outer_posterior.png (period-mean posterior flux of the outer cells) and outer_change.png
    (posterior − prior) with the neighbours' outlines and the inner box; returns the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    m = outer_period_means(posterior_path)
    zh = lang == "zh"
    panels = (("outer_posterior", m["posterior_flux_outer"], "viridis",
               "外围网格后验通量（时段平均）" if zh else "Outer cells: posterior flux (period mean)"),
              ("outer_change", m["posterior_flux_outer"] - m["prior_flux_outer"], "RdBu_r",
               "外围网格：后验 − 先验" if zh else "Outer cells: posterior − prior"))
    out = []
    for key, field, cmap, title in panels:
        fig, ax = plt.subplots(figsize=(7.5, 6))
        finite = field[np.isfinite(field)]
        lim = float(np.nanmax(np.abs(finite))) if finite.size else 1.0
        kw = {"vmin": -lim, "vmax": lim} if cmap == "RdBu_r" else {}
        pm = ax.pcolormesh(m["olon_edges"], m["olat_edges"], np.ma.masked_invalid(field), cmap=cmap, **kw)
        fig.colorbar(pm, ax=ax, label="µmol m⁻² s⁻¹")
        x0, x1, y0, y1 = m["inner_box"]
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, lw=1.2, ec="k"))
        for g in neighbour_geoms:
            for poly in getattr(g, "geoms", [g]):
                xs, ys = poly.exterior.xy
                ax.plot(xs, ys, lw=0.5, color="0.3")
        ax.set_xlim(m["olon_edges"][0], m["olon_edges"][-1])
        ax.set_ylim(m["olat_edges"][0], m["olat_edges"][-1])
        ax.set_aspect(1.0 / np.cos(np.deg2rad(0.5 * (m["olat_edges"][0] + m["olat_edges"][-1]))))
        ax.set_title(title)
        path = Path(out_dir) / f"{key}.png"
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        out.append(path)
    return out


def outer_report_tables(outer_csv, diagnostics: dict) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """(the outer table in kt: prior ± σ, posterior ± σ, truth; the outer share of each site's
    modelled enhancement in %, prior and posterior, or None)."""
    t = load_outer_table(outer_csv)
    kt = pd.DataFrame({
        "region": t["name"], "kind": t["kind"],
        "prior_kt": t["prior_t"] / 1e3, "prior_sigma_kt": t["prior_sigma_t"] / 1e3,
        "posterior_kt": t["posterior_t"] / 1e3, "posterior_sigma_kt": t["posterior_sigma_t"] / 1e3,
        "truth_kt": t["truth_t"] / 1e3})
    shares = diagnostics.get("outer_signal_share")
    if not shares:
        return kt, None
    sh = pd.DataFrame([{"site": s, "prior_outer_share_pct": 100 * v["prior"],
                        "posterior_outer_share_pct": 100 * v["posterior"], "n_obs": v["n_obs"]}
                       for s, v in shares.items()])
    return kt, sh


OUTER_MAPS = ("outer_posterior", "outer_change")


def outer_section(outer_csv, diagnostics: dict, maps_dir, missing: list) -> dict:
    """The report's section on the outer domain: the outer ring and neighbour totals (kt, prior ±
    σ, posterior ± σ, demo truth), each site's outer share of the modelled enhancement (%), and the
    outer maps of ``maps_dir`` (absent ones appended to ``missing``)."""
    from .sections import file_figure, fmt_num, table

    kt, shares = outer_report_tables(outer_csv, diagnostics)

    def pm(a, b):
        return f"{a:,.1f} ± {b:,.1f}"

    df = pd.DataFrame({
        "region": kt["region"], "prior": [pm(a, b) for a, b in zip(kt["prior_kt"], kt["prior_sigma_kt"])],
        "posterior": [pm(a, b) for a, b in zip(kt["posterior_kt"], kt["posterior_sigma_kt"])],
        "truth": [fmt_num(v, 1) for v in kt["truth_kt"]]})
    t = table(df, left_cols=("region",))
    t.headers = [{"en": "region", "zh": "区域"}, {"en": "prior, kt", "zh": "先验（千吨）"},
                 {"en": "posterior, kt", "zh": "后验（千吨）"}, {"en": "truth (demo), kt", "zh": "真值（演示，千吨）"}]
    out = {"table": t, "shares": None, "figures": []}
    if shares is not None:
        s = pd.DataFrame({"site": shares["site"], "prior": [fmt_num(v, 1) for v in shares["prior_outer_share_pct"]],
                          "posterior": [fmt_num(v, 1) for v in shares["posterior_outer_share_pct"]],
                          "n_obs": shares["n_obs"].astype(int).astype(str)})
        st = table(s, left_cols=("site",))
        st.headers = [{"en": "site", "zh": "站点"}, {"en": "outer share of H x, prior, %", "zh": "外围贡献占比（先验，%）"},
                      {"en": "posterior, %", "zh": "后验（%）"}, {"en": "observations", "zh": "观测数"}]
        out["shares"] = st
    caps = {"outer_posterior": {"en": "Outer cells: posterior flux, mean over the period (the inner box outlined).",
                                "zh": "外围网格：时段平均后验通量（黑框为内层区域）。"},
            "outer_change": {"en": "Outer cells: posterior − prior flux.", "zh": "外围网格：后验 − 先验通量。"}}
    for k in OUTER_MAPS:
        p = Path(maps_dir) / f"{k}.png"
        if p.is_file():
            out["figures"].append(file_figure(p, caps[k]))
        else:
            missing.append({"en": f"outer map {p.name}", "zh": f"外围地图 {p.name}"})
    return out
