"""The nested state grid (issue 19): config `outer_grid`, gzcarbon.grid.NestedGrid numbering,
areas, the hole under the inner box, and the alignment errors."""

import numpy as np
import pytest

from gzcarbon.config import ConfigError, load_config
from gzcarbon.grid import Grid, GridError, NestedGrid, cell_area_m2


def default_nested():
    return NestedGrid.from_config(load_config({}))


def test_default_outer_grid_is_the_met_domain_on_inner_edges():
    cfg = load_config({})
    o = cfg.outer_grid
    assert (o.enabled, o.res, o.lon_min, o.lon_max, o.lat_min, o.lat_max) == (True, 0.3, 108.7, 119.5, 19.5, 27.9)
    ng = NestedGrid.from_config(cfg)
    assert ng.outer.shape == (28, 36)
    # the inner box 112.9..114.1 x 22.5..24.0 is 4 x 5 outer cells: lon cells 14..17, lat cells 10..14
    assert ng.hole == (slice(10, 15), slice(14, 18))
    assert (ng.n_inner, ng.n_outer, ng.n_cells) == (18000, 28 * 36 - 20, 18988)
    assert ng.ratio == 30
    # the plain-dict config (as Snakemake passes it) gives the same grid
    same = NestedGrid.from_config(load_config({}).model_dump(mode="json"))
    assert same == ng


def test_numbering_inner_first_then_outer_row_major_outside_the_hole():
    inner = Grid(113.0, 113.4, 23.0, 23.2, 0.1)       # 4 x 2 cells
    outer = Grid(112.8, 113.8, 22.8, 23.4, 0.2)       # 5 x 3 cells; hole: lon 1..2, lat 1
    ng = NestedGrid(inner, outer)
    assert ng.hole == (slice(1, 2), slice(1, 3))
    mask = ng.outer_mask
    assert mask.shape == (3, 5) and mask.sum() == 13 and not mask[1, 1] and not mask[1, 2]
    assert (ng.n_inner, ng.n_outer, ng.n_cells) == (8, 13, 21)
    iy, ix = ng.outer_cells()
    assert list(zip(iy.tolist(), ix.tolist()))[:7] == [(0, 0), (0, 1), (0, 2), (0, 3), (0, 4), (1, 0), (1, 3)]
    idx = ng.outer_index()
    assert idx[0, 0] == 8 and idx[1, 0] == 13 and idx[1, 3] == 14 and idx[2, 4] == 20
    assert idx[1, 1] == -1 and idx[1, 2] == -1
    # centres in state order: the inner ones as Grid numbers them, then the outer ones
    lon, lat = ng.cell_lon(), ng.cell_lat()
    assert lon.shape == lat.shape == (21,)
    np.testing.assert_allclose(lon[:8], [113.05, 113.15, 113.25, 113.35] * 2)
    np.testing.assert_allclose(lat[:8], [23.05] * 4 + [23.15] * 4)
    np.testing.assert_allclose(lon[8:13], [112.9, 113.1, 113.3, 113.5, 113.7])
    assert (lon[14], lat[14]) == (113.5, 23.1) and (lon[20], lat[20]) == (113.7, 23.3)
    # state vector <-> fields round trip, zero in the hole
    rng = np.random.default_rng(1)
    fin, fout = rng.random((2, 2, 4)), rng.random((2, 3, 5))
    vec = ng.state_vector(fin, fout)
    assert vec.shape == (2, 21)
    np.testing.assert_array_equal(vec[:, :8], fin.reshape(2, 8))
    back = ng.outer_from_state(vec[:, 8:])
    np.testing.assert_array_equal(back[:, mask], fout[:, mask])
    assert (back[:, ~mask] == 0).all()


def test_areas_of_all_state_cells_sum_to_the_outer_box():
    ng = default_nested()
    area = ng.cell_area_m2()
    assert area.shape == (ng.n_cells,)
    o = ng.outer
    box = cell_area_m2([o.lat_min, o.lat_max], [o.lon_min, o.lon_max])[0, 0]
    # the inner cells tile the hole exactly: only summation rounding differs
    assert abs(area.sum() - box) / box < 1e-12
    # the hole holds 20 outer cells of ~33 x 31 km: the inner area equals them to 1e-12
    hole = o.cell_area_m2()[ng.hole].sum()
    assert abs(area[:ng.n_inner].sum() - hole) / hole < 1e-12
    assert 1.9e10 < hole < 2.2e10


def test_disabled_outer_is_the_inner_grid_alone():
    cfg = load_config({"outer_grid": {"enabled": False}})
    ng = NestedGrid.from_config(cfg)
    g = Grid.from_config(cfg.grid)
    assert ng.outer is None and (ng.n_inner, ng.n_outer, ng.n_cells) == (g.n_cells, 0, g.n_cells)
    np.testing.assert_array_equal(ng.cell_area_m2(), g.cell_area_m2().ravel())
    np.testing.assert_array_equal(ng.cell_lon().reshape(g.shape)[0], g.lon)
    assert ng.attrs() == {"n_inner": g.n_cells, "n_outer": 0}
    assert NestedGrid.from_attrs(g, ng.attrs()) == ng
    full = default_nested()
    assert NestedGrid.from_attrs(full.inner, full.attrs()) == full


def test_user_grid_gets_an_aligned_default_outer_box():
    # a 0.6 x 0.6 degree inner grid: the default outer box is the met domain trimmed on its edges
    cfg = load_config({"grid": {"lon_min": 113.0, "lon_max": 113.6, "lat_min": 22.9, "lat_max": 23.5}})
    o = cfg.outer_grid
    assert (o.lon_min, o.lon_max, o.lat_min, o.lat_max) == (108.5, 119.3, 19.6, 28.0)
    assert NestedGrid.from_config(cfg).hole == (slice(11, 13), slice(15, 17))


@pytest.mark.parametrize("bad, message", [
    ({"outer_grid": {"lon_min": 113.0}}, "outer_grid.lon_min = 113 does not contain the inner grid"),
    ({"outer_grid": {"lat_max": 23.7}}, "outer_grid.lat_max = 23.7 does not contain the inner grid"),
    ({"outer_grid": {"lon_min": 108.75}}, "outer_grid.lon_min = 108.75 is not on the outer cell edges"),
    ({"outer_grid": {"lat_min": 19.6}}, "outer_grid.lat_min = 19.6 is not on the outer cell edges"),
    ({"outer_grid": {"res": 0.015}}, "outer_grid.res = 0.015 is not a whole multiple of grid.res = 0.01"),
    ({"outer_grid": {"res": 0.25}}, "outer_grid.res = 0.25: the inner grid's lon extent"),
])
def test_misaligned_outer_grid_names_the_key(bad, message):
    with pytest.raises(ConfigError) as err:
        load_config(bad)
    assert "config key 'outer_grid'" in str(err.value) and message in str(err.value)


def test_nested_grid_refuses_misaligned_grids_directly():
    inner = Grid(113.0, 113.4, 23.0, 23.2, 0.1)
    with pytest.raises(GridError, match="outer_grid.lon_min = 112.9 is not on the outer cell edges"):
        NestedGrid(inner, Grid(112.9, 113.7, 22.8, 23.4, 0.2))
    with pytest.raises(GridError, match="does not contain"):
        NestedGrid(inner, Grid(113.2, 113.8, 22.8, 23.4, 0.2))
