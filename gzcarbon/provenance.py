"""Provenance of a product: config hash, package versions, input files (with content hashes)."""

from __future__ import annotations

import hashlib
import json
from importlib import metadata
from pathlib import Path

PACKAGES = ("gzcarbon", "numpy", "scipy", "pandas", "xarray", "netCDF4", "numba", "pystilt",
            "arlmet", "matplotlib", "cartopy", "shapely", "snakemake")


def config_hash(config: dict) -> str:
    """SHA-256 of the config serialised with sorted keys (stable across runs and dict order)."""
    blob = json.dumps(config, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def package_versions(packages=PACKAGES) -> str:
    """'name=version; ...' for the packages that are installed (others are skipped)."""
    out = []
    for name in packages:
        try:
            out.append(f"{name}={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return "; ".join(out)


def file_sha256(path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def input_list(paths) -> str:
    """One line per input: 'path sha256:<first 16 hex>' (missing files are marked)."""
    lines = []
    for p in paths:
        p = Path(p)
        if p.is_file():
            lines.append(f"{p} sha256:{file_sha256(p)[:16]}")
        elif p.is_dir():
            lines.append(f"{p}/ (directory)")
        else:
            lines.append(f"{p} (missing)")
    return "\n".join(lines)
