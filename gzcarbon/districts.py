"""District polygons and their rasterisation onto the state grid.

`read_districts(path)` reads the district GeoJSON (docs/formats.md: WGS84, properties ``adcode``,
``name``, ``name_en``; ``name_en`` is the district key). `district_matrix` turns the polygons into a
sparse (n_district × n_cells) matrix whose entry (d, c) is the fraction of cell c's area inside
district d, cell index ``iy * nx + ix`` (row-major from the south-west, as `gzcarbon.grid.Grid`).

Fractions are computed in lon-lat degrees: cells fully inside a polygon (vectorised
``shapely.contains``) get exactly 1, boundary cells get the exact polygon-box intersection area divided
by the box area. Within one 0.01° cell the true (ellipsoidal) area element varies by < 1e-5 relative, so
the degree-space fraction is the area fraction to that accuracy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import shapely
from shapely.geometry import shape

REQUIRED_PROPERTIES = ("adcode", "name", "name_en")


@dataclass(frozen=True)
class District:
    adcode: int
    name: str
    name_en: str
    geometry: shapely.Geometry  # Polygon or MultiPolygon, lon-lat degrees (WGS84)


class DistrictFileError(ValueError):
    """A district GeoJSON that cannot be used; the message names the file, the field and the fix."""


def _fail(path, what: str, fix: str) -> None:
    raise DistrictFileError(f"district file {path}: {what}. {fix}")


def read_districts(path) -> list[District]:
    """Read the district GeoJSON FeatureCollection; validate it and return one `District` per feature."""
    path = Path(path)
    fix_format = (
        "Expected a GeoJSON FeatureCollection in WGS84 lon/lat with properties adcode (int), name, "
        "name_en and (Multi)Polygon geometries (see docs/formats.md)."
    )
    if not path.is_file():
        _fail(path, "not found", "Set config `districts_file` to the district GeoJSON.")
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        _fail(path, f"is not valid JSON ({exc})", fix_format)
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        _fail(path, "top-level `type` is not 'FeatureCollection'", fix_format)
    features = data.get("features")
    if not isinstance(features, list) or not features:
        _fail(path, "`features` is missing or empty", fix_format)
    out: list[District] = []
    seen: set[str] = set()
    for i, feat in enumerate(features):
        props = (feat or {}).get("properties") or {}
        missing = [k for k in REQUIRED_PROPERTIES if k not in props]
        if missing:
            _fail(path, f"feature {i} lacks propert{'y' if len(missing) == 1 else 'ies'} {missing}", fix_format)
        name_en = str(props["name_en"]).strip()
        if not name_en:
            _fail(path, f"feature {i} has an empty `name_en`", fix_format)
        if name_en in seen:
            _fail(path, f"`name_en` {name_en!r} appears twice", "Each district needs a unique name_en.")
        seen.add(name_en)
        try:
            adcode = int(props["adcode"])
        except (TypeError, ValueError):
            _fail(path, f"feature {i} ({name_en}): `adcode` {props['adcode']!r} is not an integer", fix_format)
        geom_json = feat.get("geometry")
        if not geom_json or geom_json.get("type") not in ("Polygon", "MultiPolygon"):
            gtype = None if not geom_json else geom_json.get("type")
            _fail(path, f"feature {i} ({name_en}): geometry type {gtype!r} is not Polygon/MultiPolygon", fix_format)
        try:
            geom = shape(geom_json)
        except Exception as exc:  # shapely raises several types for broken coordinates
            _fail(path, f"feature {i} ({name_en}): unreadable geometry ({exc})", fix_format)
        if geom.is_empty:
            _fail(path, f"feature {i} ({name_en}): empty geometry", fix_format)
        minx, miny, maxx, maxy = geom.bounds
        if not (-180 <= minx <= maxx <= 360 and -90 <= miny <= maxy <= 90):
            _fail(
                path,
                f"feature {i} ({name_en}): coordinates {geom.bounds} are not lon/lat degrees",
                "Reproject the file to WGS84 (EPSG:4326) lon/lat.",
            )
        if not geom.is_valid:
            geom = shapely.make_valid(geom)
            geom = shapely.union_all([g for g in shapely.get_parts(geom) if g.geom_type in ("Polygon", "MultiPolygon")])
        out.append(District(adcode=adcode, name=str(props["name"]), name_en=name_en, geometry=geom))
    return out


def polygon_fractions(geom, lon_edges, lat_edges) -> tuple[np.ndarray, np.ndarray]:
    """(cell_index, fraction) of every cell that intersects ``geom`` (fraction of the cell area inside).

    Interior cells: fraction 1 exactly; boundary cells: exact intersection area / cell area.
    """
    lon_edges = np.asarray(lon_edges, dtype=float)
    lat_edges = np.asarray(lat_edges, dtype=float)
    nx = lon_edges.size - 1
    minx, miny, maxx, maxy = geom.bounds
    ix0 = max(int(np.searchsorted(lon_edges, minx, side="right")) - 1, 0)
    ix1 = min(int(np.searchsorted(lon_edges, maxx, side="left")), nx)
    iy0 = max(int(np.searchsorted(lat_edges, miny, side="right")) - 1, 0)
    iy1 = min(int(np.searchsorted(lat_edges, maxy, side="left")), lat_edges.size - 1)
    if ix1 <= ix0 or iy1 <= iy0:
        return np.zeros(0, np.int64), np.zeros(0)
    iy, ix = np.meshgrid(np.arange(iy0, iy1), np.arange(ix0, ix1), indexing="ij")
    iy = iy.ravel()
    ix = ix.ravel()
    boxes = shapely.box(lon_edges[ix], lat_edges[iy], lon_edges[ix + 1], lat_edges[iy + 1])
    shapely.prepare(geom)
    hit = shapely.intersects(geom, boxes)
    inside = shapely.contains_properly(geom, boxes)
    frac = np.zeros(boxes.size)
    frac[inside] = 1.0
    edge = hit & ~inside
    if edge.any():
        # clip the polygon to the boundary cells' bounding boxes: exact areas of the pieces
        inter = shapely.intersection(boxes[edge], geom)
        frac[edge] = np.clip(shapely.area(inter) / shapely.area(boxes[edge]), 0.0, 1.0)
    keep = frac > 0
    return (iy[keep] * nx + ix[keep]).astype(np.int64), frac[keep]


def district_matrix(geojson_path, lon_edges, lat_edges, districts: list[District] | None = None):
    """(names, A) with A a CSR matrix (n_district × n_cells): fraction of each cell inside each district.

    ``names`` are the districts' ``name_en`` in file order. Every entry is in [0, 1]; a cell shared by
    two districts has the parts summing to <= 1 (overlaps from simplification are clipped so the sum
    over districts never exceeds 1).
    """
    if districts is None:
        districts = read_districts(geojson_path)
    lon_edges = np.asarray(lon_edges, dtype=float)
    lat_edges = np.asarray(lat_edges, dtype=float)
    n_cells = (lon_edges.size - 1) * (lat_edges.size - 1)
    rows, cols, vals = [], [], []
    for d, dist in enumerate(districts):
        idx, frac = polygon_fractions(dist.geometry, lon_edges, lat_edges)
        rows.append(np.full(idx.size, d, np.int64))
        cols.append(idx)
        vals.append(frac)
    mat = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(len(districts), n_cells),
    )
    # polygons of a simplified coverage may overlap by slivers: rescale so no cell sums above 1
    total = np.asarray(mat.sum(axis=0)).ravel()
    over = total > 1.0
    if over.any():
        scale = np.ones(n_cells)
        scale[over] = 1.0 / total[over]
        mat = (mat @ sp.diags(scale)).tocsr()
    mat.sort_indices()
    return [d.name_en for d in districts], mat
