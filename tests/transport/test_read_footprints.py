"""Footprints of other tools, one per receptor/release, units by meaning (issue 15, item 2).

Real public files from openghg's test data (tests/data/README.md): NAME ``fp`` (time = release
time), NAME with ``fp_HiTRes`` + ``H_back``, FLEXPART in the PARIS layout (``srr``). Each is
compared with an independent read through netCDF4 (not xarray, not our code).
"""

from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from transport import read_footprint, read_footprints
from transport.footprints import M_AIR, FootprintFormatError
from transport.units import RESIDENCE, UnitError, factor_to

DATA = Path(__file__).resolve().parents[1] / "data" / "footprints"
NAME = DATA / "TAC-100magl_UKV_TEST_201607.nc"
NAME_HIRES = DATA / "TAC-100magl_UKV_co2_TEST_201407_4releases.nc"
PARIS = DATA / "MHD-10magl_FLEXPART_ECMWFHRES_TEST_inert_201809.nc"


def _raw(path, var):
    with netCDF4.Dataset(path) as nc:
        v = nc.variables[var]
        dims = v.dimensions
        data = np.asarray(v[:].filled(np.nan), np.float64)
        times = netCDF4.num2date(nc.variables["time"][:], nc.variables["time"].units,
                                 only_use_cftime_datetimes=False)
    return data, dims, pd.to_datetime([str(t) for t in times])


@pytest.mark.parametrize("path,var", [(NAME, "fp"), (NAME_HIRES, "fp"), (PARIS, "srr")])
def test_one_footprint_per_release_totals_preserved(path, var):
    """Each release's total equals the independent read's slice total (1e-9); the release time,
    not an hourly layer, is the receptor's time."""
    raw, dims, times = _raw(path, var)
    t_axis = dims.index("time")
    per_release = np.nansum(np.moveaxis(raw, t_axis, 0), axis=(1, 2))
    ds = read_footprints(path)
    assert ds.sizes["receptor"] == len(times) and ds["foot"].dims == ("receptor", "lat", "lon")
    np.testing.assert_array_equal(pd.to_datetime(ds["release_time"].values), times)
    np.testing.assert_allclose(ds["foot"].sum(("lat", "lon")).values, per_release, rtol=1e-9)
    valid = raw[np.isfinite(raw)]
    assert float(ds["foot"].mean()) == pytest.approx(float(valid.mean()), rel=1e-9)
    assert ds["foot"].attrs["units"] == "ppm / (umol m-2 s-1)"


def test_name_file_is_not_read_as_hourly_layers_of_one_receptor():
    """The old reader summed the 3 releases into one receptor (3x the sensitivity); now
    read_footprint refuses and points to read_footprints."""
    with pytest.raises(FootprintFormatError, match=r"3 releases.*read_footprints"):
        read_footprint(NAME)
    ds = read_footprints(NAME)
    total_one = float(ds["foot"].isel(receptor=0).sum())
    assert float(ds["foot"].sum()) > 2.5 * total_one  # what one receptor would have been given
    np.testing.assert_allclose(ds["release_lat"], 52.51776, atol=1e-4)
    np.testing.assert_allclose(ds["release_height"], 100.0)


def test_hires_back_bins_and_boundary_sensitivities():
    ds = read_footprints(NAME_HIRES)
    raw, dims, _ = _raw(NAME_HIRES, "fp_HiTRes")
    assert ds["foot_hires"].dims == ("receptor", "back", "lat", "lon")
    np.testing.assert_array_equal(ds["back"].values, np.arange(0, 28, 2))
    want = np.nansum(np.transpose(raw, (dims.index("time"), dims.index("H_back"),
                                        dims.index("lat"), dims.index("lon"))), axis=(2, 3))
    np.testing.assert_allclose(ds["foot_hires"].sum(("lat", "lon")).values, want, rtol=1e-9)
    for side, along in (("n", "lon"), ("e", "lat"), ("s", "lon"), ("w", "lat")):
        b = ds[f"particle_locations_{side}"]
        assert b.dims == ("receptor", "height", along)
        r, d, _ = _raw(NAME_HIRES, f"particle_locations_{side}")
        np.testing.assert_allclose(b.sum(("height", along)).values,
                                   np.nansum(np.moveaxis(r, d.index("time"), 0), axis=(1, 2)),
                                   rtol=1e-9)


