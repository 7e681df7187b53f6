"""transport.stilt_driver.early_timesteps: pystilt's near-receptor interpolation without its
per-particle merges gives the same particle table, bit for bit, on real HYSPLIT-STILT particles (a
near-field run writing every minute and a far-field run writing every 10 minutes, whose steps near
the receptor are longer than the 200 m cells used here, so pystilt takes its interpolation branch),
and the same
nested footprints; a table whose inserted rows would survive goes to pystilt itself."""

import numpy as np
import pandas as pd
import pytest
import stilt
from stilt.footprint import gridding

from gzcarbon.demo.met import write_met_day
from gzcarbon.grid import Grid, NestedGrid
from transport import stilt_driver as sd
from transport.stilt_driver import StiltSettings, met_config

RELEASE = pd.Timestamp("2025-01-01 06:30")
MET = dict(lon_min=111.9, lon_max=115.5, lat_min=21.9, lat_max=24.9, res=0.1)
# 200 m cells: the far run's 10-minute steps near the receptor are longer (pystilt interpolates)
RES = 0.002
INNER = dict(lon_min=113.0, lon_max=113.6, lat_min=22.9, lat_max=23.5, res=RES)
OUTER = dict(lon_min=112.6, lon_max=114.4, lat_min=22.5, lat_max=23.9, res=0.1)
N_HOURS = 6


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("early_met")
    met = write_met_day(d / "20250101_gz.arl", "2025-01-01", MET, seed=1, hours=range(0, 8))
    rec = stilt.PointReceptor(time=RELEASE, longitude=113.28, latitude=23.13, altitude=50.0)
    s = StiltSettings(n_hours=N_HOURS, numpar=40, seed=7)
    run = tmp_path_factory.mktemp("early_run")
    near = sd._trajectories(rec, "YXU_near", met_config([met]), s, run / "n", N_HOURS, 40, {})
    far = sd._trajectories(rec, "YXU_far", met_config([met]), s, run / "f", N_HOURS, 25, {"outdt": 10})
    return {"near": near, "far": sd.interval_midpoints(far, 113.28, 23.13)}


def _identical(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    return (list(a.columns) == list(b.columns) and len(a) == len(b)
            and all(a[c].dtype == b[c].dtype and np.array_equal(a[c].to_numpy(), b[c].to_numpy())
                    for c in a.columns))


@pytest.mark.parametrize("kind", ["near", "far"])
def test_the_same_table_as_pystilt_on_true_and_shifted_ages(runs, kind, monkeypatch):
    p = runs[kind]
    calls = []
    tracks = gridding._interpolate_particle_tracks
    monkeypatch.setattr(gridding, "_interpolate_particle_tracks",
                        lambda *a, **k: calls.append(1) or tracks(*a, **k))
    ref = gridding._interpolate_early_timesteps(p.copy(), xres=RES, yres=RES, time_sign=-1)
    monkeypatch.undo()
    ours = sd.early_timesteps(p.copy(), RES, -1)
    assert _identical(ours, ref)
    if kind == "far":  # 10-minute steps: pystilt took its interpolation branch (the merges) ...
        assert calls
        assert len(ref) == len(p)  # ... and no inserted row survived its dropna (further columns)
    for a in (ref, ours):
        a["age"] = a["age"] - 30.0  # the clock-hour shift of the driver (release at mm:30)
    assert _identical(sd.early_timesteps(ours, RES, -1),
                      gridding._interpolate_early_timesteps(ref, xres=RES, yres=RES, time_sign=-1))


def test_the_same_nested_footprints(runs, monkeypatch):
    ng = NestedGrid(Grid(**INNER), Grid(**OUTER))
    ours = [sd._nested_hour_footprint(runs[k], RELEASE, ng, N_HOURS, 1.0) for k in ("near", "far")]
    monkeypatch.setattr(sd, "early_timesteps", lambda p, res, ts: gridding._interpolate_early_timesteps(
        p, xres=res, yres=res, time_sign=ts))
    ref = [sd._nested_hour_footprint(runs[k], RELEASE, ng, N_HOURS, 1.0) for k in ("near", "far")]
    for a, b in zip(ours, ref):
        assert (a[0] == b[0]).all()
        for x, y in zip(a[1:], b[1:]):
            assert np.array_equal(x, y)
        assert a[1].sum() > 0


def test_a_table_whose_inserted_rows_survive_goes_to_pystilt():
    """Only the columns pystilt fills: its inserted rows stay (more rows), and so they do here."""
    rng = np.random.default_rng(3)
    ages = -np.arange(1.0, 151.0, 2.0)
    n = 10
    p = pd.DataFrame({"particle": np.repeat(np.arange(1, n + 1), ages.size), "age": np.tile(ages, n),
                      "lon": 113.3 + np.cumsum(rng.normal(0, 0.05, n * ages.size)),
                      "lat": 23.1 + np.cumsum(rng.normal(0, 0.05, n * ages.size)),
                      "foot": rng.uniform(0.0, 0.02, n * ages.size)})
    ref = gridding._interpolate_early_timesteps(p.copy(), xres=RES, yres=RES, time_sign=-1)
    ours = sd.early_timesteps(p.copy(), RES, -1)
    assert len(ref) > len(p) and _identical(ours, ref)
    q = p.assign(zagl=50.0)
    q.loc[3, "zagl"] = np.nan  # a missing value: pystilt drops that row too
    assert _identical(sd.early_timesteps(q.copy(), RES, -1),
                      gridding._interpolate_early_timesteps(q.copy(), xres=RES, yres=RES, time_sign=-1))
