"""Calibration against reference tanks recovers a known drifting gain/offset."""
import numpy as np
import pandas as pd

from stations import calibration, qc
from stations.sites import tank_table
from gzcarbon.demo.stations import simulate_site

from station_truth import make_truth


def test_recovers_known_gain_and_offset(urban):
    truth = make_truth([urban], days=2)
    rec = simulate_site(truth, urban, seed=11, record_seconds=5.0, spikes_per_day=0)
    q = qc.flag_instrument(rec, "CO2_dry", flush_seconds=60)
    tanks = tank_table(urban, "co2")
    cal, extrap, res = calibration.calibrate(rec, rec["CO2_dry"].to_numpy(), q, tanks)
    assert len(res.cycles) >= 6
    # per cycle: the fitted response at 420 ppm matches the true one
    tc = res.cycles["time"].to_numpy()
    ti = rec["time"].to_numpy()
    i = np.searchsorted(ti, tc)
    true_420 = rec["offset"].to_numpy()[i] + rec["gain"].to_numpy()[i] * 420
    fit_420 = res.cycles["offset"].to_numpy() + res.cycles["gain"].to_numpy() * 420
    # noise 0.07 ppm/record -> ~0.01 ppm per tank mean: RMS over cycles < 0.02, none beyond 0.04
    assert np.sqrt(np.mean((fit_420 - true_420) ** 2)) < 0.02
    assert np.abs(fit_420 - true_420).max() < 0.04
    np.testing.assert_allclose(res.cycles["gain"], rec["gain"].to_numpy()[i], atol=5e-4)  # ~1.5e-4 per cycle, 1 sigma
    # ambient records: calibrated minus true, averaged per hour
    amb = (rec["MPVPosition"].to_numpy() == 1) & ((q & qc.EXCLUDE) == 0) & ~extrap
    err = pd.Series(cal[amb] - rec["true_value"].to_numpy()[amb], index=rec["time"][amb].dt.floor("h"))
    hourly = err.groupby(level=0).mean()
    assert abs(err.mean()) < 0.02
    assert hourly.abs().max() < 0.05
    # without calibration the error would be much larger
    raw_err = rec["CO2_dry"].to_numpy()[amb] - rec["true_value"].to_numpy()[amb]
    assert np.abs(raw_err).mean() > 0.2
    # target tank within the WMO goal
    assert res.target_summary["n"] >= 6 and not res.target_summary["exceeds_goal"]
    assert abs(res.target_summary["bias"]) < 0.05


def test_linear_fit_exact_without_noise():
    runs = pd.DataFrame({
        "start": pd.to_datetime(["2025-01-01 00:00", "2025-01-01 00:05", "2025-01-01 00:10",
                                 "2025-01-01 06:00", "2025-01-01 06:05"]),
        "end": pd.to_datetime(["2025-01-01 00:04", "2025-01-01 00:09", "2025-01-01 00:14",
                               "2025-01-01 06:04", "2025-01-01 06:09"]),
        "time": pd.to_datetime(["2025-01-01 00:02", "2025-01-01 00:07", "2025-01-01 00:12",
                                "2025-01-01 06:02", "2025-01-01 06:07"]),
        "valve": [3, 4, 5, 3, 4], "tank": ["L", "M", "H", "L", "M"],
        "assigned": [400.0, 450.0, 500.0, 400.0, 450.0], "target": [False] * 5,
        "n": [50] * 5})
    runs["mean"] = 0.3 + 1.001 * runs["assigned"]
    runs.loc[3:, "mean"] = 0.6 + 0.999 * runs.loc[3:, "assigned"]
    cyc = calibration.fit_cycles(runs)
    assert len(cyc) == 2
    np.testing.assert_allclose(cyc["gain"], [1.001, 0.999], atol=1e-12)
    np.testing.assert_allclose(cyc["offset"], [0.3, 0.6], atol=1e-9)
    # halfway between the cycles: gain and offset interpolated linearly
    tm = cyc["time"].iloc[0] + (cyc["time"].iloc[1] - cyc["time"].iloc[0]) / 2
    v, ex = calibration.apply(np.array([tm.to_datetime64()]), np.array([0.45 + 1.0 * 420]), cyc)
    assert abs(v[0] - 420) < 1e-9 and not ex[0]
