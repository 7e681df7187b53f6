"""tools/boundary_check.py --longer: a run whose met does not reach HOURS back before any receptor
stops with one message naming receptors.csv, the hours and the met's first day (no HYSPLIT run)."""

import importlib.util
from pathlib import Path

import pandas as pd
import pytest

from gzcarbon.config import load_config

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("boundary_check_tool", ROOT / "tools" / "boundary_check.py")
tool = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tool)


def test_longer_without_enough_met_stops_naming_the_files(tmp_path):
    res = tmp_path / "results" / "2025-01"
    demo = tmp_path / "data" / "demo" / "2025-01"
    res.mkdir(parents=True)
    (demo / "met").mkdir(parents=True)
    for day in ("20241231", "20250101", "20250102"):
        (demo / "met" / f"{day}_gz.arl").write_bytes(b"")
    pd.DataFrame({"receptor_id": ["NST_202501020430_220"], "site": ["NST"], "time": ["2025-01-02T04:30:00"],
                  "lon": [113.56], "lat": [22.76], "agl": [220.0]}).to_csv(res / "receptors.csv", index=False)
    with pytest.raises(SystemExit, match=r"--longer 72: no receptor of .*receptors.csv has 72 h of met before "
                                         r"it \(met from 2024-12-31"):
        tool.endpoint_runs(res, demo, load_config({}), 72, 6, 100, tmp_path / "work")
