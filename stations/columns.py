"""Column observations: OCO-2/OCO-3 Lite XCO2 files and EM27/SUN (COCCON, PROFFAST) files.

A column observation is a column-averaged dry-air mole fraction (XCO2 in ppm, XCH4 and XCO in
ppb). Each reader returns :class:`Soundings`: a table with one row per sounding and, when the
product carries them, the retrieval's vertical arrays on its own levels, ordered **from the
surface up** (OCO Lite files store level 1 at the top of the atmosphere and level 20 at the
surface; the reader flips them).

* ``read_oco_lite``: OCO-2 / OCO-3 L2 Lite FP files (``oco2_LtCO2_*.nc4``, ``oco3_LtCO2_*.nc4``,
  v9-v11). Needs ``xco2``, ``xco2_uncertainty``, ``xco2_quality_flag`` (0 = good),
  ``xco2_averaging_kernel``, ``pressure_weight``, ``pressure_levels``, ``co2_profile_apriori``,
  ``time``, ``latitude``, ``longitude``; the surface pressure is ``Retrieval/psurf`` when
  present, else the bottom pressure level. Fill values (-999999) become NaN; a sounding with a
  fill in its kernel, weights or prior is not good.
* ``read_proffast``: the ``comb_invparms_<site>_SN<serial>_<from>-<to>.csv`` files PROFFAST 2.x
  (COCCON's EM27/SUN retrieval, run by prfpylot) writes. Comma-and-space separated, one header
  line; ``UTC``, ``latdeg``, ``londeg``, ``altim`` (m a.s.l.), ``gndP`` (hPa), ``appSZA`` and the
  gases ``XCO2``, ``XCH4``, ``XCO``, all in ppm (XCH4 and XCO are converted to ppb). PROFFAST
  writes no averaging kernel and no quality flag: its spectra are already filtered, and a gas
  that was not retrieved is written as 0 (such rows are not good). ``Soundings.ak`` is None.

Every problem with a file is a :class:`ColumnFileError` naming the file, the field and the fix.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from stations.errors import StationFileError

#: OCO Lite fill value
OCO_FILL = -999999.0
#: variables an OCO Lite file must hold (root group)
OCO_REQUIRED = ("time", "latitude", "longitude", "xco2", "xco2_uncertainty", "xco2_quality_flag",
                "xco2_averaging_kernel", "pressure_weight", "pressure_levels", "co2_profile_apriori")
#: PROFFAST columns and the gases they hold (file unit: ppm)
PROFFAST_GASES = {"co2": "XCO2", "ch4": "XCH4", "co": "XCO"}
#: unit the pipeline uses per gas, and the factor from ppm
GAS_UNITS = {"co2": ("ppm", 1.0), "ch4": ("ppb", 1000.0), "co": ("ppb", 1000.0)}
PROFFAST_REQUIRED = ("UTC", "latdeg", "londeg", "altim", "gndP", "appSZA")

TABLE_COLUMNS = ["sounding_id", "time", "lon", "lat", "surface_altitude", "surface_pressure",
                 "value", "uncertainty", "good", "solar_zenith"]


class ColumnFileError(StationFileError):
    """A column file cannot be used; the message names the file, the field and the fix."""


@dataclass
class Soundings:
    """Column soundings of one gas.

    ``table``: one row per sounding with :data:`TABLE_COLUMNS` (``time`` tz-naive UTC,
    ``value``/``uncertainty`` in ``units``, ``good`` the product's own quality verdict).
    ``pressure`` (hPa), ``ak``, ``pressure_weight``, ``prior`` (``units``): arrays
    ``(n_soundings, n_levels)`` from the surface up, or None when the product has none
    (PROFFAST). ``source``: the file; ``kind``: ``"satellite"`` or ``"ground"``."""

    table: pd.DataFrame
    species: str
    units: str
    kind: str
    source: str
    pressure: np.ndarray | None = None
    ak: np.ndarray | None = None
    pressure_weight: np.ndarray | None = None
    prior: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.table)

    @property
    def has_kernels(self) -> bool:
        return self.ak is not None and self.pressure_weight is not None and self.prior is not None

    def require_kernels(self) -> None:
        """Raise :class:`ColumnFileError` unless the soundings carry kernels, weights and prior."""
        if not self.has_kernels:
            raise ColumnFileError(
                f"{self.source}: field 'averaging kernel': this {self.kind} column file has no "
                "averaging kernel, pressure weights and prior profile, which a column receptor "
                "needs; use a product that carries them (OCO Lite: xco2_averaging_kernel, "
                "pressure_weight, co2_profile_apriori) or, for EM27/SUN PROFFAST files, set "
                "observations.column.ground_kernel (docs/columns.md)")

    def select(self, mask) -> "Soundings":
        """The soundings where ``mask`` (boolean, one per sounding) is True."""
        m = np.asarray(mask, dtype=bool)
        pick = (lambda a: None if a is None else a[m])
        return Soundings(self.table.loc[m].reset_index(drop=True), self.species, self.units,
                         self.kind, self.source, pick(self.pressure), pick(self.ak),
                         pick(self.pressure_weight), pick(self.prior))


def _masked(var, fill=OCO_FILL) -> np.ndarray:
    """Float array of a netCDF variable with its fill (and -999999) as NaN."""
    a = np.ma.filled(np.ma.asarray(var[:]).astype(np.float64), np.nan)
    a[a <= fill + 0.5] = np.nan
    return a


def read_oco_lite(path: str | os.PathLike, lon_range=None, lat_range=None) -> Soundings:
    """Read an OCO-2/OCO-3 Lite XCO2 file (see the module docstring).

    ``lon_range``/``lat_range``: ``(min, max)`` degrees; only soundings inside are kept.
    """
    from netCDF4 import Dataset

    path = Path(path)
    try:
        ds = Dataset(path)
    except OSError as exc:
        raise ColumnFileError(f"{path}: not a readable netCDF/HDF5 file ({exc}); an OCO Lite "
                              "file is the .nc4 granule as downloaded from GES DISC") from None
    with ds:
        for name in OCO_REQUIRED:
            if name not in ds.variables:
                what = ("averaging kernel" if name == "xco2_averaging_kernel" else name)
                raise ColumnFileError(
                    f"{path}: field {name!r} ({what}) is missing; an OCO Lite XCO2 file holds "
                    f"{', '.join(OCO_REQUIRED)} in its root group. Use the full Lite granule, "
                    "not a subset without it")
        lat = _masked(ds["latitude"])
        lon = _masked(ds["longitude"])
        keep = np.isfinite(lat) & np.isfinite(lon)
        if lon_range is not None:
            keep &= (lon >= float(lon_range[0])) & (lon <= float(lon_range[1]))
        if lat_range is not None:
            keep &= (lat >= float(lat_range[0])) & (lat <= float(lat_range[1]))
        idx = np.flatnonzero(keep)
        tvar = ds["time"]
        units = str(getattr(tvar, "units", "seconds since 1970-01-01 00:00:00"))
        if not units.startswith("seconds since"):
            raise ColumnFileError(f"{path}: field 'time' has units {units!r}; OCO Lite time is "
                                  "'seconds since 1970-01-01 00:00:00'")
        epoch = pd.Timestamp(units.split("since", 1)[1].strip())
        secs = np.asarray(tvar[:], dtype=np.float64)[idx]
        time = epoch + pd.to_timedelta(np.round(secs * 1e3), unit="ms")
        ids = (np.asarray(ds["sounding_id"][:])[idx].astype(np.int64).astype(str)
               if "sounding_id" in ds.variables else np.array([f"oco_{i}" for i in idx]))
        flip = (lambda name: _masked(ds[name])[idx][:, ::-1])
        pressure, ak = flip("pressure_levels"), flip("xco2_averaging_kernel")
        pw, prior = flip("pressure_weight"), flip("co2_profile_apriori")
        psurf = (_masked(ds["Retrieval"]["psurf"])[idx]
                 if "Retrieval" in ds.groups and "psurf" in ds["Retrieval"].variables
                 else pressure[:, 0])
        alt = (_masked(ds["Sounding"]["altitude"])[idx]
               if "Sounding" in ds.groups and "altitude" in ds["Sounding"].variables
               else np.full(len(idx), np.nan))
        sza = (_masked(ds["solar_zenith_angle"])[idx] if "solar_zenith_angle" in ds.variables
               else np.full(len(idx), np.nan))
        value = _masked(ds["xco2"])[idx]
        unc = _masked(ds["xco2_uncertainty"])[idx]
        flag = np.asarray(ds["xco2_quality_flag"][:])[idx]
    complete = (np.isfinite(value) & np.isfinite(unc) & np.all(np.isfinite(ak), axis=1)
                & np.all(np.isfinite(pw), axis=1) & np.all(np.isfinite(prior), axis=1)
                & np.all(np.isfinite(pressure), axis=1))
    table = pd.DataFrame({"sounding_id": ids, "time": pd.DatetimeIndex(time), "lon": lon[idx],
                          "lat": lat[idx], "surface_altitude": alt, "surface_pressure": psurf,
                          "value": value, "uncertainty": unc, "good": (flag == 0) & complete,
                          "solar_zenith": sza}, columns=TABLE_COLUMNS)
    return Soundings(table, "co2", "ppm", "satellite", str(path), pressure, ak, pw, prior)


def read_proffast(path: str | os.PathLike, species: str = "co2") -> Soundings:
    """Read a PROFFAST ``comb_invparms`` CSV of an EM27/SUN (see the module docstring)."""
    path = Path(path)
    species = str(species).lower()
    if species not in PROFFAST_GASES:
        raise ColumnFileError(f"{path}: species {species!r}: PROFFAST files hold "
                              f"{sorted(PROFFAST_GASES)}")
    try:
        df = pd.read_csv(path, skipinitialspace=True)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise ColumnFileError(f"{path}: not a PROFFAST comb_invparms CSV ({exc}); the file "
                              "PROFFAST/prfpylot writes is comma-and-space separated with one "
                              "header line") from None
    df.columns = [str(c).strip() for c in df.columns]
    col = PROFFAST_GASES[species]
    for name in (*PROFFAST_REQUIRED, col):
        if name not in df.columns:
            raise ColumnFileError(f"{path}: field {name!r} is missing; a PROFFAST comb_invparms "
                                  f"file has {', '.join(PROFFAST_REQUIRED)} and "
                                  f"{', '.join(PROFFAST_GASES.values())} (all X-gases in ppm)")
    try:
        time = pd.to_datetime(df["UTC"].astype(str).str.strip(), format="%Y-%m-%d %H:%M:%S")
    except ValueError as exc:
        raise ColumnFileError(f"{path}: field 'UTC': {exc}; PROFFAST writes "
                              "'YYYY-mm-dd HH:MM:SS' (UTC)") from None
    units, factor = GAS_UNITS[species]
    raw = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=np.float64)
    value = raw * factor
    spectrum = (df["spectrum"].astype(str).str.strip() if "spectrum" in df.columns
                else pd.Series([f"{path.stem}_{i}" for i in range(len(df))]))
    table = pd.DataFrame({
        "sounding_id": spectrum.to_numpy(), "time": pd.DatetimeIndex(time),
        "lon": pd.to_numeric(df["londeg"]).to_numpy(float),
        "lat": pd.to_numeric(df["latdeg"]).to_numpy(float),
        "surface_altitude": pd.to_numeric(df["altim"]).to_numpy(float),
        "surface_pressure": pd.to_numeric(df["gndP"]).to_numpy(float),
        "value": value, "uncertainty": np.full(len(df), np.nan),
        "good": np.isfinite(raw) & (raw > 0),
        "solar_zenith": pd.to_numeric(df["appSZA"]).to_numpy(float)}, columns=TABLE_COLUMNS)
    return Soundings(table, species, units, "ground", str(path))


def read_columns(path: str | os.PathLike, species: str = "co2", **kw) -> Soundings:
    """Read a column file by its content: netCDF/HDF5 (OCO Lite) or PROFFAST CSV."""
    path = Path(path)
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head.startswith(b"\x89HDF") or head.startswith(b"CDF"):
        if species != "co2":
            raise ColumnFileError(f"{path}: species {species!r}: OCO Lite files hold XCO2 only")
        return read_oco_lite(path, **kw)
    return read_proffast(path, species)
