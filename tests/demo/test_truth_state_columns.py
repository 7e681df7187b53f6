"""gzcarbon.demo.signal.state_for_jacobian: the true state the truth signal (rule demo_truth_signal)
and the transport comparison (rule demo_truth_transport) both use, so the two jobs agree."""

import numpy as np
import pytest
import scipy.sparse as sp

from gzcarbon.demo.signal import receptor_enhancements, state_for_jacobian, truth_state
from gzcarbon.grid import Grid, NestedGrid


def _world():
    inner = Grid(0.0, 0.4, 0.0, 0.4, 0.1)                 # 4 x 4 inner cells
    ng = NestedGrid(inner, Grid(-0.4, 0.8, -0.4, 0.8, 0.4))  # 3 x 3 outer cells, 1 under the hole
    rng = np.random.default_rng(3)
    return ng, rng.normal(size=(2, 4, 4)), rng.normal(size=(2, 3, 3))


def test_nested_jacobian_gets_the_nested_state():
    ng, inner, outer = _world()
    n_cols = 2 * ng.n_cells
    state, nested, inner_only = state_for_jacobian(inner, outer, ng, n_cols)
    assert not inner_only and nested is ng and ng.n_outer == 8
    assert state.shape == (2, 16 + 8)
    np.testing.assert_array_equal(state, truth_state(inner, outer, ng))
    # H x of a Jacobian picking one outer cell of hour 1 is that cell's flux
    j = 1 * ng.n_cells + 16 + 5
    H = sp.csr_matrix(([2.0], ([0], [j])), shape=(1, n_cols))
    assert receptor_enhancements(H, state)[0] == pytest.approx(2.0 * state[1, 16 + 5])


def test_inner_only_jacobian_gets_the_inner_state_and_is_flagged():
    ng, inner, outer = _world()
    state, nested, inner_only = state_for_jacobian(inner, outer, ng, 2 * 16)
    assert inner_only and nested.outer is None and nested.n_outer == 0
    np.testing.assert_array_equal(state, inner.reshape(2, 16))
    # a Jacobian of neither shape is not mistaken for an inner-only one
    _, _, flag = state_for_jacobian(inner, outer, ng, 2 * 16 + 1)
    assert not flag
