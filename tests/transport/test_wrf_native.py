"""WRF -> ARL on WRF's own projection and native eta levels (transport.wrf_to_arl).

Files: a real WRF V3.8.1 wrfout subset (Mercator, tests/data/met, from wrf-python's test data)
and wrfouts written as WRF writes them (tests/transport/wrf_synthetic.py; XLAT/XLONG from pyproj
on WRF's 6370 km sphere, independent of the ARL header maths)."""

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from transport import wrf_to_arl
from transport.arl import PROJECTION_FIELDS, grid_lonlat, read_arl_field, read_arl_index
from transport.wrf_convert import wrf_arl_projection

from wrf_synthetic import write_wrfout

REAL = Path(__file__).parents[1] / "data" / "met" / "wrfout_d01_katrina_mercator_subset.nc"
TIMES = pd.date_range("2025-01-01 00:00", periods=3, freq="h")
KINDS = {1: dict(truelat1=20.0, truelat2=40.0), 2: dict(truelat1=60.0, truelat2=60.0),
         3: dict(truelat1=22.0, truelat2=0.0), 6: dict(dx=0.03)}


def test_real_wrf_mercator_grid_points_from_the_header_equal_xlat_xlong():
    """WRF's own XLAT/XLONG (single precision, WRF V3.8.1) against the grid points HYSPLIT places
    from our header: within 5e-5 deg (5 m at this 10 km grid, 5e-4 cells; float32 longitudes near
    -90 deg are stored to 8e-6 deg and WRF computes them in single precision)."""
    with xr.open_dataset(REAL, decode_times=False) as ds:
        xlat, xlon = ds.XLAT.values[0].astype(float), ds.XLONG.values[0].astype(float)
        head = wrf_arl_projection(ds.attrs, xlat, xlon, str(REAL))
        assert int(ds.attrs["MAP_PROJ"]) == 3
    p = dict(zip(PROJECTION_FIELDS, head))
    assert p["cone_angle"] == 0.0 and p["tangent_lat"] == 0.0 and p["orientation"] == 0.0
    lon, lat = grid_lonlat(p, 48, 48)
    assert np.abs(lat - xlat).max() < 5e-5 and np.abs(lon - xlon).max() < 5e-5


def test_real_wrfout_lacking_pblh_hfx_ust_is_refused_naming_them_and_the_file(tmp_path):
    with pytest.raises(ValueError) as err:
        wrf_to_arl(REAL, tmp_path / "arl")
    msg = str(err.value)
    assert str(REAL) in msg and all(v in msg for v in ("PBLH", "HFX", "UST"))
    assert not list((tmp_path).rglob("*.arl"))


@pytest.mark.parametrize("map_proj", [1, 2, 3, 6])
def test_native_conversion_keeps_grid_levels_and_grid_relative_winds(tmp_path, map_proj):
    src = tmp_path / "wrfout_d01_2025-01-01_00:00:00"
    tr = write_wrfout(src, TIMES, map_proj=map_proj, u=5.0, v=-2.0, **KINDS[map_proj])
    (path,) = wrf_to_arl(src, tmp_path / "arl")
    ix = read_arl_index(path)
    assert ix.vertical == 1 and list(ix.times) == list(TIMES)
    assert ix.projection["reserved"] == 50.0  # WRF's model top P_TOP in hPa, as arw2arl writes
    if map_proj == 1:  # arw2arl's POLE_LAT for Lambert: the tangent latitude of the cone
        assert ix.projection["pole_lat"] == ix.projection["cone_angle"]
    np.testing.assert_allclose(ix.levels[1:], tr["ZNU"], atol=1e-5)  # F6 of the index
    # the grid points from the header are WRF's XLAT/XLONG (1e-5 deg = 1 m: F7 rounding of the
    # sync point and float32 storage)
    lon, lat = ix.lonlat()
    assert np.abs(lat - tr["XLAT"]).max() < 1e-5 and np.abs(lon - tr["XLONG"]).max() < 1e-5
    # winds: the file's grid-relative U/V destaggered, not rotated (uniform 5, -2 m/s)
    for k in (1, 6, 12):
        np.testing.assert_allclose(read_arl_field(path, TIMES[1], "UWND", k), 5.0, atol=0.02)
        np.testing.assert_allclose(read_arl_field(path, TIMES[1], "VWND", k), -2.0, atol=0.02)
    # level pressure P + PB (hPa) and temperature at every native level
    for k in (1, 7, 12):
        np.testing.assert_allclose(read_arl_field(path, TIMES[0], "PRES", k), tr["p"][k - 1] / 100,
                                   rtol=2e-4)
        np.testing.assert_allclose(read_arl_field(path, TIMES[0], "TEMP", k), tr["t"][k - 1],
                                   atol=0.05)
    np.testing.assert_allclose(read_arl_field(path, TIMES[2], "PBLH", 0), 900.0, atol=0.5)
    np.testing.assert_allclose(read_arl_field(path, TIMES[2], "SHTF", 0), 80.0, atol=0.1)
    np.testing.assert_allclose(read_arl_field(path, TIMES[2], "SHGT", 0), tr["hgt"], atol=0.2)


