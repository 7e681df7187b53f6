"""The ``gzcarbon`` command (issue 22.3): every subcommand has --help; `run` builds the Snakemake
command a user would type and a dry run of a finished tiny run has nothing to do (also with the
configuration stored in its own flux product); `results` prints the numbers of districts.csv and
diagnostics.json; `check` runs the input checks on real public files (ICOS CO2 as OpenGHG stores it,
EDGAR v6.0) and names what is missing; `met` writes the same ARL files as transport.era5_to_arl;
`osse` is tools/osse.py; every `gzcarbon` command shown in README.md and docs/cli.md works as written.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml

from gzcarbon.cli import COMMANDS, main

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
ICOS_TOH = DATA / "obs" / "openghg_icos_toh_co2_147m.nc"  # 2017-12-13 01:00 .. 2017-12-14 06:00 UTC
EDGAR = DATA / "inventory" / "v6.0_CO2_excl_short-cycle_org_C_2015_TOTALS.5.3x5.1.nc"
GRID = dict(lon_min=113.0, lon_max=113.6, lat_min=22.9, lat_max=23.5, res=0.01)
MONTH = "2025-01"


def cli(*args: str, cwd=None, timeout=900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gzcarbon.cli", *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, timeout=timeout)


# --------------------------------------------------------------------------------------- help
def test_every_subcommand_has_help():
    top = cli("--help")
    assert top.returncode == 0 and all(c in top.stdout for c in COMMANDS)
    for command in COMMANDS:
        proc = cli(command, "--help")
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith(f"usage: gzcarbon {command}"), proc.stdout[:200]


def test_console_script_is_declared_and_installed():
    import tomllib

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"gzcarbon": "gzcarbon.cli:main"}
    exe = Path(sys.executable).parent / "gzcarbon"
    assert exe.is_file(), "pip install -e . installs the gzcarbon command"
    proc = subprocess.run([str(exe), "results", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "usage: gzcarbon results" in proc.stdout


# ---------------------------------------------------------------------------------------- run
def _command(capsys, *args) -> list[str]:
    assert main(["run", "--print-command", *args]) == 0
    return capsys.readouterr().err.strip().removeprefix("$ ").split(" ")


def test_run_builds_the_snakemake_command(capsys, tmp_path):
    cmd = _command(capsys, "--month", "2025-02", "--cores", "4", "--directory", str(tmp_path))
    assert Path(cmd[0]).name == "snakemake"
    assert cmd[1:] == ["-s", str(ROOT / "Snakefile"), "--directory", str(tmp_path.resolve()), "--cores", "4",
                       "--config", "month=2025-02"]
    cmd = " ".join(_command(capsys, "--year", "2025", "--profile", "slurm", "--", "--keep-going"))
    assert f"--profile {ROOT / 'workflow' / 'profiles' / 'slurm'}" in cmd
    months = re.search(r"months=\[(.*)\]", cmd).group(1).strip("'").split(", ")
    assert months == [f"2025-{m:02d}" for m in range(1, 13)] and cmd.endswith("--keep-going")
    assert "year=2025" in cmd.split()
    assert main(["run", "--month", "2025-13"]) == 2
    assert "month '2025-13': give YYYY-MM" in capsys.readouterr().err
    assert main(["run", "--profile", "nosuch", "--print-command"]) == 2
    assert "use one of ['default', 'slurm']" in capsys.readouterr().err


def test_a_year_is_twelve_months_in_one_snakemake_call(tmp_path):
    proc = cli("run", "--year", "2025", "--dry-run", "--directory", str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = dict(re.findall(r"^(flux_product|report|annual_report)\s+(\d+)$", proc.stdout, re.M))
    assert jobs == {"flux_product": "12", "report": "12", "annual_report": "1"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, request):
    """A copy of the finished tiny run (read only here) and its config file."""
    from pipeline_conftest import copy_run, tiny_config

    run = copy_run(request.getfixturevalue("tiny_reference_run"), tmp_path_factory.mktemp("cli") / "run")
    return run, tiny_config(run)


def test_run_on_a_finished_run_has_nothing_to_do_also_with_its_stored_config(tiny, tmp_path):
    """Reproducible from the output: the configuration stored in the flux product (saved by
    `gzcarbon results --save-config`) plans exactly the finished run (nothing to do), while a changed
    setting would re-run jobs."""
    run, cfg = tiny
    proc = cli("run", "--configfile", str(cfg), "--directory", str(run), "--dry-run")
    # on failure show snakemake's reasons (stdout of a dry run), not the echoed command
    assert proc.returncode == 0 and "Nothing to be done" in proc.stdout + proc.stderr, \
        proc.stdout[-3000:] + proc.stderr[-1000:]
    saved = tmp_path / "stored.yaml"
    proc = cli("results", "--results-dir", str(run / "results"), "--save-config", str(saved))
    assert proc.returncode == 0, proc.stderr
    with xr.open_dataset(run / "results" / MONTH / f"flux_{MONTH}.nc") as ds:
        stored, digest = ds.attrs["config_yaml"], ds.attrs["config_sha256"]
    assert saved.read_text() == stored
    from gzcarbon.provenance import config_hash

    assert config_hash(yaml.safe_load(stored)) == digest
    proc = cli("run", "--configfile", str(saved), "--directory", str(run), "--dry-run")
    assert proc.returncode == 0 and "Nothing to be done" in proc.stdout + proc.stderr, proc.stdout[-3000:]
    changed = yaml.safe_load(stored)
    changed["inversion"]["corr_length_km"] = 2 * float(changed["inversion"]["corr_length_km"])
    (tmp_path / "changed.yaml").write_text(yaml.safe_dump(changed))
    proc = cli("run", "--configfile", str(tmp_path / "changed.yaml"), "--directory", str(run), "--dry-run")
    assert proc.returncode == 0 and re.search(r"^inversion\s+1$", proc.stdout, re.M), proc.stdout[-3000:]


# ------------------------------------------------------------------------------------ results
def test_results_prints_the_runs_numbers(tiny):
    run, _ = tiny
    R = run / "results" / MONTH
    proc = cli("results", "--json", cwd=run)          # default: results/ here, the latest month
    assert proc.returncode == 0, proc.stderr
    s = json.loads(proc.stdout)
    table = pd.read_csv(R / "districts.csv").set_index("district")
    assert [r["district"] for r in s["districts"]] == list(table.index)
    for r in s["districts"]:
        want = table.loc[r["district"]]
        for k in ("prior_t", "posterior_t", "prior_sigma_t", "posterior_sigma_t", "truth_t"):
            assert r[k] == pytest.approx(float(want[k]), rel=1e-12)
        assert r["uncertainty_reduction"] == pytest.approx(1 - want.posterior_sigma_t / want.prior_sigma_t)
    diag = json.loads((R / "diagnostics.json").read_text())
    d = s["diagnostics"]
    assert (d["n_obs"], d["chi2_reduced"], d["dofs"]) == (diag["n_obs"], diag["chi2_reduced"], diag["dofs"])
    assert d["n_selected"] == diag["observations_lost"]["n_selected"] and d["receptors"] == diag["receptors"]["n"]
    assert s["files"]["report"] == str((R / "report.html").resolve())
    # the text table: the city row as kt with one decimal
    text = cli("results", "--results-dir", str(run / "results"), "--month", MONTH).stdout
    city = table.loc["Guangzhou"]
    row = next(ln for ln in text.splitlines() if ln.startswith("Guangzhou"))
    assert f"{city.posterior_t / 1e3:,.1f} ± {city.posterior_sigma_t / 1e3:,.1f}" in row
    assert f"{100 * (1 - city.posterior_sigma_t / city.prior_sigma_t):.0f} %" in row
    assert f"report:       {(R / 'report.html').resolve()}" in text


def test_results_without_a_run_says_what_to_do(tmp_path):
    proc = cli("results", "--results-dir", str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 2 and "no month directory (YYYY-MM) under" in proc.stderr
    (tmp_path / "2025-03").mkdir()
    proc = cli("results", "--results-dir", str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 2 and "gzcarbon run --month 2025-03" in proc.stderr


# -------------------------------------------------------------------------------------- check
def _power(tmp_path, hours):
    import power

    districts = power.district_names(ROOT / "config" / "districts.geojson")
    plants = power.read_plants(ROOT / "config" / "power_plants.csv", districts)
    disp = plants.index[plants["dispatched"]]
    pd.DataFrame([(t.isoformat(), p, 0.5 * plants.loc[p, "capacity_mw"]) for t in hours for p in disp],
                 columns=["time", "plant_id", "generation_mwh"]).to_csv(tmp_path / "generation.csv", index=False)
    pd.DataFrame([(t.isoformat(), d, 800.0) for t in hours for d in districts],
                 columns=["time", "district", "load_mwh"]).to_csv(tmp_path / "load.csv", index=False)


@pytest.fixture
def real_config(tmp_path):
    """A real run of December 2017 at two sites: the ICOS TOH file (real, as OpenGHG stores it) in each
    site's folder, the real EDGAR v6.0 inventory, power CSVs for every hour (the documented format), and
    ARL files for two days only."""
    for site in ("NST", "YXU"):
        (tmp_path / "obs" / site).mkdir(parents=True)
        shutil.copy(ICOS_TOH, tmp_path / "obs" / site / ICOS_TOH.name)
    (tmp_path / "met").mkdir()
    for day in ("20171212", "20171213"):
        (tmp_path / "met" / f"{day}_gz.arl").write_bytes(b"")
    _power(tmp_path, pd.date_range("2017-11-30", "2018-01-01", freq="h", inclusive="left"))
    cfg = {"month": "2017-12", "demo": {"enabled": False}, "sites": ["NST", "YXU"], "grid": GRID,
           "transport": {"n_hours": 24},
           "inputs": {"met_dir": str(tmp_path / "met"), "raw_obs_dir": str(tmp_path / "obs"),
                      "inventory": str(EDGAR), "power_generation": str(tmp_path / "generation.csv"),
                      "power_load": str(tmp_path / "load.csv")}}
    path = tmp_path / "real_run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_check_passes_what_covers_the_month_and_warns_about_gaps(real_config, tmp_path):
    out = tmp_path / "check.csv"
    proc = cli("check", "--configfile", str(real_config), "--part", "obs", "--part", "inventory",
               "--part", "power", "--csv", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    table = pd.read_csv(out, keep_default_na=False)
    status = {(r.check, r.item): r.status for r in table.itertuples()}
    # the ICOS file holds 2017-12-13/14 only: the sites are found, the other days are named
    assert status[("obs", "NST")] == status[("obs", "YXU")] == "warning"
    obs = table[(table["check"] == "obs") & (table["item"] == "NST")].iloc[0]
    assert obs["found"] == "1 file(s) (hourly), 2017-12-13 01:00 .. 2017-12-14 06:00"
    assert obs["detail"].startswith("no data on 29 day(s): 2017-12-01, 2017-12-02")
    assert status[("inventory", str(EDGAR))] == "ok"
    assert status[("power", "generation")] == status[("power", "load")] == "ok"
    assert "missing" not in set(table["status"])


def test_check_names_every_missing_piece(real_config, tmp_path):
    load = pd.read_csv(tmp_path / "load.csv")
    load.drop(index=7).to_csv(tmp_path / "load.csv", index=False)
    proc = cli("check", "--configfile", str(real_config))
    assert proc.returncode == 1, proc.stderr
    missing = proc.stdout.split("missing:\n")[1].splitlines()
    assert [ln.split(":")[0].strip("- ") for ln in missing] == ["met NST", "met YXU", "power load"]
    assert "20171130_gz.arl" in missing[0]                            # the spin-up day's file
    assert "2017-11-30T00:00" in missing[2]
    assert re.search(r"^\d+ checks: \d+ ok, \d+ warning, 3 missing$", proc.stdout, re.M)


def test_check_refuses_a_demo_config_and_settings_match_the_rule():
    """A demo run has no input check; the settings hold exactly the keys rule check_inputs_part
    passes (workflow/rules/check.smk PART_SETTINGS)."""
    import ast

    proc = cli("check")
    assert proc.returncode == 2 and "demo run (demo.enabled: true)" in proc.stderr
    tree = ast.parse((ROOT / "workflow" / "rules" / "check.smk").read_text().split("\nrule ")[0])
    parts = next(ast.literal_eval(n.value) for n in tree.body
                 if isinstance(n, ast.Assign) and n.targets[0].id == "PART_SETTINGS")
    from gzcarbon.cli.check_cmd import settings
    from gzcarbon.config import validate_config

    s = settings(validate_config({}, ROOT), "2025-02")
    assert set().union(*parts.values()) <= set(s)
    assert s["period"] == ["2025-01-31T00:00:00", "2025-03-01T00:00:00"] and len(s["days"]) == 28


# ---------------------------------------------------------------------------------------- met
def _era5_file(path: Path) -> None:
    """An ERA5 NetCDF in the CDS layout (names, units, north-to-south latitudes) of tests/transport."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("met_convert_test", ROOT / "tests/transport/test_met_convert.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod._era5_like(pd.date_range("2025-01-03 05:00", periods=2, freq="h")).to_netcdf(path)


