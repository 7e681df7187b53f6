"""The tiny demo run with column and mobile observations (observations.column / .mobile enabled):
the demo writes an EM27/SUN PROFFAST file, an OCO-2 Lite granule and a vehicle track from its truth
through the truth's own transport, rules column_rows / mobile_rows give them rows through the
inversion's transport, and the inversion uses them with the sites (docs/columns.md)."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
MONTH = "2025-01"


def _config(tmp: Path) -> Path:
    """The tiny end-to-end configuration (CO2 only) with the column and mobile rows enabled."""
    from test_end_to_end import _tiny_config

    cfg = yaml.safe_load(_tiny_config(tmp).read_text())
    cfg["species"] = ["co2"]
    cfg["observations"] = {"column": {"enabled": True}, "mobile": {"enabled": True}}
    path = tmp / "tiny_columns.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="module")
def columns_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("columns_run")
    cfgfile = _config(tmp)
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(tmp),
           "--configfile", str(cfgfile), "--cores", "2",
           str(tmp / "results" / MONTH / "districts.csv")]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp, timeout=3600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return tmp


def _without_extra(tmp: Path, out: Path):
    """The same inversion without the column and mobile rows (run_inversion, the rule's code)."""
    from inversion import SolveOptions
    from inversion.run import run_inversion

    import gzcarbon.config as C

    r, d = tmp / "results" / MONTH, tmp / "data" / "demo" / MONTH
    cfg = C.validate_config(yaml.safe_load((tmp / "tiny_columns.yaml").read_text()), ROOT)
    diag = json.loads((r / "diagnostics.json").read_text())
    start, end = diag["period_start"], diag["period_end"]
    out.mkdir(parents=True, exist_ok=True)
    run_inversion(r / "jacobian_hourly.npz", r / "obs" / "selected.csv", r / "prior.nc", cfg["districts_file"],
                  out / "posterior.nc", out / "districts.csv", out / "modelled.csv", out / "diagnostics.json",
                  inversion_cfg=cfg["inversion"], period_start=start, period_end=end, truth_path=d / "truth.nc",
                  solve_options=SolveOptions(seed=int(cfg["demo"]["seed"])),
                  utc_offset_hours=cfg["stations"]["utc_offset_hours"], out_outer=out / "outer.csv",
                  truth_outer_path=d / "truth_outer.nc", neighbours_path=cfg["neighbours_file"])
    return pd.read_csv(out / "districts.csv")


@pytest.mark.slow
def test_columns_and_mobile_shrink_the_district_sigma(columns_run, tmp_path):
    tmp = columns_run
    r = tmp / "results" / MONTH
    with_extra = pd.read_csv(r / "districts.csv").set_index("district")
    without = _without_extra(tmp, tmp_path / "without").set_index("district")
    assert list(with_extra.index) == list(without.index)
    ratio = with_extra["posterior_sigma_t"] / without["posterior_sigma_t"]
    assert (ratio <= 1 + 1e-9).all(), ratio
    assert ratio.iloc[-1] < 1 - 1e-6  # the city (last row)
    assert (with_extra["prior_t"] - without["prior_t"]).abs().max() < 1e-6
    # the column and mobile rows are in the solve
    mod = pd.read_csv(r / "modelled.csv")
    sites = set(mod["site"].astype(str))
    assert "GZE" in sites and any(s.startswith("OCO2") for s in sites) and any(s.startswith("GZM") for s in sites)


@pytest.mark.slow
def test_column_rows_prior_enhancement_is_H_times_prior(columns_run):
    """modelled.csv: prior_model − background_prior of the column rows equals their saved Jacobian
    rows (read with numpy alone) times the prior flux of prior.nc put in the state's order here."""
    import scipy.sparse as sp
    import xarray as xr

    r = columns_run / "results" / MONTH
    with np.load(r / "extra" / "column_rows.npz", allow_pickle=False) as z:
        H = sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(z["shape"]))
        sites, times = z["row_site"].astype(str), pd.to_datetime(z["row_obs_time"])
    import gzcarbon.config as C
    from gzcarbon.grid import NestedGrid
    from transport.jacobian import load_jacobian

    cfg = C.validate_config(yaml.safe_load((columns_run / "tiny_columns.yaml").read_text()), ROOT)
    nested = NestedGrid.from_config(cfg)
    hours = load_jacobian(r / "jacobian_hourly.npz").hours
    with xr.open_dataset(r / "prior.nc") as p:
        p = p.sel(time=hours.values).load()
    outer = np.nan_to_num(p["flux_outer"].values) if "flux_outer" in p else None
    state = nested.state_vector(p["flux"].values, outer)
    assert state.size == H.shape[1], (state.shape, H.shape)
    expect = H @ state.ravel()
    mod = pd.read_csv(r / "modelled.csv", parse_dates=["time"])
    got = mod.set_index(["site", "time"])
    modelled = np.array([got.loc[(s, tt), "prior_model"] - got.loc[(s, tt), "background_prior"]
                         for s, tt in zip(sites, times)], float)
    assert len(expect) >= 3 and np.all(expect > 0)
    np.testing.assert_allclose(modelled, expect, rtol=0, atol=1e-5)  # modelled.csv: 5 decimals
