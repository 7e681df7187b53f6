"""Shared fixtures of the power tests.

``tests/conftest.py`` puts ``tests/`` on ``sys.path``, where ``tests/power`` would shadow the
``power`` package as a namespace package: the repository root goes first, and a namespace
``power`` imported by accident is dropped.
"""
import os
import sys

_REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)
if "power" in sys.modules and getattr(sys.modules["power"], "__file__", None) is None:
    del sys.modules["power"]

import pytest  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PLANTS = os.path.join(REPO, "config", "power_plants.csv")
DISTRICTS_FILE = os.path.join(REPO, "config", "districts.geojson")


@pytest.fixture
def plants_file():
    return PLANTS


@pytest.fixture(scope="session")
def demo_files(tmp_path_factory):
    """Demo inputs for 2024-12-31 .. 2025-01-03 (72 h) written once per session."""
    from gzcarbon.demo.power import write_demo

    d = tmp_path_factory.mktemp("power_demo")
    files = {"generation": str(d / "generation.csv"), "load": str(d / "load.csv"),
             "external": str(d / "external_intensity.csv")}
    info = write_demo(PLANTS, files, "2024-12-31T00:00:00", "2025-01-03T00:00:00", seed=20250101)
    return files, info
