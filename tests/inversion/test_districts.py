"""District rasterisation: fractions in [0, 1], cell sums <= 1, areas equal to the polygons' geodesic areas."""

import json
from pathlib import Path

import numpy as np
import pytest
from pyproj import Geod
from shapely.geometry import Point, Polygon

from gzcarbon.districts import DistrictFileError, district_matrix, polygon_fractions, read_districts
from gzcarbon.grid import Grid


# Rectangles with real district names tiling part of the config grid (lon, lat edges)
TEST_DISTRICTS = [
    ("Yuexiu", 440104, (113.24, 23.11, 113.30, 23.16)),
    ("Tianhe", 440106, (113.30, 23.10, 113.40, 23.20)),
    ("Haizhu", 440105, (113.24, 23.05, 113.40, 23.10)),
    ("Liwan", 440103, (113.18, 23.05, 113.24, 23.16)),
    ("Baiyun", 440111, (113.18, 23.16, 113.30, 23.45)),
    ("Huangpu", 440112, (113.40, 23.05, 113.62, 23.35)),
    ("Panyu", 440113, (113.18, 22.88, 113.50, 23.05)),
    ("Nansha", 440115, (113.40, 22.60, 113.70, 22.88)),
    ("Huadu", 440114, (113.00, 23.30, 113.18, 23.55)),
    ("Conghua", 440117, (113.30, 23.45, 113.80, 23.90)),
    ("Zengcheng", 440118, (113.62, 23.05, 113.95, 23.45)),
]


def rect(x0, y0, x1, y1):
    return [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]


def write_geojson(path, items):
    feats = []
    for name_en, adcode, coords in items:
        geom = {"type": "Polygon", "coordinates": rect(*coords)} if len(coords) == 4 and not isinstance(coords[0], (list, tuple)) \
            else {"type": "Polygon", "coordinates": [list(map(list, coords))]}
        feats.append({"type": "Feature", "properties": {"adcode": adcode, "name": name_en, "name_en": name_en}, "geometry": geom})
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    return path


@pytest.fixture
def rect_districts_file(tmp_path):
    return write_geojson(tmp_path / "districts.geojson", TEST_DISTRICTS)


REAL = Path(__file__).resolve().parents[2] / "config" / "districts.geojson"
GEOD = Geod(ellps="WGS84")
GRID = Grid(112.90, 114.10, 22.50, 24.00, 0.01)


def geodesic_area_m2(geom):
    return abs(GEOD.geometry_area_perimeter(geom)[0])


def test_rectangles_exact_fractions(rect_districts_file):
    names, A = district_matrix(rect_districts_file, GRID.lon_edges, GRID.lat_edges)
    assert names == [d[0] for d in TEST_DISTRICTS]
    assert A.shape == (11, GRID.n_cells)
    # rectangles on cell edges: every fraction is exactly 0 or 1, no cell in two districts
    assert np.allclose(A.data, 1.0)
    assert np.asarray(A.sum(axis=0)).max() <= 1.0 + 1e-12
    i = names.index("Tianhe")  # 10 x 10 cells starting at lon 113.30, lat 23.10
    cells = np.sort(A[i].indices)
    ix0, iy0 = 40, 60
    expect = np.sort([(iy0 + a) * GRID.nx + ix0 + b for a in range(10) for b in range(10)])
    np.testing.assert_array_equal(cells, expect)


def test_circle_against_dense_point_sampling():
    circle = Point(113.5234, 23.1177).buffer(0.0713, quad_segs=64)
    idx, frac = polygon_fractions(circle, GRID.lon_edges, GRID.lat_edges)
    assert ((frac > 0) & (frac <= 1)).all()
    # reference: 40 x 40 sub-points per cell
    sub = (np.arange(40) + 0.5) / 40 * GRID.res
    iy, ix = np.divmod(idx, GRID.nx)
    ref = np.empty(idx.size)
    cx, cy, r = 113.5234, 23.1177, 0.0713
    for k in range(idx.size):
        xs = GRID.lon_edges[ix[k]] + sub
        ys = GRID.lat_edges[iy[k]] + sub
        X, Y = np.meshgrid(xs, ys)
        ref[k] = np.mean((X - cx) ** 2 + (Y - cy) ** 2 <= r * r)
    assert np.abs(frac - ref).max() < 0.03
    # fraction exactly 1 <=> all four corners inside the (convex) circle
    x0, y0 = GRID.lon_edges[ix], GRID.lat_edges[iy]
    corners_in = np.ones(idx.size, bool)
    for dx in (0, GRID.res):
        for dy in (0, GRID.res):
            corners_in &= (x0 + dx - cx) ** 2 + (y0 + dy - cy) ** 2 < r * r * (1 - 1e-6)
    np.testing.assert_array_equal(frac >= 1 - 1e-12, corners_in)


