"""tools/nested_gases.py reads a nested run's district and outer tables: city and ring errors in σ."""

import importlib.util
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("nested_gases", ROOT / "tools" / "nested_gases.py")
tool = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tool)


def test_city_and_ring_errors_in_sigma(tmp_path):
    res = tmp_path / "results" / "2025-01" / "ch4"
    res.mkdir(parents=True)
    pd.DataFrame({"district": ["Liwan", "Guangzhou"], "prior_t": [10.0, 900.0], "posterior_t": [11.0, 950.0],
                  "posterior_sigma_t": [2.0, 100.0], "truth_t": [12.0, 1000.0]}).to_csv(res / "districts.csv", index=False)
    pd.DataFrame({"name": ["outer ring", "Foshan", "Dongguan"], "kind": ["ring", "city", "city"],
                  "prior_t": [5000.0, 200.0, 150.0], "posterior_t": [5100.0, 210.0, 150.0],
                  "posterior_sigma_t": [400.0, 10.0, 10.0], "truth_t": [4500.0, 195.0, 130.0]}).to_csv(
        res / "outer.csv", index=False)
    rows = tool.table(tmp_path, "2025-01")
    assert len(rows) == 3
    cells = [c.strip() for c in rows[2].split("|")[1:-1]]
    assert cells[0] == "CH4" and cells[2] == "-100" and cells[3] == "-50" and cells[5] == "-0.50"
    assert cells[7] == "+600" and cells[9] == "+1.50" and cells[10] == "0 / 2 of 2"  # 1.5 σ and 2.0 σ
