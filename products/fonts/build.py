"""Make ``products/fonts/gzcarbon-cjk-subset.otf`` from Noto Sans CJK SC (README.md here).

    apt-get install -y fonts-noto-cjk      # Debian: /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc
    python -m products.fonts.build [/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc]

The characters: every wide character written in the sources of ``products/`` (the catalogue
``products.i18n.ZH``, the ``{"en", "zh"}`` captions of any module, the templates), the district
names (``name``) of ``config/districts.geojson`` and :data:`PUNCTUATION`. Run it again after adding
Chinese texts with new characters (tests/products/test_report_language.py says which are missing).
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

from . import FAMILY, FONT

SOURCE = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
SOURCE_NAME = "Noto Sans CJK SC"
REPO = Path(__file__).resolve().parents[2]
#: Chinese punctuation and signs a translator may use beyond the catalogue's
SPACES = " \u00a0\u3000"
PUNCTUATION = "，。、；：？！“”‘’（）《》〈〉【】—…·～％＋－＝／｜０１２３４５６７８９"


def characters() -> set[str]:
    from . import needs_cjk

    package = Path(__file__).resolve().parents[1]
    text = PUNCTUATION + "".join(p.read_text(encoding="utf-8") for p in sorted(package.rglob("*"))
                                 if p.suffix in (".py", ".html", ".css"))
    geo = json.loads((REPO / "config" / "districts.geojson").read_text(encoding="utf-8"))
    text += "".join(str(f["properties"].get("name", "")) for f in geo["features"])
    # and the spaces: a run of Chinese text with spaces is drawn from this font (WeasyPrint draws
    # .notdef for a space the font lacks)
    return {ch for ch in text if needs_cjk(ch)} | set(SPACES)


def _source_font(path: Path):
    from fontTools.ttLib import TTCollection, TTFont

    if path.suffix.lower() == ".ttc":
        for font in TTCollection(str(path)).fonts:
            if font["name"].getDebugName(1) == SOURCE_NAME:
                return font
        raise SystemExit(f"{path}: no font named {SOURCE_NAME!r} in the collection.")
    return TTFont(str(path))


def build(source: Path = SOURCE, out: Path = FONT) -> Path:
    from fontTools import subset

    if not source.is_file():
        raise SystemExit(f"{source} not found: apt-get install -y fonts-noto-cjk, or give the path of "
                         "NotoSansCJK-Regular.ttc / NotoSansSC-Regular.otf.")
    font = _source_font(source)
    opts = subset.Options()
    opts.layout_features = ["*"]
    opts.name_IDs = [0, 1, 2, 3, 4, 5, 6, 13, 14]
    opts.notdef_outline = True
    opts.recalc_timestamp = False
    sub = subset.Subsetter(opts)
    sub.populate(unicodes=sorted(ord(c) for c in characters()))
    sub.subset(font)
    name = font["name"]
    for rec in list(name.names):   # a modified version gets its own name (OFL)
        if rec.nameID in (1, 4, 16):
            name.setName(FAMILY, rec.nameID, rec.platformID, rec.platEncID, rec.langID)
        elif rec.nameID in (3, 6):
            name.setName(FAMILY.replace(" ", "-") + "-Regular", rec.nameID, rec.platformID,
                         rec.platEncID, rec.langID)
    if "CFF " in font:
        font["CFF "].cff.fontNames = [FAMILY.replace(" ", "-") + "-Regular"]
    buf = io.BytesIO()
    font.save(buf)
    out.write_bytes(buf.getvalue())
    print(f"wrote {out}: {len(characters())} characters, {out.stat().st_size / 1024:.0f} kB")
    return out


if __name__ == "__main__":
    build(Path(sys.argv[1]) if len(sys.argv) > 1 else SOURCE)
