"""Footprints on the nested grid (issue 19): every hour's sensitivity lands in the inner grid, the
outer cells or beyond the outer box, exactly; the inner footprint is pystilt's calc_footprint; the
outer cells agree with an independent NumPy histogram of the particles; the exit points; the
site-day file layout. Real HYSPLIT-STILT particles (pystilt, tiny demo met: ~5 s per run)."""

import numpy as np
import pandas as pd
import pytest
import stilt
import xarray as xr

from gzcarbon.demo.met import write_met_day
from gzcarbon.grid import Grid, NestedGrid
from transport import stilt_driver as sd
from transport.stilt_driver import StiltSettings, met_config, run_site_day

RELEASE = pd.Timestamp("2025-01-01 06:30")
MET = dict(lon_min=111.9, lon_max=115.5, lat_min=21.9, lat_max=24.9, res=0.1)
INNER = dict(lon_min=113.0, lon_max=113.6, lat_min=22.9, lat_max=23.5, res=0.01)
# 0.1-degree outer cells; the box is smaller than the met domain, so some particles go beyond it
OUTER = dict(enabled=True, lon_min=112.6, lon_max=114.4, lat_min=22.5, lat_max=23.9, res=0.1)
N_HOURS = 6


@pytest.fixture(scope="module")
def met_file(tmp_path_factory):
    d = tmp_path_factory.mktemp("nested_met")
    return write_met_day(d / "20250101_gz.arl", "2025-01-01", MET, seed=1, hours=range(0, 8))


@pytest.fixture(scope="module")
def particles(met_file, tmp_path_factory):
    rec = stilt.PointReceptor(time=RELEASE, longitude=113.28, latitude=23.13, altitude=50.0)
    s = StiltSettings(n_hours=N_HOURS, numpar=50, seed=7)
    run = tmp_path_factory.mktemp("nested_run")
    return sd._trajectories(rec, "YXU_test", met_config([met_file]), s, run / "r", N_HOURS, 50, {})


def nested():
    return NestedGrid(Grid(**INNER), Grid(**{k: v for k, v in OUTER.items() if k != "enabled"}))


@pytest.mark.parametrize("smooth", [1.0, 0.0])
def test_every_hour_lands_inside_outside_or_beyond(particles, smooth):
    ng = nested()
    hours, foot, outer, beyond, total = sd._nested_hour_footprint(particles, RELEASE, ng, N_HOURS, smooth)
    # the inner footprint is pystilt's, bit for bit (same particles, kernels and padded grid)
    h_ref, foot_ref, total_ref = sd._clock_hour_footprint(particles, RELEASE, ng.inner, N_HOURS, smooth)
    assert (hours == h_ref).all()
    np.testing.assert_array_equal(foot, foot_ref)
    np.testing.assert_allclose(total, total_ref, rtol=1e-12)
    # conservation per hour: inner + outer + beyond = the hour's total, to float64 rounding
    parts = foot.sum(axis=(1, 2)) + outer.sum(axis=(1, 2)) + beyond
    np.testing.assert_allclose(parts, total, rtol=1e-12, atol=1e-15)
    assert outer[:, ng.hole[0], ng.hole[1]].sum() == 0          # nothing in the hole
    # the run is non-trivial: all three parts hold sensitivity (measured shares 0.42/0.45/0.14)
    shares = np.array([foot.sum(), outer.sum(), beyond.sum()]) / total.sum()
    assert (shares > 0.05).all(), shares


def test_outer_cells_equal_a_histogram_of_the_particles(particles):
    """Without smoothing the outer cells hold exactly the particles over them: an independent
    np.histogram2d of the (interpolated, clock-hour shifted) particle table."""
    from stilt.footprint import gridding

    ng = nested()
    _, foot, outer, beyond, _ = sd._nested_hour_footprint(particles, RELEASE, ng, N_HOURS, 0.0)
    p = gridding._interpolate_early_timesteps(particles.copy(), xres=0.01, yres=0.01, time_sign=-1)
    m = 30.0   # release at :30
    hour = np.floor((p["age"].to_numpy() - (60 - m)) / 60).astype(int) + N_HOURS + 1
    n = particles["particle"].nunique()
    o = ng.outer
    for t in range(N_HOURS + 1):
        sel = (hour == t).to_numpy() if hasattr(hour, "to_numpy") else hour == t
        h, _, _ = np.histogram2d(p["lat"].to_numpy()[sel], p["lon"].to_numpy()[sel],
                                 bins=[o.lat_edges, o.lon_edges], weights=p["foot"].to_numpy()[sel])
        h[ng.hole] = 0.0
        np.testing.assert_allclose(outer[t], h / n, rtol=1e-9, atol=1e-15)
    assert outer.sum() > 0.1 * foot.sum()


