"""The demo world's pre-registered error model and the truth's own transport (issue 18)."""

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from gzcarbon.demo.inventory import TRUTH_CHANGES
from gzcarbon.demo.signal import receptor_enhancements, transport_difference, truth_signal
from gzcarbon.demo.truth_errors import (IDENTICAL_TWIN_WARNING, TRUTH_ERRORS, TruthTransport,
                                        TruthTransportError, warn_if_identical_twin)
from transport.stilt_driver import StiltSettings

ROOT = Path(__file__).resolve().parents[2]
INVERSION_TRANSPORT = {"numpar": 100, "seed": 7, "n_hours": 24, "kmixd": 0, "hysplit": {}}


def test_defaults_are_not_an_identical_twin_and_reach_hysplit():
    tt = TruthTransport()
    assert not tt.identical_twin(INVERSION_TRANSPORT)
    cfg = tt.transport_config(INVERSION_TRANSPORT)
    s = StiltSettings.from_config(cfg)
    # the truth's own particles and seed, the inversion's other settings, the perturbations as
    # HYSPLIT-STILT namelist keys (pystilt's names, each group in full)
    assert (s.numpar, s.seed, s.n_hours, s.kmixd) == (150, 1007, 24, 0)
    assert s.extra == {"siguverr": 2.0, "tluverr": 60.0, "zcoruverr": 500.0, "horcoruverr": 40.0,
                       "sigzierr": 20.0, "tlzierr": 60.0, "horcorzierr": 40.0}
    from stilt.transport.hysplit.config import HysplitConfig

    HysplitConfig(n_hours=-24, numpar=s.numpar, seed=s.seed, krand=2, **s.extra)  # pystilt accepts them


@pytest.mark.parametrize("settings, twin", [
    ({"numpar": 100, "seed": 7, "siguverr": 0, "sigzierr": 0}, True),
    ({"numpar": 100, "seed": 7, "siguverr": 0, "sigzierr": 20}, False),  # mixed-layer error only
    ({"numpar": 100, "seed": 8, "siguverr": 0, "sigzierr": 0}, False),   # other seed
    ({"numpar": 200, "seed": 7, "siguverr": 0, "sigzierr": 0}, False),   # more particles
])
def test_identical_twin_detected(settings, twin, caplog):
    tt = TruthTransport.from_mapping(settings)
    assert tt.identical_twin(INVERSION_TRANSPORT) is twin
    assert tt.record(INVERSION_TRANSPORT)["identical_twin"] is twin
    with caplog.at_level(logging.WARNING):
        assert warn_if_identical_twin(tt, INVERSION_TRANSPORT) is twin
    assert (IDENTICAL_TWIN_WARNING in caplog.text) is twin
    assert ("identical-twin demo" in caplog.text) is twin


def test_identical_twin_counts_the_inversions_own_perturbations():
    """An inversion run with the same HYSPLIT wind errors, seed and particles makes the same
    footprints as the truth: still an identical twin."""
    tt = TruthTransport(numpar=100, seed=7, sigzierr=0)
    inv = {**INVERSION_TRANSPORT, "hysplit": {"siguverr": 2.0, "tluverr": 60.0, "zcoruverr": 500.0,
                                              "horcoruverr": 40.0}}
    assert tt.identical_twin(inv)
    assert not tt.identical_twin(INVERSION_TRANSPORT)


@pytest.mark.parametrize("bad, words", [
    ({"numpar": 5}, "numpar"),
    ({"siguverr": -1}, "siguverr"),
    ({"siguverr": 2, "tluverr": 0}, "tluverr"),
    ({"sigzier": 20}, "unknown key"),
    ({"seed": "abc"}, "seed"),
])
def test_bad_truth_transport_names_the_key(bad, words):
    with pytest.raises(TruthTransportError, match=words) as exc:
        TruthTransport.from_mapping(bad)
    assert "demo.truth_transport" in str(exc.value)


def test_from_config_reads_the_demo_section():
    assert TruthTransport.from_config({"enabled": True}) == TruthTransport()
    assert TruthTransport.from_config({"truth_transport": {"seed": 3}}).seed == 3