def test_met_converts_like_the_library(tmp_path):
    from transport import era5_to_arl

    _era5_file(tmp_path / "era5.nc")
    proc = cli("met", "era5", str(tmp_path / "era5.nc"), "--out-dir", str(tmp_path / "cli"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [str(tmp_path / "cli" / "20250103_gz.arl")]
    lib = era5_to_arl([str(tmp_path / "era5.nc")], tmp_path / "lib")
    assert (tmp_path / "cli" / "20250103_gz.arl").read_bytes() == lib[0].read_bytes()
    bad = cli("met", "era5", str(tmp_path / "era5.nc"), "--out-dir", str(tmp_path / "x"), "--day", "2025-01-05")
    assert bad.returncode == 2 and "2025-01-05" in bad.stderr


# --------------------------------------------------------------------------------------- osse
def test_osse_is_the_tool(tiny):
    run, _ = tiny
    a = cli("osse", str(run), "--draws", "2")
    b = subprocess.run([sys.executable, str(ROOT / "tools" / "osse.py"), str(run), "--draws", "2"],
                       capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert a.returncode == b.returncode == 0, a.stderr[-2000:] + b.stderr[-2000:]
    assert a.stdout == b.stdout and "2 noise draws" in a.stdout
    assert cli("osse", "--help").stdout.startswith("usage: gzcarbon osse")


# ------------------------------------------------------------------------------- documentation
def documented_commands() -> list[tuple[str, str]]:
    out = []
    for doc in (ROOT / "README.md", ROOT / "docs" / "cli.md"):
        for block in re.findall(r"```bash\n(.*?)```", doc.read_text(), re.S):
            for line in block.splitlines():
                line = line.split("  #")[0].strip()
                if line.startswith("gzcarbon "):
                    out.append((doc.name, line))
    return out


def test_documented_commands_work_as_written(tiny, real_config, tmp_path):
    """In a copy of the tiny run, with an ERA5 file and a real run's config file named as in the docs;
    `gzcarbon run` commands are dry runs, `--open` is left out (no browser in the tests)."""
    import shlex

    run, cfg = tiny
    commands = documented_commands()
    assert {c.split()[1] for _, c in commands} == set(COMMANDS), commands
    shutil.copy(real_config, run / "my_network.yaml")
    _era5_file(run / "era5_2025-01.nc")
    for where, command in commands:
        args = [a for a in shlex.split(command)[1:] if a != "--open"]
        if args[0] == "run":
            args.append("--dry-run")
        proc = cli(*args, cwd=run)
        ok = (0, 1) if args[0] == "check" else (0,)   # check: exit 1 names what is missing
        assert proc.returncode in ok, f"{where}: {command}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
