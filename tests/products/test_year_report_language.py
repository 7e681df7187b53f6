"""The flash and annual reports follow config report.language like the monthly report: the same
run's report in zh and in en has the translated labels and the same numbers (issue 21)."""

import logging
import re
import sys
import warnings
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from products import fonts
from products.annual import covered_months, write_annual, write_flash

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_annual import _invert_into, year_dir  # noqa: E402,F401  (the module's fixture)
from test_report_language import visible_text  # noqa: E402

CJK = re.compile(r"[\u3400-\u9fff]")
DATE = re.compile(r"\d{4}-\d{2}|年")
NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


class _Cells(HTMLParser):
    """The text of every <td> of a page, in order."""

    def __init__(self):
        super().__init__()
        self.cells, self._in = [], False

    def handle_starttag(self, tag, attrs):
        if tag == "td":
            self._in = True
            self.cells.append("")

    def handle_endtag(self, tag):
        if tag == "td":
            self._in = False

    def handle_data(self, data):
        if self._in:
            self.cells[-1] += data


def cells(html: str) -> list[str]:
    p = _Cells()
    p.feed(html)
    return [c.strip() for c in p.cells]


def same_numbers(zh: str, en: str) -> int:
    """Assert the two pages' table cells hold the same numbers, cell by cell (dates, written
    differently per language, are skipped); returns how many cells were compared."""
    a, b = cells(zh), cells(en)
    assert len(a) == len(b)
    n = 0
    for x, y in zip(a, b):
        if DATE.search(x) or DATE.search(y):
            continue
        assert NUMBER.findall(x) == NUMBER.findall(y), (x, y)
        n += bool(NUMBER.findall(y))
    return n


@pytest.fixture(scope="module")
def flash_pages(year_dir, tmp_path_factory):  # noqa: F811
    fl = year_dir / "2025-01" / "flash" / "2025-01-02"
    out = {}
    for lang in ("zh", "en", "both"):
        d = tmp_path_factory.mktemp(f"flash_{lang}")
        write_flash(d / "report.html", d / "flash.json", fl / "districts.csv", fl / "diagnostics.json",
                    month="2025-01", cutoff="2025-01-02", month_days=["20250102", "20250103"],
                    flash_days=["20250102"], language=lang)
        out[lang] = (d / "report.html").read_text()
    return out


def test_flash_report_in_chinese_and_english_same_numbers(flash_pages, year_dir):  # noqa: F811
    zh, en = flash_pages["zh"], flash_pages["en"]
    tz, te = visible_text(zh), visible_text(en)
    assert '<html lang="zh-CN">' in zh and '<html lang="en">' in en
    for text in ("初步结果", "数据截止日 2025年1月2日", "2 个反演日中的 1 个（50%）", "快报（千吨）", "各区（快报时段内，千吨 CO₂）",
                 "广州市二氧化碳排放快报（初步）— 2025年1月"):
        assert text in tz, text
    for text in ("Preliminary", "Data cut-off", "flash (kt)", "Districts (over the flash period"):
        assert text not in tz, text
        assert text in te, text
    assert "1 of the 2 inverted days of 2025-01 (50 %)" in te and not CJK.search(te)
    # the same numbers, and they are the flash inversion's: the city's flash total in kt
    assert same_numbers(zh, en) >= 3 * 6
    city = pd.read_csv(year_dir / "2025-01" / "flash" / "2025-01-02" / "districts.csv").set_index("district")
    shown = f"{city.loc['Guangzhou', 'posterior_t'] / 1e3:,.1f}"
    assert shown in cells(zh) and shown in cells(en)
    # the Chinese page carries its font, cut to its characters, and every character is in it
    assert "@font-face" in zh and "@font-face" not in en and fonts.missing_chars(zh) == []


def test_flash_report_both_languages_chinese_first(flash_pages):
    t = visible_text(flash_pages["both"])
    assert t.index("初步结果") < t.index("Preliminary") and t.index("快报（千吨）") < t.index("flash (kt)")


