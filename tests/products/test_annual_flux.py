"""Issue 21, items 2, 4 and 5: the annual report's mean flux map from the months' flux products read
lazily (dask, open_mfdataset) and reduced chunk by chunk, the two accountings of the year, the
monthly report's accounting table and the annual report's PDF.

Numbers: the lazy annual mean equals a dense NumPy mean over every hour of the months to 1e-12;
the opened dataset is dask-backed in 24-hour chunks (nothing read until the reduction); the year's
consumption-based total = the year's territorial total − Σ own plants + Σ consumed electricity of
the months' accounting.csv, with the territorial σ; a month without accounting.csv or a flux product
is named, never summed as zero.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from products.annual import (AnnualInputError, accounting_section, annual_accounting, annual_flux, annual_table,
                             covered_months, open_months_lazily, write_annual)
from products.pdf import available_engines

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_annual import year_dir  # noqa: E402,F401  (the module-scoped year of three months)

LAT = np.round(np.arange(22.505, 22.6, 0.01), 3)
LON = np.round(np.arange(113.005, 113.12, 0.01), 3)


def _month_file(path: Path, month: str, seed: int) -> np.ndarray:
    """A month's flux product with `prior_flux`/`posterior_flux` (float32, every hour, NetCDF chunks
    of 24 h as products.flux_netcdf writes them); returns the posterior field."""
    per = pd.Period(month, "M")
    t = pd.date_range(per.start_time, per.end_time.floor("h"), freq="h")
    rng = np.random.default_rng(seed)
    prior = rng.uniform(0, 5, (len(t), LAT.size, LON.size)).astype(np.float32)
    post = (prior * rng.uniform(0.5, 1.5, prior.shape)).astype(np.float32)
    ds = xr.Dataset({"prior_flux": (("time", "lat", "lon"), prior, {"units": "umol m-2 s-1"}),
                     "posterior_flux": (("time", "lat", "lon"), post, {"units": "umol m-2 s-1"}),
                     "posterior_district_total": (("district",), np.ones(2))},
                    coords={"time": t, "lat": LAT, "lon": LON, "district": ["A", "B"]})
    enc = {v: {"zlib": True, "chunksizes": (24, LAT.size, LON.size)} for v in ("prior_flux", "posterior_flux")}
    ds.to_netcdf(path, encoding=enc)
    return prior, post


def test_annual_flux_is_the_mean_over_every_hour_read_lazily(tmp_path):
    fields = [_month_file(tmp_path / f"flux_2025-0{i}.nc", f"2025-0{i}", i) for i in (1, 2, 4)]
    files = [tmp_path / f"flux_2025-0{i}.nc" for i in (1, 2, 4)]
    lazy = open_months_lazily(files)
    assert lazy["posterior_flux"].chunks is not None and max(lazy["posterior_flux"].chunks[0]) == 24
    assert set(lazy.data_vars) == {"prior_flux", "posterior_flux"}
    lazy.close()
    ds = annual_flux(files)
    hours = (31 + 28 + 30) * 24
    assert int(ds["n_hours"]) == hours
    dense_post = np.concatenate([p for _, p in fields]).astype(np.float64).mean(axis=0)
    dense_prior = np.concatenate([p for p, _ in fields]).astype(np.float64).mean(axis=0)
    np.testing.assert_allclose(ds["posterior_flux_mean"].values, dense_post, rtol=1e-12)
    np.testing.assert_allclose(ds["prior_flux_mean"].values, dense_prior, rtol=1e-12)
    np.testing.assert_allclose(ds["posterior_minus_prior"].values, dense_post - dense_prior, rtol=1e-9, atol=1e-12)
    assert ds["posterior_flux_mean"].attrs["units"] == "umol m-2 s-1"


def test_a_month_on_another_grid_is_named(tmp_path):
    _month_file(tmp_path / "a.nc", "2025-01", 1)
    xr.Dataset({v: (("time", "lat", "lon"), np.zeros((24, 3, 3), np.float32)) for v in ("prior_flux", "posterior_flux")},
               coords={"time": pd.date_range("2025-02-01", periods=24, freq="h"), "lat": [1.0, 2, 3],
                       "lon": [1.0, 2, 3]}).to_netcdf(tmp_path / "b.nc")
    with pytest.raises(AnnualInputError, match=r"b\.nc: its grid differs from .*a\.nc"):
        annual_flux([tmp_path / "a.nc", tmp_path / "b.nc"])


def _accounting(path: Path, table: pd.DataFrame, own: float, used: float) -> None:
    t = table.set_index("district")
    pd.DataFrame({"district": t.index, "territorial_t": t["posterior_t"], "sigma_t": t["posterior_sigma_t"],
                  "own_power_plants_t": own * np.arange(1, len(t) + 1),
                  "consumed_electricity_t": used * np.arange(1, len(t) + 1),
                  "consumption_based_t": t["posterior_t"] - own * np.arange(1, len(t) + 1)
                  + used * np.arange(1, len(t) + 1)}).to_csv(path, index=False)


def test_the_two_accountings_of_the_year(year_dir, tmp_path):  # noqa: F811
    months = ["2025-01", "2025-02", "2025-04"]
    mf = covered_months(2025, year_dir, months)
    y = annual_table(2025, mf)
    acc = {}
    for k, m in enumerate(months):
        acc[m] = tmp_path / f"{m}.csv"
        _accounting(acc[m], pd.read_csv(year_dir / m / "districts.csv"), own=10.0 * (k + 1), used=100.0 * (k + 1))
    table, lacking = annual_accounting(y, acc)
    assert lacking == []
    t = table.set_index("district")
    yt = y.table.set_index("district")
    np.testing.assert_allclose(t["territorial_t"], yt["posterior_t"], rtol=1e-12)  # the correlated year
    np.testing.assert_allclose(t["sigma_t"], yt["posterior_sigma_t"], rtol=1e-12)
    rows = np.arange(1, len(t) + 1)
    np.testing.assert_allclose(t["own_power_plants_t"], 60.0 * rows)           # 10 + 20 + 30 per row
    np.testing.assert_allclose(t["consumed_electricity_t"], 600.0 * rows)
    np.testing.assert_allclose(t["consumption_based_t"], yt["posterior_t"] - 60.0 * rows + 600.0 * rows, rtol=1e-12)
    # a covered month without accounting.csv: named, nothing summed
    table, lacking = annual_accounting(y, {m: acc[m] for m in months[:2]})
    assert table.empty and lacking == ["2025-04"]
    # the monthly report's table: t with the territorial σ on both totals
    sec = accounting_section(acc["2025-01"])
    assert sec is not None and accounting_section(tmp_path / "none.csv") is None
    first = [v for _, v in sec["table"].rows[0].cells]
    a = pd.read_csv(acc["2025-01"]).iloc[0]
    assert first[1] == f"{a.territorial_t:,.0f} ± {a.sigma_t:,.0f}"
    assert first[4] == f"{a.consumption_based_t:,.0f} ± {a.sigma_t:,.0f}"


def test_write_annual_with_flux_and_accounting(year_dir, tmp_path):  # noqa: F811
    months = ["2025-01", "2025-02", "2025-04"]
    mf = covered_months(2025, year_dir, months)
    flux = {m: tmp_path / f"flux_{m}.nc" for m in months[:2]}   # April's flux product is missing
    for k, m in enumerate(months[:2]):
        _month_file(flux[m], m, k)
    acc = {m: tmp_path / f"acc_{m}.csv" for m in months}
    for m in months:
        _accounting(acc[m], pd.read_csv(year_dir / m / "districts.csv"), own=5.0, used=50.0)
    out = tmp_path / "2025"
    write_annual(out / "districts.csv", out / "report.html", 2025, mf, accounting_files=acc, flux_files=flux,
                 out_flux=out / "flux_2025.nc", pdf_engine="none")
    html = (out / "report.html").read_text()
    for text in ("Two accountings", "consumption-based (kt)", "Mean flux of the year",
                 "No flux product for 2025-04: the map averages 2025-01, 2025-02 only."):
        assert text in html, text
    ds = xr.open_dataset(out / "flux_2025.nc")
    assert int(ds["n_hours"]) == (31 + 28) * 24 and ds.attrs["months"] == "2025-01 2025-02"
    ds.close()
    # without accounting for April: the section names the month
    write_annual(out / "d2.csv", out / "r2.html", 2025, mf, accounting_files={m: acc[m] for m in months[:2]},
                 pdf_engine="none")
    assert "No accounting.csv for 2025-04" in (out / "r2.html").read_text()
    assert not (out / "r2.pdf").exists()


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["weasyprint", "chromium"])
def test_annual_report_pdf_beside_the_html(year_dir, tmp_path, engine):  # noqa: F811
    if engine not in available_engines():
        pytest.skip(f"PDF engine {engine} not installed")
    mf = covered_months(2025, year_dir, ["2025-01", "2025-02", "2025-04"])
    out = tmp_path / "2025"
    (out).mkdir()
    (out / "report.pdf").write_bytes(b"%PDF-1.4 stale")
    write_annual(out / "districts.csv", out / "report.html", 2025, mf, pdf_engine=engine)
    data = (out / "report.pdf").read_bytes()
    assert data.startswith(b"%PDF-") and b"%%EOF" in data[-1024:] and len(data) > 20_000   # the figure is in it
    write_annual(out / "districts.csv", out / "report.html", 2025, mf, pdf_engine="none")
    assert not (out / "report.pdf").exists()   # a PDF that no longer matches the HTML is removed


@pytest.mark.parametrize("language", ["en", "both"])
def test_monthly_report_shows_the_two_accountings(fake_run, tmp_path, language):
    from products.report import build_report

    acc = tmp_path / "accounting.csv"
    _accounting(acc, fake_run["table"], own=1234.0, used=5678.0)
    args = dict(month="2025-01", districts_csv=fake_run["districts"], diagnostics_json=fake_run["diagnostics"],
                modelled_csv=fake_run["modelled"], selected_csv=fake_run["selected"],
                stations_yaml=fake_run["stations"], maps_dir=tmp_path, days=["20250101"], language=language)
    html = build_report(**args, accounting_csv=acc)
    assert 'id="accounting"' in html and "Two accountings: territorial and consumption-based" in html
    if language == "both":
        assert "两种核算" in html
    a = pd.read_csv(acc).iloc[1]
    for text in (f"{a.territorial_t:,.0f} ± {a.sigma_t:,.0f}", f"{a.own_power_plants_t:,.0f}",
                 f"{a.consumed_electricity_t:,.0f}", f"{a.consumption_based_t:,.0f} ± {a.sigma_t:,.0f}"):
        assert text in html, text
    assert 'id="accounting"' not in build_report(**args)
