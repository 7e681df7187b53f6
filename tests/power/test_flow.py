"""Carbon emission flow kernel: hand-checked examples, dense reference, conservation, bounds."""

import numpy as np
import pytest

from power import PowerInputError
from power.flow import conservation_residual, pooled_exchanges, trace, trace_reference


def _one(gen, emis, load, w_ext, flows=None):
    g, e, l = (np.atleast_2d(np.asarray(a, float)) for a in (gen, emis, load))
    f = None if flows is None else np.asarray(flows, float)[None]
    return trace(g, e, l, np.array([w_ext], float), f)


def test_three_nodes_deficit_by_hand():
    # A: 100 MWh at 0.9, load 40 (surplus 60); B: 50 MWh at 0.4, load 30 (surplus 20);
    # C: no plant, load 120 (deficit 120). Pool 80 < 120 -> 40 MWh from the external grid at 0.5.
    r = _one([100, 50, 0], [90, 20, 0], [40, 30, 120], 0.5)
    np.testing.assert_allclose(r["F"][0], [[0, 0, 60], [0, 0, 20], [0, 0, 0]], atol=1e-12)
    np.testing.assert_allclose(r["X"][0], [0, 0, 40])
    np.testing.assert_allclose(r["Y"][0], [0, 0, 0])
    np.testing.assert_allclose(r["w"][0], [0.9, 0.4, 82 / 120], rtol=1e-12)
    np.testing.assert_allclose(r["consumption_emissions"][0], [36, 12, 82], rtol=1e-12)
    np.testing.assert_allclose(r["ext_share"][0], [0, 0, 40 / 120], rtol=1e-12)
    assert r["consumption_emissions"].sum() == pytest.approx(90 + 20 + 40 * 0.5, rel=1e-12)


def test_three_nodes_surplus_exported_by_hand():
    # Same plants, C needs only 50: pool 80 > 50, 30 MWh leave to the external grid.
    r = _one([100, 50, 0], [90, 20, 0], [40, 30, 50], 0.5)
    np.testing.assert_allclose(r["F"][0, :, 2], [37.5, 12.5, 0])
    np.testing.assert_allclose(r["Y"][0], [22.5, 7.5, 0])
    np.testing.assert_allclose(r["w"][0], [0.9, 0.4, 0.775], rtol=1e-12)
    exported_to_grid = (r["Y"][0] * r["w"][0]).sum()
    assert exported_to_grid == pytest.approx(23.25, rel=1e-12)
    assert r["consumption_emissions"].sum() + exported_to_grid == pytest.approx(110, rel=1e-12)


def test_given_flows_chain_by_hand():
    # A (100 MWh at 0.8, load 20) -> 80 -> B (load 30) -> 50 -> C (load 60) + 10 from outside at 0.5.
    flows = [[0, 80, 0], [0, 0, 50], [0, 0, 0]]
    r = _one([100, 0, 0], [80, 0, 0], [20, 30, 60], 0.5, flows)
    np.testing.assert_allclose(r["X"][0], [0, 0, 10])
    np.testing.assert_allclose(r["w"][0], [0.8, 0.8, 0.75], rtol=1e-12)
    np.testing.assert_allclose(r["imported_emissions"][0], [0, 64, 45], rtol=1e-12)
    np.testing.assert_allclose(r["exported_emissions"][0], [64, 40, 0], rtol=1e-12)


def _random_problem(rng, T=200, N=11, with_flows=False):
    gen = rng.uniform(0, 1000, (T, N)) * (rng.uniform(size=(T, N)) < 0.5)
    inten = rng.uniform(0.0, 1.1, (T, N))
    emis = gen * inten
    load = rng.uniform(0, 1500, (T, N))
    w_ext = rng.uniform(0.3, 0.5, T)
    flows = None
    if with_flows:
        flows = rng.uniform(0, 300, (T, N, N)) * (rng.uniform(size=(T, N, N)) < 0.2)
        flows[:, np.arange(N), np.arange(N)] = 0
        flows = np.triu(flows)  # acyclic: flows only from lower to higher index
    return gen, emis, load, w_ext, flows