def test_smoothing_spill_goes_to_the_outer_cells_next_to_the_inner_grid(particles):
    """With the kernel, outer cells farther from the inner box than the widest kernel reaches keep
    the unsmoothed particles; the kernel's spill out of (and into) the inner grid changes only the
    cells next to it; the spill is stated as a share of the inner footprint."""
    ng = nested()
    _, foot1, outer1, beyond1, _ = sd._nested_hour_footprint(particles, RELEASE, ng, N_HOURS, 1.0)
    _, foot0, outer0, beyond0, _ = sd._nested_hour_footprint(particles, RELEASE, ng, N_HOURS, 0.0)
    np.testing.assert_allclose(beyond1, beyond0, rtol=1e-12, atol=1e-15)
    # 3 outer cells (0.3 degrees) from the hole: more than 3 sigma of any kernel of this 6-h run
    far = np.ones(ng.outer.shape, bool)
    hy, hx = ng.hole
    far[max(hy.start - 3, 0):hy.stop + 3, max(hx.start - 3, 0):hx.stop + 3] = False
    np.testing.assert_allclose(outer1[:, far], outer0[:, far], rtol=1e-12, atol=1e-15)
    spill = foot0.sum() - foot1.sum()        # net kernel mass moved out of the inner grid
    assert abs(spill) == pytest.approx(abs(outer1[:, ~far].sum() - outer0[:, ~far].sum()), rel=1e-9)
    assert 0 < abs(spill) / foot0.sum() < 0.2, spill / foot0.sum()


def test_exit_points_against_a_loop_over_the_particles(particles):
    o = nested().outer
    e = sd.exit_points(particles, RELEASE, o, N_HOURS)
    n_left = 0
    for i, pid in enumerate(e["particle"]):
        track = particles[particles["particle"] == pid].sort_values("age", ascending=False)
        out = ~((track["lon"] >= o.lon_min) & (track["lon"] < o.lon_max)
                & (track["lat"] >= o.lat_min) & (track["lat"] < o.lat_max))
        row = track[out].iloc[0] if out.any() else track.iloc[-1]
        assert (e["lon"][i], e["lat"][i], e["agl"][i]) == (row["lon"], row["lat"], row["zagl"])
        assert e["time"][i] == np.datetime64(RELEASE + pd.Timedelta(minutes=row["age"]))
        if out.any():
            n_left += 1
            assert e["reason"][i] == 1
        else:
            assert e["reason"][i] in (0, 2)
            assert (e["reason"][i] == 0) == (row["age"] <= -60 * N_HOURS + 1.5)
    assert len(e["particle"]) == 50 and 0 < n_left < 50


def test_site_day_file_holds_outer_footprint_and_exit_points(met_file, tmp_path):
    rec = pd.DataFrame(dict(receptor_id=["YXU_202501010630_50", "YXU_202501010600_50"], site="YXU",
                            time=pd.to_datetime(["2025-01-01 06:30", "2025-01-01 06:00"]),
                            lon=113.28, lat=23.13, agl=50.0))
    s = StiltSettings(n_hours=N_HOURS, numpar=50, seed=7, near_field_hours=0)
    out = tmp_path / "fp" / "YXU" / "20250101.nc"
    run_site_day(rec, [met_file], INNER, s, out, tmp_path / "work", outer_grid=OUTER)
    with xr.open_dataset(out) as ds:
        assert ds["foot_outer"].dims == ("receptor", "time", "olat", "olon")
        assert ds["foot_outer"].shape == (2, 7, 14, 18) and ds["foot_outer"].dtype == np.float32
        assert ds.attrs["n_inner"] == 3600 and ds.attrs["n_outer"] == 14 * 18 - 6 * 6
        assert ds.attrs["outer_res"] == 0.1 and ds.attrs["outer_lon_min"] == 112.6
        parts = (ds["foot"].sum(("lat", "lon")) + ds["foot_outer"].sum(("olat", "olon"))
                 + ds["foot_outside"]).values
        # float32 storage of foot and foot_outer: agreement to float32 precision
        np.testing.assert_allclose(parts, ds["foot_total"].values, rtol=1e-6, atol=1e-9)
        assert ds["exit_lon"].dims == ("receptor", "particle") and ds.sizes["particle"] == 50
        assert set(np.unique(ds["exit_reason"].values)) <= {0, 1, 2}
        assert ds["left_domain_fraction"].shape == (2,)
        rel = ds["release_time"].values[:, None]
        age = (rel - ds["exit_time"].values) / np.timedelta64(1, "m")
        assert (age > 0).all() and (age <= 60 * N_HOURS).all()
        # a particle still inside at the end of the run exits at the run's start, 6 h back
        assert (age[ds["exit_reason"].values == 0] == 60 * N_HOURS).all()
    # the cached receptors are reused; a run without the outer grid recomputes (other key)
    s2 = run_site_day(rec, [met_file], INNER, s, out, tmp_path / "work", outer_grid=OUTER)
    assert s2["n_computed"] == 0
    flat = tmp_path / "fp" / "YXU" / "flat.nc"
    s3 = run_site_day(rec.iloc[:1], [met_file], INNER, s, flat, tmp_path / "work",
                      outer_grid={**OUTER, "enabled": False})
    assert s3["n_stale"] == 1
    with xr.open_dataset(flat) as a, xr.open_dataset(out) as b:
        assert "foot_outer" not in a and "exit_lon" not in a and "n_outer" not in a.attrs
        np.testing.assert_array_equal(a["foot"].values[0], b["foot"].sel(receptor=a.receptor).values[0])
