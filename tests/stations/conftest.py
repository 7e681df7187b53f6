"""Shared fixtures of the stations tests: site metadata (the truth helper is station_truth.py).

``tests/conftest.py`` puts ``tests/`` on ``sys.path``, where ``tests/stations`` would shadow the
``stations`` package as a namespace package: the repository root goes first, and a namespace
``stations`` imported by accident is dropped.
"""
import sys
from pathlib import Path

_REPO = Path(__file__).resolve().parents[2]
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))
if "stations" in sys.modules and getattr(sys.modules["stations"], "__file__", None) is None:
    del sys.modules["stations"]

import pytest  # noqa: E402

from stations.sites import get_site, load_sites  # noqa: E402

STATIONS_FILE = Path(__file__).resolve().parents[2] / "config" / "stations.yaml"


@pytest.fixture(scope="session")
def all_sites():
    return load_sites(STATIONS_FILE)


@pytest.fixture(scope="session")
def tower(all_sites):
    return get_site(all_sites, "NST")


@pytest.fixture(scope="session")
def urban(all_sites):
    return get_site(all_sites, "YXU")
