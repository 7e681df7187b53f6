"""The report in Chinese, English and both (config report.language): every text translated, district
names in characters, every Chinese character in the shipped font, the English report as before."""

import json
import logging
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fontTools.ttLib import TTFont

from products import fonts
from products.i18n import ZH
from products.maps import make_all_figures
from products.report import build_report, write_report

REPO = Path(__file__).resolve().parents[2]
DISTRICTS_11 = {"Yuexiu": "越秀区", "Haizhu": "海珠区", "Liwan": "荔湾区", "Tianhe": "天河区",
                "Baiyun": "白云区", "Huangpu": "黄埔区", "Panyu": "番禺区", "Huadu": "花都区",
                "Nansha": "南沙区", "Conghua": "从化区", "Zengcheng": "增城区"}
CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")


class _Text(HTMLParser):
    """The visible text of a page (no style, no script), and the alt texts of images."""

    def __init__(self):
        super().__init__()
        self.parts, self._skip = [], 0

    def handle_starttag(self, tag, attrs):
        self._skip += tag in ("style", "script")
        if tag == "img":
            self.parts += [v for k, v in attrs if k == "alt" and v]

    def handle_endtag(self, tag):
        self._skip -= tag in ("style", "script")

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def visible_text(html: str) -> str:
    p = _Text()
    p.feed(html)
    return " ".join(p.parts)


def _args(fake_run, maps, **kw):
    args = dict(month="2025-01", districts_csv=fake_run["districts"],
                diagnostics_json=fake_run["diagnostics"], modelled_csv=fake_run["modelled"],
                selected_csv=fake_run["selected"], stations_yaml=fake_run["stations"], maps_dir=maps,
                power_heatmap=fake_run["heatmap"], power_summary=fake_run["summary"], days=["20250101"],
                hours_per_day=4, budgets={"2025": {"Liwan": 4000, "Guangzhou": 30000}},
                districts_geojson=fake_run["geojson"], config={"month": "2025-01"})
    args.update(kw)
    return args


@pytest.fixture
def maps(fake_run, tmp_path):
    out = tmp_path / "maps"
    make_all_figures(fake_run["posterior"], fake_run["districts"], fake_run["modelled"],
                     fake_run["selected"], fake_run["stations"], fake_run["geojson"], out,
                     days=["20250101"], hours_per_day=4)
    return out


def test_chinese_report_has_no_english_sentence(fake_run, maps, caplog):
    with caplog.at_level(logging.WARNING, logger="products"):
        html = build_report(**_args(fake_run, maps, language="zh"))
    assert "report language" not in caplog.text      # every text had its Chinese
    text = visible_text(html)
    assert '<html lang="zh-CN">' in html
    for en in ("City total", "Districts", "Carbon budgets", "Missing", "Provenance", "Diagnostics",
               "prior (kt)", "The demo world", "Demo run", "What each station contributes"):
        assert en not in text, en
    for zh in ("全市总量", "各区", "碳预算", "先验（千吨）", "演示世界的真实全市总量为", "2025年1月"):
        assert zh in text, zh
    # numbers as in English, units and percent the Chinese way: 70,001.5 t -> 70.0 ± 4.1 千吨
    assert "70.0 ± 4.1 千吨" in text and "误差 +0.7%" in text
    # district names in characters (fake run: 3 districts), the city row 广州市
    for name in ("荔湾区", "越秀区", "海珠区", "广州市"):
        assert f'<td class="l">{name}</td>' in html, name
    # the English words left are names, units, symbols and identifiers from the data
    words = set(re.findall(r"[A-Za-z]{4,}", text))
    allowed = {"HYSPLIT", "RMSE", "DOFS", "cholesky", "Bee", "station", "script", "alert", "sha256",
               "UTC", "docs", "report", "inversion", "month", "config", "budgets", "prior", "post", "year",
               "flux", "json", "diagnostics", "districts", "selected", "modelled", "geojson", "stations",
               "yaml", "summary", "heatmap", "results", "power", "posterior", "numpy", "pandas", "xarray",
               "netCDF", "scipy", "gzcarbon", "pystilt", "numba", "matplotlib", "cartopy", "snakemake", "jinja"}
    left = {w for w in words if w not in allowed and not re.search(r"\d", w)}
    # package versions and file paths of the provenance are data
    prov = visible_text(html.split("溯源信息")[1])
    left -= set(re.findall(r"[A-Za-z]{4,}", prov))
    assert not left, sorted(left)


