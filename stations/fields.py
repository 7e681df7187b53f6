"""Fast splitting of whitespace-separated text records into numbers, with per-line accounting.

:func:`scan_fields` walks the bytes of a file once: for every line it counts the fields, checks
that every numeric field is a number (``nan``/``inf`` count as numbers) and converts the fields the
caller asks for to ``float64``. The same function runs as plain Python (:func:`scan_fields_py`,
the reference used by the tests) and compiled by numba (:func:`scan_fields`; on Picarro files
about 3× faster than ``pandas.read_csv`` of the same files, see benchmarks/stations.py).

Number syntax: ``[+-]digits[.digits][(e|E)[+-]digits]``, ``.5`` and ``5.`` allowed, ``nan``,
``inf``, ``infinity`` (any case). Up to 17 significant digits are kept (the rest only scale the
exponent); a mantissa below 2**53 with a decimal exponent within ±22 converts exactly rounded,
other values to within a few units in the last place.
"""
from __future__ import annotations

import numpy as np

try:
    import numba
    import numba.extending
except ImportError:  # pragma: no cover - numba is a dependency; keep the plain path usable
    numba = None

#: exact powers of ten representable as float64
_POW10 = np.array([10.0 ** k for k in range(23)])
_MAX_M = 10 ** 17
_EXACT_M = 2 ** 53

SKIP_VALIDATE, SKIP_NUMERIC = -2, -1


def _jitable(f):
    """Callable from numba-compiled code, plain Python otherwise."""
    return numba.extending.register_jitable(f) if numba is not None else f


@_jitable
def _parse_float(buf, i, j, pow10):  # noqa: C901, PLR0912
    """(value, ok) of the number in ``buf[i:j]``.

    One function on purpose (complexity above the linter's limit): it is the inner loop of the
    numba-compiled scanner, one branch per character class of the number syntax; split into
    calls it would pass the cursor back and forth for every character."""
    p = i
    neg = False
    if buf[p] == 45:          # '-'
        neg = True
        p += 1
    elif buf[p] == 43:        # '+'
        p += 1
    if p < j and (buf[p] | 32) == 110:        # 'n': nan
        if j - p == 3 and (buf[p + 1] | 32) == 97 and (buf[p + 2] | 32) == 110:
            return np.nan, True
        return np.nan, False
    if p < j and (buf[p] | 32) == 105:        # 'i': inf / infinity
        n = j - p
        if (n == 3 or n == 8) and (buf[p + 1] | 32) == 110 and (buf[p + 2] | 32) == 102:
            return (-np.inf if neg else np.inf), True
        return np.nan, False
    m = 0
    e10 = 0
    digits = False
    while p < j and 48 <= buf[p] <= 57:
        if m < _MAX_M:
            m = m * 10 + (buf[p] - 48)
        else:
            e10 += 1
        digits = True
        p += 1
    if p < j and buf[p] == 46:                # '.'
        p += 1
        while p < j and 48 <= buf[p] <= 57:
            if m < _MAX_M:
                m = m * 10 + (buf[p] - 48)
                e10 -= 1
            digits = True
            p += 1
    if not digits:
        return np.nan, False
    if p < j and (buf[p] | 32) == 101:        # exponent
        p += 1
        eneg = False
        if p < j and (buf[p] == 45 or buf[p] == 43):
            eneg = buf[p] == 45
            p += 1
        ex = 0
        edig = False
        while p < j and 48 <= buf[p] <= 57:
            if ex < 100000:
                ex = ex * 10 + (buf[p] - 48)
            edig = True
            p += 1
        if not edig:
            return np.nan, False
        e10 += -ex if eneg else ex
    if p != j:
        return np.nan, False
    if m == 0:
        v = 0.0
    elif e10 >= 0:
        if e10 <= 22 and m < _EXACT_M:
            v = float(m) * pow10[e10]
        else:
            v = float(m) * 10.0 ** e10
    else:
        if -e10 <= 22 and m < _EXACT_M:
            v = float(m) / pow10[-e10]
        else:
            v = float(m) / 10.0 ** (-e10)
    return (-v if neg else v), True


def _scan(buf, start, col_out, values, nfields, bad, line_start, pow10):
    """Scan the lines of ``buf[start:]``; fill the output arrays; return the number of lines.

    ``col_out[k]``: output column of field ``k`` (>= 0), ``SKIP_NUMERIC`` (-1: not stored, but
    must be a number) or ``SKIP_VALIDATE`` (-2: text field, e.g. DATE, TIME). Fields beyond
    ``len(col_out)`` are counted only. ``values`` must be pre-filled (NaN).
    """
    n = len(buf)
    n_hdr = len(col_out)
    i = start
    li = 0
    while i < n:
        line_start[li] = i
        k = 0
        b = False
        while i < n and buf[i] != 10:
            c = buf[i]
            if c == 32 or c == 9 or c == 13:
                i += 1
                continue
            j = i
            while j < n:
                c = buf[j]
                if c == 10 or c == 32 or c == 9 or c == 13:
                    break
                j += 1
            if k < n_hdr:
                oc = col_out[k]
                if oc != -2:
                    v, ok = _parse_float(buf, i, j, pow10)
                    if not ok:
                        b = True
                    if oc >= 0:
                        values[li, oc] = v
            k += 1
            i = j
        nfields[li] = k
        bad[li] = b
        li += 1
        i += 1
    return li


if numba is not None:
    _scan_nb = numba.njit(cache=True, nogil=True)(_scan)
else:  # pragma: no cover
    _scan_nb = _scan


def _prepare(buf, start, col_out, n_out):
    n_lines = int(np.count_nonzero(buf[start:] == 10)) + 1
    values = np.full((n_lines, max(n_out, 1)), np.nan)
    nfields = np.zeros(n_lines, np.int32)
    bad = np.zeros(n_lines, np.bool_)
    line_start = np.zeros(n_lines, np.int64)
    return values, nfields, bad, line_start


def scan_fields(buf: np.ndarray, start: int, col_out: np.ndarray, n_out: int, compiled: bool = True):
    """Split the lines of ``buf[start:]`` (uint8 bytes) into fields.

    Returns ``values`` (n_lines, n_out) float64 (NaN where a line has no such field),
    ``nfields`` (fields per line), ``bad`` (a numeric field is not a number), ``line_start``
    (byte offset of every line). A final line without newline is included; an empty file part
    gives zero lines.
    """
    col_out = np.asarray(col_out, np.int64)
    buf = np.asarray(buf, np.uint8)
    values, nfields, bad, line_start = _prepare(buf, start, col_out, n_out)
    if compiled:
        n = _scan_nb(buf, int(start), col_out, values, nfields, bad, line_start, _POW10)
    else:   # bytes index to Python ints: no uint8 wrap-around in the plain path
        n = _scan(buf.tobytes(), int(start), col_out, values, nfields, bad, line_start, _POW10)
    return values[:n, :n_out], nfields[:n], bad[:n], line_start[:n]


def scan_fields_py(buf: np.ndarray, start: int, col_out: np.ndarray, n_out: int):
    """Plain-Python reference of :func:`scan_fields` (slow; for tests and debugging)."""
    return scan_fields(buf, start, col_out, n_out, compiled=False)
