"""The report renders in headless Chromium with no failed or external request, and prints to PDF
(WeasyPrint, or Chromium's own --print-to-pdf command line).

Chromium tests are skipped when it is not installed (Debian: apt-get install -y chromium; .ci/run
installs it), WeasyPrint tests when the extra is not (pip install -e ".[pdf]").
"""

import importlib.abc
import importlib.util
import logging
import re
import sys
import time
import zlib

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from products.maps import make_all_figures
from products.pdf import PdfError, available_engines, chromium_command, find_chromium, write_pdf
from products.report import write_report
from tests.products.devtools import BrowserError, render_page

CHROMIUM = find_chromium()
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed "
                                    "(apt-get install -y chromium)")


def _write(fake_run, tmp_path, figures=True, **kw):
    maps = tmp_path / "maps"
    maps.mkdir()
    if figures:
        make_all_figures(fake_run["posterior"], fake_run["districts"], fake_run["modelled"],
                         fake_run["selected"], fake_run["stations"], fake_run["geojson"], maps,
                         days=["20250101"], hours_per_day=4)
    return write_report(tmp_path / "report.html", month="2025-01",
                        districts_csv=fake_run["districts"],
                        diagnostics_json=fake_run["diagnostics"], modelled_csv=fake_run["modelled"],
                        selected_csv=fake_run["selected"], stations_yaml=fake_run["stations"],
                        maps_dir=maps, power_heatmap=fake_run["heatmap"],
                        power_summary=fake_run["summary"], days=["20250101"], hours_per_day=4,
                        budgets={"2025": {"Liwan": 4000}}, **kw)


def pdf_objects(data: bytes) -> bytes:
    """The PDF's bytes with every Flate stream decompressed after it: WeasyPrint ≥ 59 (pydyf) puts
    the page objects in compressed object streams (/ObjStm), Chromium writes them plain."""
    out = [data]
    for m in re.finditer(rb"/FlateDecode.*?stream\r?\n", data, re.S):
        try:
            out.append(zlib.decompressobj().decompress(data[m.end():]))
        except zlib.error:
            pass
    return b"\n".join(out)


