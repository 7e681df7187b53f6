"""products.figures: mean footprints, network sensitivity, transport losses (from site-day files
written by the transport stage's writer and the Jacobian assembled from them), averaging kernel,
district correlation and prior signal by sector; each figure is a PNG and the numbers behind it are
checked against an independent read of the files."""

import io
import json

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from figures_world import FAILED, SITES, write_month
from products import figures as F
from products.inputs import load_stations


def _is_png(png: bytes) -> tuple:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    img = mpimg.imread(io.BytesIO(png), format="png")
    assert img.shape[0] > 200 and img.shape[1] > 200
    assert img[..., :3].std() > 0.05  # not a blank canvas
    return img.shape


@pytest.fixture
def month(tmp_path):
    return write_month(tmp_path / "R")


def test_mean_footprint_equals_the_mean_of_the_footprint_files(month, fake_run):
    sens = F.footprint_sensitivity(month["jacobian"])
    assert sens.sites == list(SITES)
    total = 0.0
    for site in SITES:
        per_receptor = []
        for f in month["files"]:
            if f.parent.name == site:
                with xr.open_dataset(f) as ds:  # independent read: sum over time, float64
                    per_receptor += list(ds["foot"].astype("float64").sum("time").values)
        ref = np.mean(per_receptor, axis=0)
        assert sens.n_receptors[site] == len(per_receptor) == (6 if site == "AAA" else 5)  # one failed
        assert ref.max() > 1e-3
        np.testing.assert_allclose(sens.mean[site], ref, rtol=1e-9, atol=1e-15)
        total = total + np.sum(per_receptor, axis=0)
    np.testing.assert_allclose(sens.total, total, rtol=1e-9, atol=1e-15)
    stations = load_stations(fake_run["stations"])
    _is_png(F.mean_footprints_png(sens, fake_run["geojson"], stations))
    _is_png(F.network_sensitivity_png(sens, fake_run["geojson"], stations))


def test_transport_losses_equal_the_files(month):
    t = F.transport_losses(month["files"], month["failures_csv"])
    assert len(t) == 12 and t["failed"].sum() == 1
    assert t.loc[t["failed"], "receptor_id"].tolist() == [FAILED]
    assert np.isnan(t.loc[t["failed"], "left_domain_fraction"]).all()
    ok = t[~t["failed"]].set_index("receptor_id")["left_domain_fraction"]
    assert ok.to_dict() == month["left"]  # exactly the values written into the site-day files
    for f in month["files"]:
        with xr.open_dataset(f) as ds:
            for r, v in zip(ds["receptor"].values, ds["left_domain_fraction"].values):
                assert ok[str(r)] == float(v)
    assert t.groupby("site")["failed"].sum().to_dict() == {"AAA": 0, "BBB": 1}
    _is_png(F.transport_losses_png(t))


def test_averaging_kernel_of_blocks_and_districts(fake_run):
    lat_e, lon_e, ak = F.block_averaging_kernel(fake_run["posterior"])
    np.testing.assert_allclose(ak, 1 - (fake_run["sq"] / fake_run["sp"]) ** 2, rtol=1e-12)
    assert len(lat_e) == ak.shape[0] + 1 and len(lon_e) == ak.shape[1] + 1
    assert lat_e[0] == pytest.approx(23.0) and lon_e[-1] == pytest.approx(113.3)
    d = F.district_averaging_kernel(fake_run["districts"])
    tab = fake_run["table"].set_index("district")
    np.testing.assert_allclose(d, 1 - (tab["posterior_sigma_t"] / tab["prior_sigma_t"]) ** 2, rtol=1e-12)
    assert d["Liwan"] == pytest.approx(1 - 0.4 ** 2)  # 2000 / 5000
    _is_png(F.averaging_kernel_png(lat_e, lon_e, ak, d, fake_run["geojson"], load_stations(fake_run["stations"])))


