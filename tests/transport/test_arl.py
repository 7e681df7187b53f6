"""ARL index reader, writer and the met coverage check on any record interval (issue 15, item 1).

The files are written by ``arlmet`` (a translation of HYSPLIT's PAKOUT/PAKNDX: the layout HYSPLIT
writes) or by our writer, which reproduces arlmet's bytes exactly where arlmet can write the file.
"""

import numpy as np
import pandas as pd
import pytest

arlmet = pytest.importorskip("arlmet")

from gzcarbon.demo.met import met_fields, write_met_day
from transport import check_met_coverage
from transport.arl import (LEVEL_FIELDS, SURFACE_FIELDS, ArlFormatError, MetCoverageError, MetGrid,
                           read_arl_field, read_arl_index, write_arl)

BOUNDS = dict(lon_min=112.0, lon_max=115.5, lat_min=22.0, lat_max=25.0, res=0.1)  # 36 x 31


def _rec(rid, time, lon=113.0, lat=23.0):
    return pd.DataFrame(dict(receptor_id=[rid], time=[pd.Timestamp(time)], lon=lon, lat=lat,
                             agl=50.0))


def _steps(bounds, hours, levels, day="2025-01-01"):
    out = []
    for h in hours:
        t = pd.Timestamp(day) + pd.Timedelta(hours=h)
        surf, lev = met_fields(t, bounds, seed=3)
        nlev = len(levels)
        lev = {k: np.resize(v, (nlev,) + v.shape[1:]) for k, v in lev.items()}
        out.append((t, surf, lev))
    return out


@pytest.fixture(scope="module")
def three_hourly(tmp_path_factory):
    """Two daily files, every 3 h (00..21 UTC), written by arlmet."""
    d = tmp_path_factory.mktemp("met3h")
    for day in ("2025-01-01", "2025-01-02"):
        write_met_day(d / f"{pd.Timestamp(day):%Y%m%d}_gz.arl", day, BOUNDS, seed=3,
                      hours=list(range(0, 24, 3)))
    return d


def test_writer_reproduces_arlmet_bytes(tmp_path):
    """Where arlmet can write the file, our writer writes the same bytes (labels, index, data)."""
    from transport.arl import PRESSURE_LEVELS

    write_met_day(tmp_path / "a.arl", "2025-01-01", BOUNDS, seed=3, hours=[0, 3])
    steps = _steps(BOUNDS, [0, 3], PRESSURE_LEVELS)
    write_arl(tmp_path / "b.arl", MetGrid.from_bounds(BOUNDS), PRESSURE_LEVELS, steps, source="GZSY")
    a, b = (tmp_path / "a.arl").read_bytes(), (tmp_path / "b.arl").read_bytes()
    assert len(a) == len(b) == 2 * (1 + 10 + 14 * 6) * (50 + 36 * 31)
    assert a == b