def test_flexpart_residence_time_is_converted_physically(tmp_path):
    """FLEXPART's native s m3 kg-1: foot = srr * M_air / layer_height. A file holding the PARIS
    footprint back-converted to residence time (100 m layer) reads back to the PARIS values."""
    h = 100.0
    with xr.open_dataset(PARIS) as ds:
        ds = ds.load()
    native = ds.copy()
    native["srr"] = ds["srr"].astype(np.float64) * h / M_AIR
    native["srr"].attrs["units"] = "s m3 kg-1"
    p = tmp_path / "flexpart_native.nc"
    native.to_netcdf(p)
    with pytest.raises(FootprintFormatError, match="layer_height"):
        read_footprints(p)
    got = read_footprints(p, layer_height=h)
    want = read_footprints(PARIS)
    np.testing.assert_allclose(got["foot"].values, want["foot"].values, rtol=1e-6, atol=0)
    # 1 s m3 kg-1 in a 100 m layer: 0.0289644 / 100 ppm / (umol m-2 s-1)
    assert factor_to("s m3 kg-1", RESIDENCE) * M_AIR / h == pytest.approx(2.89644e-4, rel=1e-12)


def test_stilt_r_unit_string_and_other_spellings(tmp_path):
    """STILT-R writes `ppm (umol-1 m2 s)`; it was rejected. A STILT-R-layout file (foot(time, lat,
    lon), lon/lat cell centres) is read with factor 1; ppm / (mol m-2 s-1) is 1e-6 of it."""
    for spelling, f in [("ppm (umol-1 m2 s)", 1.0), ("ppm / (umol m-2 s-1)", 1.0),
                        ("(mol/mol)/(mol/m2/s)", 1.0), ("ppb / (nmol m-2 s-1)", 1.0),
                        ("ppm (umol m-2 s-1)-1", 1.0), ("ppm / (mol m-2 s-1)", 1e-6),
                        ("mol mol-1 m2 s mol-1", 1.0), ("ppm/(umol m^-2 s^-1)", 1.0)]:
        assert factor_to(spelling) == pytest.approx(f, rel=1e-12), spelling
    for bad in ("ppm", "umol m-2 s-1", "ppm/(furlong)"):
        with pytest.raises(UnitError):
            factor_to(bad)
    t = pd.date_range("2025-01-01 00:00", periods=3, freq="h")
    foot = np.random.default_rng(0).random((3, 4, 5))
    ds = xr.Dataset({"foot": (("time", "lat", "lon"), foot, {"units": "ppm (umol-1 m2 s)"})},
                    coords={"time": t, "lat": 23.0 + 0.01 * np.arange(4),
                            "lon": 113.0 + 0.01 * np.arange(5)})
    ds.to_netcdf(tmp_path / "stilt_r.nc")
    got = read_footprint(tmp_path / "stilt_r.nc")
    np.testing.assert_allclose(got.values, foot, rtol=1e-15)
    many = read_footprints(tmp_path / "stilt_r.nc")
    assert many["foot"].dims == ("receptor", "time", "lat", "lon") and many.sizes["receptor"] == 1
    ds["foot"].attrs["units"] = "W m-2"
    ds.to_netcdf(tmp_path / "bad.nc")
    with pytest.raises(FootprintFormatError, match=r"bad\.nc.*'foot'.*unknown unit 'W'"):
        read_footprint(tmp_path / "bad.nc")
