"""The city's neighbours: polygons of the cities and regions around the state's inner box, and their
rasterisation onto the nested state grid (issue 19; docs/inventory.md, "The delta").

The file (default ``config/prd_cities.geojson``, made by ``tools/make_prd_cities.py``) has the layout
of the district file (docs/formats.md: WGS84 FeatureCollection, properties ``adcode``, ``name``,
``name_en``) plus ``kind``: ``city`` (a neighbouring city: Foshan, Dongguan, Shenzhen, Hong Kong …)
or ``region`` (the part of a neighbouring province inside the outer domain). ``name_en`` is the
key. It is read by the same validating reader as the districts (`gzcarbon.districts.read_districts`);
errors name the file, the feature and the field.

`neighbour_matrix(path, nested)` returns (neighbours, M) with M a CSR matrix (n_features ×
nested.n_cells) whose entry is the fraction of a state cell's area inside the feature, over the
*whole* nested state: inner 1 km cells (a neighbour's part inside the inner box, e.g. Foshan's
Chancheng) and outer cells outside the hole. Totals of a state field x (µmol m-2 s-1):
``M @ (x * nested.cell_area_m2())``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import shapely

from gzcarbon.districts import District, DistrictFileError, district_matrix, read_districts

KINDS = ("city", "region")


@dataclass(frozen=True)
class Neighbour:
    adcode: int
    name: str
    name_en: str
    kind: str  # "city" or "region"
    geometry: shapely.Geometry


class NeighbourFileError(DistrictFileError):
    """A neighbour-geometry file that cannot be used (names the file, the feature and the field)."""


def read_neighbours(path) -> list[Neighbour]:
    """The features of the neighbours file, in file order, validated (see module docstring)."""
    path = Path(path)
    try:
        districts = read_districts(path)
    except DistrictFileError as exc:
        raise NeighbourFileError(str(exc).replace("district file", "neighbour file", 1)
                                 .replace("config `districts_file`", "config `inputs.neighbours_file`")) from None
    with open(path, encoding="utf-8") as fh:
        feats = json.load(fh)["features"]
    out = []
    for i, (d, f) in enumerate(zip(districts, feats)):
        kind = str((f.get("properties") or {}).get("kind", "city"))
        if kind not in KINDS:
            raise NeighbourFileError(
                f"neighbour file {path}: feature {i} ({d.name_en}): property `kind` {kind!r} is not one "
                f"of {list(KINDS)}. Mark each feature as a neighbouring city or a region.")
        out.append(Neighbour(d.adcode, d.name, d.name_en, kind, d.geometry))
    return out


def neighbour_matrix(path, nested, neighbours: list[Neighbour] | None = None):
    """(neighbours, M): M CSR (n_features × nested.n_cells), fraction of each state cell inside each
    feature (inner cells, then the outer cells outside the hole, in state order). ``nested`` is a
    `gzcarbon.grid.NestedGrid` (or anything with ``inner``, ``outer``, ``outer_mask``)."""
    if neighbours is None:
        neighbours = read_neighbours(path)
    as_d = [District(n.adcode, n.name, n.name_en, n.geometry) for n in neighbours]
    inner = nested.inner
    _, m_in = district_matrix(path, inner.lon_edges, inner.lat_edges, districts=as_d)
    if nested.outer is None:
        return neighbours, m_in.tocsr()
    o = nested.outer
    _, m_out = district_matrix(path, o.lon_edges, o.lat_edges, districts=as_d)
    m_out = m_out.tocsc()[:, np.flatnonzero(np.asarray(nested.outer_mask).ravel())]
    return neighbours, sp.hstack([m_in, m_out], format="csr")
