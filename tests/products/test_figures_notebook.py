"""notebooks/flux_maps.ipynb draws every figure of products.figures from a month's files (a cell
each) and prints the numbers behind them."""

import json
import re
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
from nbclient import NotebookClient

from figures_world import write_month
from products.flux_netcdf import write_flux_product
from test_figures_target import _site

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "flux_maps.ipynb"


def test_notebook_draws_every_figure(fake_run, monkeypatch):
    R = fake_run["R"]
    write_flux_product(fake_run["posterior"], fake_run["districts"], R / "flux_2025-01.nc", fake_run["geojson"],
                       month="2025-01")
    write_month(R)  # site-day files, failures, the Jacobian
    diag = json.loads(fake_run["diagnostics"].read_text())
    C = np.array([[4.0, -3.0, 0.5], [-3.0, 9.0, 1.0], [0.5, 1.0, 16.0]]) * 1e6
    S = np.vstack([np.eye(3), np.ones((1, 3))])
    diag["aggregate_covariance"] = {"aggregates": ["Liwan", "Yuexiu", "Haizhu", "Guangzhou"], "units": "t2",
                                    "prior": (4 * S @ C @ S.T).tolist(), "posterior": (S @ C @ S.T).tolist()}
    fake_run["diagnostics"].write_text(json.dumps(diag))
    m = pd.read_csv(fake_run["modelled"])
    enh = m["prior_model"] - m["background_prior"]
    m["prior_road"], m["prior_bio"] = 1.2 * enh, -0.2 * enh
    m["prior_unattributed"] = enh - m["prior_road"] - m["prior_bio"]
    m.to_csv(fake_run["modelled"], index=False)
    _site(R / "obs" / "hourly", "AAA", [0.01, -0.03, 0.12])
    monkeypatch.setenv("GZ_MONTH", "2025-01")
    monkeypatch.setenv("GZ_RESULTS", str(R.parent))
    monkeypatch.setenv("GZ_DISTRICTS", str(fake_run["geojson"]))
    monkeypatch.setenv("GZ_STATIONS", str(fake_run["stations"]))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    out = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) == 3 + 7  # the maps and station contributions, then the seven figures
    # the numbers: receptors per site (one of BBB failed), Liwan/Yuexiu correlation -3/sqrt(4*9) = -0.5,
    # the failed receptor, the target-tank summary, the sector means
    assert "receptors with a footprint: {'AAA': 6, 'BBB': 5}" in out
    assert "most negative pair: ('Liwan', 'Yuexiu') -0.5" in out
    assert re.search(r"\nBBB\s+6\s+1\s", out)  # receptors, failed
    b = np.array([0.01, -0.03, 0.12])  # the target runs: n, mean, scatter (ddof 1), max |bias|
    assert re.search(rf"AAA\s+co2\s+3\s+{b.mean():.3f}\s+{b.std(ddof=1):.3f}\s+0\.12\s+0\.1\s+0\.2\s+1\s+0", out)
    road = (1.2 * enh).groupby(m["site"]).mean()
    assert f"{road['AAA']:.2f}" in out and f"{road['BBB']:.2f}" in out
    for key in ("mean_footprints", "network_sensitivity", "averaging_kernel", "district_correlation",
                "transport_losses", "target_tank", "sector_signal"):
        from products.figures import CAPTIONS
        assert CAPTIONS[key]["en"] in out, key