def test_every_chinese_character_is_in_the_shipped_font(fake_run, maps):
    """fontTools cmap of the shipped subset against every character of the catalogue, the 11 district
    names of config/districts.geojson and the rendered Chinese report (text and figure captions)."""
    with TTFont(fonts.FONT) as font:
        cmap = {chr(c) for c in font.getBestCmap()}
    html = build_report(**_args(fake_run, maps, language="zh"))
    geo = json.loads((REPO / "config" / "districts.geojson").read_text(encoding="utf-8"))
    texts = {"catalogue": "".join(ZH.values()), "report": visible_text(html),
             "districts": "".join(f["properties"]["name"] for f in geo["features"])}
    for what, text in texts.items():
        chars = set(CJK.findall(text))
        assert chars, what
        assert chars <= cmap, (what, sorted(chars - cmap))
    assert fonts.missing_chars(texts["report"]) == []
    assert fonts.missing_chars("荔湾区 龘") == ["龘"]     # a character outside the subset is found
    # the font is small (a subset) and its OFL licence ships beside it
    assert fonts.FONT.stat().st_size < 400_000
    assert "SIL OPEN FONT LICENSE Version 1.1" in (fonts.FONT.parent / "OFL.txt").read_text()


def test_the_embedded_font_is_the_subset_of_the_page(fake_run, maps):
    import base64
    import io

    html = build_report(**_args(fake_run, maps, language="zh"))
    m = re.search(r'@font-face\{font-family:"gzcarbon CJK subset";src:url\(data:font/otf;base64,([A-Za-z0-9+/=]+)\)', html)
    assert m
    with TTFont(io.BytesIO(base64.b64decode(m.group(1)))) as font:
        embedded = {chr(c) for c in font.getBestCmap()}
    page = set(CJK.findall(visible_text(html)))
    assert page <= embedded and len(embedded) < len(fonts.charset())
    # the English report has no font and no Chinese character
    en = build_report(**_args(fake_run, maps, language="en"))
    assert "@font-face" not in en and not CJK.search(en) and '<html lang="en">' in en


def test_both_languages_chinese_first(fake_run, maps):
    html = build_report(**_args(fake_run, maps, language="both"))
    assert "<h2>全市总量 / City total</h2>" in html
    assert html.index('<p lang="zh" class="muted">本时段的 CO₂') < html.index('<p lang="en" class="muted">CO₂ emitted')
    assert '<td class="l">荔湾区 / Liwan</td>' in html
    assert '<span lang="zh">先验（千吨）</span><br><span lang="en">prior (kt)</span>' in html


def test_eleven_district_names_in_characters(fake_run, maps, tmp_path):
    """The real districts file: each of the 11 districts of Guangzhou in Chinese characters."""
    import pandas as pd

    t = pd.read_csv(fake_run["districts"])
    rows = [dict(t.iloc[i % 3], district=name) for i, name in enumerate(DISTRICTS_11)]
    city = t[t["district"] == "Guangzhou"].to_dict("records")
    pd.DataFrame(rows + city).to_csv(tmp_path / "districts11.csv", index=False)
    html = build_report(**_args(fake_run, maps, language="zh", districts_csv=tmp_path / "districts11.csv",
                                districts_geojson=REPO / "config" / "districts.geojson", budgets={}))
    table = html.split("下载各区表格")[0]
    for en, zh in DISTRICTS_11.items():
        assert f'<td class="l">{zh}</td>' in table, (en, zh)
        assert f">{en}<" not in table


