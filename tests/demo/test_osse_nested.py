"""The nested OSSE's pieces (gzcarbon.cli.osse_nested): the city-only Jacobian is the nested one's
inner columns, renumbered; the city-only inputs drop every outer field; the coverage summary."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from gzcarbon.cli.osse_nested import city_only_inputs, inner_columns, summary


def test_inner_columns_equal_the_dense_slices():
    n_hours, n_inner, n_outer = 4, 6, 3
    n_cells = n_inner + n_outer
    H = sp.random(7, n_hours * n_cells, density=0.4, random_state=2, format="csr")
    D = H.toarray().reshape(7, n_hours, n_cells)
    got = inner_columns(H, n_hours, n_inner).toarray()
    assert got.shape == (7, n_hours * n_inner)
    assert np.array_equal(got, D[:, :, :n_inner].reshape(7, -1))
    x = np.random.default_rng(0).random((n_hours, n_cells))
    # the city-only model of a flux = the nested model of the same flux without its outer part
    x_in = x.copy()
    x_in[:, n_inner:] = 0.0
    assert np.allclose(inner_columns(H, n_hours, n_inner) @ x[:, :n_inner].ravel(), H @ x_in.ravel())
    with pytest.raises(ValueError, match="not 5 hours of whole cells"):
        inner_columns(H, 5, n_inner)


@dataclasses.dataclass
class _Inputs:
    H_hourly: object
    hours: pd.DatetimeIndex
    lat: np.ndarray
    lon: np.ndarray
    prior_outer: object = None
    outer_names: list = dataclasses.field(default_factory=list)
    other: int = 5


def test_city_only_inputs_drop_the_outer_fields():
    hours = pd.date_range("2025-01-01", periods=2, freq="h")
    H = sp.csr_matrix(np.arange(2 * 2 * (4 + 3), dtype=float).reshape(2, -1))
    inp = _Inputs(H, hours, np.zeros(2), np.zeros(2), prior_outer=np.ones(3), outer_names=["a"], other=7)
    out = city_only_inputs(inp)
    assert out.H_hourly.shape == (2, 2 * 4)
    assert out.prior_outer is None and out.outer_names == [] and out.other == 7
    assert np.array_equal(out.H_hourly.toarray(), H.toarray().reshape(2, 2, 7)[:, :, :4].reshape(2, -1))


def test_summary_counts_draws_within_sigma():
    s = summary(np.array([500.0, -1500.0, 2500.0, 100.0]), 1000.0)
    assert s["within_1sigma"] == 0.5 and s["within_2sigma"] == 0.75
    assert s["mean_error_kt"] == pytest.approx(0.4) and s["sigma_kt"] == 1.0
