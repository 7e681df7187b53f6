"""Particles leaving the met domain: measured from pystilt's particle table, kept per receptor."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from transport.stilt_driver import (StiltSettings, collect_failures, left_domain_fraction,
                                    run_site_day)
from gzcarbon.demo.met import write_met_day


def test_left_domain_fraction_from_particle_table():
    # 4 particles, 1-min steps, 3 h back: two run the whole 180 min, two stop at 60 and 179 min
    rows = []
    for pid, last in ((1, 180), (2, 180), (3, 60), (4, 177)):
        for a in range(1, last + 1):
            rows.append((float(-a), float(pid)))
    p = pd.DataFrame(rows, columns=["age", "particle"])
    assert left_domain_fraction(p, 3) == pytest.approx(0.5)
    assert np.isnan(left_domain_fraction(p.iloc[:0], 3))


def test_collect_failures(tmp_path):
    a = tmp_path / "fp" / "NST" / "20250101.nc"
    b = tmp_path / "fp" / "YXU" / "20250102.nc"
    a.parent.mkdir(parents=True)
    b.parent.mkdir(parents=True)
    pd.DataFrame({"receptor_id": ["NST_202501010430_220"], "time": ["2025-01-01 04:30"],
                  "error": ["RuntimeError: boom"]}).to_csv(a.with_name("20250101_failures.csv"),
                                                            index=False)
    pd.DataFrame(columns=["receptor_id", "time", "error"]).to_csv(
        b.with_name("20250102_failures.csv"), index=False)
    out = collect_failures([a, b], tmp_path / "failures.csv")
    back = pd.read_csv(tmp_path / "failures.csv")
    assert list(back.columns) == ["site", "day", "receptor_id", "time", "error"]
    assert len(out) == len(back) == 1
    assert back.iloc[0].site == "NST" and str(back.iloc[0].day) == "20250101"
    assert len(collect_failures([b])) == 0


def test_small_met_domain_loses_particles(tmp_path):
    """HYSPLIT on a 1.2° met domain: most particles leave within 6 h (north-east monsoon, 3-6 m/s);
    the share is in the site-day file and the warning fires; a wider domain keeps more."""
    rec = pd.DataFrame(dict(receptor_id=["YXU_202501010630_50"], site="YXU",
                            time=pd.to_datetime(["2025-01-01 06:30"]), lon=113.28, lat=23.13,
                            agl=50.0))
    grid = dict(lon_min=113.0, lon_max=113.6, lat_min=22.9, lat_max=23.4, res=0.01)
    settings = StiltSettings(n_hours=6, numpar=50, seed=7, kmixd=0)
    fr = {}
    for name, met in (("small", dict(lon_min=112.8, lon_max=114.0, lat_min=22.6, lat_max=23.8,
                                      res=0.03)),
                      ("wide", dict(lon_min=111.9, lon_max=115.5, lat_min=21.9, lat_max=24.9,
                                    res=0.1))):
        d = tmp_path / name
        f = write_met_day(d / "20250101_gz.arl", "2025-01-01", met, seed=1, hours=range(0, 8))
        out = tmp_path / f"fp_{name}" / "YXU" / "20250101.nc"
        s = run_site_day(rec, [f], grid, settings, out, tmp_path / f"work_{name}")
        with xr.open_dataset(out) as ds:
            fr[name] = float(ds.left_domain_fraction.values[0])
        assert s["max_left_domain_fraction"] == pytest.approx(fr[name])
        assert s["n_left_domain_warn"] == int(fr[name] > 0.1)
    assert fr["small"] > 0.5  # measured 0.8
    assert fr["wide"] < 0.1  # measured 0.0
