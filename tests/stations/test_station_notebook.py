"""notebooks/station_exploration.ipynb runs on a tiny stations run (2 sites, 1 day)."""
import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from stations import hourly, selection
from gzcarbon.demo.stations import write_demo_raw

from station_truth import make_truth

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "station_exploration.ipynb"


@pytest.fixture(scope="module")
def tiny_results(tmp_path_factory, tower, urban):
    root = tmp_path_factory.mktemp("tiny")
    truth = make_truth([tower, urban], days=1, seed=2)
    dirs = []
    for site in (tower, urban):
        raw = root / "raw" / site["id"]
        write_demo_raw(truth, site, raw, seed=1, record_seconds=10.0)
        ing = hourly.process_site(raw, site, period=("2025-01-01", "2025-01-02"))
        out = root / "results" / "obs" / "hourly" / site["id"]
        hourly.write_hourly_dir(ing, site, out)
        dirs.append(out)
    selection.write_selected(selection.select(dirs), root / "results" / "obs" / "selected.csv")
    return root / "results"


def test_notebook_executes(tiny_results, monkeypatch):
    monkeypatch.setenv("GZ_RESULTS", str(tiny_results))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    out = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "selected hours from 2 sites" in out
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    assert os.environ["GZ_RESULTS"] == str(tiny_results)
