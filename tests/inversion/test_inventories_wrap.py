"""A global inventory axis whose regular cells span more than 360° of longitude (the real EDGAR v6.0
sample of tests/data/inventory: every 51st 0.1° cell, 71 cells of 5.14° = 365°) must not count
the longitudes of its first cell twice. Found by the real-data pipeline run
(tests/test_real_pipeline.py): west of 2.62° E the prior was the sum of two EDGAR cells."""

from pathlib import Path

import netCDF4
import numpy as np
import pytest

from gzcarbon.grid import Grid
from inversion.inventories import InventoryError, read_inventory, trim_to_360

EDGAR = Path(__file__).resolve().parents[1] / "data" / "inventory" / \
    "v6.0_CO2_excl_short-cycle_org_C_2015_TOTALS.5.3x5.1.nc"


def _edgar_cell(lat, lon):
    """emi_co2 (kg m-2 s-1) of the file's cell whose centre is nearest (lat, lon): independent read."""
    with netCDF4.Dataset(EDGAR) as nc:
        la, lo = nc["lat"][:].astype(float), nc["lon"][:].astype(float)
        i = int(np.argmin(abs(la - lat)))
        j = int(np.argmin(abs(((lo - lon) + 180) % 360 - 180)))
        return float(nc["emi_co2"][i, j])


def test_edgar_sample_axis_is_cut_to_360_degrees():
    inv = read_inventory(EDGAR)
    assert inv.lon_edges[-1] - inv.lon_edges[0] == pytest.approx(360.0, abs=1e-9)
    # the first and last cells meet halfway between their centres 0.05 and 359.95 (= -0.05)
    assert inv.lon_edges[0] == pytest.approx(0.0, abs=1e-5)
    assert inv.lon_edges[-2] < 359.95 < inv.lon_edges[-1]


@pytest.mark.parametrize("lon_min, lon_max, centre", [(-0.5, -0.25, 359.95), (1.0, 1.5, 0.05)])
def test_cells_either_side_of_the_wrap_get_one_cell_each(lon_min, lon_max, centre):
    # before: both the 0.05 and the 359.95 cell covered -2.52..2.52 E and their fluxes were added
    grid = Grid(lon_min=lon_min, lon_max=lon_max, lat_min=51.0, lat_max=54.0, res=0.25)
    got = read_inventory(EDGAR).on_grid(grid)["total"]
    want = _edgar_cell(52.9, centre)
    np.testing.assert_allclose(got, want, rtol=1e-9)


def test_more_than_one_cell_beyond_360_is_an_error():
    edges = np.arange(-2.5, 370.0, 5.0)  # 74 cells of 5°: 370°, the overlap reaches past centres
    with pytest.raises(InventoryError, match="overlap past their centres"):
        trim_to_360(edges, "inventory x.nc lon")
    np.testing.assert_array_equal(trim_to_360(np.arange(0.0, 360.1, 0.5)), np.arange(0.0, 360.1, 0.5))
