"""State grid: sizes, exact edges/centres, row-major cell index, ellipsoidal cell areas."""

import numpy as np
import pytest
import yaml
from pathlib import Path
from pyproj import Geod

from gzcarbon.grid import WGS84_A, Grid, GridError, cell_area_m2

CONFIG = Path(__file__).resolve().parents[1] / "config" / "config.yaml"


def config_grid():
    """The grid a run of config/config.yaml uses (its `grid` keys over the typed config's defaults)."""
    from gzcarbon.config import load_config

    return Grid.from_config(load_config(yaml.safe_load(CONFIG.read_text()) or {}).grid)


def test_config_grid_sizes_edges_centres():
    g = config_grid()
    assert (g.nx, g.ny, g.n_cells, g.shape) == (120, 150, 18000, (150, 120))
    assert g.lon_edges[0] == 112.9 and g.lon_edges[-1] == 114.1
    assert g.lat_edges[0] == 22.5 and g.lat_edges[-1] == 24.0
    assert g.lon_edges[37] == 113.27 and g.lat_edges[63] == 23.13  # exact decimals, no float drift
    assert g.lon[0] == 112.905 and g.lat[-1] == 23.995
    np.testing.assert_allclose(np.diff(g.lon_edges), 0.01, atol=1e-12)


def test_cell_index_row_major_from_south_west():
    g = Grid(113.0, 113.05, 23.0, 23.03, 0.01)  # nx=5, ny=3
    assert g.cell_index(0, 0) == 0 and g.cell_index(0, 4) == 4 and g.cell_index(1, 0) == 5
    assert g.cell_index(2, 4) == g.n_cells - 1
    iy, ix, inside = g.locate([113.001, 113.049, 113.02, 112.99], [23.001, 23.029, 23.015, 23.01])
    assert iy.tolist()[:3] == [0, 2, 1] and ix.tolist()[:3] == [0, 4, 2]
    assert inside.tolist() == [True, True, True, False]
    # flat arrays in (lat, lon) order index the same way
    field = np.arange(g.n_cells).reshape(g.shape)
    assert field[2, 3] == g.cell_index(2, 3)


def test_bad_grid_names_the_key():
    with pytest.raises(ValueError, match="whole number of cells"):
        Grid(113.0, 113.055, 23.0, 23.1, 0.01)
    with pytest.raises(GridError, match=r"missing key\(s\) \['res'\]"):
        Grid.from_config({"grid": {"lon_min": 1, "lon_max": 2, "lat_min": 1, "lat_max": 2}})


def test_cell_area_matches_geodesic_polygon_area():
    geod = Geod(ellps="WGS84")
    lat_e = np.array([22.5, 22.51, 45.0, 45.01])
    lon_e = np.array([113.0, 113.01])
    areas = cell_area_m2(lat_e, lon_e)
    for i in (0, 2):
        a, _ = geod.polygon_area_perimeter([113.0, 113.01, 113.01, 113.0], [lat_e[i], lat_e[i], lat_e[i + 1], lat_e[i + 1]])
        assert abs(areas[i, 0] - abs(a)) / abs(a) < 1e-6
    # ~1.107 km (meridian) x 1.025 km (parallel) at 23 N
    g = config_grid()
    assert 1.12e6 < g.cell_area_m2()[50, 0] < 1.15e6


def test_cell_area_sphere_limit_and_whole_ellipsoid():
    lat_e = np.linspace(-90, 90, 181)
    lon_e = np.linspace(-180, 180, 361)
    sphere = cell_area_m2(lat_e, lon_e, a=6371000.0, e2=0.0)
    np.testing.assert_allclose(sphere.sum(), 4 * np.pi * 6371000.0**2, rtol=1e-12)
    # WGS84 surface area 510,065,621.724 km2
    np.testing.assert_allclose(cell_area_m2(lat_e, lon_e).sum(), 510065621.724e6, rtol=1e-9)
    assert WGS84_A == 6378137.0


def test_edges_from_nearly_regular_float32_centres():
    """EDGAR's float32 centres are regular only to ~1e-5: refused by default, midpoint edges with
    rtol (each centre inside its cell, no gaps), still refused when truly irregular."""
    import numpy as np
    import pytest
    from gzcarbon.grid import GridError, edges_from_centres

    c = (np.arange(20, dtype=np.float64) * 0.1 + 100.05).astype(np.float32).astype(np.float64)
    c[7] += 2e-6   # float32 rounding of a real file
    with pytest.raises(GridError, match="not regularly spaced"):
        edges_from_centres(c, "lon")
    e = edges_from_centres(c, "lon", rtol=1e-4)
    assert e.size == c.size + 1 and np.all(np.diff(e) > 0)
    assert np.all((e[:-1] < c) & (c < e[1:]))
    np.testing.assert_allclose(e[[0, -1]], [100.0, 102.0], atol=1e-5)
    with pytest.raises(GridError):
        edges_from_centres(np.array([0.0, 1.0, 2.5, 3.5]), "lat", rtol=1e-4)
