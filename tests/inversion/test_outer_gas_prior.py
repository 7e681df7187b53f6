"""CH4 and CO of the nested state's outer cells (issue 19; docs/gases.md, "CH4 and CO of the delta's
neighbours"): a real EDGAR v6.0 CH4 file regridded onto the outer cells keeps the ring's mass (an
independent cell-by-cell overlap sum, to 1e-9), the gas prior.nc gains flux_outer in nmol m-2 s-1, and
bad input stops with one message naming the file and the field: a file that leaves an outer cell
uncovered, units that are not a flux, a file of another species."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from gzcarbon.grid import NestedGrid
from inversion.inventories import read_inventory
from inversion.inventory import InventoryError
from inversion.outer import OUTER_VAR, outer_gas_prior_flux, read_outer_flux, with_outer_gas_prior
from inversion.prior import flux_dataset

from test_outer_prior import NESTED, TIMES, overlap_mass  # noqa: F401  (the same nested layout)

DATA = Path(__file__).resolve().parents[1] / "data" / "inventory"
EDGAR_CH4 = DATA / "v6.0_CH4_2016_TOTALS.5.3x5.1.nc"
EDGAR_CO2 = DATA / "v6.0_CO2_excl_short-cycle_org_C_2015_TOTALS.5.3x5.1.nc"


def test_real_edgar_ch4_on_the_outer_cells_keeps_the_mass_of_the_ring():
    flux, attrs = outer_gas_prior_flux(EDGAR_CH4, "ch4", NESTED, TIMES)
    assert flux.shape == (30, 28, 36) and attrs["outer_inventory_format"] == "edgar"
    np.testing.assert_array_equal(flux[0], flux[-1])  # EDGAR's annual mean: flat
    assert np.all(flux[:, ~NESTED.outer_mask] == 0)
    with xr.open_dataset(EDGAR_CH4) as ds:  # the field by an independent read, kg m-2 s-1
        f = ds["emi_ch4"].values.astype(float)
    inv = read_inventory(EDGAR_CH4, species="ch4")  # the cells' edges (float32 centres -> edges)
    lon_e, lat_e = inv.lon_edges, inv.lat_edges
    o, i = NESTED.outer, NESTED.inner
    ring = (overlap_mass(f, lon_e, lat_e, (o.lon_min, o.lon_max, o.lat_min, o.lat_max))
            - overlap_mass(f, lon_e, lat_e, (i.lon_min, i.lon_max, i.lat_min, i.lat_max)))  # kg CH4/s
    got = float((flux[0] * o.cell_area_m2()).sum()) * 16.043e-12  # nmol/s -> kg/s
    assert ring > 0 and abs(got - ring) < 1e-9 * ring


def _gas_prior(gas="ch4"):
    g = NESTED.inner
    z = np.zeros((len(TIMES),) + g.shape)
    return flux_dataset(g, TIMES, {"landfill": z}, {"gas": gas}, gas=gas)


def test_gas_prior_nc_gains_flux_outer_that_the_inversion_reads_back(tmp_path):
    ds = with_outer_gas_prior(_gas_prior(), NESTED, EDGAR_CH4, "ch4")
    assert ds[OUTER_VAR].attrs["units"] == "nmol m-2 s-1" and "CH4" in ds[OUTER_VAR].attrs["long_name"]
    p = tmp_path / "prior.nc"
    ds.to_netcdf(p)
    back = read_outer_flux(p, "prior", TIMES, NESTED)
    flux, _ = outer_gas_prior_flux(EDGAR_CH4, "ch4", NESTED, TIMES)
    np.testing.assert_allclose(back, NESTED.outer_to_state(flux), rtol=1e-12)
    # single grid: unchanged
    assert OUTER_VAR not in with_outer_gas_prior(_gas_prior(), NestedGrid(NESTED.inner, None), EDGAR_CH4, "ch4")


def _edit(tmp_path, name, fn):
    with xr.open_dataset(EDGAR_CH4) as ds:
        out = fn(ds.load())
    p = tmp_path / name
    out.to_netcdf(p)
    return p


def test_outer_gas_inventory_that_misses_an_outer_cell_stops_naming_file_and_key(tmp_path):
    p = _edit(tmp_path, "east_cut.nc", lambda ds: ds.sel(lon=slice(0, 115.0)))
    with pytest.raises(InventoryError) as e:
        outer_gas_prior_flux(p, "ch4", NESTED, TIMES)
    msg = str(e.value)
    assert str(p) in msg and "inputs.outer_inventory_ch4" in msg and "uncovered" in msg and "emi_ch4" in msg


def test_units_that_are_not_a_flux_stop_naming_file_and_field(tmp_path):
    def ppb(ds):
        ds["emi_ch4"].attrs["units"] = "ppb"
        return ds
    p = _edit(tmp_path, "ppb.nc", ppb)
    with pytest.raises(InventoryError) as e:
        outer_gas_prior_flux(p, "ch4", NESTED, TIMES)
    msg = str(e.value)
    assert str(p) in msg and "`emi_ch4` units" in msg and "inputs.outer_inventory_ch4" in msg


def test_a_file_of_another_species_stops_naming_file_and_field():
    with pytest.raises(InventoryError) as e:
        outer_gas_prior_flux(EDGAR_CO2, "co", NESTED, TIMES)
    msg = str(e.value)
    assert str(EDGAR_CO2) in msg and "emi_co2" in msg and "emi_co`" in msg and "inputs.outer_inventory_co" in msg


def test_no_outer_gas_inventory_is_a_zero_prior_with_a_warning(caplog):
    ds = with_outer_gas_prior(_gas_prior("co"), NESTED, "", "co")
    assert float(np.abs(ds[OUTER_VAR]).max()) == 0.0 and "inputs.outer_inventory_co" in caplog.text