def test_truth_changes_are_the_registered_errors():
    """make_truth's mapping is the pre-registered error model (one place)."""
    assert TRUTH_CHANGES == TRUTH_ERRORS.changes()
    assert TRUTH_CHANGES["district_bias"] == {"Tianhe": 0.25, "Baiyun": -0.20, "Panyu": 0.15,
                                              "Zengcheng": -0.10}
    json.dumps(TRUTH_CHANGES)  # recorded in truth.nc as JSON


def test_docs_table_matches_the_error_model():
    """docs/demo.md's table is the model's (TruthErrors.table), row by row."""
    text = (ROOT / "docs" / "demo.md").read_text()
    for name, value in TRUTH_ERRORS.table():
        assert f"| {name} | {value} |" in text, (name, value)


def _receptors(n, sites=("AAA", "BBB")):
    t = pd.date_range("2025-01-01 05:30", periods=n, freq="h")
    return pd.DataFrame({"receptor_id": [f"{sites[i % 2]}_{i}" for i in range(n)],
                         "site": [sites[i % 2] for i in range(n)], "time": t})


def test_signal_uses_the_truth_jacobian_and_the_difference_is_measured():
    """The truth's enhancement is H_truth x, not H_inversion x; transport_difference reports the
    difference exactly (RMS, mean, relative) and the receptors that lost their truth footprint."""
    rng = np.random.default_rng(0)
    n_rec, n_col = 8, 50
    H_inv = sp.random(n_rec, n_col, density=0.3, random_state=1, format="csr")
    pert = sp.csr_matrix(H_inv.multiply(1 + 0.2 * rng.standard_normal(H_inv.shape)))
    H_truth = pert.tolil()
    H_truth[3, :] = 0  # HYSPLIT failed on the truth's run of receptor 3
    H_truth = H_truth.tocsr()
    x = rng.uniform(1, 2, n_col)
    rec = _receptors(n_rec)
    enh_t = receptor_enhancements(H_truth, x.reshape(1, 5, 10))
    enh_i = receptor_enhancements(H_inv, x.reshape(1, 5, 10))
    np.testing.assert_allclose(enh_t, H_truth @ x, rtol=1e-14)
    has_t, has_i = np.diff(H_truth.indptr) > 0, np.diff(H_inv.indptr) > 0
    d = transport_difference(rec, enh_t, enh_i, has_t, has_i)
    both = has_t & has_i
    diff = (H_truth @ x - H_inv @ x)[both]
    assert d["all"]["n"] == both.sum()
    assert d["all"]["rms_difference_ppm"] == pytest.approx(np.sqrt(np.mean(diff**2)), rel=1e-12)
    assert d["all"]["mean_difference_ppm"] == pytest.approx(diff.mean(), rel=1e-12)
    assert d["all"]["relative_rms_difference"] == pytest.approx(
        np.sqrt(np.mean(diff**2)) / np.sqrt(np.mean((H_inv @ x)[both] ** 2)), rel=1e-12)
    assert d["all"]["rms_difference_ppm"] > 0
    assert d["without_truth_footprint"] == ([rec.receptor_id[3]] if has_i[3] else [])
    assert d["sites"]["AAA"]["n"] + d["sites"]["BBB"]["n"] == d["all"]["n"]

    # the hourly signal carries H_truth x at the receptors' hours, not H_inversion x
    sites = [{"id": "AAA", "inlets": [{"height": 50}]}, {"id": "BBB", "inlets": [{"height": 50}]}]
    hours = pd.date_range("2025-01-01", periods=24, freq="h")
    bg = pd.Series(420.0, index=hours)
    out = truth_signal(rec, enh_t, has_t, sites, hours, bg, 8, seed=1)
    fp = out[out["source"] == "footprint"]
    assert len(fp) == both.sum()
    by = dict(zip(rec.receptor_id, enh_t))
    for _, r in fp.iterrows():
        rid = rec[(rec.site == r.site) & (rec.time.dt.floor("h") == pd.Timestamp(r.time).tz_localize(None))]
        assert r.enhancement == pytest.approx(by[rid.receptor_id.iloc[0]], rel=1e-12)
