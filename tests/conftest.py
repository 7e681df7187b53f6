"""Shared helpers and fixtures of the pipeline-level tests (resume, determinism, failures).

Importable from any test module as ``from pipeline_conftest import ...`` (this module registers
itself under that name: ``conftest`` alone is ambiguous, tests/stations and tests/power have their
own conftest.py), or used as fixtures:

- :func:`tiny_config` writes the tiny end-to-end configuration of ``test_end_to_end`` with
  *relative* ``results_dir``/``data_dir``, so a run directory can be copied (``copy_run``) and
  its products compared path-independently;
- :func:`snakemake_cmd` / :func:`run_snakemake` run the pipeline in a directory;
- the session fixture ``tiny_reference_run`` is one uninterrupted tiny run (~35 s on 2 cores),
  reused by the resume, determinism and pipeline-level failure tests (never modify it: copy it);
- :func:`product_differences` lists every difference between the products of two runs (NetCDF
  variables and attributes bit for bit, CSV files byte for byte after parsing, the JSON without
  timings), ignoring only attributes that hold a time stamp.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent


def _import_project_packages() -> None:
    """Import the project's packages before ``tests/`` is searched for them.

    pytest puts ``tests/`` first on sys.path because of this file; the package is installed
    editable through a finder hook, so ``tests/inversion`` (a directory without __init__.py) would
    otherwise be taken as a namespace package ``inversion`` and hide the real one
    (``cannot import name ... from 'inversion' (unknown location)``).
    """
    import importlib

    saved = list(sys.path)
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != TESTS]
    try:
        for name in ("inversion", "transport", "stations", "power", "products"):
            mod = sys.modules.get(name)
            if mod is not None and getattr(mod, "__file__", None) is None:
                del sys.modules[name]          # a namespace stand-in imported too early
            importlib.import_module(name)
    finally:
        sys.path[:] = saved
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))


_import_project_packages()

from test_end_to_end import MONTH, _tiny_config  # noqa: E402

sys.modules.setdefault("pipeline_conftest", sys.modules[__name__])

#: Attributes that legitimately change from run to run (creation time stamps).
TIME_ATTRS = {"date_created", "date_modified", "date_issued", "history", "created", "creation_date",
              "date_metadata_modified", "timestamp"}
#: diagnostics.json keys that hold wall-clock timings.
TIMING_KEYS = {"seconds", "timings", "solve_timings", "elapsed", "wall_seconds"}


def tiny_config(workdir: Path) -> Path:
    """The tiny config of test_end_to_end with results/ and data/ relative to ``workdir``."""
    workdir = Path(workdir)
    path = _tiny_config(workdir)
    cfg = yaml.safe_load(path.read_text())
    cfg["results_dir"] = "results"
    cfg["data_dir"] = "data"
    path.write_text(yaml.safe_dump(cfg))
    return path


def snakemake_cmd(workdir: Path, cfgfile: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory",
            str(workdir), "--configfile", str(cfgfile), "--cores", "2", *extra]


def run_snakemake(workdir: Path, cfgfile: Path, *extra: str,
                  timeout: float = 1800) -> subprocess.CompletedProcess:
    return subprocess.run(snakemake_cmd(workdir, cfgfile, *extra), capture_output=True, text=True,
                          cwd=workdir, timeout=timeout)


def run_tiny(workdir: Path) -> Path:
    """One complete tiny run in ``workdir`` (created); fails the test if snakemake fails."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    cfg = tiny_config(workdir)
    proc = run_snakemake(workdir, cfg)
    if proc.returncode != 0:
        pytest.fail(f"tiny run in {workdir} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return workdir


def copy_run(src: Path, dst: Path) -> Path:
    """Copy a run directory (data, results, .snakemake metadata; mtimes kept) to ``dst``."""
    shutil.copytree(src, dst, symlinks=True, ignore=shutil.ignore_patterns("locks"))
    return Path(dst)


@pytest.fixture(scope="session")
def tiny_reference_run(tmp_path_factory) -> Path:
    """Directory of one uninterrupted tiny run (results/2025-01/...). Read only: copy to modify."""
    return run_tiny(tmp_path_factory.mktemp("tiny_reference"))


def product_files(workdir: Path) -> list[str]:
    """Relative paths of the products compared between runs (NetCDF, CSV, JSON, NPZ)."""
    res = Path(workdir) / "results" / MONTH
    out = []
    for p in sorted(res.rglob("*")):
        rel = p.relative_to(workdir).as_posix()
        if "/footprints/work/" in rel or p.name.startswith("."):
            continue   # per-receptor cache: compared through the site-day files
        if p.suffix in (".nc", ".csv", ".json", ".npz"):
            out.append(rel)
    return out


def _attrs_diff(where: str, a: dict, b: dict) -> list[str]:
    out = []
    for k in sorted(set(a) | set(b)):
        if k in TIME_ATTRS:
            continue
        va, vb = a.get(k), b.get(k)
        if isinstance(va, np.ndarray) or isinstance(vb, np.ndarray):
            same = np.array_equal(np.asarray(va), np.asarray(vb))
        else:
            same = va == vb
        if not same:
            out.append(f"{where}: attribute {k!r}: {str(va)[:80]!r} != {str(vb)[:80]!r}")
    return out


def _netcdf_diff(a: Path, b: Path, rel: str) -> list[str]:
    out = []
    with xr.open_dataset(a, decode_times=False) as da, xr.open_dataset(b, decode_times=False) as db:
        names_a, names_b = set(da.variables), set(db.variables)
        if names_a != names_b:
            return [f"{rel}: variables differ: {sorted(names_a ^ names_b)}"]
        out += _attrs_diff(rel, dict(da.attrs), dict(db.attrs))
        for v in sorted(names_a):
            xa, xb = da[v].values, db[v].values
            if da[v].dims != db[v].dims or xa.shape != xb.shape:
                out.append(f"{rel}:{v}: shape {da[v].dims}{xa.shape} != {db[v].dims}{xb.shape}")
                continue
            if xa.dtype.kind in "fcmiub":
                # bit for bit: the same bytes (NaN where NaN)
                same = xa.dtype == xb.dtype and \
                    np.ascontiguousarray(xa).tobytes() == np.ascontiguousarray(xb).tobytes()
            else:
                same = np.array_equal(xa, xb)
            if not same:
                if xa.dtype.kind in "fc":
                    diff = np.nanmax(np.abs(xa.astype(float) - xb.astype(float)))
                    out.append(f"{rel}:{v}: values differ (max |diff| {diff:.3g})")
                else:
                    out.append(f"{rel}:{v}: values differ")
            out += _attrs_diff(f"{rel}:{v}", dict(da[v].attrs), dict(db[v].attrs))
    return out


def _json_strip(obj):
    if isinstance(obj, dict):
        return {k: _json_strip(v) for k, v in obj.items()
                if k not in TIMING_KEYS and not k.endswith(("_seconds", "_timings"))}
    if isinstance(obj, list):
        return [_json_strip(v) for v in obj]
    return obj


def product_differences(dir_a: Path, dir_b: Path) -> list[str]:
    """Every difference between the products of the runs in ``dir_a`` and ``dir_b`` (empty = same).

    NetCDF: every variable bit for bit and every attribute except :data:`TIME_ATTRS`;
    CSV: the raw bytes; JSON: equal after dropping :data:`TIMING_KEYS`; NPZ: every array.
    """
    dir_a, dir_b = Path(dir_a), Path(dir_b)
    fa, fb = product_files(dir_a), product_files(dir_b)
    out = [f"only in one run: {sorted(set(fa) ^ set(fb))}"] if set(fa) != set(fb) else []
    for rel in sorted(set(fa) & set(fb)):
        a, b = dir_a / rel, dir_b / rel
        if a.suffix == ".nc":
            out += _netcdf_diff(a, b, rel)
        elif a.suffix == ".csv":
            if a.read_bytes() != b.read_bytes():
                ta, tb = pd.read_csv(a), pd.read_csv(b)
                out.append(f"{rel}: CSV differs ({len(ta)} vs {len(tb)} rows; columns "
                           f"{list(ta.columns) == list(tb.columns) and 'same' or 'differ'})")
        elif a.suffix == ".json":
            ja, jb = _json_strip(json.loads(a.read_text())), _json_strip(json.loads(b.read_text()))
            if ja != jb:
                keys = [k for k in set(ja) | set(jb) if ja.get(k) != jb.get(k)]
                out.append(f"{rel}: JSON differs in {sorted(keys)}")
        elif a.suffix == ".npz":
            with np.load(a, allow_pickle=False) as za, np.load(b, allow_pickle=False) as zb:
                if set(za.files) != set(zb.files):
                    out.append(f"{rel}: arrays differ: {sorted(set(za.files) ^ set(zb.files))}")
                for k in sorted(set(za.files) & set(zb.files)):
                    if not np.array_equal(za[k], zb[k]):
                        out.append(f"{rel}:{k}: values differ")
    return out


def script_object(inputs: dict, outputs: dict, params: dict, log, config: dict, **wildcards):
    """The `snakemake` object a `script:` directive gives a workflow script (the parts the scripts
    read), for running a script in-process: ``from pipeline_conftest import script_object``."""
    from snakemake.iocontainers import Namedlist

    class Snakemake:
        pass

    sm = Snakemake()
    sm.input = Namedlist(fromdict=inputs)
    sm.output = Namedlist(fromdict=outputs)
    sm.params = Namedlist(fromdict=params)
    sm.log = Namedlist(fromdict={"log": str(log)})
    sm.wildcards = Namedlist(fromdict={"month": "2025-01", **wildcards})
    sm.config = config
    return sm
