"""What the transport stage takes from pystilt, checked (issue 22.5).

pystilt is pinned at 0.1.0a25 (pyproject.toml): that release bundles HYSPLIT's ``hycs_std``
binary, and transport/stilt_driver.py uses some of its private names:
``stilt.footprint.gridding._interpolate_early_timesteps`` (the near-receptor interpolation of
every footprint), ``stilt.transport.hysplit.driver._bundled_exe_dir`` (where the bundled
binary is, hashed into the receptor cache key) and, for the nested grid, the steps of
``calc_footprint`` (``NESTED_PRIVATE``: kernel widths, padded grid, rasterising, smoothing). A rename in pystilt would otherwise change
footprints or cache keys without a word: these tests fail instead.
"""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import tomllib
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
PIN = "0.1.0a25"
DRIVER = ROOT / "transport" / "stilt_driver.py"


def test_pystilt_is_the_pinned_release():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert f"pystilt=={PIN}" in deps
    assert metadata.version("pystilt") == PIN


#: pystilt's private steps of calc_footprint that the nested gridding calls, with their parameters
#: (tests/transport/test_nested_footprints.py checks that the inner footprint they give equals
#: calc_footprint's bit for bit).
NESTED_PRIVATE = {
    "_compute_kernel_bandwidths": ["p", "smooth_factor", "is_longlat"],
    "_make_gauss_kernel": ["rs", "sigma"],
    "_padded_axes": ["xmin", "ymin", "xres", "yres", "n_lon", "n_lat", "xbuf", "ybuf"],
    "_filter_and_rasterize_particles": ["p", "glong_buf", "glati_buf", "xbufh", "ybufh", "xmin",
                                        "xmax", "ymin", "ymax", "xres", "yres", "time_integrate"],
    "_accumulate_smoothed_footprint": ["p", "layers", "n_lon_buf", "n_lat_buf", "rtimes", "w", "rs"],
    "_grid_cell_starts": ["minimum", "maximum", "resolution"],
}


def test_the_private_names_the_driver_uses_exist():
    from stilt.footprint import gridding
    from stilt.transport.hysplit import driver

    from stilt import spatial

    source = DRIVER.read_text()
    used = set(re.findall(r"\b(_[a-z_]+)\(", source)) & NESTED_PRIVATE.keys() | set(
        re.findall(r"\b(_interpolate_early_timesteps|_bundled_exe_dir)\b", source))
    # the names this test guards: the near-receptor interpolation, the bundled binary and, for the
    # nested gridding (_nested_hour_footprint), the steps of calc_footprint it runs itself
    assert used == {"_interpolate_early_timesteps", "_bundled_exe_dir", *NESTED_PRIVATE}
    assert "getattr(gridding" not in source                              # never looked up with a fallback
    interp = gridding._interpolate_early_timesteps
    assert list(inspect.signature(interp).parameters) == ["p", "xres", "yres", "time_sign"]
    assert Path(driver._bundled_exe_dir()).is_dir()
    for name, params in NESTED_PRIVATE.items():
        fn = getattr(spatial if name == "_grid_cell_starts" else gridding, name)
        assert list(inspect.signature(fn).parameters) == params, name


def test_the_early_timestep_interpolation_still_conserves_the_footprint():
    """The private function still does what the driver relies on: particles that jump more than a
    grid cell per step near the receptor get interpolated positions (more rows), and the summed
    ``foot`` of each window (0-10, 10-20, 20-100 min) and of the whole track is kept."""
    from stilt.footprint import gridding

    rng = np.random.default_rng(3)
    ages = -np.arange(1.0, 151.0, 2.0)                    # every 2 min back to 150 min
    n_par = 20
    p = pd.DataFrame({
        "particle": np.repeat(np.arange(1, n_par + 1), ages.size),
        "age": np.tile(ages, n_par),
        "lon": 113.3 + np.cumsum(rng.normal(0, 0.05, n_par * ages.size)),  # ~5 cells per step
        "lat": 23.1 + np.cumsum(rng.normal(0, 0.05, n_par * ages.size)),
        "foot": rng.uniform(0.0, 0.02, n_par * ages.size),
    })
    out = gridding._interpolate_early_timesteps(p.copy(), xres=0.01, yres=0.01, time_sign=-1)
    assert len(out) > len(p)
    for lo, hi in ((0, 10), (10, 20), (20, 100), (100, 1e9)):
        a, b = np.abs(p["age"]), np.abs(out["age"])
        want = p.loc[(a > lo) & (a <= hi), "foot"].sum()
        assert out.loc[(b > lo) & (b <= hi), "foot"].sum() == pytest.approx(want, rel=1e-9), (lo, hi)
    assert out["foot"].sum() == pytest.approx(p["foot"].sum(), rel=1e-9)


def test_the_bundled_hycs_std_is_present_and_runs(tmp_path):
    from stilt.transport.hysplit.driver import HYCS_STD_FILE, _bundled_exe_dir
    from stilt.transport.hysplit.model import hysplit_version

    exe = Path(_bundled_exe_dir()) / HYCS_STD_FILE
    assert exe.is_file() and os.access(exe, os.X_OK), exe
    version = hysplit_version()
    assert re.fullmatch(r"v\d+\.\d+\.\d+.*", version), version
    # no CONTROL file: HYSPLIT starts, prints its banner with the version, asks for the start
    # time on stdin and stops at its end
    proc = subprocess.run([str(exe)], cwd=tmp_path, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=60)
    assert "HYSPLIT version: hysplit." + version in proc.stdout, proc.stdout[:500]
    assert "Enter starting time" in proc.stdout
