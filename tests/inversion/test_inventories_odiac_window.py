"""ODIAC read windowed to the domain (issue 16.2): a global 1 km ODIAC GeoTIFF is 21600 x 43200
float32 pixels (3.7 GB); the reader memory-maps the file and decodes only the strips or tiles that
hold the domain. Checked against a full read of the same file to 1e-12, on GeoTIFFs in ODIAC's
layout written by Pillow/libtiff (strips, uncompressed and deflate) and by a plain tiled writer
below (Pillow cannot write tiles)."""

import struct

import numpy as np
import pytest

import inversion.inventories as inv_mod
from gzcarbon.grid import Grid
from inversion.inventories import InventoryError, read_inventory, read_odiac, read_tiff

LON0, LAT0, RES = 112.0, 24.5, 0.01  # north-west corner, 1/100 degree pixels
SHAPE = (230, 310)                   # rows (north to south), columns


def _values():
    rng = np.random.default_rng(11)
    return (rng.random(SHAPE) * 40).astype(np.float32)  # tonne C per pixel per month


def _pillow_strips(path, values, compression):
    from PIL import Image, TiffImagePlugin

    info = TiffImagePlugin.ImageFileDirectory_v2()
    info[33550] = (RES, RES, 0.0)
    info.tagtype[33550] = 12
    info[33922] = (0.0, 0.0, 0.0, LON0, LAT0, 0.0)
    info.tagtype[33922] = 12
    info[278] = 7  # rows per strip: many strips, as ODIAC's files have
    Image.fromarray(values, mode="F").save(path, tiffinfo=info, compression=compression)


def _tiled(path, values, tile=32):
    """A little-endian, uncompressed, float32 tiled GeoTIFF (TIFF 6.0 section 15 layout)."""
    h, w = values.shape
    ty, tx = -(-h // tile), -(-w // tile)
    padded = np.zeros((ty * tile, tx * tile), "<f4")
    padded[:h, :w] = values
    blocks = [padded[j * tile:(j + 1) * tile, i * tile:(i + 1) * tile].tobytes()
              for j in range(ty) for i in range(tx)]
    entries = [(256, 4, [w]), (257, 4, [h]), (258, 3, [32]), (259, 3, [1]), (262, 3, [1]),
               (277, 3, [1]), (322, 3, [tile]), (323, 3, [tile]), (324, 4, None),
               (325, 4, [len(b) for b in blocks]), (339, 3, [3]),
               (33550, 12, [RES, RES, 0.0]), (33922, 12, [0.0, 0.0, 0.0, LON0, LAT0, 0.0])]
    size = {3: 2, 4: 4, 12: 8}
    code = {3: "H", 4: "I", 12: "d"}
    ifd_at = 8
    extra_at = ifd_at + 2 + 12 * len(entries) + 4
    extra_len = sum(size[t] * (len(v) if v else len(blocks)) for _, t, v in entries
                    if size[t] * (len(v) if v else len(blocks)) > 4)
    data_at = extra_at + extra_len
    offsets, pos = [], data_at
    for b in blocks:
        offsets.append(pos)
        pos += len(b)
    ifd, extra = struct.pack("<H", len(entries)), b""
    for tag, typ, vals in entries:
        vals = offsets if vals is None else vals
        raw = struct.pack("<" + code[typ] * len(vals), *vals)
        if len(raw) <= 4:
            ifd += struct.pack("<HHI", tag, typ, len(vals)) + raw.ljust(4, b"\0")
        else:
            ifd += struct.pack("<HHII", tag, typ, len(vals), extra_at + len(extra))
            extra += raw
    ifd += struct.pack("<I", 0)
    path.write_bytes(b"II*\0" + struct.pack("<I", ifd_at) + ifd + extra + b"".join(blocks))


@pytest.fixture(params=["strips", "strips_deflate", "tiles"])
def odiac(request, tmp_path):
    vals = _values()
    p = tmp_path / "odiac2022_1km_excl_intl_2501.tif"
    if request.param == "tiles":
        _tiled(p, vals)
    else:
        pytest.importorskip("PIL")
        _pillow_strips(p, vals, None if request.param == "strips" else "tiff_adobe_deflate")
    return p, vals


@pytest.mark.parametrize("window", [(50, 61, 40, 90), (0, 5, 0, 310), (225, 230, 300, 310),
                                    (31, 33, 31, 65)])
def test_window_equals_the_full_read(odiac, window):
    p, vals = odiac
    full, _ = read_tiff(p)
    np.testing.assert_array_equal(full, vals)  # the writers wrote what we think
    part, tags = read_tiff(p, window)
    r0, r1, c0, c1 = window
    np.testing.assert_array_equal(part, full[r0:r1, c0:c1])
    assert tags["window"] == window and (tags["height"], tags["width"]) == SHAPE


def test_only_the_blocks_of_the_window_are_decoded(odiac, monkeypatch):
    p, _ = odiac
    calls = []
    real = inv_mod._decode
    monkeypatch.setattr(inv_mod, "_decode", lambda *a: calls.append(1) or real(*a))
    read_tiff(p)
    n_full = len(calls)
    calls.clear()
    read_tiff(p, (50, 61, 40, 90))
    # strips of 7 rows: rows 50..60 are in strips 7 and 8; tiles of 32: rows 32..63 x cols 32..95
    assert len(calls) == 2
    assert n_full in (33, 80)  # 230 rows / 7 -> 33 strips; or 8 x 10 tiles


def test_odiac_on_the_grid_from_the_window_equals_the_full_file(odiac):
    p, _ = odiac
    grid = Grid(113.0, 113.6, 22.9, 23.5, 0.01)  # inside the file, off its pixel edges by 0
    windowed = read_odiac(p, bounds=(grid.lon_min, grid.lon_max, grid.lat_min, grid.lat_max))
    whole = read_odiac(p)
    assert windowed.sectors["total"].size < whole.sectors["total"].size / 5
    np.testing.assert_allclose(windowed.on_grid(grid)["total"], whole.on_grid(grid)["total"], rtol=1e-12)
    np.testing.assert_allclose(read_inventory(p, grid)["total"], whole.on_grid(grid)["total"], rtol=1e-12)
    shifted = Grid(112.955, 113.455, 22.905, 23.405, 0.01)  # edges between pixel edges
    got = read_odiac(p, bounds=(112.955, 113.455, 22.905, 23.405)).on_grid(shifted)["total"]
    np.testing.assert_allclose(got, whole.on_grid(shifted)["total"], rtol=1e-12)


def test_a_domain_outside_the_file_is_named(odiac):
    p, _ = odiac
    with pytest.raises(InventoryError, match="does not overlap the domain"):
        read_odiac(p, bounds=(120.0, 121.0, 30.0, 31.0))
