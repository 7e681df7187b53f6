"""The near-field / far-field split of a receptor's HYSPLIT-STILT runs (transport.near_field_hours):
which clock-hour bins each run supplies, their normalisation, the settings' checks and cache keys.

HYSPLIT itself is replaced by synthetic particle tables here (the driver's ``_trajectories``), so
the assertions are exact; benchmarks/footprints.py measures the split against real HYSPLIT runs.
"""

import numpy as np
import pandas as pd
import pytest

from gzcarbon.grid import Grid, NestedGrid
from transport import stilt_driver as sd
from transport.stilt_driver import (StiltSettings, cache_key, near_field_bins,
                                    receptor_cache_inputs, receptor_footprint)

GRID = Grid.from_config({"lon_min": 113.0, "lon_max": 113.5, "lat_min": 23.0, "lat_max": 23.5,
                         "res": 0.05})
REC = pd.Series({"receptor_id": "YXU_x", "time": pd.Timestamp("2025-01-01 06:30"), "lon": 113.25,
                 "lat": 23.25, "agl": 50.0})


def particles(n: int, n_hours: int, step: int, foot: float) -> pd.DataFrame:
    """``n`` particles sitting at the grid centre, output every ``step`` minutes back to
    ``n_hours``, each row carrying ``foot * step`` (HYSPLIT sums foot over the output interval)."""
    ages = -np.arange(step, 60 * n_hours + 1, step, dtype=float)
    rows = [{"particle": i + 1, "age": a, "lon": 113.25, "lat": 23.25, "zagl": 10.0, "foot": foot * step}
            for i in range(n) for a in ages]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("minute, near, expected_near", [
    (30, 6, 6),   # release 06:30: 06:00-06:30 (0.5 h) + 05:00 .. 01:00 (5 full hours); 00:00 is split
    (0, 6, 7),    # release 06:00: the bins 06:00 (empty, age 0) and 05:00 .. 00:00 (6 hours)
    (30, 1, 1),
])
def test_near_field_bins_are_the_hours_wholly_inside_the_near_run(minute, near, expected_near):
    release = pd.Timestamp("2025-01-01 06:00") + pd.Timedelta(minutes=minute)
    use = near_field_bins(release, 24, near)
    assert use.shape == (25,)
    assert use.sum() == expected_near
    assert use[-expected_near:].all() and not use[:-expected_near].any()  # the youngest bins


def test_each_bin_comes_from_one_run_normalised_by_its_own_particles(monkeypatch):
    # near run: 100 particles, foot 2 per minute; far run: 25 particles, foot 1 per minute, output
    # every 10 minutes. Per particle-minute the near run has twice the far run's sensitivity, so
    # every bin must hold exactly 120 (near) or 60 (far) per hour, whatever the particle counts.
    calls = []

    def fake(receptor, rid, met, settings, run_dir, n_hours, numpar, extra):
        calls.append((n_hours, numpar, extra.get("outdt")))
        if n_hours == 6:
            return particles(numpar, n_hours, 1, 2.0)
        return particles(numpar, n_hours, int(extra["outdt"]), 1.0)

    monkeypatch.setattr(sd, "_trajectories", fake)
    s = StiltSettings(n_hours=24, numpar=100, near_field_hours=6, far_numpar=25,
                      far_output_minutes=10, smooth_factor=0.0)
    fp, _ = receptor_footprint(REC, {}, GRID, s, work_dir=None)
    foot, total, n_part, left = fp.foot, fp.total, fp.n_particles, fp.left_fraction
    assert fp.foot_outer is None and fp.outside is None and fp.exits is None   # no outer grid
    assert calls == [(6, 100, None), (24, 25, 10)]
    assert n_part == 100
    use = near_field_bins(REC["time"], 24, 6)
    # the release hour holds 30 minutes; the oldest bin (00:00-01:00 of the day before) 30 minutes
    minutes = np.full(25, 60.0)
    minutes[-1] = 30.0
    minutes[0] = 30.0
    expected = np.where(use, 2.0, 1.0) * minutes
    np.testing.assert_allclose(total, expected, rtol=1e-12)
    # the gridded sensitivity (no smoothing; every particle in one cell) equals the totals
    np.testing.assert_allclose(foot.sum(axis=(1, 2)), expected, rtol=1e-6)
    assert left == 0.0  # all far particles lasted the 24 h
    # nested: the same bins, each from one run, and every bin's sensitivity in the inner grid
    calls.clear()
    nested = NestedGrid(GRID, Grid(112.5, 114.0, 22.5, 24.0, 0.5))
    fpn, _ = receptor_footprint(REC, {}, nested, s, work_dir=None)
    np.testing.assert_array_equal(fpn.foot, foot)
    np.testing.assert_allclose(fpn.total, expected, rtol=1e-12)
    assert fpn.foot_outer.sum() == 0 and fpn.outside.sum() == 0
    assert (fpn.exits["reason"] == 0).all() and fpn.exits["particle"].size == 25  # far run, 24 h