def test_index_over_several_records_small_grid_37_levels(tmp_path):
    """ERA5's 37 levels on a 12 x 10 grid: the index text (2 * 1 + ...) > 120 bytes spans several
    INDX records (arlmet 0.1.0b4 refuses to write or read this); read back exactly."""
    bounds = dict(lon_min=113.0, lon_max=114.1, lat_min=23.0, lat_max=23.9, res=0.1)  # 12 x 10
    levels = np.linspace(1000.0, 100.0, 37)
    steps = _steps(bounds, [0, 1, 2], levels)
    p = write_arl(tmp_path / "era5_small.arl", MetGrid.from_bounds(bounds), levels, steps)
    ix = read_arl_index(p)
    text_len = 108 + 8 + 8 * len(SURFACE_FIELDS) + 37 * (8 + 8 * len(LEVEL_FIELDS))
    assert ix.index_records == -(-text_len // 120) > 1
    assert (ix.nx, ix.ny, ix.nz) == (12, 10, 38)
    np.testing.assert_allclose(ix.levels[1:], levels, atol=0.05)
    assert ix.variables[0] == SURFACE_FIELDS and ix.variables[5] == LEVEL_FIELDS
    assert [str(t) for t in ix.times] == ["2025-01-01 00:00:00", "2025-01-01 01:00:00",
                                          "2025-01-01 02:00:00"]
    assert p.stat().st_size == 3 * (ix.index_records + 10 + 37 * 6) * 170
    for name, level, want in (("PBLH", 0, steps[1][1]["PBLH"]), ("TEMP", 20, steps[1][2]["TEMP"][19])):
        got = read_arl_field(p, "2025-01-01 01:00", name, level)
        prec = arlmet.pack(np.asarray(want, np.float32))[1]
        np.testing.assert_allclose(got, want, atol=4 * prec + 1e-3)
    assert ix.extent() == pytest.approx((113.0, 114.1, 23.0, 23.9))
    check_met_coverage([p], _rec("A", "2025-01-01 01:30", 113.5, 23.5), n_hours=1)


def test_three_hourly_files_cover_the_hours_between_steps(three_hourly):
    """A valid 3-hourly file was refused as 'met lacks N hour(s)'; the steps come from the index."""
    files = sorted(three_hourly.glob("*.arl"))
    ix = read_arl_index(files[0])
    assert ix.step == pd.Timedelta("3h") and len(ix.times) == 8
    rec = pd.concat([_rec("A", "2025-01-01 05:30"), _rec("B", "2025-01-02 01:10")])
    check_met_coverage(files, rec, n_hours=4)            # 01..06 and 2025-01-01 21 .. 01-02 02
    check_met_coverage(files, rec, n_hours=-4, file_format="%Y%m%d_gz.arl")
    with pytest.raises(MetCoverageError) as e:           # 2025-01-02 22:00, 23:00 are past the end
        check_met_coverage(files, _rec("C", "2025-01-02 22:30"), n_hours=2)
    assert "met lacks 2 hour(s)" in str(e.value) and "2025-01-02 23:00" in str(e.value)


def test_gap_in_three_hourly_met_is_named(three_hourly, tmp_path):
    """A 3-hourly file lacking 09 UTC: 06 -> 12 is a 6 h gap (twice the file's interval), so the
    hours strictly between 06 and 12 are named as missing."""
    p = tmp_path / "20250101_gz.arl"
    write_met_day(p, "2025-01-01", BOUNDS, seed=3, hours=[0, 3, 6, 12, 15])
    with pytest.raises(MetCoverageError) as e:
        check_met_coverage([p], _rec("GAP", "2025-01-01 10:30"), n_hours=5)
    msg = str(e.value)
    assert "met lacks 5 hour(s)" in msg and "GAP" in msg
    assert all(f"2025-01-01 {h:02d}:00" in msg for h in (7, 8, 9, 10, 11))
    assert "every 0 days 03:00:00" in msg


def test_explicit_file_list_with_gdas_names(three_hourly, tmp_path):
    """Weekly GDAS1 names (`gdas1.jan25.w1`) cannot come from strftime: take the list as given."""
    src = sorted(three_hourly.glob("*.arl"))
    files = []
    for i, f in enumerate(src):
        dst = tmp_path / f"gdas1.jan25.w{i + 1}"
        dst.write_bytes(f.read_bytes())
        files.append(dst)
    check_met_coverage(files, _rec("A", "2025-01-02 02:00"), n_hours=24)
    with pytest.raises(MetCoverageError, match=r"gdas1\.jan25\.w1 2025-01-01 00:00\.\.2025-01-01 21:00"):
        check_met_coverage(files, _rec("A", "2025-01-02 02:00"), n_hours=30)


def test_truncated_or_foreign_file_is_named(three_hourly, tmp_path):
    good = sorted(three_hourly.glob("*.arl"))[0]
    cut = tmp_path / "cut.arl"
    cut.write_bytes(good.read_bytes()[:-500])
    with pytest.raises(ArlFormatError, match=r"cut\.arl.*not a whole number of 1166-byte records"):
        read_arl_index(cut)
    other = tmp_path / "wrfout.nc"
    other.write_bytes(b"CDF\x01" + b"\x00" * 400)
    with pytest.raises(ArlFormatError, match=r"wrfout\.nc.*not an ARL label"):
        check_met_coverage([other], _rec("A", "2025-01-01 01:00"), 1)
