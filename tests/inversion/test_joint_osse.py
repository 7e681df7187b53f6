"""tools/gas_osse.py: the CO truth it builds when the demo has no truth_co.nc, and its noise draws."""

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from gzcarbon.demo.truth_errors import GAS_TRUTH_ERRORS, TRUTH_ERRORS

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location("gas_osse", ROOT / "tools" / "gas_osse.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_co_truth_is_the_true_co2_sectors_times_the_ratios_with_their_preregistered_errors(tool, tmp_path):
    rng = np.random.default_rng(0)
    truth = {k: rng.random((3, 2, 2)) for k in ("industry", "road", "residential", "power", "bio", "unreported")}
    table = pd.DataFrame({"ratio_mol_per_mol": [0.012, 0.015, 0.008, 0.001], "sigma_rel": [0.5, 0.4, 0.6, 0.7]},
                         index=pd.Index(["industry", "road", "residential", "power"], name="sector"))
    co, source = tool.true_co_flux(tmp_path, truth, table, None)  # tmp_path has no truth_co.nc
    e = GAS_TRUTH_ERRORS.co_ratio_error
    expected = 1000 * (0.012 * (1 + e["industry"]) * (truth["industry"] + truth["unreported"])
                       + 0.015 * (1 + e["road"]) * truth["road"]
                       + 0.008 * (1 + e["residential"]) * truth["residential"]
                       + 0.001 * (1 + e["power"]) * truth["power"])
    np.testing.assert_allclose(co, expected, rtol=1e-14)
    assert "+30%" in source and "-30%" in source  # the pre-registered ±30 % of issue 20


def test_noise_draws_have_the_demos_size_and_co2_co_correlation(tool):
    n, k = 400, 400
    rng = np.random.default_rng(3)
    enh2, enh1 = rng.random(n) * 5, rng.random(n) * 60
    prior2, prior1 = rng.random(n), rng.random(n) * 10
    bg2, bg1 = rng.normal(size=n), rng.normal(size=n) * 20
    pair = np.r_[np.arange(n - 50), -np.ones(50, int)]  # the last 50 CO rows have no CO2 partner
    Y = tool.data_draws(k, enh2, prior2, bg2, enh1, prior1, bg1, pair, rng)
    assert Y.shape == (2 * n, k + 1)
    np.testing.assert_allclose(Y[:n, 0], enh2 - prior2)  # the perfect column: no noise, no background error
    np.testing.assert_allclose(Y[n:, 0], enh1 - prior1)
    z2 = (Y[:n, 1:] - (enh2 - prior2 + bg2)[:, None]) / np.sqrt(
        TRUTH_ERRORS.noise_ppm**2 + (TRUTH_ERRORS.noise_rel * enh2) ** 2)[:, None]
    a1, r1, rho = GAS_TRUTH_ERRORS.noise("co")
    z1 = (Y[n:, 1:] - (enh1 - prior1 + bg1)[:, None]) / np.sqrt(a1**2 + (r1 * enh1) ** 2)[:, None]
    assert z2.std() == pytest.approx(1.0, abs=0.01) and z1.std() == pytest.approx(1.0, abs=0.01)
    m = n - 50
    assert np.mean(z1[:m] * z2[:m]) == pytest.approx(rho, abs=0.015)  # 140 000 pairs: s.e. ~0.002
    assert np.mean(z1[m:] * z2[m:]) == pytest.approx(0.0, abs=0.02)  # unpaired rows: independent


def test_synthetic_co_rows_carry_the_co2_background_error(tool):
    sel = pd.DataFrame({"site": ["NST", "YXU"], "time": pd.to_datetime(["2025-01-01 06:00", "2025-01-01 07:00"]),
                        "intake_height": [220, 50], "value": [430.0, 440.0], "value_std_dev": [0.1, 0.1],
                        "background": [421.0, 423.0], "background_sigma": [1.0, 2.0]})
    bg_truth = pd.Series([420.0, 424.0], index=pd.to_datetime(["2025-01-01 06:00", "2025-01-01 08:00"]))
    co = tool.synthetic_co_selected(sel, bg_truth, 20.0)
    np.testing.assert_allclose(co["bg_error_co2"], [420.0 - 421.0, 422.0 - 423.0])  # truth interpolated at 07:00
    np.testing.assert_allclose(co["background_sigma"], [20.0, 40.0])
    assert (co[["value", "background", "value_std_dev"]].to_numpy() == 0).all()
