"""The whole pipeline through Snakemake on real public-format files, no demo world (issues 15.3 and
16.3): config/examples/real_run_tac.yaml — Tacolneston 2014-07-01 12-15 UTC, the DECC network's
real CO2 as hourly ObsPack means, openghg's real NAME footprints (footprints_from: files, no
HYSPLIT), the real EDGAR v6.0 CO2 sample, power inputs in the documented format
(tests/data/README.md, "real_run"). One day (config `period`), 16 x 12 cells of 0.25°.

Asserted: the DAG and the run contain no demo rule; no file under data/demo is made or read; no
rule script imports gzcarbon.demo (an import monitor in sitecustomize records every import of it
with the process's command line); and the numbers of every seam against independent reads of the
shipped files (observations, Jacobian totals, prior from EDGAR minus the metered plant, H x_prior,
district and city totals, the plant's production factor).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import yaml

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "config" / "examples" / "real_run_tac.yaml"
DATA = ROOT / "tests" / "data" / "real_run"
OBS = DATA / "obs" / "TAC" / "co2_tac_tower-insitu_100magl_20140630-20140701.nc"
FOOT = DATA / "footprints" / "TAC-100magl_UKV_co2_TEST_20140701_12-15h.nc"
EDGAR = ROOT / "tests" / "data" / "inventory" / "v6.0_CO2_excl_short-cycle_org_C_2015_TOTALS.5.3x5.1.nc"
M_CO2 = 44.0095
#: the pipeline converts kg to µmol with M = 44.01 g/mol (inversion.inventory.KG_TO_UMOL), 1.1e-5
#: relative from 44.0095: the tolerance of the mass checks
RTOL_M = 2e-5
MONTH = "2014-07"
HOURS = pd.date_range("2014-07-01 12:00", periods=4, freq="h")

#: records every import of gzcarbon.demo with the importing process's command line
MONITOR = '''
import importlib.abc, os, sys
class _DemoImportMonitor(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "gzcarbon.demo" or name.startswith("gzcarbon.demo."):
            with open(os.environ["GZ_DEMO_IMPORT_LOG"], "a") as fh:
                fh.write(name + "\\t" + " ".join(sys.argv) + "\\n")
        return None
sys.meta_path.insert(0, _DemoImportMonitor())
'''


def _absolute(v):
    """The example's repository-relative paths made absolute (the run happens in a tmp dir)."""
    if isinstance(v, str) and v.startswith(("tests/", "config/")):
        return str(ROOT / v)
    if isinstance(v, dict):
        return {k: _absolute(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_absolute(x) for x in v]
    return v


def _config(tmp: Path) -> Path:
    cfg = _absolute(yaml.safe_load(EXAMPLE.read_text()))
    cfg["results_dir"] = "results"
    # these tests check the 1 km grid's columns against the NAME files; the nested outer cells of the
    # example (outer_grid res 0.5) are tested in tests/transport/test_from_files.py and test_nested_*
    cfg["outer_grid"] = {**cfg.get("outer_grid", {}), "enabled": False}
    out = tmp / "real_run.yaml"
    out.write_text(yaml.safe_dump(cfg))
    return out


def _snakemake(tmp: Path, *extra: str) -> subprocess.CompletedProcess:
    site = tmp / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(MONITOR)
    env = {**__import__("os").environ, "PYTHONPATH": str(site), "GZ_DEMO_IMPORT_LOG": str(tmp / "demo_imports.log")}
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(tmp),
           "--configfile", str(_config(tmp)), "--cores", "2", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=tmp, timeout=1200, env=env)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("real_run")
    proc = _snakemake(tmp)
    if proc.returncode != 0:
        pytest.fail(f"snakemake failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return tmp, proc


def _job_counts(text: str) -> dict[str, int]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("job ") and "count" in line)
    out = {}
    for line in lines[start + 2:]:
        parts = line.split()
        if len(parts) != 2 or parts[0] == "total":
            break
        out[parts[0]] = int(parts[1])
    return out


def test_dag_of_the_real_example_has_every_stage_and_no_demo_rule(tmp_path):
    proc = _snakemake(tmp_path, "--dry-run")
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = _job_counts(proc.stdout + proc.stderr)
    assert not [r for r in jobs if r.startswith("demo_")]
    assert jobs == {"check_inputs_part": 4, "check_inputs": 1, "hourly_obs": 1, "power_factors": 1,
                    "receptors": 1, "footprint_matches": 1, "prior": 1, "select_obs": 1,
                    "footprints": 1, "jacobian": 1, "inversion": 1, "flux_product": 1, "maps": 1,
                    "report": 1, "accounting": 1, "all": 1}


