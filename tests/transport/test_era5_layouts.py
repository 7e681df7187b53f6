"""ERA5 files as the CDS delivers them -> ARL (transport.era5_to_arl / open_era5).

New CDS layout (since 2024): `valid_time`, `pressure_level`, scalar `number`, `expver` along
`valid_time`, single levels as a zip with one NetCDF per step type
(`data_stream-oper_stepType-instant.nc`, `..._stepType-accum.nc`), the surface geopotential named
`z` like the pressure-level one. Old layout: `time`, `level`, int16 with scale_factor/add_offset.
The files are written here with netCDF4/xarray in those layouts from the demo met's fields.
"""

import zipfile

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from gzcarbon.demo.met import met_fields
from transport import era5_to_arl
from transport.arl import G, PRESSURE_LEVELS, MetGrid, read_arl_field, read_arl_index
from transport.met_convert import Era5FormatError

BOUNDS = dict(lon_min=112.0, lon_max=115.5, lat_min=22.0, lat_max=25.0, res=0.25)
TIMES = pd.date_range("2025-01-02 22:00", "2025-01-03 01:00", freq="h")  # two UTC days
PL = ("z", "t", "u", "v", "w", "r")
INSTANT = ("z", "sp", "msl", "t2m", "u10", "v10", "blh", "zust")


def _fields(times):
    pl = {k: [] for k in PL}
    sfc = {k: [] for k in INSTANT + ("sshf",)}
    for t in times:
        s, lv = met_fields(t, BOUNDS, seed=3)
        for k, arl, f in (("z", "HGTS", G), ("t", "TEMP", 1), ("u", "UWND", 1), ("v", "VWND", 1),
                          ("w", "WWND", 100), ("r", "RELH", 1)):
            pl[k].append(lv[arl] * f)
        for k, arl, f in (("z", "SHGT", G), ("sp", "PRSS", 100), ("msl", "MSLP", 100),
                          ("t2m", "T02M", 1), ("u10", "U10M", 1), ("v10", "V10M", 1),
                          ("blh", "PBLH", 1), ("zust", "USTR", 1), ("sshf", "SHTF", -3600)):
            sfc[k].append(s[arl] * f)
    return pl, sfc


def _new_cds(tmp_path):
    """pressure levels as one NetCDF, single levels as the CDS zip split by step type."""
    g = MetGrid.from_bounds(BOUNDS)
    pl, sfc = _fields(TIMES)
    lat, lon = g.lats[::-1], g.lons  # ERA5 stores north to south
    coords = {"valid_time": TIMES, "latitude": lat, "longitude": lon, "number": 0,
              "expver": ("valid_time", np.array(["0001"] * len(TIMES), dtype=object))}
    d4 = ("valid_time", "pressure_level", "latitude", "longitude")
    d3 = ("valid_time", "latitude", "longitude")
    ds_pl = xr.Dataset({k: (d4, np.array(v, np.float32)[:, :, ::-1]) for k, v in pl.items()},
                       coords={**coords, "pressure_level": list(PRESSURE_LEVELS)})
    inst = xr.Dataset({k: (d3, np.array(sfc[k], np.float32)[:, ::-1]) for k in INSTANT},
                      coords=coords)
    acc = xr.Dataset({"sshf": (d3, np.array(sfc["sshf"], np.float32)[:, ::-1])}, coords=coords)
    pl_path = tmp_path / "era5_pl.nc"
    ds_pl.to_netcdf(pl_path)
    zpath = tmp_path / "era5_sl.zip"  # the CDS names it .nc sometimes: content decides
    with zipfile.ZipFile(zpath, "w") as zf:
        for name, ds in (("data_stream-oper_stepType-instant.nc", inst),
                         ("data_stream-oper_stepType-accum.nc", acc)):
            ds.to_netcdf(tmp_path / name)
            zf.write(tmp_path / name, name)
    combined = xr.merge([ds_pl.drop_vars(["number", "expver"]),
                         inst.drop_vars(["number", "expver"]).rename(z="z_sfc"),
                         acc.drop_vars(["number", "expver"])])
    return [pl_path, zpath], combined


