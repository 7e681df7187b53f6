"""The Jacobian of long periods without every footprint in memory (issue 21, item 5).

``transport.jacobian.assemble_streamed`` (file by file, sparse rows spilled to disk, one CSR
allocation; optionally several site-days in threads) must give the same bytes as
``transport.jacobian.assemble`` (every row in memory until the CSR is built). The site-day files
are written the way the pipeline's footprint rule writes them: per-receptor footprints stacked by
``transport.stilt_driver.combine`` and written with its encoding (``foot_encoding``, one chunk per
receptor, float64 ``foot_total``).
"""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from gzcarbon.grid import Grid
from transport.footprints import FootprintFormatError
from transport.jacobian import assemble, assemble_streamed, build_jacobian_file, load_jacobian
from transport.receptors import write_receptors
from transport.stilt_driver import combine, foot_encoding

GRID = dict(lon_min=113.0, lon_max=113.3, lat_min=23.0, lat_max=23.2, res=0.01)  # 30 x 20 cells
COARSE = dict(lon_min=112.99, lon_max=113.31, lat_min=22.99, lat_max=23.21, res=0.02)  # regridded
START, END = "2024-12-31T00:00", "2025-01-04T00:00"


def receptor_footprint(rid, release, grid, rng, left):
    """One receptor as the driver returns it: foot(time, lat, lon) over 24 h back, foot_total(time)
    a little above the grid sum (sensitivity outside the grid), attrs as the driver sets them."""
    g = Grid.from_config(grid)
    hours = pd.date_range(release.floor("h") - pd.Timedelta(hours=24), release.floor("h"), freq="h")
    foot = (rng.random((len(hours), g.ny, g.nx)) * (rng.random((len(hours), g.ny, g.nx)) < 0.05)
            * 1e-2).astype(np.float32)
    total = foot.sum(axis=(1, 2), dtype=np.float64) * rng.uniform(1.0, 1.3)
    return xr.Dataset({"foot": (("time", "lat", "lon"), foot), "foot_total": (("time",), total)},
                      coords={"time": hours, "lat": g.lat, "lon": g.lon},
                      attrs={"receptor_id": rid, "release_time": release.isoformat(),
                             "left_domain_fraction": left})


def write_site_day(path, receptors, grid, rng):
    """A site-day file as rule footprints writes it (transport.stilt_driver.run_site_day)."""
    g = Grid.from_config(grid)
    done = [receptor_footprint(r.receptor_id, r.time, grid, rng, rng.uniform(0, 0.2))
            for r in receptors.itertuples()]
    ds = combine(done, g)
    enc = {"foot": {**foot_encoding(), "chunksizes": (1, ds.sizes["time"] or 1, g.ny, g.nx)},
           "foot_total": {"dtype": "float64"}}
    if ds.sizes["receptor"] == 0 or ds.sizes["time"] == 0:
        enc["foot"].pop("chunksizes")
    ds.to_netcdf(path, encoding=enc)
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """3 sites x 3 days x 4 afternoon receptors, with the awkward cases: a receptor in two files
    (its rows add up), one in receptors.csv with no footprint, one in a file but not in
    receptors.csv, a file with no receptor, and a file on a coarser grid (regridded)."""
    d = tmp_path_factory.mktemp("jacobian_stream")
    rng = np.random.default_rng(21)
    rows, files = [], []
    for day in pd.date_range("2025-01-01", periods=3, freq="D"):
        for site in ("NST", "YXU", "HPU"):
            t = [day + pd.Timedelta(hours=h, minutes=30) for h in (4, 5, 6, 7)]
            rec = pd.DataFrame({"receptor_id": [f"{site}_{x:%Y%m%d%H%M}_50" for x in t], "site": site,
                                "time": t, "lon": 113.1, "lat": 23.1, "agl": 50.0})
            rows.append(rec)
            grid = COARSE if (site, day.day) == ("HPU", 2) else GRID
            files.append(write_site_day(d / f"{site}_{day:%Y%m%d}.nc", rec, grid, rng))
    rec = pd.concat(rows, ignore_index=True)
    extra = rec.iloc[[0, 5]].copy()
    extra.loc[extra.index[1], "receptor_id"] = "XXX_202501010430_50"  # not in receptors.csv
    files.append(write_site_day(d / "again.nc", extra, GRID, rng))  # NST's first receptor again
    files.append(write_site_day(d / "empty.nc", rec.iloc[:0], GRID, rng))
    rec = pd.concat([rec, pd.DataFrame({"receptor_id": ["CHU_202501010430_50"], "site": "CHU",
                                        "time": [pd.Timestamp("2025-01-01T04:30")], "lon": 113.1,
                                        "lat": 23.1, "agl": 50.0})], ignore_index=True)
    write_receptors(d / "receptors.csv", rec)
    return d, files, rec


