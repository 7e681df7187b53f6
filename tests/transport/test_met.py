"""Synthetic ARL meteorology: round trip through arlmet, physics sanity, coverage check."""

import numpy as np
import pandas as pd
import pytest

arlmet = pytest.importorskip("arlmet")

from gzcarbon.demo.met import met_fields, write_met_day
from transport.arl import (LEVEL_FIELDS, PRESSURE_LEVELS, SURFACE_FIELDS, MetCoverageError,
                           check_met_coverage)

BOUNDS = dict(lon_min=112.0, lon_max=115.5, lat_min=22.0, lat_max=25.0, res=0.1)  # 36 x 31


@pytest.fixture(scope="module")
def met_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("met")
    write_met_day(d / "20250101_gz.arl", "2025-01-01", BOUNDS, seed=3, hours=[0, 1, 6])
    return d


def _tol(field):
    """ARL packs one byte per value: precision from arlmet's packer, plus the field's own scale."""
    prec = arlmet.pack(np.asarray(field, np.float32))[1]
    return 4 * prec + 1e-3 * 2e-3 * float(np.abs(field).max())


def test_round_trip_within_packing_precision(met_dir):
    with arlmet.File(met_dir / "20250101_gz.arl") as f:
        assert [str(t) for t in f.times] == ["2025-01-01 00:00:00", "2025-01-01 01:00:00",
                                             "2025-01-01 06:00:00"]
        assert f.grid.nx == 36 and f.grid.ny == 31
        for it, hour in ((0, 0), (2, 6)):
            surf, lev = met_fields(pd.Timestamp("2025-01-01") + pd.Timedelta(hours=hour), BOUNDS,
                                   seed=3)
            for name in SURFACE_FIELDS:
                got = np.asarray(f.variables[name])[it, 0]
                want = surf[name]
                np.testing.assert_allclose(got, want, atol=_tol(want), err_msg=name)
            for name in LEVEL_FIELDS:
                got = np.asarray(f.variables[name])[it]
                want = lev[name]
                assert got.shape == (len(PRESSURE_LEVELS), 31, 36)
                for k in range(len(PRESSURE_LEVELS)):
                    np.testing.assert_allclose(got[k], want[k], atol=_tol(want[k]),
                                               err_msg=f"{name} level {k}")


def test_physics_is_plausible():
    # 06 UTC = 14 local: afternoon; 20 UTC = 04 local: night.
    day, _ = met_fields("2025-01-01 06:00", BOUNDS, seed=3)
    night, lev = met_fields("2025-01-01 20:00", BOUNDS, seed=3)
    land = day["SHGT"] > 20
    assert 900 < day["PBLH"][land].mean() < 1400
    assert 250 < night["PBLH"][land].mean() < 400
    assert day["SHTF"][land].mean() > 100 > night["SHTF"][land].mean()
    speed = np.hypot(day["U10M"], day["V10M"])
    assert 2.0 < speed.mean() < 8.0
    assert (day["U10M"].mean() < 0) and (day["V10M"].mean() < 0)  # north-easterly
    # heights increase with level and match the hypsometric thickness of the column
    h = lev["HGTS"]
    assert np.all(np.diff(h, axis=0) > 0)
    t = lev["TEMP"]
    thick = 287.05 / 9.80665 * 0.5 * (t[0] + t[5]) * np.log(1000 / 850)
    np.testing.assert_allclose(h[5] - h[0], thick, rtol=0.01)


def test_deterministic(tmp_path):
    a = write_met_day(tmp_path / "a.arl", "2025-01-02", BOUNDS, seed=5, hours=[3])
    b = write_met_day(tmp_path / "b.arl", "2025-01-02", BOUNDS, seed=5, hours=[3])
    assert a.read_bytes() == b.read_bytes()


def _rec(rid, time, lon, lat):
    return pd.DataFrame(dict(receptor_id=[rid], site=["X"], time=[pd.Timestamp(time)], lon=[lon],
                             lat=[lat], agl=[50.0]))


def test_receptor_outside_met_domain_is_named(met_dir):
    with pytest.raises(MetCoverageError, match=r"outside the met domain.*FAR_1"):
        check_met_coverage([met_dir / "20250101_gz.arl"],
                           _rec("FAR_1", "2025-01-01 06:30", 120.0, 23.0), n_hours=-1)


def test_missing_hours_and_files_are_named(met_dir):
    with pytest.raises(MetCoverageError, match=r"2025-01-01 05:00"):
        check_met_coverage([met_dir / "20250101_gz.arl"],
                           _rec("OK_1", "2025-01-01 06:30", 113.0, 23.0), n_hours=-1)
    with pytest.raises(MetCoverageError, match="20241231_gz.arl"):
        check_met_coverage([met_dir / "20241231_gz.arl"],
                           _rec("OK_1", "2025-01-01 06:30", 113.0, 23.0), n_hours=-1)


def test_missing_hour_names_hour_and_file(met_dir):
    """With the file naming pattern, each missing hour is listed with the file that should hold it."""
    rec = _rec("OK_1", "2025-01-01 00:30", 113.0, 23.0)
    with pytest.raises(MetCoverageError) as e:
        check_met_coverage([met_dir / "20250101_gz.arl"], rec, n_hours=-2,
                           file_format="%Y%m%d_gz.arl")
    msg = str(e.value)
    assert "2024-12-31 22:00 -> 20241231_gz.arl (file not given)" in msg
    assert "OK_1" in msg
    with pytest.raises(MetCoverageError) as e:  # the file has 00, 01 and 06 UTC, hourly steps
        check_met_coverage([met_dir / "20250101_gz.arl"], _rec("OK_2", "2025-01-01 03:30", 113.0,
                           23.0), n_hours=-2, file_format="%Y%m%d_gz.arl")
    msg = str(e.value)
    assert "met lacks 3 hour(s)" in msg and "OK_2" in msg
    for h in ("02", "03", "04"):
        assert f"2025-01-01 {h}:00 -> 20250101_gz.arl (given but lacks this hour)" in msg


def test_site_day_checks_met_before_any_run(met_dir, tmp_path):
    """run_site_day (the footprints rule) stops on missing met before HYSPLIT runs: no output,
    no cache, no failures file."""
    from transport.stilt_driver import StiltSettings, run_site_day

    out = tmp_path / "fp" / "X" / "20250101.nc"
    with pytest.raises(MetCoverageError, match="20241231_gz.arl"):
        run_site_day(_rec("OK_1", "2025-01-01 00:30", 113.0, 23.0), [met_dir / "20250101_gz.arl"],
                     dict(lon_min=112.9, lon_max=113.1, lat_min=22.9, lat_max=23.1, res=0.01),
                     StiltSettings(n_hours=2), out, tmp_path / "work")
    assert not out.exists() and not out.with_name("20250101_failures.csv").exists()
    assert not any((tmp_path / "work").glob("*.nc"))