def test_time_averaged_winds_used_when_present(tmp_path, caplog):
    """AVGFLX_RUM/RVM (mass-coupled, divided by map factors 1.02/0.99) decoupled with MU+MUB
    at u/v points (and WRF's hybrid coefficients C1H/C2H when present): ARL gets the averaged
    wind (3, 1 m/s), not the instantaneous U/V (5, -2)."""
    src = tmp_path / "wrfout_avg"
    write_wrfout(src, TIMES, u=5.0, v=-2.0, avg_uv=(3.0, 1.0))
    with caplog.at_level(logging.INFO, logger="transport.wrf_convert"):
        (path,) = wrf_to_arl(src, tmp_path / "arl")
    assert "time-averaged AVGFLX_RUM/AVGFLX_RVM" in caplog.text
    for k in (1, 12):
        np.testing.assert_allclose(read_arl_field(path, TIMES[0], "UWND", k), 3.0, atol=0.01)
        np.testing.assert_allclose(read_arl_field(path, TIMES[0], "VWND", k), 1.0, atol=0.01)
    src2 = tmp_path / "wrfout_inst"
    write_wrfout(src2, TIMES, u=5.0, v=-2.0)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="transport.wrf_convert"):
        wrf_to_arl(src2, tmp_path / "arl2")
    assert "instantaneous U/V used" in caplog.text
    hyb = tmp_path / "wrfout_avg_hybrid"  # WRF's hybrid coordinate: mass C1H * mu + C2H
    write_wrfout(hyb, TIMES, u=5.0, v=-2.0, avg_uv=(3.0, 1.0), hybrid=True)
    (path,) = wrf_to_arl(hyb, tmp_path / "arl_hyb")
    for k in (1, 6, 12):
        np.testing.assert_allclose(read_arl_field(path, TIMES[0], "UWND", k), 3.0, atol=0.01)
        np.testing.assert_allclose(read_arl_field(path, TIMES[0], "VWND", k), 1.0, atol=0.01)
    bad = tmp_path / "wrfout_avg_nomu"
    write_wrfout(bad, TIMES, avg_uv=(3.0, 1.0), drop=("MUB",))
    with pytest.raises(ValueError, match="MUB"):
        wrf_to_arl(bad, tmp_path / "arl3")


def test_attributes_that_do_not_describe_the_grid_are_refused(tmp_path):
    src = tmp_path / "wrfout_bad"
    write_wrfout(src, TIMES)
    with xr.open_dataset(src, decode_times=False) as ds:
        ds = ds.load()
    ds.attrs["STAND_LON"] = 100.0  # XLAT/XLONG were made about 113.5
    with pytest.raises(ValueError, match="XLAT/XLONG"):
        wrf_to_arl(ds, tmp_path / "arl")


def test_days_not_in_the_files_are_named(tmp_path):
    src = tmp_path / "wrfout_days"
    write_wrfout(src, TIMES)
    with pytest.raises(ValueError, match="2025-01-05"):
        wrf_to_arl(src, tmp_path / "arl", days=["2025-01-05"])


