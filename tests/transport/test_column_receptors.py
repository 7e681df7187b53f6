"""Column operator: AK x pressure weights of release slabs, the (1 - AK) x prior term, the column
background, and particle weighting (fast; the HYSPLIT check is test_column_receptors_slow.py)."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stations.columns import read_oco_lite
from transport.columns import (ColumnOperator, column_footprint, column_operator,
                               ground_operator, layer_edges, slab_index, weight_particles)

OCO = Path(__file__).resolve().parents[1] / "data" / "columns" / "oco2_LtCO2_250101_B11100Ar_gzcarbon.nc4"
H = 8000.0


def _sounding(i=0):
    s = read_oco_lite(OCO)
    return (s.pressure[i], s.ak[i], s.pressure_weight[i], s.prior[i],
            float(s.table["surface_pressure"].iloc[i]))


def _dense(p, a, h, x_of_p, p_lo, p_hi, n=200_000):
    """Dense NumPy reference: ∫ A(p) ρ(p) x(p) dp between p_hi and p_lo on a fine grid."""
    e = layer_edges(p)
    rho = h / (e[:-1] - e[1:])
    grid = np.linspace(p_lo, p_hi, n + 1)
    mid = (grid[:-1] + grid[1:]) / 2
    layer = np.clip(np.searchsorted(-e, -mid, side="right") - 1, 0, len(h) - 1)
    return np.sum(np.interp(mid, p[::-1], a[::-1]) * rho[layer] * x_of_p(mid)) * (p_lo - p_hi) / n


def test_weights_sum_to_one_over_the_whole_column():
    p, a, h, x0, ps = _sounding()
    top = H * np.log(ps / p[-1])  # the top level's height on the hypsometric curve
    op = column_operator(p, a, h, x0, ps, top_m=top, n_levels=40)
    assert op.released_fraction == pytest.approx(h.sum(), abs=1e-9)  # float32 weights: 1 to 1e-7
    assert h.sum() == pytest.approx(1.0, abs=1e-6)
    # with the kernel the slabs carry Σ h A of the whole column, the column background weight
    assert op.weights.sum() == pytest.approx(np.sum(h * a), rel=2e-3)
    assert op.background_weight == pytest.approx(np.sum(h * a), rel=1e-12)


def test_released_column_share_and_weights_against_a_dense_reference():
    p, a, h, x0, ps = _sounding(2)
    op = column_operator(p, a, h, x0, ps, top_m=3000.0, n_levels=10)
    # OCO's levels are evenly spaced in pressure: the share below 3 km is 1 - exp(-3000/H)
    assert op.released_fraction == pytest.approx(1 - np.exp(-3000 / H), rel=2e-3)
    for lev in range(10):
        lo, hi = ps * np.exp(-op.edges_m[lev] / H), ps * np.exp(-op.edges_m[lev + 1] / H)
        ref = _dense(p, a, h, np.ones_like, lo, hi)
        assert op.weights[lev] == pytest.approx(ref, rel=1e-3)
    # near the ground the OCO kernel is ~0.6-0.7: the lowest slab's weight is AK x its air
    assert 0.55 < op.weights[0] / op.pressure_fraction[0] < 0.75
    assert np.all(np.diff(op.edges_m) > 0) and op.edges_m[0] == 0.0


def test_prior_term_and_background_equal_pystilt_modelled_column():
    from stilt.observations.columns import modelled_column

    p, a, h, x0, ps = _sounding(1)
    op = column_operator(p, a, h, x0, ps)
    # pystilt's own implementation of Σ h (1 - A) x_prior (Wu et al. 2018)
    assert op.prior_term == pytest.approx(modelled_column(0.0, 0.0, ak=a, pressure_weight=h,
                                                          prior=x0), rel=1e-12)
    # a column that is the background b everywhere, no enhancement: X = b Σ h A + Σ h (1 - A) prior
    b = 419.3
    assert op.modelled(np.zeros(len(op.weights)), b) == pytest.approx(
        np.sum(h * (a * b + (1 - a) * x0)), rel=1e-12)
    # the retrieval of the prior itself returns the prior column
    assert np.sum(h * (a * x0 + (1 - a) * x0)) == pytest.approx(np.sum(h * x0))


def test_modelled_enhancement_equals_dense_integral_of_a_profile():
    p, a, h, x0, ps = _sounding(0)
    op = column_operator(p, a, h, x0, ps, n_levels=30)
    # an enhancement decaying with height, 5 ppm at the ground, 0 above the released column

    def enh_p(pp):
        z = -H * np.log(pp / ps)
        return 5.0 * np.exp(-z / 800.0)

    levels = 5.0 * np.exp(-op.heights_m / 800.0)
    ref = _dense(p, a, h, enh_p, ps, ps * np.exp(-3000 / H))
    got = op.modelled(levels, 0.0) - op.prior_term
    assert got == pytest.approx(ref, rel=1e-2)


def test_ground_operator_without_kernel():
    op = ground_operator(1010.0)
    assert op.prior_term == 0.0 and op.background_weight == pytest.approx(1.0)
    np.testing.assert_allclose(op.weights, op.pressure_fraction)
    assert op.released_fraction == pytest.approx(1 - np.exp(-3000 / H), rel=2e-3)


def test_weight_particles_gives_the_weighted_sum_of_slab_footprints():
    rng = np.random.default_rng(4)
    n, steps = 120, 5
    op = ColumnOperator(edges_m=np.linspace(0, 3000, 5), heights_m=np.linspace(375, 2625, 4),
                        weights=np.array([0.08, 0.07, 0.06, 0.05]),
                        pressure_fraction=np.array([0.1, 0.09, 0.08, 0.07]), prior_term=0.0,
                        background_weight=0.9)
    rel = (np.arange(n) + 0.5) * 3000 / n
    parts = pd.DataFrame(dict(particle=np.repeat(np.arange(1, n + 1), steps),
                              age=np.tile(-np.arange(1, steps + 1.0), n),
                              release_height=np.repeat(rel, steps),
                              foot=rng.gamma(2.0, 0.01, n * steps)))
    w = weight_particles(parts, op)
    slab = slab_index(parts["release_height"], op.edges_m)
    per_slab = np.array([parts["foot"][slab == k].sum() / (slab[::steps] == k).sum()
                         for k in range(4)])  # each slab's footprint total, its own particles
    assert w["foot"].sum() / n == pytest.approx(column_footprint(per_slab, op.weights), rel=1e-12)
    with pytest.raises(ValueError, match="hold no particle"):
        weight_particles(parts[parts.release_height < 1500], op)


def test_hourly_soundings_of_a_satellite_and_of_an_em27():
    from stations.columns import read_proffast
    from transport.columns import hourly_soundings

    s = read_oco_lite(OCO)
    groups, ops = hourly_soundings(s, "OCO")
    good = s.table["good"].to_numpy()
    # the good soundings (0, 1, 2, 4, 6, 7) fall into two 0.1-degree cells of one hour
    assert list(groups["site"]) == ["OCO1", "OCO2"] and list(groups["n"]) == [3, 3]
    first = np.flatnonzero(good)[:3]
    assert groups["value"][0] == pytest.approx(s.table["value"].to_numpy()[first].mean(), rel=1e-12)
    assert groups["value_std_dev"][0] == pytest.approx(s.table["uncertainty"].to_numpy()[first].mean())
    ref = column_operator(s.pressure[first].mean(0), s.ak[first].mean(0), s.pressure_weight[first].mean(0),
                          s.prior[first].mean(0), float(s.table["surface_pressure"].to_numpy()[first].mean()))
    assert ops[0].prior_term == pytest.approx(ref.prior_term) and np.allclose(ops[0].weights, ref.weights)
    assert groups["time"][0] == pd.Timestamp("2025-01-01 05:00")
    # an EM27 day (real PROFFAST file): one row per UTC hour, AK = 1 operators
    p = read_proffast(Path(__file__).resolve().parents[1] / "data" / "columns" /
                      "comb_invparms_so_SN039_170609-170609.csv")
    g, ops = hourly_soundings(p, "SOD")
    hours = pd.DatetimeIndex(p.table["time"]).floor("h")
    assert len(g) == hours.nunique() and g["n"].sum() == 12 and set(g["site"]) == {"SOD"}
    for _, row in g.iterrows():
        vals = p.table["value"][hours == row["time"]].to_numpy()
        assert row["value"] == pytest.approx(vals.mean())
        assert row["value_std_dev"] == pytest.approx(vals.std(ddof=1) if len(vals) > 1 else 0.0)
    assert all(op.prior_term == 0.0 and op.background_weight == pytest.approx(1.0) for op in ops)
    with pytest.raises(Exception, match="averaging kernel"):
        hourly_soundings(p, "SOD", ground_kernel="none")


def test_nested_row_holds_inner_then_outer_cells_in_state_order():
    """transport.columns._hourly_row (column and mobile rows on the nested state): hour h of the
    footprint lands at columns h * n_cells + cell, inner cells row-major, then the outer cells
    outside the hole; hours off the axis are left out and counted outside; an inner-only grid
    gives the inner cells alone. Checked against a dense loop over cells."""
    from gzcarbon.grid import Grid, NestedGrid
    from transport.columns import _hourly_row

    ng = NestedGrid(Grid(113.0, 113.6, 23.0, 23.4, 0.1), Grid(112.6, 114.0, 22.6, 23.8, 0.2))
    rng = np.random.default_rng(5)
    axis = pd.date_range("2025-01-01 00:00", periods=4, freq="h")
    fh = pd.DatetimeIndex([axis[1], axis[3], axis[3] + pd.Timedelta("1h")])  # the last is off the axis
    foot = rng.random((3,) + ng.inner.shape)
    outer = rng.random((3,) + ng.outer.shape) * ng.outer_mask  # zero in the hole
    row, inside = _hourly_row(fh, foot, outer, ng, axis)
    dense = np.zeros(len(axis) * ng.n_cells)
    for k, j in ((0, 1), (1, 3)):
        cells = list(foot[k].ravel()) + [outer[k][iy, ix] for iy, ix in zip(*np.nonzero(ng.outer_mask))]
        dense[j * ng.n_cells:(j + 1) * ng.n_cells] = cells
    np.testing.assert_array_equal(row.toarray().ravel(), dense)
    assert inside == pytest.approx(foot[:2].sum() + outer[:2].sum(), rel=1e-12)
    inner_row, _ = _hourly_row(fh, foot, None, ng.inner, axis)
    assert inner_row.shape[1] == len(axis) * ng.inner.ny * ng.inner.nx
    np.testing.assert_array_equal(inner_row.toarray().reshape(len(axis), -1)[3], foot[1].ravel())
