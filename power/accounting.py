"""Two accountings of each district's CO2 over an inverted period (issue 21, item 4).

* **Territorial** — what the atmosphere sees: the inversion's posterior district total ± σ
  (``districts.csv``: ``posterior_t``, ``posterior_sigma_t``). It holds every CO2 flux inside the
  district over the period, the district's own power plants included (the prior places them from
  the power stage's ``point_sources.csv``) and the biosphere's net flux.
* **Consumption-based** — electricity attributed to where it is consumed: the territorial total
  minus the district's own plants' emissions plus the emissions of the electricity the district
  consumes (the power stage's hourly consumption-based factor × the district's load, summed over
  the hours of the period):

      consumption_based_t = territorial_t − own_power_plants_t + consumed_electricity_t

  ``own_power_plants_t`` = Σ_hours ``production_emissions_t`` (generation × unit intensity of the
  plants placed in the district), ``consumed_electricity_t`` = Σ_hours ``consumption_factor`` ×
  ``load_mwh`` (kg/kWh = t/MWh), both from ``power/emission_factors.nc``, restricted to the
  inverted period ``[period_start, period_end)`` of ``diagnostics.json`` (the power axis also holds
  the transport spin-up day, which is not in the district totals).

For the city the power stage conserves emissions every hour, so
``consumed_electricity_t(city) = own_power_plants_t(city) + imported − exported`` (the external
grid's share), and the city's consumption-based total is its territorial total plus the net CO2
embodied in the electricity it imports from the Southern grid.

σ: the power data carry no uncertainty (metered generation and load, registry intensities), so
the two power columns are treated as exact and ``sigma_t`` — the inversion's exact posterior σ —
is the σ of both the territorial and the consumption-based total, district by district and for
the city (whose σ comes from the inversion's exact aggregate, not from the districts' σ).

Formats and formula: docs/power.md, "Two accountings".
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from gzcarbon import atomic
from gzcarbon.names import CITY
from products.inputs import load_districts_table

#: Columns of ``accounting.csv`` in order (t CO2 over the inverted period).
COLUMNS = ("district", "territorial_t", "sigma_t", "own_power_plants_t", "consumed_electricity_t",
           "consumption_based_t")
#: Variables of ``power/emission_factors.nc`` the accounting reads, dims (time, district).
POWER_VARIABLES = ("production_emissions_t", "consumption_factor", "load_mwh")
HOUR = pd.Timedelta(hours=1)


class AccountingInputError(ValueError):
    """An input of the accounting is missing, malformed or does not match the other input."""


def read_power_factors(path) -> xr.Dataset:
    """The variables of ``power/emission_factors.nc`` (written by ``power.products.write_netcdf``)
    that the accounting needs, loaded; one error naming the file and the variable otherwise."""
    p = Path(path)
    if not p.exists():
        raise AccountingInputError(f"{p}: file not found; run rule power_factors first.")
    try:
        with xr.open_dataset(p) as ds:
            missing = [v for v in POWER_VARIABLES if v not in ds]
            if missing:
                raise AccountingInputError(
                    f"{p}: variables {missing} missing; not a power emission-factor file "
                    "(docs/power.md, Outputs): re-run rule power_factors.")
            for v in POWER_VARIABLES:
                if ds[v].dims != ("time", "district"):
                    raise AccountingInputError(f"{p}: variable '{v}' has dims {ds[v].dims}, "
                                               "expected ('time', 'district'); re-run rule power_factors.")
            return ds[list(POWER_VARIABLES)].load()
    except (OSError, ValueError) as exc:
        if isinstance(exc, AccountingInputError):
            raise
        raise AccountingInputError(f"{p}: cannot be read as NetCDF ({exc}); delete it and re-run "
                                   "rule power_factors.") from exc


def read_period(diagnostics_json) -> tuple[pd.Timestamp, pd.Timestamp]:
    """``[period_start, period_end)`` (UTC) of the inversion's ``diagnostics.json``."""
    p = Path(diagnostics_json)
    if not p.exists():
        raise AccountingInputError(f"{p}: file not found; run rule inversion first.")
    try:
        d = json.loads(p.read_text())
        start, end = pd.Timestamp(d["period_start"]), pd.Timestamp(d["period_end"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise AccountingInputError(f"{p}: no readable 'period_start' / 'period_end' ({exc!r}); "
                                   "re-run rule inversion.") from exc
    return start, end


def power_totals(ds: xr.Dataset, start, end, source="<power factors>") -> pd.DataFrame:
    """Per district (index): ``own_power_plants_t`` and ``consumed_electricity_t`` summed over the
    hours ``[start, end)``; every hour of the period must be in ``ds``."""
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    want = pd.date_range(start, end, freq="h", inclusive="left")
    t = pd.DatetimeIndex(ds["time"].to_numpy())
    lacking = want.difference(t)
    if len(want) == 0 or len(lacking):
        raise AccountingInputError(
            f"{source}: the power factors ({t[0]:%Y-%m-%d %H:%M} .. {t[-1]:%Y-%m-%d %H:%M} UTC) do not "
            f"cover {len(lacking) or 'any'} hour(s) of the inverted period {start} .. {end} (end "
            "exclusive); re-run rule power_factors for this month.")
    sub = ds.sel(time=want)
    plants = sub["production_emissions_t"].to_numpy()
    factor = sub["consumption_factor"].to_numpy()
    load = sub["load_mwh"].to_numpy()
    # a district with no throughput in an hour has no factor (NaN) and no consumption
    consumed = np.where(load > 0, np.nan_to_num(factor, nan=0.0) * load, 0.0)
    bad = ~np.isfinite(plants) | (np.isnan(factor) & (load > 0))
    if bad.any():
        k, j = np.argwhere(bad)[0]
        raise AccountingInputError(
            f"{source}: district {str(sub['district'].values[j])!r} at {want[k]} has load but no "
            "consumption factor, or no production emissions (NaN); re-run rule power_factors.")
    return pd.DataFrame({"own_power_plants_t": plants.sum(axis=0),
                         "consumed_electricity_t": consumed.sum(axis=0)},
                        index=pd.Index(sub["district"].to_numpy().astype(str), name="district"))


def accounting_table(districts: pd.DataFrame, power: pd.DataFrame,
                     districts_source="districts.csv", power_source="emission_factors.nc") -> pd.DataFrame:
    """The reconciled table: one row per district (in ``districts`` order) and the city row.

    ``districts``: indexed by district with ``posterior_t``, ``posterior_sigma_t`` and the city
    row ``Guangzhou`` (:func:`products.inputs.load_districts_table`); ``power``: from
    :func:`power_totals`. A district in one and not the other stops with one error naming both.
    """
    names = [d for d in districts.index if d != CITY]
    only_inv = [d for d in names if d not in power.index]
    only_pow = [d for d in power.index if d not in names]
    if only_inv or only_pow:
        parts = ([f"{only_inv} in {districts_source} are missing from {power_source}"] if only_inv else []) + \
                ([f"{only_pow} in {power_source} are missing from {districts_source}"] if only_pow else [])
        raise AccountingInputError(
            f"districts differ: {'; '.join(parts)}. Both must come from the same districts file "
            "(config districts_file): re-run the inversion and rule power_factors with it.")
    terr = districts.loc[names, "posterior_t"].to_numpy(float)
    sig = districts.loc[names, "posterior_sigma_t"].to_numpy(float)
    own = power.loc[names, "own_power_plants_t"].to_numpy(float)
    cons = power.loc[names, "consumed_electricity_t"].to_numpy(float)
    city = districts.loc[CITY]
    rows = pd.DataFrame({
        "district": names + [CITY],
        "territorial_t": np.append(terr, float(city["posterior_t"])),
        "sigma_t": np.append(sig, float(city["posterior_sigma_t"])),
        "own_power_plants_t": np.append(own, own.sum()),
        "consumed_electricity_t": np.append(cons, cons.sum()),
    })
    rows["consumption_based_t"] = (rows["territorial_t"] - rows["own_power_plants_t"]
                                   + rows["consumed_electricity_t"])
    if not all(math.isfinite(v) for v in rows["territorial_t"]):
        raise AccountingInputError(f"{districts_source}: a posterior_t is empty or not finite; "
                                   "re-run the inversion.")
    return rows[list(COLUMNS)]


def accounting_from_files(districts_csv, diagnostics_json, power_nc) -> pd.DataFrame:
    """:func:`accounting_table` of a month's ``districts.csv``, its inverted period (from
    ``diagnostics.json``) and ``power/emission_factors.nc``."""
    table = load_districts_table(districts_csv)
    start, end = read_period(diagnostics_json)
    totals = power_totals(read_power_factors(power_nc), start, end, source=str(power_nc))
    return accounting_table(table, totals, str(districts_csv), str(power_nc))


def write_accounting(df: pd.DataFrame, path) -> Path:
    """``accounting.csv`` (atomic), t CO2 with 9 significant digits."""
    return atomic.write_csv(df, path, index=False, float_format="%.9g", lineterminator="\n")
