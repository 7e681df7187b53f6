"""stations.target.target_check reads back what the hourly rule writes (target_tank.csv and the hourly
files' attributes) and agrees with the calibration computed in memory; a failing target tank is
counted against the acting limit."""

import numpy as np
import pytest

from gzcarbon.demo.stations import write_demo_raw
from stations import hourly
from stations.target import target_check

from station_truth import make_truth


def _ingest(tmp_path, site, truth, **kw):
    raw = tmp_path / "raw" / site["id"]
    write_demo_raw(truth, site, raw, seed=1, record_seconds=10.0, **kw)
    ing = hourly.process_site(raw, site, period=("2025-01-01", "2025-01-02"))
    out = tmp_path / "results" / "obs" / "hourly" / site["id"]
    hourly.write_hourly_dir(ing, site, out)
    return ing, out


def test_target_check_equals_the_calibration_in_memory(tmp_path, tower, urban):
    truth = make_truth([tower, urban], days=1, seed=2)
    ings, dirs = zip(*(_ingest(tmp_path, s, truth) for s in (tower, urban)))
    runs, summary = target_check(dirs)
    s = summary.set_index("site")
    for ing, d in zip(ings, dirs):
        tgt = ing.calibration.target
        ref = ing.calibration.target_summary
        assert ref["n"] >= 3
        got = runs[runs["site"] == d.name]
        np.testing.assert_allclose(got["bias"].to_numpy(), tgt["bias"].to_numpy(), rtol=0, atol=1e-12)
        assert s.loc[d.name, "n"] == ref["n"]
        assert s.loc[d.name, "mean_bias"] == pytest.approx(ref["bias"], abs=1e-12)
        assert s.loc[d.name, "scatter"] == pytest.approx(ref["scatter"], abs=1e-12)
        assert s.loc[d.name, "goal"] == ref["goal"] == 0.1
        assert s.loc[d.name, "max_bias"] == 0.2 and s.loc[d.name, "species"] == "co2"
        assert s.loc[d.name, "n_beyond_max_bias"] == 0  # the demo analyser is well calibrated


def test_a_failing_target_run_is_counted(tmp_path, urban):
    """A target run 0.5 ppm off in the raw files (as in test_plausibility) is one run beyond the
    0.2 ppm limit and beyond the goal in the check the report draws."""
    import pandas as pd

    from stations import picarro

    truth = make_truth([urban], days=1, seed=3, noise_ppm=3.0)
    base, _ = _ingest(tmp_path / "base", urban, truth)
    bad = base.calibration.target.sort_values("time").iloc[1]
    raw = tmp_path / "base" / "raw" / urban["id"]
    for f in raw.glob("*.dat"):
        rec = picarro.read_raw(f).records
        sel = (rec["MPVPosition"].round() == 6) & (rec["time"] >= bad["start"] - pd.Timedelta(minutes=2)) \
            & (rec["time"] <= bad["end"])
        if sel.any():
            rec.loc[sel, "CO2_dry"] += 0.5
            picarro.write_dat(f, rec)
    ing = hourly.process_site(raw, urban, period=("2025-01-01", "2025-01-02"))
    out = tmp_path / "bad" / urban["id"]
    hourly.write_hourly_dir(ing, urban, out)
    runs, summary = target_check([out])
    r = summary.iloc[0]
    assert r["n_beyond_max_bias"] == 1 and r["n_beyond_goal"] == 1
    assert r["max_abs_bias"] == pytest.approx(0.5, abs=0.05)
    assert runs["bias"].abs().idxmax() == 1