@pytest.mark.parametrize("with_flows", [False, True])
def test_agrees_with_dense_per_hour_reference(with_flows):
    rng = np.random.default_rng(1)
    gen, emis, load, w_ext, flows = _random_problem(rng, with_flows=with_flows)
    r = trace(gen, emis, load, w_ext, flows)
    ref = trace_reference(gen, emis, load, w_ext, flows)
    np.testing.assert_allclose(r["w"], ref, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("with_flows", [False, True])
def test_conservation_every_hour(with_flows):
    rng = np.random.default_rng(2)
    gen, emis, load, w_ext, flows = _random_problem(rng, T=500, with_flows=with_flows)
    r = trace(gen, emis, load, w_ext, flows)
    rd, rc = conservation_residual(gen, emis, load, w_ext, r)
    assert np.abs(rd).max() < 1e-9 and np.abs(rc).max() < 1e-9
    # node balance: throughput = load + exports
    np.testing.assert_allclose(r["throughput"], load + r["exported_mwh"], rtol=1e-12, atol=1e-9)
    # city identity written out
    lhs = r["consumption_emissions"].sum(1) + (r["Y"] * r["w"]).sum(1)
    rhs = emis.sum(1) + (r["X"] * w_ext[:, None]).sum(1)
    np.testing.assert_allclose(lhs, rhs, rtol=1e-9)


@pytest.mark.parametrize("with_flows", [False, True])
def test_factors_between_lowest_and_highest_source(with_flows):
    rng = np.random.default_rng(3)
    gen, emis, load, w_ext, flows = _random_problem(rng, T=300, with_flows=with_flows)
    r = trace(gen, emis, load, w_ext, flows)
    src = np.where(gen > 0, emis / np.where(gen > 0, gen, 1), np.nan)
    src = np.concatenate([src, np.where(r["X"].sum(1) > 0, w_ext, np.nan)[:, None]], axis=1)
    lo, hi = np.nanmin(src, axis=1), np.nanmax(src, axis=1)
    w = r["w"]
    ok = np.isfinite(w)
    assert ok.mean() > 0.9
    assert np.all((w >= lo[:, None] - 1e-12) | ~ok)
    assert np.all((w <= hi[:, None] + 1e-12) | ~ok)
    assert np.all((r["ext_share"] >= -1e-12) | ~ok) and np.all((r["ext_share"] <= 1 + 1e-12) | ~ok)


def test_all_zero_generation_is_all_external():
    T, N = 24, 11
    load = np.full((T, N), 100.0)
    w_ext = np.linspace(0.35, 0.42, T)
    r = trace(np.zeros((T, N)), np.zeros((T, N)), load, w_ext)
    np.testing.assert_allclose(r["w"], np.repeat(w_ext[:, None], N, 1), rtol=1e-14)
    np.testing.assert_allclose(r["ext_share"], 1.0)
    np.testing.assert_allclose(r["consumption_emissions"], load * w_ext[:, None])


def test_node_without_throughput_is_nan_not_error():
    r = _one([100, 0, 0], [50, 0, 0], [60, 0, 40], 0.4)
    assert np.isnan(r["w"][0, 1])
    np.testing.assert_allclose(r["w"][0, [0, 2]], [0.5, 0.5])
    assert r["consumption_emissions"][0, 1] == 0


def test_pooling_balances_every_node():
    rng = np.random.default_rng(4)
    gen, _, load, _, _ = _random_problem(rng)
    F, X, Y = pooled_exchanges(gen, load)
    np.testing.assert_allclose(gen + F.sum(1) + X, load + F.sum(2) + Y, rtol=1e-12, atol=1e-9)
    # the city never imports and exports at the same time
    assert np.all((X.sum(1) == 0) | (Y.sum(1) == 0))


def test_circulating_flows_raise_clear_error():
    flows = [[0, 50, 0], [50, 0, 0], [0, 0, 0]]
    with pytest.raises(PowerInputError, match="loop"):
        _one([0, 0, 10], [0, 0, 5], [0, 0, 10], 0.4, flows)
