"""Issue 20: the CH4 prior from a real EDGAR CH4 inventory (inputs.inventory_ch4).

The real file is EDGAR v6.0 CH4 2016 TOTALS, cut down by openghg's test suite to a 5.3° x 5.1°
sample of the 0.1° grid (tests/data/README.md). Numbers: every state-grid cell of the CH4 prior
equals an independent netCDF4 read of `emi_ch4` x 1e12/16.043 (kg -> nmol), cells cut by an
EDGAR cell edge the area-weighted mean of the two EDGAR cells; the prior's t CH4 over whole days =
the inventory's kg over the same cells and seconds; the EDGAR 2024 monthly `fluxes` layout and a
molar CF field give the same prior; a file of another species or in units that are not a flux
stops naming the file and the variable.
"""

from __future__ import annotations

from pathlib import Path

import netCDF4
import numpy as np
import pytest
import xarray as xr

from gzcarbon.grid import Grid
from gzcarbon.names import GASES
from inversion.inventory import InventoryError
from inversion.prior import build_ch4_prior, gas_tonnes

DATA = Path(__file__).resolve().parents[1] / "data" / "inventory"
EDGAR_CH4 = DATA / "v6.0_CH4_2016_TOTALS.5.3x5.1.nc"
EDGAR_CO2 = DATA / "v6.0_CO2_excl_short-cycle_org_C_2015_TOTALS.5.3x5.1.nc"
#: the pipeline's default grid (config `grid`): an EDGAR cell edge (lat 23.32) cuts through it
GRID = Grid.from_config({"lon_min": 112.9, "lon_max": 114.1, "lat_min": 22.5, "lat_max": 24.0, "res": 0.01})
KG_TO_NMOL = 1e12 / GASES["ch4"]["molar_mass"]


def _edgar_raw():
    """emi_ch4, lat, lon read with netCDF4 (independent of xarray and of the pipeline's reader)."""
    with netCDF4.Dataset(EDGAR_CH4) as nc:
        nc.set_auto_mask(False)
        assert nc["emi_ch4"].units == "kg m-2 s-1"
        return (np.asarray(nc["emi_ch4"][:], float), np.asarray(nc["lat"][:], float),
                np.asarray(nc["lon"][:], float))


def _expected_flux(emi, lat, lon):
    """Each state cell's kg m-2 s-1: the EDGAR cells it overlaps (edges halfway between centres),
    weighted by the overlap's area on the sphere (longitude span × Δ sin(latitude))."""
    lat_e = np.concatenate([[lat[0] - (lat[1] - lat[0]) / 2], (lat[1:] + lat[:-1]) / 2, [lat[-1] + (lat[-1] - lat[-2]) / 2]])
    lon_e = np.concatenate([[lon[0] - (lon[1] - lon[0]) / 2], (lon[1:] + lon[:-1]) / 2, [lon[-1] + (lon[-1] - lon[-2]) / 2]])
    out = np.zeros(GRID.shape)
    gy, gx = GRID.lat_edges, GRID.lon_edges
    for j in range(GRID.ny):
        s0, s1 = np.sin(np.radians(gy[j])), np.sin(np.radians(gy[j + 1]))
        for i in range(GRID.nx):
            acc = 0.0
            for a in range(lat.size):
                wy = max(0.0, min(s1, np.sin(np.radians(lat_e[a + 1]))) - max(s0, np.sin(np.radians(lat_e[a]))))
                if wy == 0.0:
                    continue
                for b in range(lon.size):
                    wx = max(0.0, min(gx[i + 1], lon_e[b + 1]) - max(gx[i], lon_e[b]))
                    acc += emi[a, b] * wy * wx
            out[j, i] = acc / ((s1 - s0) * (gx[i + 1] - gx[i]))
    return out


@pytest.fixture(scope="module")
def expected():
    emi, lat, lon = _edgar_raw()
    return _expected_flux(emi, lat, lon)


