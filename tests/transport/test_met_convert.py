"""ERA5-style NetCDF -> ARL: convert synthetic fields given in ERA5 names/units, read back."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

arlmet = pytest.importorskip("arlmet")

from transport.met_convert import era5_to_arl
from gzcarbon.demo.met import met_fields
from transport.arl import G, PRESSURE_LEVELS, MetGrid

BOUNDS = dict(lon_min=112.0, lon_max=115.5, lat_min=22.0, lat_max=25.0, res=0.1)


def _era5_like(times):
    g = MetGrid.from_bounds(BOUNDS)
    pl = {k: [] for k in ("z", "t", "u", "v", "w", "r")}
    sf = {k: [] for k in ("z_sfc", "sp", "msl", "t2m", "u10", "v10", "blh", "sshf", "zust")}
    for t in times:
        s, lv = met_fields(t, BOUNDS, seed=2)
        pl["z"].append(lv["HGTS"] * G); pl["t"].append(lv["TEMP"]); pl["u"].append(lv["UWND"])
        pl["v"].append(lv["VWND"]); pl["w"].append(lv["WWND"] * 100); pl["r"].append(lv["RELH"])
        sf["z_sfc"].append(s["SHGT"] * G); sf["sp"].append(s["PRSS"] * 100)
        sf["msl"].append(s["MSLP"] * 100); sf["t2m"].append(s["T02M"]); sf["u10"].append(s["U10M"])
        sf["v10"].append(s["V10M"]); sf["blh"].append(s["PBLH"]); sf["sshf"].append(-s["SHTF"] * 3600)
        sf["zust"].append(s["USTR"])
    dims3, dims4 = ("valid_time", "latitude", "longitude"), ("valid_time", "pressure_level",
                                                             "latitude", "longitude")
    ds = xr.Dataset({**{k: (dims4, np.array(v)) for k, v in pl.items()},
                     **{k: (dims3, np.array(v)) for k, v in sf.items()}},
                    coords={"valid_time": times, "pressure_level": list(PRESSURE_LEVELS),
                            "latitude": g.lats, "longitude": g.lons})
    return ds.isel(latitude=slice(None, None, -1))  # ERA5 stores north to south


def test_era5_round_trip(tmp_path):
    times = pd.date_range("2025-01-03 05:00", periods=2, freq="h")
    paths = era5_to_arl(_era5_like(times), tmp_path)
    assert [p.name for p in paths] == ["20250103_gz.arl"]
    s, lv = met_fields(times[1], BOUNDS, seed=2)
    with arlmet.File(paths[0]) as f:
        assert list(f.times) == list(times)
        for name, want in (("PBLH", s["PBLH"]), ("SHTF", s["SHTF"]), ("PRSS", s["PRSS"]),
                           ("SHGT", s["SHGT"])):
            got = np.asarray(f.variables[name])[1, 0]
            np.testing.assert_allclose(got, want, atol=2e-3 * np.abs(want).max() + 0.05, err_msg=name)
        for name in ("HGTS", "TEMP", "UWND"):
            got = np.asarray(f.variables[name])[1]
            np.testing.assert_allclose(got, lv[name], atol=2e-3 * np.abs(lv[name]).max() + 0.05,
                                       err_msg=name)


def test_missing_variable_is_named(tmp_path):
    ds = _era5_like(pd.date_range("2025-01-03", periods=1, freq="h")).drop_vars("blh")
    with pytest.raises(ValueError, match=r"PBLH \(`blh`\)"):
        era5_to_arl(ds, tmp_path)
