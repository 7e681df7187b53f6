"""products.i18n: the one translation mechanism of the report (config report.language)."""

import pytest

from gzcarbon.config import load_config
from products.i18n import (ZH, LANGUAGES, MissingTranslation, district_name, fmt_date, fmt_month,
                           parts, tr)


def test_dict_messages_in_each_language_with_fields():
    msg = {"en": "{n} hours on {day}", "zh": "{day}共 {n} 小时"}
    day = fmt_date("2025-01-02T04:00:00")
    assert tr(msg, "en", n=3, day=day) == "3 hours on 2025-01-02T04:00:00"
    assert tr(msg, "zh", n=3, day=day) == "2025年1月2日 04:00共 3 小时"
    assert tr(msg, "both", n=3, day=day) == "2025年1月2日 04:00共 3 小时 / 3 hours on 2025-01-02T04:00:00"
    assert parts(msg, "both", n=1, day="x") == [("zh", "x共 1 小时"), ("en", "1 hours on x")]
    assert fmt_month("2025-11") == {"en": "2025-11", "zh": "2025年11月"}
    assert fmt_date("20250105")["zh"] == "2025年1月5日"


def test_catalogue_keys_and_missing_translations_are_errors():
    assert tr("Some text nobody wrote", "en") == "Some text nobody wrote"   # English is the key
    with pytest.raises(MissingTranslation, match="add it to products.i18n.ZH"):
        tr("Some text nobody wrote", "zh")
    with pytest.raises(MissingTranslation, match="no 'zh' entry"):
        tr({"en": "only English"}, "both")
    with pytest.raises(ValueError, match="report.language"):
        tr("x", "fr")
    # every catalogue entry keeps its format fields in both languages
    import string
    for en, zh in ZH.items():
        f_en = {f for _, f, _, _ in string.Formatter().parse(en) if f}
        f_zh = {f for _, f, _, _ in string.Formatter().parse(zh) if f}
        assert f_en == f_zh, en


def test_district_names_and_config_field():
    names = {"Liwan": "荔湾区"}
    assert district_name("Liwan", "zh", names) == "荔湾区"
    assert district_name("Liwan", "en", names) == "Liwan"
    assert district_name("Liwan", "both", names) == "荔湾区 Liwan"
    assert district_name("Guangzhou", "zh") == "广州市"
    assert district_name("Nowhere", "zh", names) == "Nowhere"
    assert load_config({}).report.language in LANGUAGES
    assert load_config({"report": {"language": "zh"}}).report.language == "zh"
    with pytest.raises(Exception, match="report.language"):
        load_config({"report": {"language": "fr"}})
