"""CO/CO2 emission ratios by sector: the reader of ``config/emission_ratios_co.csv`` and the CO flux
they give from CO2 sector fluxes (docs/formats.md, docs/demo.md).

There is no CO inventory in the pipeline: the CO prior is the CO2 inventory's combustion sectors
(industry, road, residential and the power plants) times a molar emission ratio per sector,

    F_CO [nmol m-2 s-1] = Σ_s F_CO2,s [µmol m-2 s-1] × R_s [mol CO / mol CO2] × 1000.

The biosphere emits no CO (its CO2 flux gets no ratio). The table is a CSV with one row per
sector and the columns

- ``sector``: a sector name of the CO2 inventory (``industry``, ``road``, ``residential``,
  ``power``; ``unreported`` is not a prior sector);
- ``ratio_mol_per_mol``: mol CO emitted per mol CO2 (``0.012`` = 12 ppb CO per ppm CO2 of
  enhancement from that sector alone), >= 0;
- ``sigma_rel``: relative 1-σ uncertainty of the ratio (``0.5`` = ±50 %), >= 0;
- ``source``: where the number comes from (free text; quote it when it holds commas).

Lines starting with ``#`` are comments. Every problem stops with :class:`EmissionRatioError`
naming the file, the line or column, and the fix.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

COLUMNS = ("sector", "ratio_mol_per_mol", "sigma_rel", "source")
#: nmol CO per µmol CO2 for a ratio of 1 mol/mol
NMOL_PER_UMOL = 1000.0


class EmissionRatioError(ValueError):
    """A CO/CO2 emission-ratio table that cannot be used; the message names the file, the field
    and what to do."""


def _number(text: str, where: str, field: str, what: str) -> float:
    try:
        v = float(text)
    except (TypeError, ValueError):
        raise EmissionRatioError(f"{where}: field '{field}' is {text!r}, not a number; give {what}") from None
    if not math.isfinite(v):
        raise EmissionRatioError(f"{where}: field '{field}' is {text!r}; give a finite number ({what})")
    if v < 0:
        raise EmissionRatioError(f"{where}: field '{field}' is {v:g}, negative; give {what} (>= 0)")
    return v


def read_emission_ratios(path, sectors=None) -> pd.DataFrame:
    """The table at ``path`` as a DataFrame indexed by ``sector`` with the columns
    ``ratio_mol_per_mol``, ``sigma_rel`` and ``source``.

    ``sectors``: the sectors the caller needs (e.g. the CO2 inventory's combustion sectors and
    ``power``); a sector missing from the table stops with a message naming it. Sectors of the
    table beyond ``sectors`` are kept.
    """
    path = Path(path)
    if not path.is_file():
        raise EmissionRatioError(
            f"emission-ratio table {path}: not found; give a CSV with columns {', '.join(COLUMNS)} "
            "(config key inputs.emission_ratios_co; the shipped table is config/emission_ratios_co.csv)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise EmissionRatioError(f"{path}: not UTF-8 text ({err}); save the table as UTF-8 CSV") from None
    lines = [(i + 1, ln) for i, ln in enumerate(text.splitlines()) if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise EmissionRatioError(f"{path}: no header line; the first line must name the columns {', '.join(COLUMNS)}")
    rows = list(csv.reader(io.StringIO("\n".join(ln for _, ln in lines))))
    header = [h.strip() for h in rows[0]]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise EmissionRatioError(
            f"{path}: line {lines[0][0]} (header): column(s) {missing} missing (found {header}); "
            f"the table needs the columns {', '.join(COLUMNS)}")
    col = {c: header.index(c) for c in COLUMNS}
    out = {}
    for (lineno, _), row in zip(lines[1:], rows[1:]):
        where = f"{path}: line {lineno}"
        if len(row) < len(header):
            raise EmissionRatioError(f"{where}: {len(row)} fields, the header has {len(header)}; "
                                     "complete the line (quote a source holding commas)")
        sector = row[col["sector"]].strip()
        if not sector:
            raise EmissionRatioError(f"{where}: field 'sector' is empty; name the CO2 inventory sector")
        if sector in out:
            raise EmissionRatioError(f"{where}: sector {sector!r} appears twice; keep one row per sector")
        where = f"{where} (sector {sector!r})"
        ratio = _number(row[col["ratio_mol_per_mol"]].strip(), where, "ratio_mol_per_mol",
                        "mol CO per mol CO2, e.g. 0.012 for 12 ppb/ppm")
        sigma = _number(row[col["sigma_rel"]].strip(), where, "sigma_rel",
                        "the relative 1-sigma uncertainty of the ratio, e.g. 0.5")
        out[sector] = (ratio, sigma, row[col["source"]].strip())
    if not out:
        raise EmissionRatioError(f"{path}: the table has a header but no sector row")
    df = pd.DataFrame.from_dict(out, orient="index", columns=list(COLUMNS[1:]))
    df.index.name = "sector"
    if sectors is not None:
        lost = [s for s in sectors if s not in df.index]
        if lost:
            raise EmissionRatioError(
                f"{path}: column 'sector' has no row for {lost} (the table has {list(df.index)}); add a "
                "row per combustion sector of the CO2 inventory with its ratio_mol_per_mol, sigma_rel "
                "and source")
    return df


def ratio_map(ratios) -> dict[str, float]:
    """``{sector: mol/mol}`` from a table of :func:`read_emission_ratios` or a mapping."""
    if isinstance(ratios, pd.DataFrame):
        return {str(s): float(v) for s, v in ratios["ratio_mol_per_mol"].items()}
    return {str(s): float(v) for s, v in dict(ratios).items()}


def co_sector_fluxes(sector_fluxes_umol: Mapping[str, np.ndarray], ratios) -> dict[str, np.ndarray]:
    """CO flux per sector, nmol m-2 s-1: each CO2 sector flux (µmol m-2 s-1) × its ratio × 1000.

    A sector without a ratio (e.g. ``bio``: the biosphere emits no CO) stops with
    :class:`EmissionRatioError`: pass the combustion sectors only.
    """
    r = ratio_map(ratios)
    lost = [s for s in sector_fluxes_umol if s not in r]
    if lost:
        raise EmissionRatioError(
            f"CO from CO2: no emission ratio for sector(s) {lost} (ratios for {list(r)}); pass only "
            "combustion sectors (the biosphere emits no CO) or add the sector to the ratio table")
    return {s: np.asarray(f, dtype=np.float64) * (r[s] * NMOL_PER_UMOL) for s, f in sector_fluxes_umol.items()}


def co_flux_from_co2(sector_fluxes_umol: Mapping[str, np.ndarray], ratios) -> np.ndarray:
    """Total CO flux, nmol m-2 s-1: Σ_s F_CO2,s (µmol m-2 s-1) × R_s (mol/mol) × 1000."""
    parts = co_sector_fluxes(sector_fluxes_umol, ratios)
    if not parts:
        raise EmissionRatioError("CO from CO2: no sector flux given")
    total = None
    for arr in parts.values():
        total = arr.copy() if total is None else total + arr
    return total
