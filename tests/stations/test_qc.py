"""QC flags: alarms, cavity ranges, flush after valve switches, spike filter (exact counts)."""
import numpy as np
import pandas as pd

from stations import qc


def frame(n=200, dt=2.0):
    t = pd.Timestamp("2025-01-01") + pd.to_timedelta(np.arange(n) * dt, unit="s")
    return pd.DataFrame({"time": t, "ALARM_STATUS": np.zeros(n, int),
                         "CavityPressure": np.full(n, 140.0), "CavityTemp": np.full(n, 45.0),
                         "MPVPosition": np.ones(n), "CO2_dry": np.full(n, 420.0)})


def test_alarm_pressure_temperature_flush_counts():
    df = frame()
    df.loc[10:19, "ALARM_STATUS"] = 4                       # 10 alarm records
    df.loc[100:104, "CavityPressure"] = 140.5               # 5 out of range
    df.loc[[3, 170], "CavityTemp"] = 45.3                    # 2 out of range
    df.loc[50:119, "MPVPosition"] = 3.0                      # switches at 50 and 120
    df.loc[7, "CO2_dry"] = np.nan
    q = qc.flag_instrument(df, "CO2_dry", flush_seconds=60)
    c = qc.flag_counts(q)
    # first record counts as a switch: records 0-29, 50-79, 120-149 are within 60 s (2 s records)
    assert c["flush"] == 90
    assert c["alarm"] == 10 and c["cavity_pressure"] == 5 and c["cavity_temp"] == 2
    assert c["missing"] == 1
    assert np.flatnonzero(q & qc.FLUSH).tolist() == list(range(30)) + list(range(50, 80)) + list(range(120, 150))
    # alarms 10-19, temperature 3 and missing 7 lie inside the first flush: union = 90 + 5 + 1
    assert ((q & qc.EXCLUDE) != 0).sum() == 96


def test_flush_with_irregular_records():
    t = pd.to_datetime(["2025-01-01 00:00:00", "2025-01-01 00:00:30", "2025-01-01 00:01:00",
                        "2025-01-01 00:01:05", "2025-01-01 00:01:59", "2025-01-01 00:02:05"]).to_numpy()
    v = np.array([1, 1, 1, 2, 2, 2])
    assert qc.flush_mask(t, v, 60).tolist() == [True, True, False, True, True, False]
    # a gap longer than the flush time restarts the flush without a valve change
    t2 = t.copy()
    t2[5] = np.datetime64("2025-01-01T00:03:30")          # 91 s after the previous record
    t2 = np.append(t2, np.datetime64("2025-01-01T00:04:20"))   # 50 s later: still flushing
    assert qc.flush_mask(t2, np.append(v, 2), 60).tolist() == [True, True, False, True, True, True, True]


def test_spike_filter_flags_spikes_not_slow_variation():
    n = 1440                                                 # 2 h of 5 s records
    t = (pd.Timestamp("2025-01-01") + pd.to_timedelta(np.arange(n) * 5, unit="s")).to_numpy()
    rng = np.random.default_rng(3)
    v = 420 + 10 * np.arange(n) / n + 3 * np.sin(np.arange(n) / 200) + rng.normal(0, 0.07, n)
    assert qc.flag_spikes(t, v, np.ones(n, bool)).sum() == 0
    w = v.copy()
    w[[100, 500, 501, 900]] += [10, 15, 15, 8]
    spk = qc.flag_spikes(t, w, np.ones(n, bool))
    assert np.flatnonzero(spk).tolist() == [100, 500, 501, 900]
    usable = np.ones(n, bool)
    usable[100] = False                                      # not usable -> not tested, not flagged
    assert not qc.flag_spikes(t, w, usable)[100]


def test_fast_spike_filter_equals_running_median_reference():
    rng = np.random.default_rng(8)
    for noise, share in ((0.1, 0.05), (0.8, 0.05), (0.8, 0.0)):    # share 0: always the fallback
        n = 8000
        t = (pd.Timestamp("2025-01-01") + pd.to_timedelta(np.cumsum(rng.uniform(1.5, 3.5, n)), unit="s")).to_numpy()
        v = 420 + 5 * np.sin(np.arange(n) / 500) + rng.normal(0, noise, n)
        v[rng.integers(0, n, 20)] += rng.uniform(3, 20, 20)
        usable = rng.random(n) > 0.1
        ref = qc.flag_spikes_reference(t, v, usable)
        assert ref.sum() >= 10
        for unit in ("ns", "ms"):                  # the reader gives millisecond times
            fast = qc.flag_spikes(t.astype(f"datetime64[{unit}]"), v, usable, max_candidate_share=share)
            np.testing.assert_array_equal(fast, ref)
