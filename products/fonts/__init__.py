"""The CJK font of the report and its figures, shipped with the package (no download, no system font).

``gzcarbon-cjk-subset.otf`` is a subset of Noto Sans CJK SC 2.004 (SIL Open Font License 1.1,
``OFL.txt`` beside it) cut with fontTools to the characters the report and its figures use: every
Chinese text of the catalogue ``products.i18n.ZH``, the city and the district names of
``config/districts.geojson`` and common Chinese punctuation. ``python -m products.fonts.build``
makes it again (README.md in this folder: source, command, size).

- :func:`charset`: the characters the font maps (its cmap);
- :func:`missing_chars` ``(text)``: the wide (East Asian) characters of ``text`` the font lacks;
- :func:`rc`: matplotlib settings that register the font and list it after DejaVu Sans in
  ``font.family`` (matplotlib falls back glyph by glyph), for ``plt.rc_context(rc())``;
- :func:`css_font_face` ``(page)``: an ``@font-face`` rule with the font cut to the characters of
  ``page`` as a ``data:`` URI, and the body's font list with it (the HTML stays self-contained).
"""

from __future__ import annotations

import base64
import functools
import io
import logging
import unicodedata
from pathlib import Path

log = logging.getLogger(__name__)

FONT = Path(__file__).resolve().with_name("gzcarbon-cjk-subset.otf")
FAMILY = "gzcarbon CJK subset"
#: the body's fonts in report.css, with the CJK font before the generic family
CSS_FAMILIES = '-apple-system,"Segoe UI",Helvetica,Arial,"{family}",sans-serif'


@functools.lru_cache(maxsize=1)
def charset() -> frozenset[str]:
    """The characters the shipped font maps (fontTools cmap)."""
    from fontTools.ttLib import TTFont

    with TTFont(FONT, lazy=True) as font:
        return frozenset(chr(c) for c in font.getBestCmap())


def needs_cjk(ch: str) -> bool:
    """A wide or full-width character (Chinese characters and punctuation): drawn from this font."""
    return unicodedata.east_asian_width(ch) in ("W", "F")


def missing_chars(text: str) -> list[str]:
    """The wide characters of ``text`` that the shipped font does not map, sorted."""
    have = charset()
    return sorted({ch for ch in text if needs_cjk(ch) and ch not in have})


@functools.lru_cache(maxsize=1)
def _register() -> str:
    from matplotlib import font_manager

    font_manager.fontManager.addfont(str(FONT))
    return FAMILY


def rc() -> dict:
    """matplotlib rc settings with the CJK font as fallback after DejaVu Sans (matplotlib falls back
    glyph by glyph through the families listed in ``font.family``)."""
    return {"font.family": ["DejaVu Sans", _register()]}


def subset_bytes(chars) -> bytes:
    """The shipped font cut to ``chars`` (OpenType/CFF bytes)."""
    from fontTools import subset

    opts = subset.Options()
    opts.layout_features = ["*"]
    opts.name_IDs = ["*"]
    opts.notdef_outline = True
    opts.recalc_timestamp = False
    font = subset.load_font(str(FONT), opts)
    sub = subset.Subsetter(opts)
    sub.populate(unicodes=sorted({ord(c) for c in chars}))
    sub.subset(font)
    buf = io.BytesIO()
    font.save(buf)
    font.close()
    return buf.getvalue()


def css_font_face(page: str) -> str:
    """CSS: the font cut to the wide characters of ``page`` (``""`` when it has none)."""
    chars = {ch for ch in page if needs_cjk(ch)} & charset()
    if not chars:
        return ""
    chars |= {" ", "\u00a0"} & charset()   # spaces inside Chinese runs (WeasyPrint: else .notdef)
    data = base64.b64encode(subset_bytes(chars)).decode("ascii")
    return (f'@font-face{{font-family:"{FAMILY}";src:url(data:font/otf;base64,{data}) format("opentype")}}\n'
            f"body{{font-family:{CSS_FAMILIES.format(family=FAMILY)}}}\n")