def test_several_wrfout_files_across_midnight_give_one_arl_file_per_day(tmp_path):
    """Two wrfout files (as WRF writes one per output period) converted together: one ARL file
    per UTC day; the same bytes as the conversion of one file holding all four times."""
    t = pd.date_range("2025-01-01 22:00", periods=4, freq="h")
    a, b, whole = tmp_path / "wrfout_a", tmp_path / "wrfout_b", tmp_path / "wrfout_all"
    write_wrfout(a, t[:2])
    write_wrfout(b, t[2:])
    write_wrfout(whole, t)
    split = wrf_to_arl([a, b], tmp_path / "split")
    one = wrf_to_arl(whole, tmp_path / "one")
    assert [p.name for p in split] == ["20250101_gz.arl", "20250102_gz.arl"]
    assert [list(read_arl_index(p).times) for p in split] == [list(t[:2]), list(t[2:])]
    for p, q in zip(split, one):
        assert p.read_bytes() == q.read_bytes()


@pytest.mark.slow
def test_footprints_on_natively_converted_lambert_wrf(tmp_path):
    """The footprint stage on a converted Lambert WRF file: the coverage check reads the
    projected grid, HYSPLIT runs, and in a uniform 5 m/s westerly the footprint of a 4 h back run
    lies upwind: its sensitivity-weighted centre 0.05-0.4 deg west of the receptor (the particles
    go back 72 km = 0.70 deg; the near field weighs most), none of it east of the receptor's cell,
    and the grid holds the whole total (no particle left the 1.1 x 0.6 deg grid)."""
    from transport.stilt_driver import StiltSettings, run_site_day

    src = tmp_path / "wrfout_d01_2025-01-01_00:00:00"
    write_wrfout(src, pd.date_range("2025-01-01 00:00", periods=8, freq="h"), map_proj=1,
                 stand_lon=110.0, u=5.0, v=0.0, nx=81, ny=61, n_eta=20, u10_factor=1.0)
    files = wrf_to_arl(src, tmp_path / "arl")
    rec = pd.DataFrame(dict(receptor_id=["YXU_202501010530_50"], site="YXU",
                            time=pd.to_datetime(["2025-01-01 05:30"]), lon=113.3, lat=23.1,
                            agl=50.0))
    grid = dict(lon_min=112.5, lon_max=113.6, lat_min=22.8, lat_max=23.4, res=0.01)
    out = tmp_path / "fp" / "YXU" / "20250101.nc"
    s = run_site_day(rec, files, grid, StiltSettings(n_hours=4, numpar=100, seed=7, kmixd=0), out,
                     tmp_path / "work", check_met=True)
    assert s["n_done"] == 1 and s["n_failed"] == 0
    with xr.open_dataset(out) as ds:
        f = ds.foot.isel(receptor=0).sum("time")
        total = float(ds.foot_total.isel(receptor=0).sum())
    assert float(f.sum()) == pytest.approx(total, rel=2e-3)
    centre = float((f.sum("lat") * f.lon).sum() / f.sum())
    assert 113.3 - 0.4 < centre < 113.3 - 0.05
    assert float(f.where(f.lon > 113.31, 0).sum()) < 1e-3 * total


@pytest.mark.parametrize("drop, named", [(("HFX",), "HFX"), (("UST", "PBLH"), "PBLH, UST"),
                                         (("ZNU",), "ZNU")])
def test_each_missing_variable_is_named_with_the_file(tmp_path, drop, named):
    src = tmp_path / "wrfout_missing"
    write_wrfout(src, TIMES, drop=drop)
    with pytest.raises(ValueError) as err:
        wrf_to_arl(src, tmp_path / "arl")
    msg = str(err.value)
    assert str(src) in msg and f"lacks {named} (" in msg
    assert not (tmp_path / "arl").exists() or not list((tmp_path / "arl").iterdir())


def test_gzcarbon_met_wrf_command(tmp_path, capsys):
    """`gzcarbon met wrf FILES --out-dir DIR` (what rule met_convert does): prints the ARL files
    written; on the real wrfout lacking PBLH/HFX/UST it exits 2 with the message naming them."""
    from gzcarbon.cli import main

    src = tmp_path / "wrfout_d01_2025-01-01_00:00:00"
    write_wrfout(src, TIMES, map_proj=1)
    assert main(["met", "wrf", str(src), "--out-dir", str(tmp_path / "arl")]) == 0
    out = capsys.readouterr().out.split()
    assert out == [str(tmp_path / "arl" / "20250101_gz.arl")]
    assert read_arl_index(out[0]).vertical == 1
    assert main(["met", "wrf", str(REAL), "--out-dir", str(tmp_path / "real")]) == 2
    err = capsys.readouterr().err
    assert "PBLH, HFX, UST" in err and str(REAL) in err
