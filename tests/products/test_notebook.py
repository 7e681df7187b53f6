"""notebooks/flux_maps.ipynb runs on a (fake) month's product and prints the city total."""

from pathlib import Path

import nbformat
from nbclient import NotebookClient

from products.flux_netcdf import write_flux_product

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "flux_maps.ipynb"


def test_flux_maps_notebook_executes(fake_run, monkeypatch):
    write_flux_product(fake_run["posterior"], fake_run["districts"],
                       fake_run["R"] / "flux_2025-01.nc", fake_run["geojson"], month="2025-01")
    monkeypatch.setenv("GZ_MONTH", "2025-01")
    monkeypatch.setenv("GZ_RESULTS", str(fake_run["R"].parent))
    monkeypatch.setenv("GZ_DISTRICTS", str(fake_run["geojson"]))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    out = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                  for o in c.get("outputs", []))
    assert "posterior 70.0 ± 4.1 kt, truth 69.5 kt" in out
    images = [o for c in nb.cells for o in c.get("outputs", [])
              if "image/png" in o.get("data", {})]
    # two maps, the station-contribution heat map and the averaging kernel (the other figures of
    # products.figures need files this fake run lacks: tests/products/test_figures_notebook.py)
    assert len(images) == 4
    # station contributions from diagnostics.json (values as in test_report_content)
    line = next(ln for ln in out.splitlines() if ln.strip().startswith("AAA"))
    assert line.split()[1:] == ["36.4", "17.3", "Liwan", "40.0"]