@pytest.fixture(scope="module")
def annual_pages(year_dir, tmp_path_factory):  # noqa: F811
    mf = covered_months(2025, year_dir, ["2025-01", "2025-02", "2025-04"])
    flash = {"2025-01": [str(year_dir / "2025-01" / "flash" / "2025-01-02")]}
    out = {}
    for lang in ("zh", "en"):
        d = tmp_path_factory.mktemp(f"annual_{lang}")
        prev = d / "2024.csv"
        prev_year = write_annual(d / "prev.csv", d / "prev.html", 2025, mf, language="en")
        prev_year.table.assign(posterior_t=prev_year.table["posterior_t"] * 0.8).to_csv(prev, index=False)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            write_annual(d / "districts.csv", d / "report.html", 2025, mf, language=lang, flash_dirs=flash,
                         budgets={"2025": {"West": 1e9, "Guangzhou": 1e-6}}, previous_csv=prev)
        out[lang] = ((d / "report.html").read_text(), (d / "districts.csv").read_text(),
                     [str(w.message) for w in caught])
    return out


def test_annual_report_in_chinese_and_english_same_numbers(annual_pages, caplog):
    (zh, csv_zh, warn_zh), (en, csv_en, _) = annual_pages["zh"], annual_pages["en"]
    tz, te = visible_text(zh), visible_text(en)
    labels = {  # zh label: en label
        "已覆盖月份的总量": "Totals of the covered months", "各月独立时的 σ（千吨）": "σ if months were independent (kt)",
        "全年逐月各区总量": "Monthly district totals through the year", "预算执行情况": "Budget status",
        "在预算内": "within budget", "可能超出预算": "likely over budget",
        "数据可用性（各站点逐月使用的观测数）": "Data availability", "未覆盖": "not covered",
        "快报修订": "Flash revisions", "同比变化": "Year-on-year change", "年际相关系数为 0": "correlation 0 between years",
        "月份相关（各区因子全年共享）": "correlated months (district factors shared by the year)",
        "广州市二氧化碳排放年报 — 2025年": "Guangzhou CO₂ annual report — 2025",
        "未覆盖：2025年3月、2025年5月": "Not covered: 2025-03, 2025-05",
    }
    for z, e in labels.items():
        assert z in tz, z
        assert e in te, e
        assert e not in tz, e
    assert not CJK.search(te)
    # every number of every table is the same in both pages (totals, σ, budgets, availability,
    # revisions, year-on-year change: 0.8 x the rate -> +25.00 %)
    assert same_numbers(zh, en) >= 40
    assert "25.00" in cells(zh) and "25.00" in cells(en)
    # the district table of the year does not depend on the language
    assert csv_zh == csv_en
    # the monthly-totals figure is drawn with the shipped CJK font (no missing glyph)
    assert not [w for w in warn_zh if "missing from font" in w], warn_zh
    assert fonts.missing_chars(zh) == [] and "@font-face" in zh


def test_annual_and_flash_reports_have_no_untranslated_text(year_dir, tmp_path, caplog):  # noqa: F811
    mf = covered_months(2025, year_dir, ["2025-01", "2025-02", "2025-04"])
    fl = year_dir / "2025-01" / "flash" / "2025-01-02"
    with caplog.at_level(logging.WARNING, logger="products"):
        write_annual(tmp_path / "d.csv", tmp_path / "r.html", 2025, mf, language="zh",
                     budgets={"2025": {"Guangzhou": 1e5}}, accounting_files={})
        write_flash(tmp_path / "f.html", tmp_path / "f.json", fl / "districts.csv", fl / "diagnostics.json",
                    month="2025-01", cutoff="2025-01-02", month_days=["20250102", "20250103"],
                    flash_days=["20250102"], language="zh")
    assert "report language" not in caplog.text and "CJK font" not in caplog.text, caplog.text
    assert "2025年1月、2025年2月、2025年4月 没有 accounting.csv" in visible_text((tmp_path / "r.html").read_text())
    with pytest.raises(ValueError, match="report language 'fr' unknown"):
        write_flash(tmp_path / "g.html", tmp_path / "g.json", fl / "districts.csv", fl / "diagnostics.json",
                    month="2025-01", cutoff="2025-01-02", month_days=["20250102", "20250103"],
                    flash_days=["20250102"], language="fr")
    assert not (tmp_path / "g.html").exists() and not (tmp_path / "g.json").exists()