def test_one_run_when_the_split_is_off(monkeypatch):
    calls = []

    def fake(receptor, rid, met, settings, run_dir, n_hours, numpar, extra):
        calls.append((n_hours, numpar, extra.get("outdt")))
        return particles(numpar, n_hours, 1, 1.0)

    monkeypatch.setattr(sd, "_trajectories", fake)
    for near in (0, 24, 30):
        calls.clear()
        s = StiltSettings(n_hours=24, numpar=40, near_field_hours=near, smooth_factor=0.0)
        receptor_footprint(REC, {}, GRID, s, work_dir=None)
        assert calls == [(24, 40, None)]


def test_cache_key_ignores_the_split_fields_when_the_split_is_off():
    met = {"20250101_gz.arl": "abc", "20241231_gz.arl": "def"}
    sw = {"pystilt": "x", "hysplit": "y", "hycs_std_blake2b": "z"}

    def key(**kw):
        s = StiltSettings(**kw)
        return cache_key(receptor_cache_inputs(REC, GRID, s, met, "%Y%m%d_gz.arl", sw))

    off = key(numpar=100, near_field_hours=0)
    assert key(numpar=100, near_field_hours=0, far_numpar=50, far_output_minutes=5) == off
    assert key(numpar=100, near_field_hours=24) == key(numpar=100, near_field_hours=0)
    on = key(numpar=100, near_field_hours=6)
    assert on != off
    assert key(numpar=100, near_field_hours=6, far_numpar=50) != on
    assert key(numpar=100, near_field_hours=6, far_output_minutes=5) != on


def test_outdt_cannot_be_combined_with_the_split():
    with pytest.raises(ValueError, match="near_field_hours"):
        StiltSettings.from_config({"near_field_hours": 6, "hysplit": {"outdt": 5}})
    s = StiltSettings.from_config({"near_field_hours": 0, "hysplit": {"outdt": 5}})
    assert not s.split


def test_interval_midpoints_put_each_interval_sum_at_its_middle():
    # a particle moving 0.01 deg west per minute from the release point (113.25, 23.25), written
    # every 10 minutes: the row at age -10 stands for minutes 0..10, centred 0.05 deg west
    ages = -np.arange(10, 61, 10, dtype=float)
    p = pd.DataFrame({"particle": 1, "age": ages[::-1], "lon": 113.25 + 0.01 * ages[::-1],
                      "lat": 23.25, "zagl": 10.0, "foot": 1.0})
    m = sd.interval_midpoints(p, 113.25, 23.25).sort_values("age", ascending=False)
    np.testing.assert_allclose(m["lon"].to_numpy(), 113.25 + 0.01 * (ages + 5.0), atol=1e-12)
    np.testing.assert_allclose(m["lat"].to_numpy(), 23.25)
    assert len(m) == len(p) and m["foot"].sum() == p["foot"].sum()


@pytest.mark.parametrize("utc, lon, split", [
    ("2025-01-01 06:30", 113.25, True),    # 14:03 solar: afternoon mixed layer
    ("2025-01-01 18:30", 113.25, False),   # 02:03 solar: night, one run
    ("2025-01-01 02:30", 113.25, True),    # 10:03 solar
    ("2025-01-01 02:00", 113.25, False),   # 09:33 solar
    ("2025-01-01 10:30", 113.25, False),   # 18:03 solar
])
def test_the_split_is_used_only_in_the_daytime_solar_hours(monkeypatch, utc, lon, split):
    calls = []

    def fake(receptor, rid, met, settings, run_dir, n_hours, numpar, extra):
        calls.append(n_hours)
        return particles(numpar, n_hours, int(extra.get("outdt") or 1), 1.0)

    monkeypatch.setattr(sd, "_trajectories", fake)
    s = StiltSettings.from_config({"n_hours": 24, "numpar": 30, "near_field_hours": 6,
                                   "near_field_solar_hours": [10, 18], "smooth_factor": 0.0})
    rec = REC.copy()
    rec["time"], rec["lon"] = pd.Timestamp(utc), lon
    assert s.split_for(rec["time"], lon) is split
    receptor_footprint(rec, {}, GRID, s, work_dir=None)
    assert calls == ([6, 24] if split else [24])