def test_real_edgar_ch4_file_gives_the_ch4_prior(expected):
    # two whole days; the prior is flat in time (no temporal profiles given)
    prior = build_ch4_prior(EDGAR_CH4, GRID, "2025-01-01T00:00", "2025-01-03T00:00", 8)
    assert prior.attrs["gas"] == "ch4" and prior.attrs["inventory_format"] == "edgar"
    assert prior["flux"].attrs["units"] == "nmol m-2 s-1" and list(prior.attrs["sectors"].split(",")) == ["total"]
    flux = prior["flux"].values
    assert flux.shape == (48, GRID.ny, GRID.nx)
    np.testing.assert_array_equal(flux, np.broadcast_to(flux[0], flux.shape))  # flat in time
    # the grid holds two EDGAR cells in latitude: both appear, and one row of cells is cut by the edge
    assert len(np.unique(np.round(expected, 20))) >= 2
    np.testing.assert_allclose(flux[0], expected * KG_TO_NMOL, rtol=1e-6)
    # tonnes: t CH4 of the prior = Σ kg m-2 s-1 × cell area × 48 h / 1000 (cell areas of the grid)
    t_prior = gas_tonnes(flux, prior["cell_area"].values, "ch4")
    t_ref = float((expected * GRID.cell_area_m2()).sum() * 48 * 3600 / 1e3)
    assert t_prior == pytest.approx(t_ref, rel=1e-6)
    assert 10.0 < t_prior < 1e4  # a 1.2° x 1.5° piece of south China over 2 days: tens to thousands of t


def test_edgar_2024_monthly_fluxes_layout_and_a_molar_cf_field_give_the_same_prior(tmp_path, expected):
    """EDGAR's 2024 `_flx` layout (`fluxes(time, lat, lon)`, 12 months, kg m-2 s-1) with the real
    numbers × a month factor, and a CF field in mol m-2 s-1: January of each = the annual file × the
    factor / the same numbers in moles."""
    emi, lat, lon = _edgar_raw()
    fac = np.linspace(0.5, 1.6, 12)
    monthly = (fac[:, None, None] * emi[None]).astype(np.float32)
    xr.Dataset({"fluxes": (("time", "lat", "lon"), monthly, {"units": "kg m-2 s-1", "long_name": "Emissions flux"})},
               coords={"time": np.arange("2022-01", "2023-01", dtype="datetime64[M]").astype("datetime64[ns]"),
                       "lat": lat.astype(np.float32), "lon": lon.astype(np.float32)},
               attrs={"institution": "European Commission, Joint Research Centre"}).to_netcdf(tmp_path / "flx.nc")
    jan = build_ch4_prior(tmp_path / "flx.nc", GRID, "2025-01-01T00:00", "2025-01-02T00:00", 8)
    assert jan.attrs["inventory_period"] == "month"
    np.testing.assert_allclose(jan["flux"].values[0], fac[0] * expected * KG_TO_NMOL, rtol=1e-6)
    feb = build_ch4_prior(tmp_path / "flx.nc", GRID, "2025-02-01T00:00", "2025-02-02T00:00", 8)
    np.testing.assert_allclose(feb["flux"].values[0], fac[1] * expected * KG_TO_NMOL, rtol=1e-6)

    mol = emi / (GASES["ch4"]["molar_mass"] * 1e-3)
    xr.Dataset({"ch4_waste": (("lat", "lon"), mol, {"units": "mol m-2 s-1"})},
               coords={"lat": lat, "lon": lon}).to_netcdf(tmp_path / "cf.nc")
    cf = build_ch4_prior(tmp_path / "cf.nc", GRID, "2025-01-01T00:00", "2025-01-02T00:00", 8)
    assert cf.attrs["sectors"] == "ch4_waste"
    # the reader's mol -> kg uses 16.0425 g/mol, kg -> nmol 16.043: the two agree to 3e-5
    np.testing.assert_allclose(cf["flux"].values[0], expected * KG_TO_NMOL, rtol=5e-5)


def test_a_ch4_inventory_in_wrong_units_or_of_another_species_stops_naming_file_and_field(tmp_path):
    emi, lat, lon = _edgar_raw()
    xr.Dataset({"emi_ch4": (("lat", "lon"), emi, {"units": "ppb"})},
               coords={"lat": lat, "lon": lon}).to_netcdf(tmp_path / "ppb.nc")
    with pytest.raises(InventoryError) as e:
        build_ch4_prior(tmp_path / "ppb.nc", GRID, "2025-01-01T00:00", "2025-01-02T00:00", 8)
    msg = str(e.value)
    assert "inputs.inventory_ch4" in msg and str(tmp_path / "ppb.nc") in msg and "`emi_ch4`" in msg
    assert "'ppb'" in msg and "kg m-2 s-1" in msg
    with pytest.raises(InventoryError, match=r"`emi_co2` is another species' emissions"):
        build_ch4_prior(EDGAR_CO2, GRID, "2025-01-01T00:00", "2025-01-02T00:00", 8)