def test_new_cds_layout_zip_split_by_step_type(tmp_path):
    """The zip's instant and accum members are both read (SHTF from the accum member), the
    surface `z` is told from the level `z`, and the ARL bytes equal those of the dataset
    assembled by hand."""
    files, combined = _new_cds(tmp_path)
    a = era5_to_arl(files, tmp_path / "from_files")
    b = era5_to_arl(combined, tmp_path / "from_dataset")
    assert [p.name for p in a] == ["20250102_gz.arl", "20250103_gz.arl"]
    for x, y in zip(a, b):
        assert x.read_bytes() == y.read_bytes()
    s, lv = met_fields(TIMES[-1], BOUNDS, seed=3)
    for var, want in (("SHTF", s["SHTF"]), ("SHGT", s["SHGT"]), ("PBLH", s["PBLH"])):
        got = read_arl_field(a[1], TIMES[-1], var)
        # one-byte ARL packing: differences to the neighbour in steps of 2^(exp-7)
        np.testing.assert_allclose(got, want, atol=1e-2 * np.abs(want).max() + 0.05, err_msg=var)
    hgts = read_arl_field(a[1], TIMES[-1], "HGTS", level=1)  # 1000 hPa height, not the surface
    np.testing.assert_allclose(hgts, lv["HGTS"][0], atol=2e-3 * np.abs(lv["HGTS"][0]).max())


def test_one_day_only_and_absent_day_named(tmp_path):
    files, _ = _new_cds(tmp_path)
    out = era5_to_arl(files, tmp_path / "met", days=["20250103"])
    assert [p.name for p in out] == ["20250103_gz.arl"]
    assert read_arl_index(out[0]).times == tuple(TIMES[TIMES >= "2025-01-03"])
    with pytest.raises(ValueError, match="no time step on UTC day.*2025-01-05"):
        era5_to_arl(files, tmp_path / "met", days=["20250105"])


def test_old_cds_layout_packed_int16(tmp_path):
    """`time`/`level` names and int16 packing (scale_factor/add_offset), as the old CDS wrote:
    read through the packing (fields within the packing step)."""
    _, combined = _new_cds(tmp_path)
    old = combined.rename(valid_time="time", pressure_level="level")
    enc = {}
    for v in old.data_vars:
        lo, hi = float(old[v].min()), float(old[v].max())
        scale = (hi - lo) / 65000 or 1.0
        enc[v] = {"dtype": "int16", "scale_factor": scale, "add_offset": (hi + lo) / 2,
                  "_FillValue": -32767}
    old.to_netcdf(tmp_path / "old.nc", encoding=enc)
    a = era5_to_arl([tmp_path / "old.nc"], tmp_path / "old_arl", days=["2025-01-03"])
    s, _ = met_fields(TIMES[-1], BOUNDS, seed=3)
    got = read_arl_field(a[0], TIMES[-1], "PBLH")
    np.testing.assert_allclose(got, s["PBLH"], atol=2e-3 * s["PBLH"].max() + 0.1)


def test_grib_and_model_levels_are_refused_naming_file_and_fix(tmp_path):
    grib = tmp_path / "era5_pl.grib"
    grib.write_bytes(b"GRIB" + bytes(100))  # a GRIB message starts with these 4 bytes
    with pytest.raises(Era5FormatError, match=r"era5_pl.grib: a GRIB file.*cdo -f nc4 copy"):
        era5_to_arl([grib], tmp_path / "out")
    files, combined = _new_cds(tmp_path)
    ml = combined[["t"]].rename(pressure_level="model_level").assign_coords(
        model_level=np.arange(1, len(PRESSURE_LEVELS) + 1) + 123)
    ml.to_netcdf(tmp_path / "era5_ml.nc")
    with pytest.raises(Era5FormatError, match=r"era5_ml.nc: ERA5 on model levels.*ml2pl"):
        era5_to_arl([tmp_path / "era5_ml.nc"], tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="inputs.era5_files"):
        era5_to_arl([tmp_path / "absent.nc"], tmp_path / "out")
