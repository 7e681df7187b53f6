"""Read a CDL layout template and check a NetCDF file against it.

The template (workflow/report/flux_product.cdl) is valid CDL (ncdump -h style). Lines ending in
``// any`` mark a dimension size or attribute value that varies per run: only its presence (and
for attributes its type) is checked. Everything else must match: the set of dimensions,
variables and attributes, variable types and dimension order, attribute values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import netCDF4
import numpy as np

_TYPES = {
    "float": np.dtype("float32"),
    "double": np.dtype("float64"),
    "int": np.dtype("int32"),
    "short": np.dtype("int16"),
    "byte": np.dtype("int8"),
    "int64": np.dtype("int64"),
    "string": str,
    "char": np.dtype("S1"),
}


@dataclass
class Attr:
    value: object
    any_value: bool = False


@dataclass
class Var:
    name: str
    dtype: object
    dims: tuple[str, ...]
    attrs: dict[str, Attr] = field(default_factory=dict)


@dataclass
class Template:
    dims: dict[str, int | None]  # None: any size
    variables: dict[str, Var]
    attrs: dict[str, Attr]


_STR_RE = re.compile(r'"((?:[^"\\]|\\.)*)"')


def _parse_value(text: str):
    text = text.strip()
    if text.startswith('"'):
        parts = _STR_RE.findall(text)
        return "".join(bytes(p, "utf-8").decode("unicode_escape") for p in parts)
    vals = []
    for tok in text.split(","):
        tok = tok.strip()
        if re.fullmatch(r"-?NaN[fd]?", tok):
            vals.append(float("nan"))
            continue
        tok = re.sub(r"[fFdDsSbBlL]+$", "", tok)
        vals.append(float(tok) if any(c in tok for c in ".eE") else int(tok))
    return vals[0] if len(vals) == 1 else vals


def _split_comment(line: str) -> tuple[str, str]:
    # a '//' outside a string starts a comment
    in_str, esc = False, False
    for i, c in enumerate(line):
        if esc:
            esc = False
            continue
        if c == "\\":
            esc = True
        elif c == '"':
            in_str = not in_str
        elif not in_str and line.startswith("//", i):
            return line[:i], line[i + 2:]
    return line, ""


def parse_cdl(text: str) -> Template:
    dims: dict[str, int | None] = {}
    variables: dict[str, Var] = {}
    gattrs: dict[str, Attr] = {}
    section = None
    for raw in text.splitlines():
        body, comment = _split_comment(raw)
        body = body.strip()
        any_flag = comment.strip().lower().startswith("any")
        if not body:
            continue
        if body.startswith("netcdf") or body == "}":
            continue
        if body in ("dimensions:", "variables:", "data:"):
            section = body[:-1]
            continue
        if not body.endswith(";"):
            raise ValueError(f"CDL line does not end with ';': {raw!r}")
        body = body[:-1].strip()
        if section == "dimensions":
            name, size = (s.strip() for s in body.split("="))
            dims[name] = None if (any_flag or size.upper() == "UNLIMITED") else int(size)
            continue
        if section != "variables":
            continue
        m = re.fullmatch(r"(\w*):(\w+)\s*=\s*(.*)", body, flags=re.S)
        if m:
            owner, aname, value = m.groups()
            attr = Attr(_parse_value(value), any_flag)
            if owner:
                variables[owner].attrs[aname] = attr
            else:
                gattrs[aname] = attr
            continue
        m = re.fullmatch(r"(\w+)\s+(\w+)\s*(?:\(([^)]*)\))?", body)
        if not m:
            raise ValueError(f"cannot parse CDL line {raw!r}")
        typ, name, dimlist = m.groups()
        dl = tuple(d.strip() for d in dimlist.split(",")) if dimlist else ()
        variables[name] = Var(name, _TYPES[typ], dl)
    return Template(dims, variables, gattrs)


def read_template(path) -> Template:
    with open(path, encoding="utf-8") as fh:
        return parse_cdl(fh.read())


def _same(a, b) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return str(a) == str(b)
    a = np.atleast_1d(np.asarray(a, dtype=float))
    b = np.atleast_1d(np.asarray(b, dtype=float))
    if a.shape != b.shape:
        return False
    return bool(np.all((a == b) | (np.isnan(a) & np.isnan(b)) | np.isclose(a, b, rtol=1e-12)))


def _kind(v) -> str:
    if isinstance(v, str):
        return "str"
    return "num"


def check_against_template(nc_path, template) -> list[str]:
    """Problems (empty list = conforms) of the file `nc_path` against a Template or CDL path."""
    if not isinstance(template, Template):
        template = read_template(template)
    problems: list[str] = []
    with netCDF4.Dataset(nc_path) as nc:
        have_dims = {k: len(v) for k, v in nc.dimensions.items()}
        for d, size in template.dims.items():
            if d not in have_dims:
                problems.append(f"dimension '{d}' missing")
            elif size is not None and have_dims[d] != size:
                problems.append(f"dimension '{d}' has size {have_dims[d]}, template {size}")
        for d in set(have_dims) - set(template.dims):
            problems.append(f"dimension '{d}' not in template")
        for name, tv in template.variables.items():
            if name not in nc.variables:
                problems.append(f"variable '{name}' missing")
                continue
            v = nc.variables[name]
            if v.dimensions != tv.dims:
                problems.append(f"variable '{name}' dims {v.dimensions}, template {tv.dims}")
            if tv.dtype is str:
                if v.dtype is not str:
                    problems.append(f"variable '{name}' type {v.dtype}, template string")
            elif v.dtype != tv.dtype:
                problems.append(f"variable '{name}' type {v.dtype}, template {tv.dtype}")
            have = {a: v.getncattr(a) for a in v.ncattrs()}
            problems += _check_attrs(f"variable '{name}'", have, tv.attrs)
        for name in set(nc.variables) - set(template.variables):
            problems.append(f"variable '{name}' not in template")
        have = {a: nc.getncattr(a) for a in nc.ncattrs()}
        problems += _check_attrs("global", have, template.attrs)
    return problems


def _check_attrs(where: str, have: dict, want: dict[str, Attr]) -> list[str]:
    out = []
    for a, spec in want.items():
        if a not in have:
            out.append(f"{where} attribute '{a}' missing")
            continue
        if _kind(have[a]) != _kind(spec.value):
            out.append(f"{where} attribute '{a}' is {_kind(have[a])}, template {_kind(spec.value)}")
        elif not spec.any_value and not _same(have[a], spec.value):
            out.append(f"{where} attribute '{a}' = {have[a]!r}, template {spec.value!r}")
    for a in set(have) - set(want):
        out.append(f"{where} attribute '{a}' not in template")
    return out

