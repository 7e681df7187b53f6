"""Reproducible installs (issue 22.5).

- ``requirements/lock.txt`` is the tested set: it pins every dependency of pyproject.toml (and the
  ``test`` and ``pdf`` extras) at a version the specifier allows, CI installs with it as
  constraints, and this environment holds exactly those versions;
- the dependency list is what the code imports (plus the few used without an import statement,
  each with its reason), and every third-party module the code imports is declared;
- ``environment.yml`` (conda) lists the same packages and floors, from conda-forge and bioconda;
- slow: a fresh environment at the *lowest* versions pyproject allows (``uv pip compile
  --resolution lowest-direct``) installs and passes a cross-section of the tests.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
LOCK = ROOT / "requirements" / "lock.txt"
PACKAGES = ("gzcarbon", "stations", "transport", "inversion", "power", "products")

#: dependencies used without an import statement of their own, and why
USED_WITHOUT_IMPORT = {
    "netcdf4": "xarray's NetCDF engine (every .nc read and written); netCDF4 is also imported",
    "dask": "xarray.open_mfdataset (transport/wrf_convert.py)",
    "pyarrow": "pandas.read_parquet of pystilt footprints (transport/footprints.py)",
    "snakemake": "the workflow engine: the `snakemake` executable (gzcarbon run, README)",
    "snakemake-executor-plugin-slurm": "the SLURM profile (workflow/profiles/slurm)",
    "jinja2": "imported by products/report.py",
}
#: optional imports (inside a function, with a clear error or a fallback without them)
OPTIONAL = {
    "h5py": "stations/picarro.py: Picarro .h5 archives; without it the error says `pip install h5py`",
    "weasyprint": "the [pdf] extra (products/pdf.py); without it Chromium makes the PDF",
}
#: import name -> distribution, where they differ
IMPORT_NAMES = {"yaml": "pyyaml", "netCDF4": "netcdf4", "stilt": "pystilt", "fontTools": "fonttools"}


def _requirements(extra: str | None = None) -> list[Requirement]:
    reqs = PYPROJECT["optional-dependencies"][extra] if extra else PYPROJECT["dependencies"]
    return [Requirement(r) for r in reqs]


def _lock() -> dict[str, str]:
    out = {}
    for line in LOCK.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)==(\S+)", line)
        if m:
            out[canonicalize_name(m.group(1))] = m.group(2)
    return out


def test_the_lock_pins_every_dependency_within_its_specifier():
    lock = _lock()
    for req in _requirements() + _requirements("test") + _requirements("pdf"):
        name = canonicalize_name(req.name)
        assert name in lock, f"{req.name} is not in {LOCK.name}: regenerate it (its header says how)"
        assert req.specifier.contains(lock[name], prereleases=True), f"{req} but the lock has {lock[name]}"


def test_this_environment_is_the_locked_set():
    """The tests run on the versions of the lock (CI installs with it as constraints)."""
    wrong = []
    for name, version in _lock().items():
        try:
            have = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue   # e.g. the [pdf] extra when it is not installed
        if canonicalize_name(have) != canonicalize_name(version) and have != version:
            wrong.append(f"{name}: installed {have}, locked {version}")
    assert wrong == [], "pip install -e '.[test]' -c requirements/lock.txt, or regenerate the lock:\n" + \
        "\n".join(wrong)


def test_ci_installs_with_the_lock():
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r'pip install --quiet -e "\.\[test\]" -c requirements/lock\.txt', ci)


def _imported_modules() -> set[str]:
    out = set()
    files = [p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")] + \
        list((ROOT / "workflow" / "scripts").glob("*.py")) + list((ROOT / "tools").glob("*.py"))
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                out |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                out.add(node.module.split(".")[0])
    return out


def test_dependencies_are_what_the_code_imports():
    imported = _imported_modules()
    tools = {p.stem for p in (ROOT / "tools").glob("*.py")}  # a tool importing a sibling tool (make_districts)
    third_party = {m for m in imported if m not in sys.stdlib_module_names and m not in PACKAGES
                   and m not in OPTIONAL and m not in tools}
    declared = {canonicalize_name(r.name) for r in _requirements()}
    as_dists = {canonicalize_name(IMPORT_NAMES.get(m, m)) for m in third_party}
    # every third-party import is declared (a module of a declared package counts)
    assert as_dists - declared == set()
    # every declared package is imported, or used without an import for a stated reason
    unused = {d for d in declared - as_dists if d not in USED_WITHOUT_IMPORT}
    assert unused == set(), f"declared but never imported: {unused}"


def test_environment_yml_has_the_same_packages_and_channels():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge", "bioconda"]
    conda = {}
    pip = []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip = dep["pip"]
            continue
        m = re.match(r"^(?:\w+::)?([A-Za-z0-9_.\-]+)\s*(.*)$", dep)
        conda[canonicalize_name(m.group(1))] = m.group(2).replace(" ", "")
    pip_reqs = {canonicalize_name(Requirement(p).name): str(Requirement(p).specifier) for p in pip
                if not p.startswith("-e")}
    assert "-e ." in pip
    assert conda["python"] == "=3.11"
    for req in _requirements() + _requirements("test"):
        name = canonicalize_name(req.name)
        spec = conda.get(name, pip_reqs.get(name))
        assert spec is not None, f"{req.name} missing from environment.yml"
        assert sorted(spec.split(",")) == sorted(str(req.specifier).split(",")), (req, spec)
    assert set(pip_reqs) == {"pystilt", "arlmet"}       # published on PyPI only


@pytest.mark.slow
def test_the_lowest_versions_pyproject_allows(tmp_path):
    """A fresh Python 3.11 environment with the lowest version of every direct dependency that
    installs together (uv's lowest-direct resolution), then a cross-section of the tests."""
    venv = tmp_path / "low"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = str(venv / "bin" / "python")
    subprocess.run([py, "-m", "pip", "install", "-q", "uv"], check=True, timeout=900)
    lock = tmp_path / "lowest.txt"
    subprocess.run([str(venv / "bin" / "uv"), "pip", "compile", str(ROOT / "pyproject.toml"), "--extra", "test",
                    "--python-version", "3.11", "--resolution", "lowest-direct", "--no-header", "-o", str(lock)],
                   check=True, timeout=900, cwd=ROOT)
    subprocess.run([py, "-m", "pip", "install", "-q", "-r", str(lock)], check=True, timeout=2400)
    # the project itself is imported from the checkout (pytest's pythonpath)
    tests = ["tests/test_config.py", "tests/test_grid.py", "tests/inversion/test_solve.py",
             "tests/inversion/test_kernels.py", "tests/stations/test_read.py", "tests/transport/test_arl.py",
             "tests/transport/test_read_footprints.py", "tests/power/test_flow.py",
             "tests/products/test_flux_netcdf.py", "tests/products/test_cf_check.py",
             "tests/transport/test_pystilt_contract.py", "tests/test_cli.py::test_every_subcommand_has_help"]
    proc = subprocess.run([py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--basetemp",
                           str(tmp_path / "pt"), *tests], capture_output=True, text=True, cwd=ROOT, timeout=3600)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
