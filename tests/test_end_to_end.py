"""A tiny end-to-end run of the whole pipeline (one day, two sites, four receptors).

It goes through exactly the code paths of the default run (HYSPLIT-STILT included) and checks the
content of the products, not only that they exist.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml

ROOT = Path(__file__).resolve().parents[1]
MONTH = "2025-01"


def _tiny_config(tmp: Path) -> Path:
    cfg = {
        "month": MONTH,
        "demo": {"enabled": True, "days": 1, "seed": 11},
        "sites": ["NST", "YXU"],
        "stations_file": str(ROOT / "config/stations.yaml"),
        "districts_file": str(ROOT / "config/districts.geojson"),
        "plants_file": str(ROOT / "config/power_plants.csv"),
        "results_dir": str(tmp / "results"),
        "data_dir": str(tmp / "data"),
        "stations": {"select_hours_local": [13, 15]},
        "transport": {"numpar": 50},
        # The demo's truth now goes through its own transport (issue 18), so an observation can
        # lie beyond 3 sigma of the prior prediction; this plumbing test keeps every observation
        # in the solve (screening is tested on its own: tests/inversion/test_screening_run.py).
        "inversion": {"innovation_screen": {"action": "flag"}},
        # every gas: the tiny run also exercises the CH4 and CO chains (tests/test_gases_pipeline.py);
        # the default run inverts CO2 only (config `species`)
        "species": ["co2", "ch4", "co"],
    }
    path = tmp / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _snakemake(tmp: Path, cfgfile: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory",
           str(tmp), "--configfile", str(cfgfile), "--cores", "2", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=tmp, timeout=1800)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e")
    cfgfile = _tiny_config(tmp)
    proc = _snakemake(tmp, cfgfile)
    if proc.returncode != 0:
        pytest.fail(f"snakemake failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}")
    return tmp, cfgfile, proc


def test_products_content(tiny_run):
    tmp, _, proc = tiny_run
    res = tmp / "results" / MONTH
    assert "report.html" in proc.stdout + proc.stderr  # the run says where the results are

    dist = pd.read_csv(res / "districts.csv")
    assert len(dist) == 12 and dist["district"].iloc[-1] == "Guangzhou"
    city = dist.iloc[-1]
    # The city total is the sum of the districts (aggregation is linear); districts.csv carries 6
    # significant digits, so the sum of 11 rounded values agrees to ~1e-5.
    np.testing.assert_allclose(dist["posterior_t"].iloc[:-1].sum(), city["posterior_t"], rtol=2e-5)
    np.testing.assert_allclose(dist["prior_t"].iloc[:-1].sum(), city["prior_t"], rtol=2e-5)
    # Observations reduce the uncertainty of the city total but cannot create certainty.
    assert 0 < city["posterior_sigma_t"] < city["prior_sigma_t"]
    # The truth is known in the demo; one day with four receptors is a weak constraint, so we
    # only ask that the truth lies within 3 posterior sigma.
    assert abs(city["posterior_t"] - city["truth_t"]) < 3 * city["posterior_sigma_t"]

    mod = pd.read_csv(res / "modelled.csv")
    assert len(mod) >= 3
    rms_prior = np.sqrt(np.mean((mod["observed"] - mod["prior_model"]) ** 2))
    rms_post = np.sqrt(np.mean((mod["observed"] - mod["posterior_model"]) ** 2))
    assert rms_post < rms_prior

    diag = json.loads((res / "diagnostics.json").read_text())
    assert diag["n_obs"] == int(mod["used"].sum()) and 0 < diag["dofs"] <= diag["n_obs"]

    with xr.open_dataset(res / f"flux_{MONTH}.nc") as ds:
        assert ds.attrs["Conventions"].startswith("CF-1.8")
        post = ds["posterior_flux"].values
        assert np.isfinite(post).all()

    ef = pd.read_csv(res / "power" / "emission_factors.csv")
    assert len(ef) > 0

    html = (res / "report.html").read_text()
    assert "Guangzhou" in html and "<img" in html
    assert f"{city['posterior_t'] / 1e3:,.1f}" in html or f"{city['posterior_t']:,.0f}" in html


GOLDEN = ROOT / "tests" / "data" / "golden" / "tiny"


def test_products_equal_the_golden_copies(tiny_run):
    """Behaviour kept through refactoring (issue 14): the tiny run's district table and CF flux
    product equal the copies committed before it (tests/data/golden/tiny, made by this very
    configuration after issue 13). Numbers to 1e-12 relative (districts.csv holds 6 significant
    digits: equal as printed). A deliberate change of numbers replaces the golden files in its own
    commit, naming the test of the defect it fixes (tests/data/README.md)."""
    tmp = tiny_run[0]
    res = tmp / "results" / MONTH
    new = pd.read_csv(res / "districts.csv")
    old = pd.read_csv(GOLDEN / "districts.csv")
    pd.testing.assert_frame_equal(new, old, check_exact=False, rtol=1e-12, atol=0)
    with xr.open_dataset(res / f"flux_{MONTH}.nc") as a, \
            xr.open_dataset(GOLDEN / f"flux_{MONTH}.nc") as b:
        assert sorted(a.data_vars) == sorted(b.data_vars)
        for name in b.variables:
            va, vb = a[name].values, b[name].values
            assert va.shape == vb.shape, name
            if np.issubdtype(vb.dtype, np.number):
                scale = float(np.nanmax(np.abs(vb))) if vb.size else 0.0
                np.testing.assert_allclose(va, vb, rtol=1e-12, atol=1e-12 * scale,
                                           equal_nan=True, err_msg=name)
            else:
                assert (va == vb).all(), name


def test_one_config_hash_in_every_product(tiny_run):
    """The flux product, the power product and the report of one run carry the same config hash
    (the power product used to hash with other separators and keep 16 hex digits)."""
    res = tiny_run[0] / "results" / MONTH
    with xr.open_dataset(res / f"flux_{MONTH}.nc") as ds:
        flux_hash = ds.attrs["config_sha256"]
    with xr.open_dataset(res / "power" / "emission_factors.nc") as ds:
        power_hash = ds.attrs["config_sha256"]
    assert len(flux_hash) == 64 and power_hash == flux_hash
    assert flux_hash in (res / "report.html").read_text()


def test_second_run_has_nothing_to_do(tiny_run):
    tmp, cfgfile, _ = tiny_run
    proc = _snakemake(tmp, cfgfile, "--dry-run")
    assert proc.returncode == 0
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_config_typo_stops_before_any_job(tmp_path):
    cfg = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    cfg.setdefault("inversion", {})["time_step_hour"] = 6  # typo of time_step_hours
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    proc = _snakemake(tmp_path, bad, "--dry-run")
    assert proc.returncode != 0
    msg = proc.stdout + proc.stderr
    assert "inversion" in msg and "time_step_hour" in msg and "time_step_hours" in msg


def test_bad_value_names_key_and_allowed(tmp_path):
    cfg = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    cfg.setdefault("inversion", {})["time_step_hours"] = 5
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    proc = _snakemake(tmp_path, bad, "--dry-run")
    assert proc.returncode != 0
    msg = proc.stdout + proc.stderr
    assert "inversion.time_step_hours" in msg and "24" in msg


def _execute_notebook(name: str, env: dict, monkeypatch) -> str:
    import nbformat
    from nbclient import NotebookClient

    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("MPLBACKEND", raising=False)  # keep the kernel's inline backend
    path = ROOT / "notebooks" / name
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the notebook drew its plots
    return "".join(o.get("text", "") for o in outputs)


def test_notebooks_run_on_the_tiny_run(tiny_run, monkeypatch):
    """Both notebooks open the products of a real (tiny) pipeline run and show the numbers."""
    tmp, _, _ = tiny_run
    res = tmp / "results"
    text = _execute_notebook("station_exploration.ipynb", {"GZ_RESULTS": str(res / MONTH)},
                             monkeypatch)
    assert "selected hours from 2 sites" in text
    city = pd.read_csv(res / MONTH / "districts.csv").iloc[-1]
    text = _execute_notebook("flux_maps.ipynb", {"GZ_RESULTS": str(res), "GZ_MONTH": MONTH,
                                                 "GZ_DISTRICTS": str(ROOT / "config/districts.geojson")},
                             monkeypatch)
    assert f"posterior {city['posterior_t'] / 1e3:.1f} ± {city['posterior_sigma_t'] / 1e3:.1f} kt" in text
    assert "district it constrains most" in text  # the station-contribution table (2 sites)


def test_osse_prior_and_error_truths_on_the_nested_tiny_run(tiny_run, capsys):
    """tools/osse.py --truth prior and --truth errors on the nested tiny run (outer_grid is the
    default): the outer cells' truths come from the outer prior covariance and from
    make_outer_truth; the coverage of the districts, the city and the outer ring is computed and
    printed (shares in [0, 1]), the ring's posterior σ is at most its prior σ and equals outer.csv's."""
    import importlib.util

    tmp, _, _ = tiny_run
    spec = importlib.util.spec_from_file_location("osse_tool_prior", ROOT / "tools" / "osse.py")
    osse = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(osse)
    ring = pd.read_csv(tmp / "results" / MONTH / "outer.csv").set_index("name").loc["outer ring"]
    for mode in ("prior", "errors"):
        assert osse.main([str(tmp), "--truth", mode, "--draws", "3"]) == 0
        out = capsys.readouterr().out
        row = next(ln.split() for ln in out.splitlines() if ln.startswith("outer ring "))
        s_post, s_prior = float(row[4]), float(row[5])
        assert s_post <= s_prior
        assert s_post == pytest.approx(ring["posterior_sigma_t"] / 1e3, abs=0.051)
        line = out.split("coverage over 3 draws:")[-1].splitlines()[0]
        within = [float(w.rstrip("%;")) for w in line.replace("/", " ").split() if w.rstrip("%;").replace(".", "").isdigit()]
        assert len(within) >= 2 and all(0 <= w <= 100 for w in within)
        city = next(ln for ln in out.splitlines() if ln.startswith("coverage over 3 draws") and "city" in ln)
        assert "districts (pooled)" in city


def test_osse_tool_reproduces_the_run_and_reports_draws(tiny_run, capsys):
    """tools/osse.py re-solves the run's inversion: its 'actual' column is the pipeline's posterior."""
    import importlib.util

    tmp, _, _ = tiny_run
    spec = importlib.util.spec_from_file_location("osse_tool", ROOT / "tools" / "osse.py")
    osse = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(osse)
    assert osse.main([str(tmp), "--draws", "4"]) == 0
    out = capsys.readouterr().out
    d = pd.read_csv(tmp / "results" / MONTH / "districts.csv").set_index("district")
    rows = {ln.split()[0]: ln.split() for ln in out.splitlines() if ln.split() and ln.split()[0] in d.index}
    assert set(rows) == set(d.index)
    for name, r in d.iterrows():
        assert float(rows[name][1]) == pytest.approx((r.prior_t - r.truth_t) / 1e3, abs=0.051)
        assert float(rows[name][2]) == pytest.approx((r.posterior_t - r.truth_t) / 1e3, abs=0.051)
        assert float(rows[name][7]) == pytest.approx(r.posterior_sigma_t / 1e3, abs=0.051)
    assert "draws median" in out and "4 noise draws" in out
    cov = out.split("coverage of the district σ")[1].split("draws ")[1].split()[0:3]  # "a% / b%;"
    within1, within2 = float(cov[0].rstrip("%")), float(cov[2].rstrip("%;"))
    assert 0 <= within1 <= within2 <= 100
    # signal budget: one row per site, and the sector parts of truth − prior add up to the whole
    sites = pd.read_csv(tmp / "results" / MONTH / "obs" / "selected.csv")["site"].unique()
    table = out.split("signal at the sites")[1].splitlines()
    assert {ln.split()[0] for ln in table[2:2 + len(sites)]} == set(sites)
    gap = float(table[2 + len(sites)].split("within")[1].split()[0])
    assert gap < 1e-3
