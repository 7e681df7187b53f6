"""Mole-fraction units by meaning, not by spelling.

The hourly files hold CO2 in ppm (µmol mol-1) and CH4, CO in ppb (nmol mol-1) (:data:`UNITS`).
Files written by networks name their unit in many spellings: ObsPack ``mol mol-1``,
``micromol mol-1``, ``nanomol mol-1``; ICOS ``µmol.mol-¹``, ``nmol.mol-¹``; others ``ppm``,
``ppb``, ``umol/mol``, ``nmol mol^-1``, ``1e-6``, ``1e-9``. :func:`mole_fraction_factor` reads
the unit as a product of factors: an optional number, ``ppm``/``ppb``/``ppt`` (``ppmv`` ...,
``parts per million``), and ``mol`` terms with an SI prefix and an exponent
(``mol-1``, ``mol^-1``, ``mol**-1``, ``/mol``); the ``mol`` exponents must cancel (a mole fraction
is dimensionless), anything else is refused with :class:`~stations.errors.UnitError`.
"""
from __future__ import annotations

import re

from .errors import UnitError

#: units of the hourly files per species
UNITS = {"co2": "ppm", "ch4": "ppb", "co": "ppb"}
#: species units as a fraction (mol mol-1)
UNIT_FRACTION = {"co2": 1e-6, "ch4": 1e-9, "co": 1e-9}
#: Picarro analysers write CH4 and CO in ppm; the hourly files hold them in ppb
RAW_TO_UNITS = {"co2": 1.0, "ch4": 1000.0, "co": 1000.0}

_PREFIX = {"": 1.0, "m": 1e-3, "milli": 1e-3, "u": 1e-6, "µ": 1e-6, "μ": 1e-6, "micro": 1e-6,
           "n": 1e-9, "nano": 1e-9, "p": 1e-12, "pico": 1e-12, "f": 1e-15, "femto": 1e-15}
_PARTS = {"ppm": 1e-6, "ppmv": 1e-6, "ppb": 1e-9, "ppbv": 1e-9, "ppt": 1e-12, "pptv": 1e-12}
_WORDS = {"parts per million": "ppm", "parts per billion": "ppb", "parts per trillion": "ppt"}
_SUPERSCRIPT = str.maketrans("⁻¹²³⁰⁴⁵⁶⁷⁸⁹", "-1230456789")
#: words that describe, not scale, a mole fraction ("µmol mol-1 in dry air")
_IGNORED = {"dry", "air", "in", "of", "(dry", "air)", "dryair", "moist"}
_MOL = re.compile(r"^(?P<prefix>[a-zµμ]*?)mole?s?(?:\^|\*\*)?(?P<exp>[-+]?\d+)?$")


def _tokens(text: str) -> list[str]:
    s = text.translate(_SUPERSCRIPT).strip().lower()
    for words, short in _WORDS.items():
        s = s.replace(words, short)
    s = re.sub(r"\s*/\s*", " /", s)                  # a/b -> a /b
    s = re.sub(r"(?<=[a-zµμ\d])\.(?=[a-zµμ])", " ", s)  # nmol.mol-1 -> nmol mol-1
    s = s.replace("**", "^").replace("*", " ").replace("{", "").replace("}", "")
    return [t for t in s.split() if t not in _IGNORED]


def _token_factor(tok: str, text: str) -> tuple[float, int]:
    """(factor, mol exponent) of one token."""
    inverse = tok.startswith("/")
    tok = tok.lstrip("/")
    try:
        val = float(tok)
        return (1.0 / val if inverse else val), 0
    except ValueError:
        pass
    if tok in _PARTS:
        return (1.0 / _PARTS[tok] if inverse else _PARTS[tok]), 0
    m = _MOL.match(tok)
    if m is None or m.group("prefix") not in _PREFIX:
        raise UnitError(f"unit {text!r}: the term {tok!r} is not a mole-fraction unit")
    exp = int(m.group("exp") or 1) * (-1 if inverse else 1)
    return _PREFIX[m.group("prefix")] ** exp, exp


def mole_fraction_factor(text: str) -> float:
    """Value of one unit of ``text`` in mol mol-1 (``"nmol mol-1"`` -> 1e-9).

    Raises :class:`~stations.errors.UnitError` when ``text`` is not a mole fraction."""
    toks = _tokens(str(text))
    if not toks:
        raise UnitError(f"unit {text!r} is empty")
    factor, mol = 1.0, 0
    for tok in toks:
        f, e = _token_factor(tok, text)
        factor *= f
        mol += e
    if mol != 0:
        raise UnitError(f"unit {text!r} is not a mole fraction (mol to the power {mol} remains)")
    return factor


def unit_factor(units: str, species: str, where: str = "", field: str = "value") -> float:
    """Factor converting values in ``units`` to the species units (ppm CO2, ppb CH4/CO).

    ``where`` (the file) and ``field`` (the variable or header line) name the source in the
    error."""
    try:
        return mole_fraction_factor(units) / UNIT_FRACTION[species]
    except UnitError as exc:
        raise UnitError(f"{where}: {field} has units {units!r}: {exc}; give a mole-fraction unit "
                        "such as 'mol mol-1', 'micromol mol-1', 'nmol mol-1', 'ppm' or 'ppb' "
                        "(fix the attribute or header line)") from None
