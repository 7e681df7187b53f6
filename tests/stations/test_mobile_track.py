"""Mobile tracks: CSV reader, time order, QC, 1-minute segments, their σ and receptors."""
import numpy as np
import pandas as pd
import pytest

from stations.mobile import (QC_JUMP, QC_RANGE, MobileFileError, haversine_m, qc_track,
                             read_track, receptors, segment_correlation, segment_sigma, segments)
from transport.receptors import COLUMNS, read_receptors, write_receptors


def _track(n=300, start="2025-01-01T04:00:00Z", seed=1):
    rng = np.random.default_rng(seed)
    t = pd.date_range(start.rstrip("Z"), periods=n, freq="1s")
    return pd.DataFrame(dict(time=t.strftime("%Y-%m-%dT%H:%M:%SZ"),
                             lat=23.10 + np.arange(n) * 8e-5, lon=113.30 + np.arange(n) * 5e-5,
                             height=3.0, co2=430 + rng.normal(0, 2, n), ch4=2000 + rng.normal(0, 5, n)))


def test_segments_equal_an_independent_average(tmp_path):
    tr = _track()
    path = tmp_path / "track_20250101.csv"
    with open(path, "w") as fh:
        fh.write("# vehicle GZ-01, Picarro G2401-m, 1 Hz\n")
        tr.to_csv(fh, index=False)
    rec = read_track(path)
    assert len(rec) == 300 and list(rec.columns) == ["time", "lat", "lon", "height", "co2", "ch4"]
    assert rec["time"].iloc[0] == pd.Timestamp("2025-01-01 04:00:00")
    seg = segments(rec, "co2", segment_seconds=60, min_records=10, track_id="GZ01")
    assert len(seg) == 5 and list(seg["n"]) == [60] * 5
    for k in range(5):
        chunk = tr["co2"].to_numpy()[60 * k: 60 * (k + 1)]
        assert seg["value"][k] == pytest.approx(np.sum(chunk) / 60, rel=1e-12)
        assert seg["spread"][k] == pytest.approx(np.sqrt(np.sum((chunk - chunk.mean()) ** 2) / 59))
        assert seg["lat"][k] == pytest.approx(np.mean(tr["lat"].to_numpy()[60 * k: 60 * (k + 1)]))
        assert seg["time"][k] == pd.Timestamp("2025-01-01 04:00:30") + pd.Timedelta(minutes=k)
    # a segment moves 60 s x ~10 m/s: under the 1 km cell
    d = haversine_m(seg["lon"][0], seg["lat"][0], seg["lon"][1], seg["lat"][1])
    assert 500 < d < 1000
    r = receptors(seg)
    assert list(r.columns) == COLUMNS and r["receptor_id"][0] == "GZ01_20250101040030_3"
    write_receptors(tmp_path / "receptors.csv", r)
    back = read_receptors(tmp_path / "receptors.csv")
    assert (back["time"] == r["time"]).all() and np.allclose(back["lat"], r["lat"])


def test_time_going_backwards_is_a_clear_error(tmp_path):
    tr = _track(20)
    tr.loc[12, "time"] = "2025-01-01T03:59:59Z"
    path = tmp_path / "track_bad.csv"
    tr.to_csv(path, index=False)
    with pytest.raises(MobileFileError) as e:
        read_track(path)
    msg = str(e.value)
    assert str(path) in msg and "'time'" in msg and "backwards" in msg and "line 13" in msg


def test_missing_field_and_qc(tmp_path):
    tr = _track(120)
    path = tmp_path / "nolat.csv"
    tr.drop(columns="lat").to_csv(path, index=False)
    with pytest.raises(MobileFileError, match="field 'lat'"):
        read_track(path)
    tr.loc[30, "lat"] = 23.5  # a GPS glitch: ~40 km in one second
    tr.loc[31, "lat"] = tr.loc[29, "lat"] + 2 * 8e-5
    tr.loc[70, "co2"] = 1500.0  # implausible
    dup = pd.concat([tr.iloc[:50], tr.iloc[49:50], tr.iloc[50:]])  # a repeated logger line
    path = tmp_path / "track.csv"
    dup.to_csv(path, index=False)
    rec = read_track(path)
    assert len(rec) == 120
    qc = qc_track(rec, "co2")
    assert qc[30] & QC_JUMP and qc[31] & QC_JUMP and qc[70] & QC_RANGE
    assert np.count_nonzero(qc) == 3
    seg = segments(rec, "co2", min_records=10)
    assert list(seg["n"]) == [58, 59]


def test_segment_sigma_and_correlation():
    seg = pd.DataFrame(dict(track=["A", "A", "A", "B"], time=pd.to_datetime(
        ["2025-01-01 04:00:30", "2025-01-01 04:01:30", "2025-01-01 04:05:30", "2025-01-01 04:00:30"]),
        spread=[0.0, 4.0, 1.0, 2.0], n=[60, 60, 60, 15]))
    s = segment_sigma(seg, mismatch=3.0, plume_factor=1.0, measurement=0.6)
    np.testing.assert_allclose(s, np.sqrt(9 + 0.36 / np.array([60, 60, 60, 15])
                                          + np.array([0, 16, 1, 4.0])))
    c = segment_correlation(seg, corr_minutes=5.0)
    assert c[0, 1] == pytest.approx(np.exp(-1 / 5)) and c[0, 2] == pytest.approx(np.exp(-1))
    assert c[0, 3] == 0.0 and np.all(np.linalg.eigvalsh(c) > 0)
    assert np.array_equal(segment_correlation(seg, 0.0), np.eye(4))


def test_demo_track_round_trips_to_its_segment_truth(tmp_path):
    from gzcarbon.demo.columns import track_records, track_text

    truth = pd.DataFrame(dict(start=pd.date_range("2025-01-02 05:00", periods=6, freq="1min"),
                              lon0=113.30 + 0.006 * np.arange(6), lat0=23.10, lon1=113.306 + 0.006 * np.arange(6),
                              lat1=23.10, height=3.0, co2=[431.0, 433.5, 440.2, 436.0, 432.2, 430.9]))
    rec = track_records(truth, plume_ppm=3.0, plume_rate=0.1, rng=np.random.default_rng(5))
    path = tmp_path / "track_20250102.csv"
    path.write_text(track_text(rec))
    seg = segments(read_track(path), "co2", track_id="CAR")
    assert len(seg) == 6 and list(seg["n"]) == [60] * 6
    plume = rec["co2"].to_numpy().reshape(6, 60) - truth["co2"].to_numpy()[:, None]
    # the segment mean is the truth plus the minute's road-plume mean (noise has mean zero per minute)
    np.testing.assert_allclose(seg["value"], truth["co2"] + plume.mean(axis=1), atol=1e-5)
    assert np.all(seg["spread"] > 0) and seg["time"][0] == pd.Timestamp("2025-01-02 05:00:30")
    np.testing.assert_allclose(seg["lon"], (truth["lon0"] + truth["lon1"]) / 2, atol=1e-6)
