"""The report's languages: one place for every translated text (config ``report.language``).

API (small on purpose; every report section and figure uses only this):

- :data:`LANGUAGES` = ``("zh", "en", "both")``.
- :func:`tr` ``(msg, lang, **fields) -> str``: ``msg`` is either a dict ``{"en": ..., "zh": ...}``
  (write new captions and sentences this way, both keys required) or an English string, looked up
  in the catalogue :data:`ZH` (English text -> Chinese text; an English string missing from the
  catalogue is a :class:`MissingTranslation` error in ``zh``/``both``, never a silent English
  fallback). ``fields`` are ``str.format`` fields of the text; a field value may itself be a
  ``{"en", "zh"}`` dict (e.g. a date written differently per language). ``lang`` ``"en"`` gives the
  English text, ``"zh"`` the Chinese, ``"both"`` Chinese + ``sep`` + English (``sep`` default
  ``" / "``; for short labels: headings, table headers, legend entries).
- :func:`parts` ``(msg, lang, **fields) -> list[(code, text)]``: the same text as one
  ``(language code, text)`` per shown language (``both``: Chinese first, then English) for blocks
  (captions, sentences, paragraphs) that the template draws one per line with ``lang=`` set.
- :func:`fmt_month`, :func:`fmt_date`: ``YYYY-MM`` / ``YYYY-MM-DD`` as ``{"en", "zh"}`` fields
  (zh: ``2025年1月``, ``2025年1月1日``).
- :func:`district_name` ``(name_en, lang, names_zh)``: a district's name for the language
  (zh: Chinese characters from the districts GeoJSON ``name``; both: ``荔湾区 Liwan``).

Numbers: both languages write digits with ``,`` grouping by three and ``.`` as decimal mark (the
convention of the Guangzhou and national statistical yearbooks); what differs is in the texts
themselves: percent written ``12.3%`` in Chinese and ``12.3 %`` in English, units ``千吨`` (kt)
and ``吨`` (t), dates ``2025年1月1日``.

Templates use the Jinja filters ``t`` (= :func:`tr`) and ``tp`` (= :func:`parts`) that
``products.report.environment`` binds to the report's language.
"""

from __future__ import annotations

from collections.abc import Mapping

LANGUAGES = ("zh", "en", "both")
SEP = " / "


class MissingTranslation(KeyError):
    """An English text without a Chinese entry in the catalogue (add it to ``ZH``)."""


def _check_lang(lang: str) -> None:
    if lang not in LANGUAGES:
        raise ValueError(f"report language {lang!r} unknown; use one of {', '.join(LANGUAGES)} "
                         "(config report.language).")


def _one(msg, code: str) -> str:
    """The text of ``msg`` in one language code (``en`` or ``zh``)."""
    if isinstance(msg, Mapping):
        try:
            return str(msg[code])
        except KeyError:
            raise MissingTranslation(f"text {dict(msg)!r} has no {code!r} entry") from None
    msg = "" if msg is None else str(msg)
    if code == "en" or msg == "":
        return msg
    try:
        return ZH[msg]
    except KeyError:
        raise MissingTranslation(f"no Chinese text for {msg!r}: add it to products.i18n.ZH") from None


def _fill(text: str, code: str, fields: dict) -> str:
    if not fields:
        return text
    return text.format(**{k: _one(v, code) if isinstance(v, Mapping) else v for k, v in fields.items()})


def codes(lang: str) -> tuple[str, ...]:
    """The language codes shown for ``lang``: ``("zh",)``, ``("en",)`` or ``("zh", "en")``."""
    _check_lang(lang)
    return ("zh", "en") if lang == "both" else (lang,)


def parts(msg, lang: str, **fields) -> list[tuple[str, str]]:
    """``msg`` as ``[(code, text), ...]``, one per shown language (Chinese first)."""
    return [(c, _fill(_one(msg, c), c, fields)) for c in codes(lang)]


def tr(msg, lang: str, sep: str = SEP, **fields) -> str:
    """``msg`` (a ``{"en", "zh"}`` dict or a catalogue English text) in ``lang`` (zh, en, both)."""
    texts = [t for _, t in parts(msg, lang, **fields)]
    if len(texts) == 2 and texts[0] == texts[1]:   # e.g. a site id or a number: once is enough
        return texts[0]
    return sep.join(texts)


def fmt_month(month: str) -> dict:
    """``YYYY-MM`` as ``{"en": "2025-01", "zh": "2025年1月"}``."""
    y, m = str(month)[:7].split("-")
    return {"en": str(month), "zh": f"{int(y)}年{int(m)}月"}


def fmt_date(day) -> dict:
    """A date (``YYYY-MM-DD``, ``YYYYMMDD`` or ISO time) as ``{"en": <as given>, "zh": "2025年1月1日"}``;
    with a time of day the Chinese keeps it after the date (``2025年1月1日 04:00``)."""
    s = str(day)
    d, _, rest = s.replace("T", " ").partition(" ")
    digits = d.replace("-", "")
    if len(digits) != 8 or not digits.isdigit():
        return {"en": s, "zh": s}
    zh = f"{int(digits[:4])}年{int(digits[4:6])}月{int(digits[6:])}日"
    return {"en": s, "zh": f"{zh} {rest[:5]}".strip() if rest else zh}


def district_name(name_en: str, lang: str, names_zh: Mapping[str, str] | None = None) -> str:
    """A district (or the city row) in ``lang``: Chinese characters from ``names_zh`` (name_en ->
    name, the districts GeoJSON), the city ``Guangzhou`` as 广州市; a name without a Chinese entry
    stays as given (names come from input files: they are not in the catalogue)."""
    name_en = str(name_en)
    zh = dict(names_zh or {}).get(name_en) or CITY_ZH.get(name_en)
    if zh is None:
        return name_en
    return tr({"en": name_en, "zh": zh}, lang, sep=" ")


#: the city row of the district tables
CITY_ZH = {"Guangzhou": "广州市"}

#: English text -> Chinese text. Keys are exactly the English the report shows; ``{name}`` fields
#: must appear in both. Keep sorted by section.
ZH: dict[str, str] = {}
