"""The HTML report: self-contained, escaped, and carrying the district table values."""

import json
import re

import pandas as pd
import pytest

from products.maps import make_all_figures
from products.report import build_report, fmt_kt, write_report


def _report(fake_run, tmp_path, **kw):
    maps = tmp_path / "maps"
    make_all_figures(fake_run["posterior"], fake_run["districts"], fake_run["modelled"],
                     fake_run["selected"], fake_run["stations"], fake_run["geojson"], maps,
                     days=["20250101"], hours_per_day=4)
    args = dict(month="2025-01", districts_csv=fake_run["districts"],
                diagnostics_json=fake_run["diagnostics"], modelled_csv=fake_run["modelled"],
                selected_csv=fake_run["selected"], stations_yaml=fake_run["stations"],
                maps_dir=maps, power_heatmap=fake_run["heatmap"], power_summary=fake_run["summary"],
                days=["20250101"], hours_per_day=4, config={"month": "2025-01"},
                language="en")   # the English report's content (Chinese: test_report_language.py)
    args.update(kw)
    out = write_report(tmp_path / "report.html", **args)
    return out.read_text(encoding="utf-8")


def test_report_content(fake_run, tmp_path):
    html = _report(fake_run, tmp_path)
    # district table values (kt, one decimal) and city total with sigma and truth
    for _, r in fake_run["table"].iterrows():
        for c in ("prior_t", "posterior_t", "posterior_sigma_t", "truth_t"):
            assert f"<td class=\"\">{fmt_kt(r[c])}</td>" in html, (r["district"], c)
    assert fmt_kt(70001.5) == "70.0" and fmt_kt(12345.6) == "12.3"
    assert "70.0 ± 4.1 kt" in html            # posterior city total ± sigma
    assert "69.5 kt" in html                   # truth
    # recovery sentence: posterior error 501.5 t = +0.7 %, 0.1 sigma; prior error +1.3 %
    assert "error +0.7 %" in html and "0.1 σ: within 1 σ" in html and "error +1.3 %" in html
    # diagnostics, availability (AAA 4/4 hours, BBB 3/4 hours), power summary
    assert "0.93" in html and "4.2" in html
    # the district factor as a percentage change with its sigma
    assert re.search(r">Liwan<.*?>district<.*?>8\.4</td><td class=\"\">25\.0</td><td class=\"\">21\.1</td>", html, re.S)
    assert re.search(r">AAA<.*?>4</td><td class=\"\">4</td><td class=\"\">100</td>", html, re.S)
    assert re.search(r">BBB<.*?>3</td><td class=\"\">4</td><td class=\"\">75</td>", html, re.S)
    assert "0.412" in html
    # station contributions: AAA alone 1 − 7000/11000 = 36.4 %, loses 100·(6000 − 4100)/11000 = 17.3 points
    # for the city and most in Liwan (100·(4000 − 2000)/5000 = 40.0); BBB: 18.2 %, 8.2, Haizhu 42.9
    assert "What each station contributes" in html
    assert re.search(r">AAA<.*?>36\.4</td><td class=\"\">17\.3</td><td class=\"l\">Liwan</td>"
                     r"<td class=\"\">40\.0</td>", html, re.S)
    assert re.search(r">BBB<.*?>18\.2</td><td class=\"\">8\.2</td><td class=\"l\">Haizhu</td>"
                     r"<td class=\"\">42\.9</td>", html, re.S)
    # every figure inlined: 9 from maps + power heat map + station contributions
    assert html.count("data:image/png;base64,") == 11
    assert "Nothing missing." in html


@pytest.mark.parametrize("language", ["en", "both"])
def test_report_is_self_contained(fake_run, tmp_path, language):
    html = _report(fake_run, tmp_path, language=language, districts_geojson=fake_run["geojson"])
    refs = re.findall(r"""(?:src|href)\s*=\s*["']?([^"'\s>]+)""", html, flags=re.I)
    assert refs, "expected inline images"
    assert all(r.startswith("data:") for r in refs), [r[:40] for r in refs if not r.startswith("data:")]
    assert "http://" not in html and "https://" not in html
    assert "@import" not in html
    # CSS urls: only the embedded CJK font (with Chinese text), as a data: URI
    urls = re.findall(r"url\(([^)]*)\)", html)
    assert all(u.startswith("data:font/otf;base64,") for u in urls), urls
    assert len(urls) == (language != "en")


def test_report_escapes_input_text(fake_run, tmp_path):
    evil = fake_run["evil"]
    # also a crafted site id in the data files and a crafted power-summary cell
    m = pd.read_csv(fake_run["summary"])
    m.loc[0, "district"] = evil
    m.to_csv(fake_run["summary"], index=False)
    html = _report(fake_run, tmp_path)
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert "Bee &amp; station" in html


def test_report_lists_missing_items(fake_run, tmp_path):
    (fake_run["heatmap"]).unlink()
    sel = pd.read_csv(fake_run["selected"])
    sel[sel["site"] != "BBB"].to_csv(fake_run["selected"], index=False)
    html = _report(fake_run, tmp_path, power_summary=None)
    missing = html.split("<h2>Missing</h2>")[1].split("<h2>")[0]
    assert "power factor heat map" in missing
    assert "power summary table" in missing
    assert "observations of site BBB" in missing
    assert "Nothing missing." not in html


def test_report_without_truth_has_no_recovery_sentence(fake_run, tmp_path):
    t = fake_run["table"].copy()
    t["truth_t"] = float("nan")
    t.to_csv(fake_run["districts"], index=False)
    html = build_report(month="2025-01", districts_csv=fake_run["districts"],
                        diagnostics_json=fake_run["diagnostics"], modelled_csv=fake_run["modelled"],
                        selected_csv=fake_run["selected"], stations_yaml=fake_run["stations"],
                        maps_dir=tmp_path, days=["20250101"], language="en")
    assert "truth" not in html.split("<h2>Districts</h2>")[0].lower().split("<h2>city total</h2>")[1]
    assert "Demo run" not in html


def test_template_escapes_district_and_site_names(fake_run, tmp_path):
    """A district (districts.csv), a site id (diagnostics.json) and a station name with
    markup reach the page as text: autoescaping of the templates, not a hand-written escape."""
    evil = fake_run["evil"]
    t = fake_run["table"].copy()
    t.loc[0, "district"] = evil
    t.to_csv(fake_run["districts"], index=False)
    diag = json.loads(fake_run["diagnostics"].read_text())
    diag["per_site"]["B<b>B"] = {"prior_mean": 1.0}
    diag["largest_normalised_residuals"] = [{"site": "B<b>B", "time": "2025-01-01T05:00:00", "observed": 430.0,
                                             "prior_model": 420.0, "innovation_ppm": 10.0, "sigma_ppm": 2.0,
                                             "normalised": 5.0, "used": True}]
    fake_run["diagnostics"].write_text(json.dumps(diag))
    html = _report(fake_run, tmp_path)
    assert "<script" not in html.lower() and "B<b>B" not in html
    esc = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"
    # the district row of the table, with its numbers: 12,345.6 t = 12.3 kt prior, 13.0 kt posterior
    assert re.search(rf'<td class="l">{re.escape(esc)}</td><td class="">12\.3</td><td class="">5\.0</td>'
                     r'<td class="">13\.0</td>', html)
    assert html.count("B&lt;b&gt;B") == 2     # residuals per site and largest normalised residuals
