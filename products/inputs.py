"""Readers of the files the products are made from, with one clear error per bad input.

Formats: docs/formats.md, "Inversion outputs in detail". Every reader raises
:class:`ProductInputError` naming the file, the field and what to do.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
import yaml

from gzcarbon.names import CITY

POSTERIOR_VARS = ("prior_flux", "posterior_flux", "prior_sigma_block", "posterior_sigma_block")
DISTRICT_COLUMNS = ("district", "prior_t", "posterior_t", "prior_sigma_t", "posterior_sigma_t")
MODELLED_COLUMNS = ("site", "time", "observed", "prior_model", "posterior_model")
SELECTED_COLUMNS = ("site", "time", "value")


class ProductInputError(ValueError):
    """An input of a product is missing a field or is malformed."""


def _need(path, what: str, have, needed) -> None:
    missing = [c for c in needed if c not in have]
    if missing:
        raise ProductInputError(
            f"{path}: {what} {missing} missing (found {sorted(map(str, have))}); "
            "regenerate the file with the pipeline or fix it to match docs/formats.md."
        )


def _exists(path) -> Path:
    p = Path(path)
    if not p.exists():
        raise ProductInputError(f"{p}: file not found; run the stage that writes it first.")
    return p


def load_posterior(path) -> xr.Dataset:
    """`{R}/posterior.nc`, checked for the variables and dims the products use."""
    p = _exists(path)
    ds = xr.open_dataset(p)
    _need(p, "variables", ds.variables, POSTERIOR_VARS)
    for v in ("prior_flux", "posterior_flux"):
        if ds[v].dims != ("time", "lat", "lon"):
            raise ProductInputError(
                f"{p}: variable '{v}' has dims {ds[v].dims}, expected ('time', 'lat', 'lon')."
            )
    for v in ("prior_sigma_block", "posterior_sigma_block"):
        if ds[v].dims != ("lat_block", "lon_block"):
            raise ProductInputError(
                f"{p}: variable '{v}' has dims {ds[v].dims}, expected ('lat_block', 'lon_block')."
            )
    return ds


def _to_num(df: pd.DataFrame, cols, path) -> pd.DataFrame:
    for c in cols:
        if c in df:
            try:
                df[c] = pd.to_numeric(df[c])
            except (ValueError, TypeError) as err:
                raise ProductInputError(f"{path}: column '{c}' is not numeric ({err}).") from err
    return df


def load_districts_table(path) -> pd.DataFrame:
    """`{R}/districts.csv` -> DataFrame indexed by district, city total as row 'Guangzhou'.

    Columns prior_t, posterior_t, prior_sigma_t, posterior_sigma_t, truth_t (NaN when absent).
    """
    p = _exists(path)
    df = pd.read_csv(p)
    _need(p, "columns", df.columns, DISTRICT_COLUMNS)
    if "truth_t" not in df:
        df["truth_t"] = np.nan
    df = _to_num(df, DISTRICT_COLUMNS[1:] + ("truth_t",), p)
    df["district"] = df["district"].astype(str)
    if CITY not in set(df["district"]):
        raise ProductInputError(
            f"{p}: no row with district = '{CITY}' (the city total with its exact sigma)."
        )
    return df.set_index("district")


def load_modelled(path) -> pd.DataFrame:
    """`{R}/modelled.csv` with `time` parsed as UTC timestamps."""
    p = _exists(path)
    df = pd.read_csv(p)
    _need(p, "columns", df.columns, MODELLED_COLUMNS)
    for c in ("background_prior", "background_posterior", "intake_height"):
        if c not in df:
            df[c] = np.nan
    # innovation screening (docs/inversion.md): files written before it used every row
    for c, default in (("used", 1), ("screened", 0)):
        df[c] = pd.to_numeric(df[c]).fillna(default).astype(int) if c in df else default
    df = _to_num(df, ("observed", "prior_model", "posterior_model", "background_prior",
                      "background_posterior"), p)
    df["site"] = df["site"].astype(str)
    df["time"] = pd.to_datetime(df["time"], utc=True)
    return df


def load_selected(path) -> pd.DataFrame:
    """`{R}/obs/selected.csv` with `time` parsed as UTC timestamps."""
    p = _exists(path)
    df = pd.read_csv(p)
    _need(p, "columns", df.columns, SELECTED_COLUMNS)
    df["site"] = df["site"].astype(str)
    df["time"] = pd.to_datetime(df["time"], utc=True)
    return df


def load_diagnostics(path) -> dict:
    p = _exists(path)
    try:
        d = json.loads(p.read_text())
    except json.JSONDecodeError as err:
        raise ProductInputError(f"{p}: not valid JSON ({err}).") from err
    _need(p, "keys", d.keys(), ("n_obs", "chi2_reduced", "dofs"))
    return d


def load_stations(path) -> list[dict]:
    """Sites of config/stations.yaml (id, name, lon, lat, ...)."""
    p = _exists(path)
    with open(p) as fh:
        doc = yaml.safe_load(fh)
    sites = doc.get("sites") if isinstance(doc, dict) else None
    if not isinstance(sites, list):
        raise ProductInputError(f"{p}: top-level key 'sites' (a list of stations) missing.")
    for s in sites:
        _need(p, f"station fields of {s.get('id', '?')!r}", s.keys(), ("id", "lon", "lat"))
    return sites