def test_language_from_the_config_and_unknown_language(fake_run, maps, tmp_path):
    from products.settings import report_settings

    assert report_settings({"report": {"language": "zh"}})["language"] == "zh"
    assert report_settings({})["language"] == "both"
    with pytest.raises(ValueError, match="report.language"):
        build_report(**_args(fake_run, maps, language="fr"))
    out = write_report(tmp_path / "r.html", **_args(fake_run, maps, **report_settings({"report": {"language": "zh"}})))
    assert "全市总量" in out.read_text(encoding="utf-8")


def test_figure_labels_in_chinese_drawn_with_the_shipped_font(fake_run, tmp_path, monkeypatch):
    """Every text matplotlib draws in the zh figures (titles, axes, legends, district names) is
    Chinese where it is words, every character is in the shipped font, and matplotlib reports no
    missing glyph (it warns 'Glyph … missing from font(s)' when it has to draw a box)."""
    import warnings

    import matplotlib.text

    from products import maps as maps_mod
    from products.sections import station_contribution_tables

    drawn: dict[str, list[str]] = {}
    save, png = maps_mod._save, maps_mod._png_bytes

    def texts(fig):
        return [t.get_text() for t in fig.findobj(matplotlib.text.Text) if t.get_text()]

    def record_save(fig, path):
        drawn[Path(path).name] = texts(fig)
        return save(fig, path)

    def record_png(fig):
        drawn[f"png{len(drawn)}"] = texts(fig)
        return png(fig)

    monkeypatch.setattr(maps_mod, "_save", record_save)
    monkeypatch.setattr(maps_mod, "_png_bytes", record_png)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*missing from font")
        make_all_figures(fake_run["posterior"], fake_run["districts"], fake_run["modelled"],
                         fake_run["selected"], fake_run["stations"], fake_run["geojson"], tmp_path / "maps",
                         days=["20250101"], hours_per_day=4, language="zh")
        names_zh = {"Liwan": "荔湾区", "Yuexiu": "越秀区", "Haizhu": "海珠区"}
        diag = json.loads(fake_run["diagnostics"].read_text())
        maps_mod.station_contribution_png(station_contribution_tables(diag["station_contributions"])[0],
                                          "zh", names_zh)
    assert len(drawn) == 9 + 1      # 4 maps, district bars, residuals, availability, 2 time series + heat map
    everything = "\n".join(t for v in drawn.values() for t in v)
    for label in ("先验 CO₂ 通量", "各区 CO₂ 排放", "荔湾区", "越秀区", "海珠区", "残差（全部站点）",
                  "选定小时数 / 窗口小时数", "观测与模拟 CO₂", "去掉各站点后损失的不确定性降低", "广州市"):
        assert label in everything, label
    for en in ("Prior CO₂ flux", "District CO₂ emissions", "Liwan", "Residuals", "observed", "Guangzhou"):
        assert en not in everything, en
    chars = set(CJK.findall(everything))
    assert chars and chars <= fonts.charset(), sorted(chars - fonts.charset())


def test_a_character_outside_the_font_is_listed_as_missing(fake_run, maps, tmp_path, caplog):
    geo = json.loads(fake_run["geojson"].read_text(encoding="utf-8"))
    geo["features"][0]["properties"]["name"] = "龘区"      # not a Guangzhou district: not in the subset
    path = tmp_path / "odd.geojson"
    path.write_text(json.dumps(geo, ensure_ascii=False), encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="products"):
        html = build_report(**_args(fake_run, maps, language="zh", districts_geojson=path))
    missing = visible_text(html.split("<h2>缺失项</h2>")[1])
    assert "随附中文字体中没有字形的字符：龘" in missing
    assert "not in the shipped CJK font: 龘" in caplog.text