def assert_same_bytes(a, b):
    for name in ("data", "indices", "indptr"):
        x, y = getattr(a.H, name), getattr(b.H, name)
        assert x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes(), name
    assert a.H.shape == b.H.shape
    for name in ("outside", "missing", "left_domain_fraction"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.tobytes() == y.tobytes(), name


@pytest.mark.parametrize("workers", [1, 3])
def test_streamed_assembly_has_the_same_bytes(world, tmp_path, workers):
    d, files, rec = world
    ref = assemble(files, rec, GRID, START, END)
    new = assemble_streamed(files, rec, GRID, START, END, workers=workers, spill_dir=tmp_path)
    assert_same_bytes(new, ref)
    # the cases are really there: 36 + 1 rows, one missing, a duplicate receptor summed
    g = Grid.from_config(GRID)
    assert new.H.shape == (37, 96 * g.n_cells) and new.H.indices.dtype == np.int32
    assert new.missing.tolist() == [False] * 36 + [True]
    assert new.H.nnz > 36 * 600 and (new.outside[:36] > 0).all()
    assert np.isnan(new.left_domain_fraction[36]) and np.isfinite(new.left_domain_fraction[:36]).all()
    assert list(tmp_path.iterdir()) == []  # the spilled pieces are gone


def test_duplicate_receptor_rows_add_up(world, tmp_path):
    """NST's first receptor is in two files: its row is the sum of both footprints (as before)."""
    d, files, rec = world
    one = assemble_streamed([files[0]], rec, GRID, START, END, spill_dir=tmp_path)
    two = assemble_streamed([files[-2]], rec, GRID, START, END, spill_dir=tmp_path)
    both = assemble_streamed([files[0], files[-2]], rec, GRID, START, END, spill_dir=tmp_path)
    row = (one.H[0] + two.H[0]).toarray()
    np.testing.assert_allclose(both.H[0].toarray(), row, rtol=1e-15)
    assert both.outside[0] == pytest.approx(one.outside[0] + two.outside[0], rel=1e-15)


def test_build_jacobian_file_round_trip_and_no_pieces_left(world, tmp_path):
    d, files, rec = world
    out = tmp_path / "jacobian_hourly.npz"
    res = build_jacobian_file(files, d / "receptors.csv", GRID, START, END, out, workers=2)
    ref = assemble(files, rec, GRID, START, END)
    jac = load_jacobian(out)
    assert (jac.H != ref.H).nnz == 0
    np.testing.assert_array_equal(jac.outside, ref.outside)
    assert_same_bytes(res, ref)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["jacobian_hourly.npz"]


def test_a_corrupt_file_stops_and_leaves_no_pieces(world, tmp_path):
    d, files, rec = world
    bad = tmp_path / "bad.nc"
    bad.write_bytes(files[1].read_bytes()[:2000])  # truncated
    spill = tmp_path / "spill"
    spill.mkdir()
    with pytest.raises(FootprintFormatError, match="bad.nc: cannot be opened"):
        assemble_streamed([files[0], bad, files[2]], rec, GRID, START, END, workers=2, spill_dir=spill)
    assert list(spill.iterdir()) == []