def test_no_stage_reads_or_writes_the_demo_world(run):
    tmp, proc = run
    assert not (tmp / "data").exists()  # the demo world would be written to data/demo/<month>
    assert "demo_" not in proc.stdout + proc.stderr  # no demo rule ran
    made = [p for p in tmp.rglob("*") if "demo" in p.name.lower() and p.name != "demo_imports.log"]
    assert made == []
    # every process that imported gzcarbon.demo was Snakemake parsing the workflow (demo.smk
    # defines the demo rules), never a rule's script
    log = tmp / "demo_imports.log"
    lines = log.read_text().splitlines() if log.exists() else []
    scripts = [line for line in lines if ".snakemake/scripts" in line or "workflow/scripts" in line]
    assert scripts == []
    # the input check passed every part (no failure; the prior's optional extras are warnings)
    check = pd.read_csv(tmp / "results" / MONTH / "input_check.csv")
    assert set(check["status"]) <= {"ok", "warning"}
    assert set(check["check"]) >= {"footprints", "obs", "inventory", "power"}


def test_observations_are_the_obspack_hours(run):
    tmp, _ = run
    sel = pd.read_csv(tmp / "results" / MONTH / "obs" / "selected.csv", parse_dates=["time"])
    sel["time"] = sel["time"].dt.tz_localize(None)
    sel = sel[sel["time"].dt.strftime("%Y%m%d") == "20140701"]
    with netCDF4.Dataset(OBS) as nc:  # independent read of the shipped file
        t = pd.to_datetime(nc["time"][:], unit="s")
        v = pd.Series(np.asarray(nc["value"][:], float) * 1e6, index=t)
    assert list(sel["time"]) == list(HOURS)
    np.testing.assert_allclose(sel["value"].to_numpy(), v.loc[HOURS].to_numpy(), atol=5e-5)  # %.4f


def _jacobian(tmp):
    with np.load(tmp / "results" / MONTH / "jacobian_hourly.npz") as z:
        H = sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(z["shape"]))
        return H, z["outside"], pd.to_datetime(z["hours"]), list(z["receptor_id"])


def test_jacobian_keeps_every_name_footprint_total(run):
    tmp, _ = run
    H, outside, hours, rids = _jacobian(tmp)
    assert len(rids) == 4 and H.shape[1] == len(hours) * 12 * 16
    assert hours[0] == pd.Timestamp("2014-06-30") and hours[-1] == pd.Timestamp("2014-07-01 23:00")
    with netCDF4.Dataset(FOOT) as nc:
        totals = np.asarray(nc["fp"][:], np.float64).sum(axis=(0, 1))  # fp(lat, lon, time)
    np.testing.assert_allclose(np.asarray(H.sum(axis=1)).ravel() + outside, totals, rtol=1e-6)


def _prior(tmp):
    import xarray as xr

    with xr.open_dataset(tmp / "results" / MONTH / "prior.nc") as ds:
        return ds.load()


def test_prior_is_edgar_minus_the_metered_plant(run):
    tmp, _ = run
    prior = _prior(tmp)
    with netCDF4.Dataset(EDGAR) as nc:
        lat, lon, emi = nc["lat"][:].astype(float), nc["lon"][:].astype(float), nc["emi_co2"][:]
    iy = int(np.argmin(abs(lat - 52.5)))
    cell = {c: float(emi[iy, int(np.argmin(abs(lon - c)))]) * 1e9 / M_CO2 for c in (359.95, 5.19, 0.05)}
    ft = prior["flux_total"].values  # (time, lat, lon) µmol m-2 s-1, flat in time (no profiles)
    x = prior["lon"].values
    # EDGAR cells: 359.95 (-0.05) E west of 0 E, 5.19 E east of 2.62 E (edges halfway between centres)
    np.testing.assert_allclose(ft[:, :, x < 0], cell[359.95], rtol=RTOL_M)
    np.testing.assert_allclose(ft[:, :, x > 2.75], cell[5.19], rtol=RTOL_M)
    # the 0.05 E cell (0 .. 2.62 E) holds the Great Yarmouth plant: its metered 300 MWh x 0.37 t/MWh
    # = 111 t/h are taken out of that EDGAR cell, so the flux there is lower by 111 t/h / cell area
    from gzcarbon.grid import cell_area_m2

    dlat = lat[1] - lat[0]
    area = cell_area_m2(np.array([lat[iy] - dlat / 2, lat[iy] + dlat / 2]),
                        np.array([0.0, 0.5 * (0.05 + lon[1])]))[0, 0]
    want = cell[0.05] - 111e6 / 3600 / M_CO2 * 1e6 / area
    # (the cut between the 359.95 and 0.05 E cells is at 6e-6 E, float32 centres: skip that column)
    np.testing.assert_allclose(ft[:, :, (x > 0.25) & (x < 2.5)], want, rtol=RTOL_M)
    # and the plant itself is the power sector: 111 t/h every hour
    power_t_h = (prior["flux_power"].values * prior["cell_area"].values).sum(axis=(1, 2)) * 3600 * M_CO2 * 1e-12
    np.testing.assert_allclose(power_t_h, 111.0, rtol=RTOL_M)