def pdf_pages(data: bytes) -> list[tuple[float, float]]:
    """(width, height) in pt of every page object's MediaBox (plain or in an object stream)."""
    text = pdf_objects(data)
    pages = re.findall(rb"/Type\s*/Page(?![a-zA-Z])(.{0,400}?)>>", text, re.S)
    boxes = [re.search(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", p) for p in pages]
    if not all(boxes):   # MediaBox written before /Type in the dictionary
        boxes = list(re.finditer(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", text))
    return [(float(b.group(1)), float(b.group(2))) for b in boxes if b]


@needs_chromium
def test_report_renders_in_chromium(fake_run, tmp_path):
    # a power summary as wide as the real one (14 columns, long names) must not widen the page
    cols = ["month", "district", "hours", "generation_mwh", "load_mwh", "production_emissions_t",
            "consumption_emissions_t", "production_factor", "consumption_factor",
            "consumption_factor_min", "consumption_factor_max", "peak_hour_local", "import_share",
            "external_share"]
    pd.DataFrame([["2025-01", d] + [1234.5678] * 12 for d in ("Liwan", "Yuexiu")],
                 columns=cols).to_csv(fake_run["summary"], index=False)
    html = _write(fake_run, tmp_path)
    t0 = time.monotonic()
    res = render_page(html, screenshot=tmp_path / "shot.png")
    assert time.monotonic() - t0 < 60
    assert res.failed_requests == []
    assert res.external_requests == []
    assert res.console_errors == []
    assert res.requests[0] == html.resolve().as_uri()
    # every inlined image is loaded (data: URIs show up as requests)
    assert sum(u.startswith("data:image/png") for u in res.requests) >= 11
    w, h = res.content_size
    assert w == 1200 and h > 3000          # a long page: tables and 11 figures laid out
    img = imread(res.screenshot)[..., :3]
    assert img.shape[1] == 1200 and img.shape[0] > 3000
    white = (img > 0.98).all(axis=2).mean()
    assert 0.2 < white < 0.98, f"white fraction {white:.3f}"   # not blank, not a black page
    assert img.std() > 0.1
    # the headline colour of the h2 rules (#3a78b5) is drawn: CSS was applied
    blue = (np.abs(img - np.array([0x3a, 0x78, 0xb5]) / 255).max(axis=2) < 0.03).sum()
    assert blue > 1000


@needs_chromium
def test_failed_and_external_requests_are_detected(tmp_path):
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><html><body><p>x</p><img src="http://127.0.0.1:9/a.png">'
                    '<img src="missing.png"></body></html>')
    res = render_page(page)
    assert any("127.0.0.1:9/a.png" in f for f in res.failed_requests)
    assert any("missing.png" in f for f in res.failed_requests)
    assert res.external_requests == ["http://127.0.0.1:9/a.png"]


def test_render_page_without_chromium_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr("tests.products.devtools.find_chromium", lambda: None)
    with pytest.raises(BrowserError, match="apt-get install -y chromium"):
        render_page(tmp_path / "x.html")


@pytest.mark.parametrize("engine", ["weasyprint", "chromium"])
def test_pdf_beside_the_html(fake_run, tmp_path, engine):
    if engine not in available_engines():
        pytest.skip(f"PDF engine {engine} not installed")
    html = _write(fake_run, tmp_path, pdf_engine=engine)
    pdf = html.with_suffix(".pdf")
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-") and len(data) > 100_000   # the figures are in it
    assert b"%%EOF" in data[-1024:]
    assert not list(tmp_path.glob(".*tmp*")) and not list(tmp_path.glob(".*partial")), \
        "temporary file left behind"
    # A4 pages (595 x 842 pt, from the page's @page CSS) and a long report: several pages. The page
    # objects may sit in compressed object streams (WeasyPrint >= 59): read through pdf_pages
    pages = pdf_pages(data)
    assert len(pages) >= 3
    assert all(abs(w - 595.3) < 1.5 and abs(h - 841.9) < 1.5 for w, h in pages), pages


def test_pdf_pages_reads_plain_and_compressed_page_objects():
    page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595.28 841.89] >>"
    plain = b"%PDF-1.4\n3 0 obj\n" + page + b"\nendobj\n"
    packed = zlib.compress(page + b"\n" + page.replace(b"595.28 841.89", b"612 792"))
    objstm = (b"%PDF-1.7\n9 0 obj\n<< /Type /ObjStm /N 2 /Filter /FlateDecode /Length "
              + str(len(packed)).encode() + b" >>\nstream\n" + packed + b"\nendstream\nendobj\n")
    assert pdf_pages(plain) == [(595.28, 841.89)]
    assert pdf_pages(objstm) == [(595.28, 841.89), (612.0, 792.0)]
    assert re.findall(rb"/MediaBox", objstm) == []     # the plain regex the test used saw no page


class _NoPango(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """'weasyprint' is installed but its import fails as without the Pango libraries."""

    def find_spec(self, name, path=None, target=None):
        return importlib.util.spec_from_loader(name, self) if name == "weasyprint" else None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        raise OSError("cannot load library 'libpango-1.0-0': libpango-1.0-0: cannot open shared "
                      "object file: No such file or directory")


def test_weasyprint_without_its_libraries_falls_back_to_chromium(fake_run, tmp_path, monkeypatch):
    # pip install gzcarbon[pdf] on a machine without Pango: WeasyPrint is found but does not import.
    # `auto` must not pick it (it did, and the report got no PDF), and naming it says what to install
    for mod in [m for m in sys.modules if m == "weasyprint" or m.startswith("weasyprint.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setattr(sys, "meta_path", [_NoPango(), *sys.meta_path])
    assert "weasyprint" not in available_engines()
    page = tmp_path / "p.html"
    page.write_text("<!DOCTYPE html><html><body><p>x</p></body></html>")
    with pytest.raises(RuntimeError, match=r"cannot be imported.*libpangoft2-1.0-0.*cannot load library"):
        write_pdf(page, engine="weasyprint")
    if CHROMIUM is None:
        pytest.skip("Chromium not installed: the fallback cannot be shown")
    html = _write(fake_run, tmp_path, figures=False, pdf_engine="auto")
    assert html.with_suffix(".pdf").read_bytes().startswith(b"%PDF-")


@needs_chromium
def test_chromium_pdf_is_chromiums_own_command_line(tmp_path):
    page = tmp_path / "p.html"
    page.write_text("<!DOCTYPE html><html><body><p>x</p></body></html>")
    cmd = chromium_command(CHROMIUM, page, tmp_path / "p.pdf", str(tmp_path / "profile"))
    assert cmd[0] == CHROMIUM and f"--print-to-pdf={tmp_path / 'p.pdf'}" in cmd
    assert {"--headless", "--disable-background-networking", "--disable-component-update"} <= set(cmd)
    assert cmd[-1] == page.resolve().as_uri()


def test_chromium_failure_names_the_page_and_keeps_the_html(fake_run, tmp_path, monkeypatch, caplog):
    # a "Chromium" that fails the way a broken install does: exit status 1, a message, no PDF
    fake = tmp_path / "fake-chromium"
    fake.write_text("#!/bin/sh\necho 'ERROR: cannot open display' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("GZ_CHROMIUM", str(fake))
    page = tmp_path / "p.html"
    page.write_text("<!DOCTYPE html><html><body><p>x</p></body></html>")
    with pytest.raises(PdfError, match=r"p\.html: Chromium exited with status 1 .*cannot open display"):
        write_pdf(page, engine="chromium")
    assert not (tmp_path / "p.pdf").exists() and not list(tmp_path.glob(".*partial"))
    # in the report rule the failure is a warning: the HTML is written, a stale PDF removed
    (tmp_path / "report.pdf").write_bytes(b"%PDF-1.4 old")
    with caplog.at_level(logging.WARNING, logger="products"):
        html = _write(fake_run, tmp_path, figures=False, pdf_engine="chromium")
    assert html.is_file() and not (tmp_path / "report.pdf").exists()
    assert "PDF of" in caplog.text and "cannot open display" in caplog.text


def test_pdf_skipped_with_note_when_no_engine(fake_run, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr("products.pdf.available_engines", lambda: [])
    stale = tmp_path / "report.pdf"
    stale.write_bytes(b"%PDF-1.4 old")
    with caplog.at_level(logging.INFO, logger="products"):
        html = _write(fake_run, tmp_path, figures=False, pdf_engine="auto")
    assert html.is_file() and not stale.exists()
    assert "PDF skipped: no PDF engine installed" in caplog.text
    assert "gzcarbon[pdf]" in caplog.text
    assert write_pdf(html, engine="none") is None
    with pytest.raises(RuntimeError, match="not installed"):
        write_pdf(html, engine="weasyprint")
    with pytest.raises(ValueError, match="unknown"):
        write_pdf(html, engine="word")


def test_weasyprint_pdf_stays_offline(tmp_path, caplog):
    if "weasyprint" not in available_engines():
        pytest.skip("weasyprint not installed")
    page = tmp_path / "ext.html"
    page.write_text('<!DOCTYPE html><html><body><p>offline</p>'
                    '<img src="http://127.0.0.1:9/a.png"></body></html>')
    with caplog.at_level(logging.INFO):
        pdf = write_pdf(page, engine="weasyprint")
    assert pdf.read_bytes().startswith(b"%PDF-")
    assert "disallowed protocol" in caplog.text and "Connection refused" not in caplog.text
    assert "Step 2" not in caplog.text   # WeasyPrint's progress chatter kept out of rule logs


@needs_chromium
@pytest.mark.parametrize("language", ["zh", "both"])
def test_report_in_chinese_renders_with_its_own_font(fake_run, tmp_path, language):
    """The Chinese and the bilingual page render like the English one (no failed or external
    request) and their Chinese text is drawn with the font embedded in the page (a web font named
    'gzcarbon CJK subset'), not with a system font."""
    html = _write(fake_run, tmp_path, language=language, districts_geojson=fake_run["geojson"])
    res = render_page(html, screenshot=tmp_path / "shot.png", fonts_for=("h1", "h2", "td.l"))
    assert res.failed_requests == [] and res.external_requests == [] and res.console_errors == []
    assert any(u.startswith("data:font/otf;base64,") for u in res.requests)   # the font was loaded
    for sel in ("h1", "h2", "td.l"):
        cjk = [f for f in res.fonts[sel] if f["familyName"] == "gzcarbon CJK subset"]
        assert cjk and cjk[0]["isCustomFont"] and cjk[0]["glyphCount"] >= 2, (sel, res.fonts[sel])
    img = imread(res.screenshot)[..., :3]
    white = (img > 0.98).all(axis=2).mean()
    assert img.shape[0] > 3000 and 0.2 < white < 0.98


@pytest.mark.parametrize("engine", ["weasyprint", "chromium"])
def test_chinese_pdf_embeds_the_shipped_font(fake_run, tmp_path, engine, caplog):
    if engine not in available_engines():
        pytest.skip(f"PDF engine {engine} not installed")
    with caplog.at_level(logging.WARNING):
        html = _write(fake_run, tmp_path, figures=False, pdf_engine=engine, language="zh",
                      districts_geojson=fake_run["geojson"])
    # every character had a glyph: WeasyPrint warns '.notdef glyph rendered' for one that has none
    # (it did for the spaces inside Chinese text before the font carried a space)
    assert ".notdef" not in caplog.text
    data = pdf_objects(html.with_suffix(".pdf").read_bytes())
    # the font descriptors name the embedded subset (PDF subset prefix 'ABCDEF+' before the name)
    names = set(re.findall(rb"/FontName\s*/(?:[A-Z]{6}\+)?([A-Za-z0-9-]+)", data))
    assert any(n.startswith(b"gzcarbon") for n in names), names
    assert not any(n.startswith(b"NotoSansCJK") for n in names), names   # not the system's font