def test_area_from_fractions_matches_geodesic_area(tmp_path):
    tri = [(113.11, 22.71), (113.87, 22.93), (113.35, 23.81), (113.11, 22.71)]
    hole_free = Polygon(tri)
    f = write_geojson(tmp_path / "tri.geojson", [("Tri", 1, tri)])
    names, A = district_matrix(f, GRID.lon_edges, GRID.lat_edges)
    area = (A @ GRID.cell_area_m2().ravel())[0]
    assert abs(area / geodesic_area_m2(hole_free) - 1) < 0.01
    assert (A.data >= 0).all() and (A.data <= 1).all()


def test_overlapping_polygons_cell_sums_never_exceed_one(tmp_path):
    f = write_geojson(tmp_path / "o.geojson", [("A", 1, (113.0, 23.0, 113.205, 23.1)), ("B", 2, (113.195, 23.0, 113.3, 23.1))])
    names, A = district_matrix(f, GRID.lon_edges, GRID.lat_edges)
    s = np.asarray(A.sum(axis=0)).ravel()
    assert s.max() <= 1.0 + 1e-12
    # cell ix=29 (113.19-113.20) is all in A and half in B: 1.5 rescaled to 2/3 + 1/3
    iy = 55
    np.testing.assert_allclose(A[:, iy * GRID.nx + 29].toarray().ravel(), [2 / 3, 1 / 3], atol=1e-9)
    np.testing.assert_allclose(A[:, iy * GRID.nx + 30].toarray().ravel(), [1 / 3, 2 / 3], atol=1e-9)
    np.testing.assert_allclose(A[:, iy * GRID.nx + 28].toarray().ravel(), [1.0, 0.0], atol=1e-12)


@pytest.mark.parametrize(
    "content, field",
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"type": "FeatureCollection", "features": []}), "features"),
        (json.dumps({"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"adcode": 1, "name": "x"},
                                                                "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}}]}), "name_en"),
        (json.dumps({"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"adcode": 1, "name": "x", "name_en": "X"},
                                                                "geometry": {"type": "Point", "coordinates": [0, 0]}}]}), "Polygon"),
        (json.dumps({"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"adcode": 1, "name": "x", "name_en": "X"},
                                                                "geometry": {"type": "Polygon", "coordinates": [[[500000, 2500000], [510000, 2500000], [510000, 2510000], [500000, 2500000]]]}}]}), "WGS84"),
    ],
)
def test_malformed_file_clear_error(tmp_path, content, field):
    f = tmp_path / "bad.geojson"
    f.write_text(content)
    with pytest.raises(DistrictFileError) as err:
        read_districts(f)
    assert str(f) in str(err.value) and field in str(err.value)


def test_missing_file_names_config_key(tmp_path):
    with pytest.raises(DistrictFileError, match="districts_file"):
        read_districts(tmp_path / "nope.geojson")


@pytest.mark.skipif(not REAL.is_file(), reason="config/districts.geojson not present")
def test_real_districts():
    ds = read_districts(REAL)
    names, A = district_matrix(REAL, GRID.lon_edges, GRID.lat_edges, districts=ds)
    assert len(names) == 11 and "Tianhe" in names
    assert (A.data > 0).all() and (A.data <= 1).all()
    assert np.asarray(A.sum(axis=0)).max() <= 1 + 1e-9
    areas = A @ GRID.cell_area_m2().ravel()
    for d, a in zip(ds, areas):
        geo = geodesic_area_m2(d.geometry)
        assert abs(a / geo - 1) < 0.01, (d.name_en, a, geo)
    total_km2 = areas.sum() / 1e6
    assert 7200 < total_km2 < 7600  # Guangzhou ~7434 km2