def test_inversion_uses_h_times_prior_and_districts_add_up(run):
    tmp, _ = run
    H, _, hours, _ = _jacobian(tmp)
    prior = _prior(tmp)
    mod = pd.read_csv(tmp / "results" / MONTH / "modelled.csv")
    hx = {k: H @ prior[k].sel(time=hours).values.ravel() for k in ("flux", "flux_total", "flux_power")}
    # the modelled enhancement per sector (CSV with 6 decimals)
    np.testing.assert_allclose(mod["prior_total"], hx["flux_total"], rtol=1e-5)
    np.testing.assert_allclose(mod["prior_power"], hx["flux_power"], rtol=1e-4)
    parts = mod[["prior_total", "prior_power", "prior_bio", "prior_unattributed"]].sum(axis=1)
    np.testing.assert_allclose(parts, hx["flux"], rtol=1e-5)
    # the prior model = background + H x_prior
    np.testing.assert_allclose(mod["prior_model"] - mod["background_prior"], hx["flux"], atol=2e-6)
    d = pd.read_csv(tmp / "results" / MONTH / "districts.csv").set_index("district")
    city = d.drop(index=["West", "East"])
    assert len(city) == 1
    for col in ("prior_t", "posterior_t"):
        assert d.loc["West", col] + d.loc["East", col] == pytest.approx(city[col].iloc[0], rel=1e-5)
    # the city prior is the prior's mass over the inverted day (2014-07-01, 24 h), t CO2
    day = prior["flux"].sel(time=slice("2014-07-01 00:00", "2014-07-01 23:00")).values
    mass = (day * prior["cell_area"].values).sum() * 3600 * M_CO2 * 1e-12
    assert city["prior_t"].iloc[0] == pytest.approx(mass, rel=RTOL_M)
    diag = json.loads((tmp / "results" / MONTH / "diagnostics.json").read_text())
    assert diag["n_obs"] == 4


def test_products_of_the_real_run(run):
    tmp, _ = run
    base = tmp / "results" / MONTH
    for name in ("report.html", f"flux_{MONTH}.nc", "districts.csv", "power/emission_factors.csv"):
        assert (base / name).stat().st_size > 0
    ef = pd.read_csv(base / "power" / "emission_factors.csv")
    east = ef[ef["district"] == "East"]
    assert len(east) == 48  # spin-up day + the inverted day, hourly
    np.testing.assert_allclose(east["production_factor"], 0.37, rtol=1e-9)  # the one gas plant


def test_input_check_takes_a_global_inventory_across_the_prime_meridian():
    """A global inventory covers a grid that straddles 0° E (the example's -0.5..3.5 E): the
    check compared the grid with the file's 0..360 E edges and refused it (found by this run)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("check_inputs", ROOT / "workflow" / "scripts" / "check_inputs.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    grid = yaml.safe_load(EXAMPLE.read_text())["grid"]
    rows = mod.check_inventory({"grid": grid, "inventory": str(EDGAR), "month": MONTH,
                                "period": ["2014-06-30T00:00:00", "2014-07-02T00:00:00"],
                                "inventory_options": {"inventory_format": "auto"}})
    assert rows[0]["status"] == "ok", rows[0]


def test_period_runs_only_its_days(run):
    """config period {start, end} = 2014-07-01: receptors of that day only, the hourly axis is the
    spin-up day (transport.n_hours 24) plus that day, not the month."""
    tmp, _ = run
    rec = pd.read_csv(tmp / "results" / MONTH / "receptors.csv", parse_dates=["time"])
    assert sorted(rec["time"].dt.strftime("%Y%m%d").unique()) == ["20140701"]
    assert len(list((tmp / "results" / MONTH / "footprints" / "TAC").glob("*.nc"))) == 1
    prior_hours = _prior(tmp)["time"].values
    assert len(prior_hours) == 48 and str(prior_hours[0])[:10] == "2014-06-30"


def test_period_outside_its_month_is_refused():
    from gzcarbon.config import ConfigError, load_config

    with pytest.raises(ConfigError, match=r"config key 'period'.*start 2014-07-01 is not inside the month 2014-08"):
        load_config({"month": "2014-08", "period": {"start": "2014-07-01"}})
    with pytest.raises(ConfigError, match=r"end 2014-07-01 is before start 2014-07-02"):
        load_config({"month": "2014-07", "period": {"start": "2014-07-02", "end": "2014-07-01"}})
