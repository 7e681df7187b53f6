"""The Jacobian over the nested state (issue 19): columns hour * (n_inner + n_outer) + cell, the
outer ones from the site-day files' foot_outer; against a dense NumPy assembly; the streamed
assembly gives the same bytes; with the outer grid disabled the file is what it was before."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from gzcarbon.grid import Grid, NestedGrid
from transport.jacobian import assemble, assemble_streamed, build_jacobian_file, load_jacobian
from transport.receptors import write_receptors
from transport.stilt_driver import combine, foot_encoding

GRID = dict(lon_min=113.0, lon_max=113.4, lat_min=23.0, lat_max=23.2, res=0.02)  # 20 x 10 cells
OUTER = dict(enabled=True, lon_min=112.6, lon_max=114.0, lat_min=22.8, lat_max=23.6, res=0.2)
START, END = "2024-12-31T12:00", "2025-01-03T00:00"


def nested():
    return NestedGrid(Grid(**GRID), Grid(**{k: v for k, v in OUTER.items() if k != "enabled"}))


def receptor(rid, release, rng, n_particles=7):
    """One receptor as transport.stilt_driver.run_receptor writes it on the nested grid."""
    ng = nested()
    g, og = ng.inner, ng.outer
    hours = pd.date_range(release.floor("h") - pd.Timedelta(hours=24), release.floor("h"), freq="h")
    nt = len(hours)
    foot = (rng.random((nt,) + g.shape) * (rng.random((nt,) + g.shape) < 0.1) * 1e-2).astype(np.float32)
    outer = (rng.random((nt,) + og.shape) * 1e-2).astype(np.float32)
    outer[:, ~ng.outer_mask] = 0.0
    beyond = rng.random(nt) * 1e-3
    total = foot.sum(axis=(1, 2), dtype=np.float64) + outer.sum(axis=(1, 2), dtype=np.float64) + beyond
    ds = xr.Dataset({"foot": (("time", "lat", "lon"), foot), "foot_total": (("time",), total),
                     "foot_outer": (("time", "olat", "olon"), outer),
                     "foot_outside": (("time",), beyond),
                     "exit_particle": (("particle",), np.arange(1, n_particles + 1)),
                     "exit_lon": (("particle",), rng.uniform(112, 115, n_particles)),
                     "exit_lat": (("particle",), rng.uniform(22, 24, n_particles)),
                     "exit_agl": (("particle",), rng.uniform(10, 2000, n_particles)),
                     "exit_time": (("particle",), np.full(n_particles, hours[0].to_datetime64())),
                     "exit_reason": (("particle",), np.ones(n_particles, np.int8))},
                    coords={"time": hours, "lat": g.lat, "lon": g.lon, "olat": og.lat, "olon": og.lon},
                    attrs={"receptor_id": rid, "release_time": release.isoformat(),
                           "left_domain_fraction": float(rng.uniform(0, 0.3))})
    return ds


def write(path, ds, ng):
    enc = {"foot": foot_encoding(), "foot_total": {"dtype": "float64"}}
    if "foot_outer" in ds:
        enc["foot_outer"] = foot_encoding()
    ds.to_netcdf(path, encoding=enc)
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    d = tmp_path_factory.mktemp("nested_jacobian")
    rng = np.random.default_rng(5)
    ng = nested()
    rows, files, flat = [], [], []
    for day in pd.date_range("2025-01-01", periods=2, freq="D"):
        for site in ("NST", "YXU"):
            t = [day + pd.Timedelta(hours=h, minutes=30) for h in (5, 6, 7)]
            ids = [f"{site}_{x:%Y%m%d%H%M}_50" for x in t]
            rows.append(pd.DataFrame({"receptor_id": ids, "site": site, "time": t, "lon": 113.2,
                                      "lat": 23.1, "agl": 50.0}))
            ds = combine([receptor(i, x, rng, n_particles=5 + k) for k, (i, x) in enumerate(zip(ids, t))], ng)
            files.append(write(d / f"{site}_{day:%Y%m%d}.nc", ds, ng))
            inner_only = ds.drop_vars([v for v in ds.variables if str(v).startswith(("foot_outer", "foot_outside",
                                                                                      "exit_"))])
            inner_only = inner_only.drop_dims(["olat", "olon", "particle"])
            inner_only["foot_total"] = ds["foot_total"]
            flat.append(write(d / f"flat_{site}_{day:%Y%m%d}.nc", inner_only, ng))
    rec = pd.concat(rows, ignore_index=True)
    rec = pd.concat([rec, pd.DataFrame({"receptor_id": ["CHU_202501010530_50"], "site": "CHU",
                                        "time": [pd.Timestamp("2025-01-01T05:30")], "lon": 113.2,
                                        "lat": 23.1, "agl": 50.0})], ignore_index=True)
    write_receptors(d / "receptors.csv", rec)
    return d, files, flat, rec


def dense_reference(files, rec, ng, hours):
    """Dense (n_receptors, n_hours * n_cells) and outside, cell by cell with NumPy."""
    H = np.zeros((len(rec), len(hours) * ng.n_cells))
    outside = np.zeros(len(rec))
    row = {r: i for i, r in enumerate(rec["receptor_id"])}
    for f in files:
        with xr.open_dataset(f) as ds:
            for j, rid in enumerate(ds["receptor"].values):
                i = row[str(rid)]
                for t, time in enumerate(pd.to_datetime(ds["time"].values)):
                    vec = ng.state_vector(ds["foot"].values[j, t].astype(np.float64),
                                          ds["foot_outer"].values[j, t].astype(np.float64))
                    k = hours.get_indexer([time])[0]
                    if k >= 0:
                        H[i, k * ng.n_cells:(k + 1) * ng.n_cells] += vec
                    else:
                        outside[i] += vec.sum()
                inner = ds["foot"].values[j].sum(dtype=np.float64)
                outer = ds["foot_outer"].values[j].sum(dtype=np.float64)
                outside[i] += max(float(ds["foot_total"].values[j].sum()) - inner - outer, 0.0)
    return H, outside


def test_nested_columns_equal_a_dense_numpy_assembly(world):
    d, files, _, rec = world
    ng = nested()
    hours = pd.date_range(START, END, freq="h", inclusive="left")
    res = assemble(files, rec, GRID, START, END, outer_grid=OUTER)
    assert res.H.shape == (len(rec), len(hours) * (ng.n_inner + ng.n_outer))
    assert (ng.n_inner, ng.n_outer) == (200, 7 * 4 - 2 * 1)            # hole: 2 x 1 outer cells
    H_ref, out_ref = dense_reference(files, rec, ng, hours)
    np.testing.assert_array_equal(res.H.toarray(), H_ref)
    np.testing.assert_allclose(res.outside, out_ref, rtol=1e-12, atol=1e-15)
    assert res.missing.tolist() == [False] * 12 + [True]
    # the outer columns hold the outer footprints: H_outer . 1 = every receptor's foot_outer sum
    # over the hours on the axis (the first day's receptors reach back before START)
    is_outer = np.tile(ng.is_outer(), len(hours))
    with xr.open_dataset(files[0]) as ds:
        on = ds["foot_outer"].sel(time=slice(START, None)).values
        want = on.sum(axis=(1, 2, 3), dtype=np.float64)
        assert on.shape[1] < ds.sizes["time"]
    got = res.H[:3][:, is_outer].sum(axis=1).A1
    np.testing.assert_allclose(got, want, rtol=1e-6)
    # conservation: the row sums plus outside = the receptors' foot_total (hours on and off the axis)
    totals = np.zeros(len(rec))
    for f in files:
        with xr.open_dataset(f) as ds:
            for j, rid in enumerate(ds["receptor"].values):
                totals[rec.index[rec["receptor_id"] == str(rid)][0]] = ds["foot_total"].values[j].sum()
    np.testing.assert_allclose(res.H.sum(axis=1).A1 + res.outside, totals, rtol=1e-6)


def test_streamed_nested_assembly_is_byte_equal_and_the_file_records_the_nesting(world):
    d, files, _, rec = world
    ref = assemble(files, rec, GRID, START, END, outer_grid=OUTER)
    for workers in (1, 2):
        s = assemble_streamed(files, rec, GRID, START, END, workers=workers, outer_grid=OUTER)
        for a, b in ((s.H.data, ref.H.data), (s.H.indices, ref.H.indices), (s.H.indptr, ref.H.indptr),
                     (s.outside, ref.outside), (s.left_domain_fraction, ref.left_domain_fraction)):
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes()
    out = d / "jacobian_nested.npz"
    build_jacobian_file(files, d / "receptors.csv", GRID, START, END, out, outer_grid=OUTER)
    jac = load_jacobian(out)
    assert jac.outer_grid == {k: v for k, v in OUTER.items() if k != "enabled"}
    assert jac.nested == nested() and (jac.n_inner, jac.n_outer, jac.n_cells) == (200, 26, 226)
    assert (jac.H != ref.H).nnz == 0
    with np.load(out) as z:
        assert int(z["n_inner"]) == 200 and int(z["n_outer"]) == 26
        assert z["outer_grid"].tolist() == [112.6, 114.0, 22.8, 23.6, 0.2]


def test_outer_disabled_gives_the_file_of_before_the_nesting(world):
    """Nested site-day files assembled with the outer grid disabled give, byte for byte, the
    Jacobian file of the same footprints written without any outer variable (what rule footprints
    wrote before the nesting): same arrays, same keys, same bytes."""
    d, files, flat, rec = world
    a, b = d / "off_nested_files.npz", d / "off_flat_files.npz"
    build_jacobian_file(files, d / "receptors.csv", GRID, START, END, a,
                        outer_grid={**OUTER, "enabled": False})
    build_jacobian_file(flat, d / "receptors.csv", GRID, START, END, b)
    assert a.read_bytes() == b.read_bytes()
    with np.load(a) as z:
        assert "n_outer" not in z and "outer_grid" not in z
        assert z["shape"].tolist() == [13, 60 * 200]
    jac = load_jacobian(a)
    assert jac.outer_grid is None and jac.n_outer == 0 and jac.n_cells == 200


def test_inner_only_files_on_a_nested_run_stop_naming_the_fix(world):
    d, _, flat, rec = world
    with pytest.raises(ValueError, match=r"no foot_outer .* --forcerun footprints"):
        assemble(flat, rec, GRID, START, END, outer_grid=OUTER)
    other = {**OUTER, "lon_max": 114.2}
    files = world[1]
    with pytest.raises(ValueError, match="not on the outer grid of config outer_grid"):
        assemble(files, rec, GRID, START, END, outer_grid=other)
