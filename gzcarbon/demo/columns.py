"""Demo column files in the real formats: an OCO-2 Lite XCO2 granule and EM27/SUN PROFFAST CSVs.

The layouts are those the real tools write (docs/columns.md; tests/data/README.md "columns"):

* OCO-2 L2 Lite FP (v10/v11) ``oco2_LtCO2_YYMMDD_B11100Ar_<stamp>s.nc4``: NETCDF4, dimensions
  ``sounding_id``, ``levels`` (20, level 1 at the top of the atmosphere, level 20 at the surface),
  ``vertices`` (4) and ``epoch_dimension`` (7); root variables ``sounding_id`` (int64,
  YYYYMMDDhhmmssmf), ``time`` (float64 seconds since 1970-01-01), ``latitude``/``longitude``
  (float32), ``xco2``, ``xco2_uncertainty``, ``xco2_apriori`` (float32, ppm, fill -999999),
  ``xco2_quality_flag`` (int8, 0 = good), ``xco2_averaging_kernel``, ``pressure_weight``,
  ``pressure_levels`` (hPa), ``co2_profile_apriori`` (ppm) on ``(sounding_id, levels)``,
  ``solar_zenith_angle``, ``sensor_zenith_angle``, ``vertex_latitude``/``vertex_longitude``;
  groups ``Sounding`` (``altitude``, ``operation_mode``, ``land_fraction``) and ``Retrieval``
  (``psurf``).
* PROFFAST 2.2 ``comb_invparms_<site>_SN<serial>_<YYMMDD>-<YYMMDD>.csv``: the column header
  ``UTC, LocalTime, spectrum, JulianDate, UTtimeh, gndP, gndT, latdeg, londeg, altim, appSZA,
  azimuth, XH2O, XAIR, XCO2, XCH4, XCO, XCH4_S5P, H2O, O2, CO2, CH4, CO, CH4_S5P`` with ``", "``
  separators and PROFFAST's number formats (X-gases in ppm, ``%.5e``).

The values come from the caller (the demo truth sampled through the truth's own transport,
``transport.columns``); this module only writes.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from gzcarbon.atomic import atomic_write

N_LEVELS = 20
FILL = np.float32(-999999.0)

PROFFAST_HEADER = ["UTC", "LocalTime", "spectrum", "JulianDate", "UTtimeh", "gndP", "gndT",
                   "latdeg", "londeg", "altim", "appSZA", "azimuth", "XH2O", "XAIR", "XCO2",
                   "XCH4", "XCO", "XCH4_S5P", "H2O", "O2", "CO2", "CH4", "CO", "CH4_S5P"]


def oco_levels(psurf: np.ndarray, n: int = N_LEVELS) -> np.ndarray:
    """OCO's retrieval levels: ``n`` pressures evenly spaced in sigma = p / psurf from the surface
    (sigma 1) to the top (sigma 1e-4, the product's ~0.1 hPa top level), surface first, shape
    ``(len(psurf), n)``."""
    sigma = np.linspace(1.0, 0.0, n)
    sigma[-1] = 1e-4
    return np.asarray(psurf, dtype=float)[:, None] * sigma[None, :]


def oco_kernel(pressure: np.ndarray, psurf: np.ndarray) -> np.ndarray:
    """A typical OCO-2 land-nadir XCO2 column averaging kernel on ``pressure`` (surface first):
    about 0.6 at the surface, 1 near 600 hPa and 1.15 at the top (shape after O'Dell et al. 2012,
    Fig. 8; the demo's soundings use it, real files carry their own)."""
    sigma = np.asarray(pressure, float) / np.asarray(psurf, float)[:, None]
    return 0.6 + 0.55 * (1.0 - sigma) ** 0.6


def oco_pressure_weight(pressure: np.ndarray) -> np.ndarray:
    """Pressure weights of levels (surface first) as the ACOS layer scheme gives them on evenly
    spaced levels: half layers at the ends, whole layers inside, summing to 1."""
    p = np.asarray(pressure, dtype=float)
    dp = -np.diff(p, axis=1)
    w = np.zeros_like(p)
    w[:, :-1] += dp / 2
    w[:, 1:] += dp / 2
    return w / w.sum(axis=1, keepdims=True)


def write_oco_lite(path: str | os.PathLike, table: pd.DataFrame, pressure: np.ndarray,
                   ak: np.ndarray, pressure_weight: np.ndarray, prior: np.ndarray,
                   flag: np.ndarray | None = None) -> Path:
    """Write an OCO-2 Lite granule (layout in the module docstring), atomically.

    ``table``: ``sounding_id`` (int), ``time``, ``lon``, ``lat``, ``value`` (XCO2 ppm),
    ``uncertainty``, ``surface_pressure``, ``surface_altitude``, ``solar_zenith``; the arrays are
    ``(n, 20)`` **surface first** (written top first, as the product stores them)."""
    from netCDF4 import Dataset

    n = len(table)
    t = pd.to_datetime(table["time"])
    secs = (t - pd.Timestamp("1970-01-01")).dt.total_seconds().to_numpy()
    flag = np.zeros(n, np.int8) if flag is None else np.asarray(flag, np.int8)
    top_first = (lambda a: np.asarray(a, dtype=np.float32)[:, ::-1])

    def write(tmp: Path) -> None:
        with Dataset(tmp, "w", format="NETCDF4") as d:
            d.setncattr("title", "OCO-2 Level 2 bias-corrected XCO2 and other select fields "
                                 "from the full-physics retrieval aggregated as daily files")
            d.setncattr("source", "gzcarbon demo world (synthetic soundings from the demo truth)")
            d.createDimension("sounding_id", n)
            d.createDimension("levels", N_LEVELS)
            d.createDimension("vertices", 4)
            d.createDimension("epoch_dimension", 7)

            def var(group, name, dtype, dims, values, fill=None, **attrs):
                v = group.createVariable(name, dtype, dims, fill_value=fill, zlib=True)
                for k, a in attrs.items():
                    v.setncattr(k, a)
                v[:] = values
                return v

            var(d, "sounding_id", "i8", ("sounding_id",),
                np.asarray(table["sounding_id"], dtype=np.int64), long_name="sounding_id",
                comment="YYYYMMDDhhmmssmf")
            var(d, "levels", "f4", ("levels",), np.arange(1, N_LEVELS + 1, dtype=np.float32),
                long_name="levels", comment="level 1 is the top of the atmosphere")
            var(d, "time", "f8", ("sounding_id",), secs, units="seconds since 1970-01-01 00:00:00",
                long_name="time")
            var(d, "date", "i2", ("sounding_id", "epoch_dimension"),
                np.stack([t.dt.year, t.dt.month, t.dt.day, t.dt.hour, t.dt.minute, t.dt.second,
                          t.dt.microsecond // 1000], axis=1).astype(np.int16))
            var(d, "latitude", "f4", ("sounding_id",), table["lat"], FILL, units="degrees_north")
            var(d, "longitude", "f4", ("sounding_id",), table["lon"], FILL, units="degrees_east")
            lat = np.asarray(table["lat"], float)[:, None]
            lon = np.asarray(table["lon"], float)[:, None]
            var(d, "vertex_latitude", "f4", ("sounding_id", "vertices"),
                lat + np.array([-0.006, -0.006, 0.006, 0.006]), FILL, units="degrees_north")
            var(d, "vertex_longitude", "f4", ("sounding_id", "vertices"),
                lon + np.array([-0.0065, 0.0065, 0.0065, -0.0065]), FILL, units="degrees_east")
            var(d, "solar_zenith_angle", "f4", ("sounding_id",), table["solar_zenith"], FILL,
                units="degrees")
            var(d, "sensor_zenith_angle", "f4", ("sounding_id",), np.zeros(n), FILL,
                units="degrees")
            var(d, "xco2", "f4", ("sounding_id",), table["value"], FILL, units="ppm",
                long_name="Column-averaged dry-air mole fraction of CO2 (includes bias "
                          "correction)")
            var(d, "xco2_uncertainty", "f4", ("sounding_id",), table["uncertainty"], FILL,
                units="ppm")
            var(d, "xco2_apriori", "f4", ("sounding_id",),
                np.sum(pressure_weight * prior, axis=1), FILL, units="ppm")
            var(d, "xco2_quality_flag", "i1", ("sounding_id",), flag,
                comment="0=Good, 1=Bad")
            var(d, "xco2_averaging_kernel", "f4", ("sounding_id", "levels"), top_first(ak), FILL,
                units="1", comment="Normalized column averaging kernel")
            var(d, "pressure_weight", "f4", ("sounding_id", "levels"),
                top_first(pressure_weight), FILL, units="1")
            var(d, "pressure_levels", "f4", ("sounding_id", "levels"), top_first(pressure), FILL,
                units="hPa")
            var(d, "co2_profile_apriori", "f4", ("sounding_id", "levels"), top_first(prior),
                FILL, units="ppm")
            s = d.createGroup("Sounding")
            var(s, "altitude", "f4", ("sounding_id",), table["surface_altitude"], FILL, units="m")
            var(s, "operation_mode", "i1", ("sounding_id",), np.zeros(n, np.int8),
                comment="0=Nadir, 1=Glint, 2=Target, 3=Transition")
            var(s, "land_fraction", "f4", ("sounding_id",), np.full(n, 100.0), FILL,
                units="percent")
            r = d.createGroup("Retrieval")
            var(r, "psurf", "f4", ("sounding_id",), table["surface_pressure"], FILL, units="hPa")

    return atomic_write(path, write)


def oco_sounding_ids(times) -> np.ndarray:
    """OCO sounding ids ``YYYYMMDDhhmmssmf`` (m = tenth of a second, f = footprint 1-8)."""
    t = pd.to_datetime(pd.Series(times))
    base = t.dt.strftime("%Y%m%d%H%M%S").astype(np.int64).to_numpy() * 100
    return base + (t.dt.microsecond // 100000).to_numpy() * 10 + 1 + np.arange(len(t)) % 8


def proffast_text(rows: pd.DataFrame, utc_offset_hours: float = 8.0) -> str:
    """The text of a PROFFAST 2.2 comb_invparms CSV. ``rows``: ``time`` (UTC), ``lon``, ``lat``,
    ``altitude`` (m), ``pressure`` (hPa), ``sza``, ``xco2`` (ppm), ``xch4`` (ppb), ``xco`` (ppb);
    values PROFFAST writes but the pipeline does not use (H2O, O2, the columns) are written as
    PROFFAST does for a typical spectrum."""
    t = pd.to_datetime(rows["time"])
    jd = (t - pd.Timestamp("2000-01-01 12:00")).dt.total_seconds() / 86400 + 2451545.0
    lines = [", ".join(PROFFAST_HEADER)]
    for i in range(len(rows)):
        r = rows.iloc[i]
        ti = t.iloc[i]
        vals = [ti.strftime("%Y-%m-%d %H:%M:%S"),
                (ti + pd.Timedelta(hours=utc_offset_hours)).strftime("%Y-%m-%d %H:%M:%S"),
                ti.strftime("%y%m%d_%H%M%S") + "SN.BIN", f"{jd.iloc[i]:.5f}",
                f"{ti.hour + ti.minute / 60:6.1f}", f"{r['pressure']:.2f}", "298.15",
                f"{r['lat']:.5f}", f"{r['lon']:.5f}", f"{r['altitude']:.3f}", f"{r['sza']:.2f}",
                "-90.00", "3.00000e+03", "1.00000e+00", f"{r['xco2']:.5e}",
                f"{r['xch4'] / 1000:.5e}", f"{r['xco'] / 1000:.5e}", f"{r['xch4'] / 1000:.5e}",
                "6.00000e+26", "4.46000e+28", "9.00000e+25", "4.00000e+23", "2.00000e+22",
                "4.00000e+23"]
        lines.append(", ".join(vals))
    return "\n".join(lines) + "\n"


def write_proffast(path: str | os.PathLike, rows: pd.DataFrame, utc_offset_hours: float = 8.0) -> Path:
    """Write a PROFFAST comb_invparms CSV (:func:`proffast_text`) atomically."""
    from gzcarbon.atomic import write_text

    return write_text(path, proffast_text(rows, utc_offset_hours))


def column_truth(H_truth_rows, truth_flux, operators, background, noise_ppm: float = 0.0,
                 rng: np.random.Generator | None = None) -> np.ndarray:
    """True column values ``X = H_col,truth x_true + b Σ h A + Σ h (1 − A) x_prior (+ noise)``
    of column receptors whose Jacobian rows ``H_truth_rows`` come from the **truth's own
    transport** (``transport.columns.column_jacobian_row`` with the settings of
    ``gzcarbon.demo.truth_errors.TruthTransport``), never from the inversion's footprints.
    ``truth_flux`` is the truth on the rows' hourly axis and cells (flattened ``hour * n_cells +
    cell``), ``operators`` one ``transport.columns.ColumnOperator`` per row, ``background`` the
    uniform background mole fraction (scalar or per row)."""
    import scipy.sparse as sp

    H = sp.csr_matrix(H_truth_rows)
    x = np.asarray(truth_flux, dtype=float).ravel()
    if H.shape[1] != x.size:
        raise ValueError(f"column_truth: {H.shape[1]} Jacobian columns for a truth of {x.size} values")
    b = np.broadcast_to(np.asarray(background, float), (H.shape[0],))
    out = (H @ x + b * np.array([op.background_weight for op in operators])
           + np.array([op.prior_term for op in operators]))
    if noise_ppm > 0:
        out = out + (rng or np.random.default_rng(0)).normal(0.0, noise_ppm, out.size)
    return out


def track_records(segment_truth: pd.DataFrame, record_seconds: int = 1, plume_ppm: float = 2.0,
                  plume_rate: float = 0.05, noise_ppm: float = 0.1,
                  rng: np.random.Generator | None = None) -> pd.DataFrame:
    """1 Hz (``record_seconds``) records of a vehicle track whose 1-minute means are the truth.

    ``segment_truth``: one row per minute, ``start`` (UTC), ``lon0, lat0, lon1, lat1`` (where the
    minute starts and ends), ``height``, ``co2`` (the true mole fraction of the 1 km cell the
    vehicle is in: background + the truth's own transport × the true flux). On top the vehicle
    passes road plumes the grid cannot resolve: a record is inside one with probability
    ``plume_rate`` and then reads ``plume_ppm`` × an exponential more; and analyser noise. The
    minute's records are shifted so that their mean minus the plume part equals the truth; the
    plumes stay in (what the segment σ's spread term is for)."""
    rng = rng or np.random.default_rng(0)
    per = int(60 // record_seconds)
    out = []
    for _, s in segment_truth.iterrows():
        f = (np.arange(per) + 0.5) / per
        noise = rng.normal(0.0, noise_ppm, per)
        noise -= noise.mean()
        plume = np.where(rng.random(per) < plume_rate, plume_ppm * rng.exponential(1.0, per), 0.0)
        out.append(pd.DataFrame({
            "time": pd.Timestamp(s["start"]) + pd.to_timedelta(np.arange(per) * record_seconds, unit="s"),
            "lat": s["lat0"] + f * (s["lat1"] - s["lat0"]), "lon": s["lon0"] + f * (s["lon1"] - s["lon0"]),
            "height": float(s["height"]), "co2": float(s["co2"]) + noise + plume}))
    return pd.concat(out, ignore_index=True)


def track_text(records: pd.DataFrame) -> str:
    """The track CSV (``stations.mobile``): ISO times with ``Z``, 6 decimals of degrees, 3 of ppm."""
    r = records.copy()
    r["time"] = pd.to_datetime(r["time"]).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return r.to_csv(index=False, float_format="%.6f")


# --- the demo world's column instruments and mobile track (rules demo_columns, demo_mobile) -------
#: the demo's EM27/SUN: Tianhe (site id, serial, position, altitude m, surface pressure hPa), its
#: UTC hours (one receptor each, at half past), spectra per hour and their noise (ppm)
DEMO_EM27 = dict(site="GZE", serial=193, lon=113.33, lat=23.13, altitude=20.0, pressure=1010.0,
                 hours_utc=(4, 5), spectra=6, noise_ppm=0.3)
#: the demo's OCO-2 overpass on the first day: time, longitude, soundings spread over the latitudes
#: (two 0.1° cells of the hour means), noise and reported uncertainty (ppm)
DEMO_OCO = dict(time="05:20:10", lon=113.28, lat0=23.02, lat1=23.18, n=8, psurf=1010.0, noise_ppm=0.5)
#: the demo's mobile track on the last day: start (UTC), minutes, from/to (lon, lat), inlet height
DEMO_TRACK = dict(track="GZM", start="05:00", minutes=12, lon0=113.26, lat0=23.125, lon1=113.36,
                  lat1=23.125, height=3.0, plume_ppm=2.0, noise_ppm=0.1)


def _truth_setup(truth_path, truth_outer_path, grid_cfg: dict, transport: dict, truth_transport: dict):
    """(nested grid, hours, flat true state, background series, truth StiltSettings)."""
    import xarray as xr

    from gzcarbon.demo.signal import truth_state
    from gzcarbon.demo.truth_errors import TruthTransport
    from gzcarbon.grid import NestedGrid
    from transport.stilt_driver import StiltSettings

    nested = NestedGrid.from_config(grid_cfg)
    with xr.open_dataset(truth_path) as t:
        t = t.load()
    outer = None
    if nested.enabled:
        with xr.open_dataset(truth_outer_path) as to:
            outer = to["flux_outer"].sel(time=t["time"].values).values
    hours = pd.DatetimeIndex(t["time"].values)
    state = truth_state(t["flux"].values, outer, nested).ravel()
    bg = t["background"].to_series()
    bg.index = pd.DatetimeIndex(bg.index)
    tt = TruthTransport.from_mapping(truth_transport)
    return nested, hours, state, bg, StiltSettings.from_config(tt.transport_config(transport))


def write_demo_columns(out_proffast, out_oco, *, truth_path, truth_outer_path, met: dict,
                       grid_cfg: dict, transport: dict, truth_transport: dict, days, work_dir,
                       seed: int, utc_offset_hours: float = 8.0) -> dict:
    """The demo's column files from its truth through the **truth's own transport**: an EM27/SUN
    PROFFAST file (:data:`DEMO_EM27`, every day) and an OCO-2 Lite granule (:data:`DEMO_OCO`,
    first day). Each hour (EM27) or 0.1° cell (OCO) gets one truth column receptor
    (``transport.columns.column_jacobian_row`` with the truth's settings); its spectra or
    soundings are :func:`column_truth` of that row plus noise. Returns the true values."""
    from transport.columns import column_jacobian_row, column_operator, ground_operator

    nested, hours, state, bg, settings = _truth_setup(truth_path, truth_outer_path, grid_cfg, transport,
                                                      truth_transport)
    rng = np.random.default_rng(seed + 2301)
    days = pd.to_datetime(list(days), format="%Y%m%d")
    e = DEMO_EM27
    em_op = ground_operator(e["pressure"])
    spectra, truths = [], {}
    for d in days:
        for h in e["hours_utc"]:
            t = d + pd.Timedelta(hours=h, minutes=30)
            row, _ = column_jacobian_row(dict(time=t, lon=e["lon"], lat=e["lat"],
                                              receptor_id=f"TRUTH_{e['site']}_{t:%Y%m%d%H%M}"),
                                         em_op, met, nested, hours, settings, work_dir)
            x = float(column_truth(row, state, [em_op], float(bg.get(t.floor("h"), bg.iloc[0])))[0])
            truths[f"{e['site']} {t:%Y-%m-%d %H:%M}"] = x
            for k in range(e["spectra"]):
                spectra.append(dict(time=t - pd.Timedelta(minutes=25) + pd.Timedelta(minutes=50 * k / e["spectra"]),
                                    lon=e["lon"], lat=e["lat"], altitude=e["altitude"], pressure=e["pressure"],
                                    sza=50.0, xco2=x + rng.normal(0.0, e["noise_ppm"]), xch4=1990.0, xco=120.0))
    write_proffast(out_proffast, pd.DataFrame(spectra), utc_offset_hours)

    o = DEMO_OCO
    n = int(o["n"])
    t0 = days[0] + pd.Timedelta(o["time"])
    t_oco = t0 + pd.to_timedelta(np.arange(n) * 0.333, unit="s")
    psurf = np.full(n, float(o["psurf"]))
    pressure = oco_levels(psurf)
    ak, pw = oco_kernel(pressure, psurf), oco_pressure_weight(pressure)
    prior = 421.0 - 4.0 * (1 - pressure / psurf[:, None]) ** 2
    lats = np.linspace(o["lat0"], o["lat1"], n)
    cell = np.floor(lats / 0.1).astype(int)
    values = np.empty(n)
    b = float(bg.get(t0.floor("h"), bg.iloc[0]))
    for c in np.unique(cell):
        ix = np.flatnonzero(cell == c)
        cell_op = column_operator(pressure[ix].mean(0), ak[ix].mean(0), pw[ix].mean(0), prior[ix].mean(0),
                                  float(psurf[0]))
        row, _ = column_jacobian_row(dict(time=t0.floor("min"), lon=o["lon"], lat=float(lats[ix].mean()),
                                          receptor_id=f"TRUTH_OCO_{c}"), cell_op, met, nested, hours,
                                     settings, work_dir)
        enh = float((row @ state)[0])
        for i in ix:
            op = column_operator(pressure[i], ak[i], pw[i], prior[i], psurf[i])
            values[i] = enh + b * op.background_weight + op.prior_term + rng.normal(0.0, o["noise_ppm"])
        truths[f"OCO cell {c}"] = enh
    table = pd.DataFrame(dict(sounding_id=oco_sounding_ids(t_oco), time=t_oco, lon=np.full(n, o["lon"]),
                              lat=lats, value=values, uncertainty=o["noise_ppm"], surface_pressure=psurf,
                              surface_altitude=15.0, solar_zenith=50.0))
    write_oco_lite(out_oco, table, pressure, ak, pw, prior)
    return truths


def write_demo_track(out_track, *, truth_path, truth_outer_path, met: dict, grid_cfg: dict,
                     transport: dict, truth_transport: dict, days, work_dir, seed: int) -> pd.DataFrame:
    """The demo's mobile track (:data:`DEMO_TRACK`, last day) from its truth through the truth's
    own transport: each minute's true mole fraction is the background plus the truth row of a
    point receptor at the minute's middle (``transport.columns.point_jacobian_row``, truth
    settings) × the true flux; :func:`track_records` adds road plumes and noise. Returns the
    per-minute truth."""
    from transport.columns import point_jacobian_row

    nested, hours, state, bg, settings = _truth_setup(truth_path, truth_outer_path, grid_cfg, transport,
                                                      truth_transport)
    k = DEMO_TRACK
    day = pd.to_datetime(list(days), format="%Y%m%d")[-1]
    start = day + pd.Timedelta(k["start"] + ":00")
    m = int(k["minutes"])
    f = np.arange(m + 1) / m
    lon = k["lon0"] + f * (k["lon1"] - k["lon0"])
    lat = k["lat0"] + f * (k["lat1"] - k["lat0"])
    rows = []
    for i in range(m):
        t = start + pd.Timedelta(minutes=i, seconds=30)
        rec = dict(receptor_id=f"TRUTH_{k['track']}_{t:%Y%m%d%H%M%S}", time=t, lon=0.5 * (lon[i] + lon[i + 1]),
                   lat=0.5 * (lat[i] + lat[i + 1]), agl=float(k["height"]))
        row, _ = point_jacobian_row(rec, met, nested, hours, settings, work_dir)
        rows.append(dict(start=start + pd.Timedelta(minutes=i), lon0=lon[i], lat0=lat[i], lon1=lon[i + 1],
                         lat1=lat[i + 1], height=float(k["height"]),
                         co2=float(bg.get(t.floor("h"), bg.iloc[0])) + float((row @ state)[0])))
    truth = pd.DataFrame(rows)
    rec = track_records(truth, plume_ppm=k["plume_ppm"], noise_ppm=k["noise_ppm"],
                        rng=np.random.default_rng(seed + 2302))
    from gzcarbon.atomic import write_text

    write_text(out_track, track_text(rec))
    return truth
