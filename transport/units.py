"""Footprint units by meaning, not by spelling: a small UDUNITS-style parser.

Neither cf-units nor pint is installed with the pipeline, so unit strings are parsed here into a
factor and powers of the base quantities (``mol``, ``m``, ``s``, ``kg``). Grammar (UDUNITS-2's
for the cases footprint files use): products by space, ``.`` or ``*``; quotients by ``/`` (left
to right: ``a/b/c`` = a / (b c)); powers by a trailing signed integer (``m-2``, ``umol-1``,
``m2``) or ``^``/``**``; parentheses; SI prefixes (``u``/``µ``, ``n``, ``m``, ``k``, ...);
``ppm``/``ppb``/``ppt`` = 1e-6/1e-9/1e-12 ``mol/mol``; ``1`` and ``-`` are dimensionless.

Examples that all mean ppm / (µmol m-2 s-1) (factor 1 to it): ``ppm (umol-1 m2 s)`` (STILT-R),
``ppm / (umol m-2 s-1)``, ``(mol/mol)/(mol/m2/s)`` (NAME/openghg, PARIS), ``m2 s mol-1``,
``ppb / (nmol m-2 s-1)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

BASE = ("mol", "m", "s", "kg")
PREFIX = {"Y": 1e24, "Z": 1e21, "E": 1e18, "P": 1e15, "T": 1e12, "G": 1e9, "M": 1e6, "k": 1e3,
          "h": 1e2, "da": 1e1, "d": 1e-1, "c": 1e-2, "m": 1e-3, "u": 1e-6, "n": 1e-9,
          "p": 1e-12, "f": 1e-15}
#: Named units: factor and base powers.
NAMED = {
    "mol": (1.0, {"mol": 1}), "m": (1.0, {"m": 1}), "s": (1.0, {"s": 1}), "g": (1e-3, {"kg": 1}),
    "kg": (1.0, {"kg": 1}), "sec": (1.0, {"s": 1}), "second": (1.0, {"s": 1}),
    "h": (3600.0, {"s": 1}), "hr": (3600.0, {"s": 1}), "hour": (3600.0, {"s": 1}),
    "ppm": (1e-6, {}), "ppmv": (1e-6, {}), "ppb": (1e-9, {}), "ppbv": (1e-9, {}),
    "ppt": (1e-12, {}), "1": (1.0, {}), "-": (1.0, {}),
}
_TOKEN = re.compile(r"\s*(\(|\)|/|\*\*|\*|\^|\.(?=\s*[A-Za-zµ(])|[A-Za-zµ%-][A-Za-zµ]*[+-]?\d*|[+-]?\d+)")


class UnitError(ValueError):
    """A unit string that cannot be parsed or converted."""


@dataclass(frozen=True)
class Unit:
    factor: float
    powers: tuple[tuple[str, int], ...]  # sorted, nonzero

    @classmethod
    def make(cls, factor: float, powers: dict) -> "Unit":
        return cls(float(factor), tuple(sorted((k, v) for k, v in powers.items() if v)))

    def __mul__(self, other: "Unit") -> "Unit":
        p = dict(self.powers)
        for k, v in other.powers:
            p[k] = p.get(k, 0) + v
        return Unit.make(self.factor * other.factor, p)

    def __pow__(self, n: int) -> "Unit":
        return Unit.make(self.factor ** n, {k: v * n for k, v in self.powers})

    def dims(self) -> dict:
        return dict(self.powers)


def _named(word: str, text: str) -> Unit:
    word = word.replace("µ", "u")
    if word in NAMED:
        f, p = NAMED[word]
        return Unit.make(f, p)
    for pre in sorted(PREFIX, key=len, reverse=True):
        if word.startswith(pre) and word[len(pre):] in NAMED and word[len(pre):] not in ("1", "-"):
            f, p = NAMED[word[len(pre):]]
            return Unit.make(PREFIX[pre] * f, p)
    raise UnitError(f"unit {text!r}: unknown unit {word!r}")


def parse_unit(text: str) -> Unit:
    """Parse a unit string (grammar in the module docstring) into a :class:`Unit`."""
    s = str(text).strip()
    if s in ("", "1", "-"):
        return Unit.make(1.0, {})
    tokens, pos = [], 0
    while pos < len(s):
        m = _TOKEN.match(s, pos)
        if not m or m.end() == pos:
            raise UnitError(f"unit {text!r}: cannot read from character {pos} ({s[pos:]!r})")
        tokens.append(m.group(1))
        pos = m.end()
    unit, rest = _product(tokens, text)
    if rest:
        raise UnitError(f"unit {text!r}: unexpected {' '.join(rest)!r}")
    return unit


def _product(tokens: list[str], text: str) -> tuple[Unit, list[str]]:
    unit, tokens = _power(tokens, text)
    while tokens and tokens[0] != ")":
        op = tokens[0]
        if op == "/":
            rhs, tokens = _power(tokens[1:], text)
            unit = unit * rhs ** -1
        else:
            if op in ("*", "."):
                tokens = tokens[1:]
            rhs, tokens = _power(tokens, text)
            unit = unit * rhs
    return unit, tokens


def _power(tokens: list[str], text: str) -> tuple[Unit, list[str]]:
    if not tokens:
        raise UnitError(f"unit {text!r}: ends too early")
    tok, tokens = tokens[0], tokens[1:]
    if tok == "(":
        unit, tokens = _product(tokens, text)
        if not tokens or tokens[0] != ")":
            raise UnitError(f"unit {text!r}: unbalanced parenthesis")
        tokens = tokens[1:]
        if tokens and re.fullmatch(r"[+-]\d+", tokens[0]):  # "(umol m-2 s-1)-1"
            unit, tokens = unit ** int(tokens[0]), tokens[1:]
    elif re.fullmatch(r"[+-]?\d+", tok):
        unit = Unit.make(float(tok), {})
    else:
        m = re.fullmatch(r"([A-Za-zµ%-][A-Za-zµ]*?)([+-]?\d+)?", tok)
        word, exp = m.group(1), m.group(2)
        unit = _named(word, text) ** (int(exp) if exp else 1)
    if tokens and tokens[0] in ("^", "**"):
        if len(tokens) < 2 or not re.fullmatch(r"[+-]?\d+", tokens[1]):
            raise UnitError(f"unit {text!r}: power without an integer")
        unit = unit ** int(tokens[1])
        tokens = tokens[2:]
    return unit, tokens


#: ppm / (µmol m-2 s-1) = mol-1 m2 s, factor 1.
FOOT = Unit.make(1.0, {"mol": -1, "m": 2, "s": 1})
#: FLEXPART's native backward output (residence time per unit density): s m3 kg-1.
RESIDENCE = Unit.make(1.0, {"s": 1, "m": 3, "kg": -1})


def factor_to(text: str, target: Unit = FOOT) -> float:
    """Factor from ``text`` to ``target``; :class:`UnitError` when the dimensions differ."""
    u = parse_unit(text)
    if u.powers != target.powers:
        raise UnitError(f"unit {text!r} has dimensions {u.dims()}, not those of a footprint "
                        f"{target.dims()} (ppm / (umol m-2 s-1))")
    return u.factor / target.factor
