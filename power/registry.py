"""The power-plant registry (`config/power_plants.csv`) and the district names.

Registry format (one row per plant, `#` lines are comments; see docs/power.md):

    plant_id, name, district, lon, lat, fuel, capacity_mw, status            required
    intensity_t_per_mwh                        unit emission intensity, t CO2/MWh (= kg/kWh), or
    heat_rate_gj_per_mwh, fuel_ef_t_per_gj     heat rate x fuel carbon content when intensity is empty
    name_zh, location_quality, units, confidence, source, note        optional, carried along

`status` is `operating` (dispatched) or `retired` (kept for the record, never dispatched).
`district` must be one of the district keys (`name_en` of config/districts.geojson).
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from gzcarbon.districts import read_districts

#: The 11 districts of Guangzhou (`name_en` of config/districts.geojson), in adcode order.
DISTRICTS = [
    "Liwan", "Yuexiu", "Haizhu", "Tianhe", "Baiyun", "Huangpu",
    "Panyu", "Huadu", "Nansha", "Conghua", "Zengcheng",
]

REQUIRED_COLUMNS = ["plant_id", "name", "district", "lon", "lat", "fuel", "capacity_mw", "status"]
STATUSES = ("operating", "retired")
#: Plausible range of a unit emission intensity, t CO2/MWh (0 = non-fossil, ~1.3 = worst lignite).
INTENSITY_RANGE = (0.0, 1.5)


class PowerInputError(ValueError):
    """A bad power-stage input: the message names the file, the row/field and the fix."""


def district_names(districts_file: str | os.PathLike | None = None) -> list[str]:
    """District keys (`name_en`) from the districts GeoJSON, in file order.

    Read by the one districts reader (`gzcarbon.districts.read_districts`): a missing or malformed
    file raises its `DistrictFileError` naming the file and the field. With no file given (None or
    "") the built-in list `DISTRICTS` is returned.
    """
    if not districts_file:
        return list(DISTRICTS)
    return [d.name_en for d in read_districts(districts_file)]


def _fail(source: str, row: int | None, msg: str) -> None:
    where = f"{source}, row {row}" if row is not None else source
    raise PowerInputError(f"{where}: {msg}")


def _csv_row(df: pd.DataFrame, idx) -> int:
    """1-based line number of a data row in the CSV (header = line 1, comment lines counted)."""
    return int(df.attrs.get("line_numbers", np.arange(len(df)) + 2)[df.index.get_loc(idx)])


def read_csv_with_lines(path: str) -> pd.DataFrame:
    """Read a CSV that may hold `#` comment lines, remembering each data row's line number."""
    with open(path, encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    keep = [i for i, ln in enumerate(lines) if ln.strip() and not ln.lstrip().startswith("#")]
    if not keep:
        raise PowerInputError(f"{path}: the file is empty; it needs a header line and data rows.")
    from io import StringIO

    df = pd.read_csv(StringIO("\n".join(lines[i] for i in keep)), skipinitialspace=True)
    df.columns = [str(c).strip() for c in df.columns]
    df.attrs["line_numbers"] = np.array([i + 1 for i in keep[1:]])
    df.attrs["source"] = path
    return df


def _numeric(df: pd.DataFrame, col: str, source: str, allow_missing: bool = False) -> pd.Series:
    vals = pd.to_numeric(df[col], errors="coerce")
    bad = vals.isna() & (df[col].notna() if allow_missing else True)
    if bad.any():
        idx = bad[bad].index[0]
        _fail(source, _csv_row(df, idx),
              f"column '{col}' has value {df.loc[idx, col]!r}, which is not a number; "
              f"write a plain number (e.g. 300) in '{col}'.")
    return vals.astype(float)


def _load_registry(plants) -> tuple[pd.DataFrame, str]:
    """(table, source) of a registry path or DataFrame, with the optional intensity columns added."""
    if isinstance(plants, pd.DataFrame):
        df = plants.copy()
        df.attrs = dict(plants.attrs)
        source = df.attrs.get("source", "<plant registry table>")
    else:
        source = str(plants)
        if not os.path.exists(source):
            raise PowerInputError(f"{source}: plant registry not found; set config 'plants_file' "
                                  "to the path of your power_plants.csv.")
        df = read_csv_with_lines(source)
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        _fail(source, None, f"missing column(s) {missing}; the registry needs the columns "
                            f"{REQUIRED_COLUMNS} (see docs/power.md).")
    for c in ("intensity_t_per_mwh", "heat_rate_gj_per_mwh", "fuel_ef_t_per_gj"):
        if c not in df.columns:
            df[c] = np.nan
    return df, source


def _first_bad(df: pd.DataFrame, bad: pd.Series, source: str, msg) -> None:
    """Fail on the first row where ``bad`` holds; ``msg(idx)`` says what is wrong there."""
    if bad.any():
        idx = bad[bad].index[0]
        _fail(source, _csv_row(df, idx), msg(idx))


def _check_text_columns(df: pd.DataFrame, source: str, districts: list[str]) -> None:
    """Ids, names, districts, fuels and statuses: filled in, unique ids, known districts and statuses."""
    for col in ("plant_id", "name", "district", "fuel", "status"):
        empty = df[col].isna() | (df[col].astype(str).str.strip() == "")
        _first_bad(df, empty, source, lambda idx, col=col: f"column '{col}' is empty; fill it in.")
        df[col] = df[col].astype(str).str.strip()
    _first_bad(df, df["plant_id"].duplicated(), source, lambda idx: (
        f"plant_id '{df.loc[idx, 'plant_id']}' appears twice; plant ids must be unique."))
    _first_bad(df, ~df["district"].isin(districts), source, lambda idx: (
        f"plant '{df.loc[idx, 'plant_id']}' is in unknown district '{df.loc[idx, 'district']}'; use one of "
        f"{districts} (name_en of the districts file)."))
    _first_bad(df, ~df["status"].isin(STATUSES), source, lambda idx: (
        f"status '{df.loc[idx, 'status']}' is not allowed; use one of {list(STATUSES)}."))


def _check_position_and_capacity(df: pd.DataFrame, source: str) -> None:
    for col in ("lon", "lat", "capacity_mw"):
        df[col] = _numeric(df, col, source)
    _first_bad(df, ~((df["lon"].between(-180, 180)) & (df["lat"].between(-90, 90))), source,
               lambda idx: "lon/lat outside [-180, 180] x [-90, 90]; give WGS84 degrees.")
    _first_bad(df, ~(df["capacity_mw"] > 0), source, lambda idx: (
        f"capacity_mw = {df.loc[idx, 'capacity_mw']} for plant '{df.loc[idx, 'plant_id']}'; "
        "capacity must be a positive number of MW."))


def _intensities(df: pd.DataFrame, source: str) -> None:
    """``intensity_t_per_mwh``, from heat rate x fuel carbon content where empty, checked for range."""
    inten = _numeric(df, "intensity_t_per_mwh", source, allow_missing=True)
    hr = _numeric(df, "heat_rate_gj_per_mwh", source, allow_missing=True)
    ef = _numeric(df, "fuel_ef_t_per_gj", source, allow_missing=True)
    derived = hr * ef
    use = inten.isna()
    _first_bad(df, use & derived.isna(), source, lambda idx: (
        f"plant '{df.loc[idx, 'plant_id']}' has no intensity_t_per_mwh and no "
        "heat_rate_gj_per_mwh x fuel_ef_t_per_gj; give one of the two."))
    inten = inten.where(~use, derived)
    lo, hi = INTENSITY_RANGE
    _first_bad(df, ~inten.between(lo, hi), source, lambda idx: (
        f"emission intensity {inten[idx]:.4g} t CO2/MWh of plant '{df.loc[idx, 'plant_id']}' is "
        f"outside [{lo}, {hi}]; check the units (t CO2/MWh = kg CO2/kWh; a heat rate is GJ/MWh "
        "and a carbon content t CO2/GJ)."))
    df["intensity_t_per_mwh"] = inten
    df["heat_rate_gj_per_mwh"] = hr
    df["fuel_ef_t_per_gj"] = ef


def read_plants(plants, districts: list[str] | None = None) -> pd.DataFrame:
    """Read and validate the plant registry.

    Parameters
    ----------
    plants : path of the registry CSV or a DataFrame in the same format.
    districts : allowed district keys (default: `DISTRICTS`).

    Returns a DataFrame indexed by `plant_id` with at least the required columns plus
    `intensity_t_per_mwh` (filled from heat rate x fuel carbon content where empty) and a
    boolean `dispatched` (status == operating). The first bad row raises PowerInputError naming the
    file, the line and the field.
    """
    districts = list(districts) if districts is not None else list(DISTRICTS)
    df, source = _load_registry(plants)
    _check_text_columns(df, source, districts)
    _check_position_and_capacity(df, source)
    _intensities(df, source)
    df["dispatched"] = df["status"] == "operating"
    df["source_row"] = [_csv_row(df, i) for i in df.index]
    df = df.set_index("plant_id", drop=False)
    df.index.name = None
    df.attrs["source"] = source
    return df