def test_district_correlation_is_cov_over_sigma_sigma(tmp_path):
    """From diagnostics.json as the inversion writes it (json.dumps of aggregate_covariance)."""
    rng = np.random.default_rng(1)
    A = rng.standard_normal((3, 3)) * [300.0, 500.0, 800.0]
    Cd = A @ A.T + np.diag([1e4, 2e4, 3e4])
    Cd[0, 1] = Cd[1, 0] = -0.9 * np.sqrt(Cd[0, 0] * Cd[1, 1])  # two districts the network cannot split
    S = np.vstack([np.hstack([np.eye(3)]), np.ones((1, 3))])  # the city row is the sum of the districts
    C = S @ Cd @ S.T
    names = ["Liwan", "Yuexiu", "Haizhu", "Guangzhou"]
    path = tmp_path / "diagnostics.json"
    path.write_text(json.dumps({"aggregate_covariance": {"aggregates": names, "units": "t2",
                                                        "prior": (2 * C).tolist(), "posterior": C.tolist()}}))
    R = F.district_correlation(json.loads(path.read_text()))
    assert list(R.index) == names[:3] == list(R.columns)  # the city left out
    s = np.sqrt(np.diag(Cd))
    np.testing.assert_allclose(R.to_numpy(), Cd / np.outer(s, s), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(R.to_numpy(), R.to_numpy().T, rtol=0, atol=1e-15)
    np.testing.assert_allclose(np.diag(R), 1.0, rtol=0, atol=1e-15)
    assert R.loc["Liwan", "Yuexiu"] == pytest.approx(-0.9, abs=1e-12)
    assert np.all(np.abs(R.to_numpy()) <= 1 + 1e-12)
    _is_png(F.district_correlation_png(R))
    assert F.district_correlation({"n_obs": 3}) is None  # an older inversion: no figure
    bad = {"aggregate_covariance": {"aggregates": names, "posterior": C[:2].tolist()}}
    with pytest.raises(F.ProductInputError, match="aggregate_covariance.posterior has shape"):
        F.district_correlation(bad, "diag.json")


def test_sector_signal_is_the_mean_over_used_observations():
    m = pd.DataFrame({
        "site": ["AAA", "AAA", "AAA", "BBB", "BBB"],
        "prior_model": [430.0, 431.0, 432.0, 425.0, 426.0],
        "prior_industry": [1.0, 2.0, 30.0, 0.5, 1.5], "prior_power": [5.0, 7.0, 0.0, 0.0, 0.0],
        "prior_bio": [-0.2, -0.4, -9.0, -0.1, -0.3], "prior_unattributed": [1e-7, 0.0, 0.0, 0.0, 0.0],
        "used": [1, 1, 0, 1, 1]})
    s = F.sector_signal(m)
    assert list(s.columns) == ["industry", "power", "bio", "unattributed"] and list(s.index) == ["AAA", "BBB"]
    assert s.loc["AAA"].tolist() == pytest.approx([1.5, 6.0, -0.3, 5e-8])  # the screened row left out
    assert s.loc["BBB"].tolist() == pytest.approx([1.0, 0.0, -0.2, 0.0])
    _is_png(F.sector_signal_png(s))
    assert F.sector_signal(m.drop(columns=["prior_industry", "prior_power", "prior_bio",
                                           "prior_unattributed"])).empty


def test_figure_pngs_and_what_is_missing(month, fake_run):
    """Every figure the files allow, in order; the others named in the Missing list (en and zh)."""
    from products.inputs import load_diagnostics, load_modelled

    files = F.RunFiles(jacobian=month["jacobian"], posterior=fake_run["posterior"], districts=fake_run["districts"],
                       diagnostics=load_diagnostics(fake_run["diagnostics"]), modelled=load_modelled(fake_run["modelled"]),
                       footprints=tuple(month["files"]), failures=month["failures_csv"], hourly_dirs=(),
                       geojson=fake_run["geojson"], stations=tuple(load_stations(fake_run["stations"])))
    missing = []
    pngs = F.figure_pngs(files, missing)
    assert list(pngs) == ["mean_footprints", "network_sensitivity", "averaging_kernel", "transport_losses"]
    assert [m["en"].split(" (")[0] for m in missing] == ["figure district correlation",
                                                         "figure prior signal by sector", "figure target tank"]
    assert all(set(m) == {"en", "zh"} and m["zh"] for m in missing)
    for key, cap in F.CAPTIONS.items():  # every caption says how to read the figure, in both languages
        assert set(cap) == {"en", "zh"} and len(cap["en"]) > 120 and len(cap["zh"]) > 40, key


def test_chinese_labels_are_in_the_shipped_font(month, fake_run, recwarn):
    """Every Chinese character of the figures' labels, captions and Missing entries is in the shipped
    CJK font (fontTools cmap), and a figure drawn in Chinese and in both languages misses no glyph."""
    import warnings

    from fontTools.ttLib import TTFont

    from products import fonts

    with TTFont(fonts.FONT) as font:
        cmap = {chr(c) for c in font.getBestCmap()}
    text = "".join(m["zh"] for table in (F.LABELS, F.CAPTIONS, F.MISSING) for m in table.values())
    chars = {c for c in text if fonts.needs_cjk(c)}
    assert len(chars) > 100 and chars <= cmap, sorted(chars - cmap)
    sens = F.footprint_sensitivity(month["jacobian"])
    stations = load_stations(fake_run["stations"])
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        pngs = {lang: F.network_sensitivity_png(sens, fake_run["geojson"], stations, lang) for lang in ("zh", "both")}
        sig = pd.DataFrame({"industry": [1.0], "road": [2.0], "residential": [0.5], "bio": [-0.3]}, index=["AAA"])
        pngs["sector"] = F.sector_signal_png(sig, "zh")
    assert not [w for w in seen if "missing from font" in str(w.message)]
    assert len({p for p in pngs.values()}) == 3 and all(_is_png(p) for p in pngs.values())
    assert F._t("industry", "both", sep=" / ") == "工业 / industry"
