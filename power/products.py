"""Products of the power stage: NetCDF, long CSV, point sources CSV, heat map, monthly summary.

Every writer goes through the atomic writer of the core (`gzcarbon.atomic`): a temporary file in
the target directory renamed at the end, so a killed job never leaves a file that looks finished,
and a full disk or a permission problem is named by file and cause.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from gzcarbon import atomic
from gzcarbon.names import CITY

from .marginal import marginal_factors
from .settings import UTC_OFFSET_HOURS

#: (time, district) variables written to the CSV, in column order.
CSV_VARIABLES = [
    "generation_mwh", "load_mwh", "production_emissions_t", "production_factor",
    "consumption_factor", "consumption_emissions_t", "import_mwh", "export_mwh",
    "imported_emissions_t", "exported_emissions_t", "import_share", "external_share",
    "external_intensity",
]
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"


def select_month(ds: xr.Dataset, month: str | None) -> xr.Dataset:
    """Hours of `ds` inside calendar month YYYY-MM (UTC); all hours when month is None."""
    if not month:
        return ds
    t = pd.DatetimeIndex(ds["time"].to_numpy())
    keep = t.strftime("%Y-%m") == month
    if not keep.any():
        raise ValueError(f"no hour of the power factors falls in month {month} "
                         f"({t[0]:%Y-%m-%d %H:%M} .. {t[-1]:%Y-%m-%d %H:%M}).")
    return ds.isel(time=np.flatnonzero(keep))


def write_netcdf(ds: xr.Dataset, path: str, attrs: dict | None = None) -> None:
    """NetCDF4 with compressed float variables; extra `attrs` (provenance) are added."""
    out = ds.copy()
    out.attrs.update(attrs or {})
    enc = {v: {"zlib": True, "complevel": 4, "_FillValue": np.nan}
           for v in out.data_vars if out[v].dtype.kind == "f"}
    enc["time"] = {"units": "hours since 1970-01-01 00:00:00", "dtype": "int64"}
    for c in out.coords:
        if out[c].dtype == object:
            out[c] = out[c].astype(str)
    atomic.write_netcdf(out, path, encoding=enc, format="NETCDF4")


def to_long_table(ds: xr.Dataset) -> pd.DataFrame:
    """One row per (time, district) with the CSV_VARIABLES columns."""
    T, N = ds.sizes["time"], ds.sizes["district"]
    cols = {"time": np.repeat(pd.DatetimeIndex(ds["time"].to_numpy()).strftime(TIME_FORMAT).to_numpy(), N),
            "district": np.tile(ds["district"].to_numpy().astype(str), T)}
    for v in CSV_VARIABLES:
        a = ds[v].to_numpy()
        cols[v] = np.repeat(a, N) if a.ndim == 1 else a.reshape(-1)
    return pd.DataFrame(cols)


def write_csv(df: pd.DataFrame, path: str, float_format: str = "%.8g") -> None:
    atomic.write_csv(df, path, index=False, float_format=float_format, lineterminator="\n")


def write_point_sources(df: pd.DataFrame, path: str) -> None:
    """`time, plant_id, lon, lat, co2_t_per_h` with ISO UTC times."""
    out = df.copy()
    out["time"] = pd.DatetimeIndex(out["time"]).strftime(TIME_FORMAT)
    write_csv(out, path, float_format="%.6f")


def hour_of_day_table(ds: xr.Dataset, utc_offset_hours: int = UTC_OFFSET_HOURS, var: str = "consumption_factor") -> pd.DataFrame:
    """Mean of `var` by district (rows) and local hour of day (columns 0..23)."""
    local_hour = (pd.DatetimeIndex(ds["time"].to_numpy()) + pd.Timedelta(hours=utc_offset_hours)).hour
    da = ds[var].assign_coords(hour=("time", np.asarray(local_hour)))
    tab = da.groupby("hour").mean("time", skipna=True).transpose("district", "hour").to_pandas()
    return tab.reindex(columns=range(24))


def plot_heatmap(ds: xr.Dataset, path: str, utc_offset_hours: int = UTC_OFFSET_HOURS, title: str | None = None) -> None:
    """District x local-hour-of-day heat map of the mean consumption-based factor (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tab = hour_of_day_table(ds, utc_offset_hours)
    fig, ax = plt.subplots(figsize=(10, 4.8), dpi=120)
    im = ax.imshow(tab.to_numpy(float), aspect="auto", cmap="YlOrRd", interpolation="nearest")
    ax.set_yticks(range(len(tab.index)), labels=list(tab.index))
    ax.set_xticks(range(0, 24, 2), labels=[str(h) for h in range(0, 24, 2)])
    ax.set_xlabel(f"local hour of day (UTC{utc_offset_hours:+d})")
    t = pd.DatetimeIndex(ds["time"].to_numpy())
    ax.set_title(title or f"Consumption-based power emission factor, {t[0]:%Y-%m-%d} to {t[-1]:%Y-%m-%d}")
    cb = fig.colorbar(im, ax=ax)
    cb.set_label("kg CO2 / kWh")
    fig.tight_layout()
    try:
        atomic.atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", metadata={"Software": None}))
    finally:
        plt.close(fig)


def _wmean(x, w):
    x = np.asarray(x, float)
    w = np.asarray(w, float)
    ok = np.isfinite(x) & (w > 0)
    return float((x[ok] * w[ok]).sum() / w[ok].sum()) if ok.any() else np.nan


def monthly_summary(ds: xr.Dataset, month: str | None = None, utc_offset_hours: int = UTC_OFFSET_HOURS) -> pd.DataFrame:
    """Per month (UTC) and district, plus a `Guangzhou` city row: energy, emissions, factors.

    Columns: month, district, hours, generation_mwh, load_mwh, production_emissions_t,
    consumption_emissions_t, production_factor (generation-weighted), consumption_factor
    (load-weighted), consumption_factor_min, consumption_factor_max, peak_hour_local (local hour of
    the highest mean consumption factor), import_share and external_share (energy-weighted),
    marginal_factor, marginal_factor_se and marginal_hours (power.marginal, from the hours of the
    month; the city row holds the city's all-hours marginal factor).
    """
    ds = select_month(ds, month)
    months = pd.DatetimeIndex(ds["time"].to_numpy()).strftime("%Y-%m")
    rows = []
    for m in sorted(set(months)):
        sub = ds.isel(time=np.flatnonzero(months == m))
        hod = hour_of_day_table(sub, utc_offset_hours)
        mf = marginal_factors(sub, utc_offset_hours)
        n_marg = int(mf["marginal_hours"])
        for d in sub["district"].to_numpy().astype(str):
            s = sub.sel(district=d)
            L = s["load_mwh"].to_numpy()
            cf = s["consumption_factor"].to_numpy()
            rows.append({
                "month": m, "district": d, "hours": sub.sizes["time"],
                "generation_mwh": float(s["generation_mwh"].sum()), "load_mwh": float(L.sum()),
                "production_emissions_t": float(s["production_emissions_t"].sum()),
                "consumption_emissions_t": float(s["consumption_emissions_t"].sum()),
                "production_factor": _wmean(s["production_factor"], s["generation_mwh"]),
                "consumption_factor": _wmean(cf, L),
                "consumption_factor_min": float(np.nanmin(cf)) if np.isfinite(cf).any() else np.nan,
                "consumption_factor_max": float(np.nanmax(cf)) if np.isfinite(cf).any() else np.nan,
                "peak_hour_local": int(np.nanargmax(hod.loc[d].to_numpy())) if hod.loc[d].notna().any() else -1,
                "import_share": _wmean(s["import_share"], s["import_mwh"] + s["generation_mwh"]),
                "external_share": _wmean(s["external_share"], L),
                "marginal_factor": float(mf["marginal_factor"].sel(district=d)),
                "marginal_factor_se": float(mf["marginal_factor_se"].sel(district=d)),
                "marginal_hours": n_marg,
            })
        L = sub["load_mwh"].sum("district").to_numpy()
        G = sub["generation_mwh"].sum("district").to_numpy()
        cf = sub["city_consumption_factor"].to_numpy()
        city_hod = pd.Series(cf).groupby(
            (pd.DatetimeIndex(sub["time"].to_numpy()) + pd.Timedelta(hours=utc_offset_hours)).hour).mean()
        rows.append({
            "month": m, "district": CITY, "hours": sub.sizes["time"],
            "generation_mwh": float(G.sum()), "load_mwh": float(L.sum()),
            "production_emissions_t": float(sub["production_emissions_t"].sum()),
            "consumption_emissions_t": float(sub["consumption_emissions_t"].sum()),
            "production_factor": _wmean(sub["city_production_factor"], G),
            "consumption_factor": _wmean(cf, L),
            "consumption_factor_min": float(np.nanmin(cf)) if np.isfinite(cf).any() else np.nan,
            "consumption_factor_max": float(np.nanmax(cf)) if np.isfinite(cf).any() else np.nan,
            "peak_hour_local": int(city_hod.idxmax()) if city_hod.notna().any() else -1,
            "import_share": float(sub["external_import_mwh"].sum() / L.sum()) if L.sum() > 0 else np.nan,
            "external_share": _wmean((sub["external_share"] * sub["load_mwh"]).sum("district") / np.where(L > 0, L, np.nan), L),
            "marginal_factor": float(mf["city_marginal_factor"]),
            "marginal_factor_se": float(mf["city_marginal_factor_se"]),
            "marginal_hours": n_marg,
        })
    return pd.DataFrame(rows)
