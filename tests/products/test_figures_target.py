"""The target-tank calibration check (stations.target) and its report figure, from the files rule
hourly_obs writes per site: target_tank.csv (stations.hourly: `Calibration.target.to_csv`, the
columns below) and the hourly NetCDF's attributes target_goal, target_tank_max_bias, species."""

import io

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from products.figures import target_tank_png
from stations.target import TargetTankFileError, read_target_runs, target_check

HEADER = ["start", "end", "time", "valve", "tank", "assigned", "target", "mean", "std", "n", "calibrated", "bias"]


def _site(root, site, biases, assigned=430.44, goal=0.1, max_bias=0.2):
    d = root / site
    d.mkdir(parents=True)
    t = pd.date_range("2025-01-01T03:38", periods=len(biases), freq="6h")
    cal = assigned + np.asarray(biases)
    pd.DataFrame({"start": t - pd.Timedelta("2min"), "end": t + pd.Timedelta("2min"), "time": t, "valve": 6,
                  "tank": "TARGET", "assigned": assigned, "target": True, "mean": cal + 0.3, "std": 0.07,
                  "n": 47, "calibrated": cal, "bias": cal - assigned})[HEADER].to_csv(d / "target_tank.csv", index=False)
    xr.Dataset({"value": ("time", np.zeros(2))}, coords={"time": pd.date_range("2025-01-01", periods=2, freq="h")},
               attrs={"site": site, "species": "co2", "target_goal": goal, "target_tank_max_bias": max_bias,
                      "target_tank_action": "flag"}).to_netcdf(d / f"{site}_50m.nc")
    return d


def test_target_check_numbers_and_figure(tmp_path):
    a = _site(tmp_path, "AAA", [0.01, -0.02, 0.15, 0.03])
    b = _site(tmp_path, "BBB", [0.25, 0.05])
    empty = tmp_path / "CCC"  # standard-format data calibrated by its provider: an empty file
    empty.mkdir()
    (empty / "target_tank.csv").write_text("")
    runs, summary = target_check([a, b, empty])
    assert len(runs) == 6 and set(runs.columns) == {"site", "time", "assigned", "calibrated", "bias"}
    s = summary.set_index("site")
    assert s.loc["AAA", "n"] == 4 and s.loc["BBB", "n"] == 2 and s.loc["CCC", "n"] == 0
    assert s.loc["AAA", "mean_bias"] == pytest.approx(np.mean([0.01, -0.02, 0.15, 0.03]), abs=1e-12)
    assert s.loc["AAA", "scatter"] == pytest.approx(np.std([0.01, -0.02, 0.15, 0.03], ddof=1), abs=1e-12)
    assert s.loc["BBB", "max_abs_bias"] == pytest.approx(0.25, abs=1e-12)
    assert (s.loc["AAA", "goal"], s.loc["AAA", "max_bias"], s.loc["AAA", "species"]) == (0.1, 0.2, "co2")
    assert s.loc["AAA", "n_beyond_goal"] == 1 and s.loc["AAA", "n_beyond_max_bias"] == 0
    assert s.loc["BBB", "n_beyond_goal"] == 1 and s.loc["BBB", "n_beyond_max_bias"] == 1
    assert np.isnan(s.loc["CCC", "mean_bias"]) and np.isnan(s.loc["CCC", "goal"])
    png = target_tank_png(runs, summary)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert mpimg.imread(io.BytesIO(png), format="png").shape[1] > 600


def test_a_target_file_without_bias_is_named(tmp_path):
    d = _site(tmp_path, "AAA", [0.01])
    pd.read_csv(d / "target_tank.csv").drop(columns=["bias"]).to_csv(d / "target_tank.csv", index=False)
    with pytest.raises(TargetTankFileError, match=r"AAA/target_tank.csv: columns \['bias'\] missing"):
        read_target_runs(d)
