"""Demo raw analyser files: what a Picarro G2401 at a site would log, given the true signals.

CO2 comes from ``truth_signal.csv``, CH4 and CO from ``truth_signal_ch4.csv`` and
``truth_signal_co.csv`` (ppb) through the same shape, schedule, tanks and flush; CO is written wet
only, as the G2401 writes it (``stations.picarro.WATER_CORRECTION["co"]``; docs/demo.md).

The hourly true mole fraction of every inlet (``background + enhancement + noise`` from
``{D}/truth_signal.csv``) is turned into a continuous signal whose mean over every full hour equals
the hourly truth exactly: by default flat hours joined by smooth 4-minute ramps at the hour
boundaries, with plateau levels solved so that the hourly means are exact
(:func:`plateau_signal`); optionally an area-preserving cubic spline (interpolating the cumulative
integral at hour boundaries, :func:`area_preserving_signal`). The plateau shape keeps the mean of
the part of an hour a valve schedule samples close to the full-hour mean even when the hourly
truth jumps by several ppm from hour to hour; the spline then overshoots within hours.

The analyser then samples that signal every ``record_seconds`` (with a little jitter):

- valve schedule: a tower cycles its inlets in 20-minute blocks (top inlet 15 min, the lower
  inlets share the 5 min in the middle of the block, so the top inlet sees every hour boundary);
  a single-inlet site samples its inlet all the time;
- calibration cycles every ``cal_every_hours`` starting at minute 20 of an hour drawn per site:
  each reference tank for ``tank_minutes`` in sequence, then the target tank;
- instrument response ``raw = offset(t) + gain(t) * x + white noise``: offset drifts by
  ``offset_drift_ppm_per_day`` plus a slow wiggle, gain error ~1e-3 drifting slowly;
- flush transients: after each valve switch the reading relaxes exponentially (time constant
  ``flush_tau_s``) from the previous gas to the new one;
- occasional alarm periods (``ALARM_STATUS`` != 0, cavity pressure off its set point, readings
  biased and noisy), a short cavity-temperature excursion, rare positive spikes (local plumes);
- once a day the first file after midnight repeats the last lines of the previous file (an
  analyser restart), so readers must de-duplicate.

Everything is drawn from ``numpy.random.default_rng([seed, crc32(site_id)])``.
"""
from __future__ import annotations

import logging
import os
import shutil
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.interpolate import CubicSpline

from stations import picarro
from stations.sites import tank_table

log = logging.getLogger(__name__)

TRUTH_COLUMNS = ["site", "intake_height", "time", "background", "enhancement", "noise"]


def proxy_truth(sites, days: int, start="2025-01-01", seed: int = 0, noise_ppm: float = 0.3,
                background_amplitude_ppm: float = 0.5, background_period_hours: float = 10.0,
                utc_offset_hours: int = 8) -> pd.DataFrame:
    """A smooth truth-signal table (``TRUTH_COLUMNS`` + ``source``) without a transport model, for tests
    and benchmarks of the station chain: background 420 ppm + a sine of ``background_amplitude_ppm``
    (argument hour / ``background_period_hours``), a diurnal enhancement peaking at 04 local time
    (8 ppm at a 50 m inlet, × (50 / height)^0.3) and N(0, ``noise_ppm``) hourly noise."""
    rng = np.random.default_rng(seed)
    hours = pd.date_range(start, periods=24 * int(days), freq="h")
    lt = (hours.hour + utc_offset_hours) % 24
    rows = []
    for s in sites:
        for i in s["inlets"]:
            h = float(i["height"])
            rows.append(pd.DataFrame({
                "site": s["id"], "intake_height": h, "time": hours.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "background": 420 + background_amplitude_ppm * np.sin(np.arange(len(hours)) / background_period_hours),
                "enhancement": 4.0 * (1 + np.cos(2 * np.pi * (lt - 4) / 24)) * (50 / h) ** 0.3,
                "noise": rng.normal(0, noise_ppm, len(hours)), "source": "proxy"}))
    return pd.concat(rows, ignore_index=True)


def read_truth_signal(path: str | os.PathLike) -> pd.DataFrame:
    """Read ``truth_signal.csv`` and check its columns."""
    return normalize_truth(pd.read_csv(path), where=str(path))


def normalize_truth(df: pd.DataFrame, where: str = "truth signal") -> pd.DataFrame:
    """Check the columns of a truth-signal table; times as naive UTC datetimes."""
    missing = [c for c in TRUTH_COLUMNS if c not in df]
    if missing:
        raise ValueError(f"{where}: missing column(s) {missing}; expected {TRUTH_COLUMNS} "
                         "(see docs/formats.md, demo world)")
    df = df.copy()
    t = pd.to_datetime(df["time"], utc=True, errors="coerce")
    if t.isna().any():
        i = int(np.flatnonzero(t.isna().to_numpy())[0])
        raise ValueError(f"{where}: row {i + 2}: time {df['time'].iloc[i]!r} is not an ISO date")
    df["time"] = t.dt.tz_convert(None)
    df["site"] = df["site"].astype(str)
    return df


def area_preserving_signal(hour_starts: pd.DatetimeIndex, values: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Smooth signal at times ``t`` (datetime64) whose mean over each hour equals ``values``."""
    t0 = hour_starts[0]
    b = np.arange(len(values) + 1) * 3600.0
    cum = np.concatenate([[0.0], np.cumsum(np.asarray(values, float) * 3600.0)])
    spl = CubicSpline(b, cum, bc_type="natural").derivative()
    s = (pd.DatetimeIndex(t) - t0) / pd.Timedelta(seconds=1)
    return spl(np.clip(np.asarray(s, float), 0.0, b[-1]))


def plateau_signal(hour_starts: pd.DatetimeIndex, values: np.ndarray, t: np.ndarray,
                   ramp_seconds: float = 120.0) -> np.ndarray:
    """Signal at times ``t``: flat within each hour, smooth ramps around hour boundaries.

    Around each boundary the signal moves from one plateau to the next along
    ``S(x) = (1 + sin(pi x / 2)) / 2`` for ``x`` in [-1, 1] (``ramp_seconds`` each side). The
    plateaus ``z`` solve ``(I + a L) z = values`` (``L`` the second difference with flat ends,
    ``a = ramp_seconds (1/2 - 1/pi) / 3600``), so the mean over each full hour equals ``values``
    exactly while most of the hour sits at its own level: a valve schedule that samples only part
    of an hour still sees close to the hourly mean.
    """
    y = np.asarray(values, float)
    n = len(y)
    w = float(ramp_seconds)
    a = w * (0.5 - 1.0 / np.pi) / 3600.0
    ab = np.zeros((3, n))                      # banded (I + a L), L z = z[k+1] - 2 z[k] + z[k-1]
    ab[0, 1:] = a
    ab[2, :-1] = a
    ab[1, :] = 1 - 2 * a
    ab[1, 0] += a
    ab[1, -1] += a
    from scipy.linalg import solve_banded
    z = solve_banded((1, 1), ab, y) if n > 1 else y.copy()
    sec = np.asarray((pd.DatetimeIndex(t) - hour_starts[0]) / pd.Timedelta(seconds=1), float)
    k = np.clip((sec // 3600).astype(np.int64), 0, n - 1)
    u = sec - k * 3600.0
    zp = np.r_[z[0], z][k]                     # previous plateau (flat before the first hour)
    zn = np.r_[z, z[-1]][k + 1]                # next plateau (flat after the last hour)
    out = z[k].copy()
    lo = u < w
    out[lo] = zp[lo] + (z[k][lo] - zp[lo]) * 0.5 * (1 + np.sin(np.pi / 2 * (u[lo] / w)))
    hi = u > 3600.0 - w
    x = (u[hi] - 3600.0) / w
    out[hi] = z[k][hi] + (zn[hi] - z[k][hi]) * 0.5 * (1 + np.sin(np.pi / 2 * x))
    return out


def site_rng(seed: int, site_id: str) -> np.random.Generator:
    return np.random.default_rng([int(seed), zlib.crc32(site_id.encode())])


def _truth_series(truth: pd.DataFrame, site: dict) -> tuple[pd.DatetimeIndex, dict]:
    """Hours and the hourly true mole fraction per inlet height of ``site``."""
    sid = site["id"]
    tr = truth[truth["site"] == sid]
    if tr.empty:
        raise ValueError(f"truth signal: no rows for site {sid!r}")
    hours = pd.DatetimeIndex(sorted(tr["time"].unique()))
    series = {}
    for h in sorted((float(i["height"]) for i in site["inlets"]), reverse=True):
        th = tr[np.isclose(tr["intake_height"].astype(float), h)].set_index("time").sort_index()
        if th.empty:
            raise ValueError(f"truth signal: no rows for site {sid!r} inlet {h:g} m")
        th = th.reindex(hours)
        if th["background"].isna().any():
            raise ValueError(f"truth signal: site {sid} inlet {h:g} m misses hours "
                             f"{list(th.index[th['background'].isna()][:3])}")
        series[h] = (th["background"] + th["enhancement"] + th["noise"]).to_numpy(float)
    return hours, series


def _valve_schedule(sec, heights, valves, tanks, rng, cal_every_hours, tank_minutes) -> np.ndarray:
    """Ambient inlets (lower inlets in the middle of each 20-minute block), then calibration
    cycles: reference tanks, then the target."""
    valve = np.full(len(sec), valves[heights[0]], dtype=np.int64)
    if len(heights) > 1:
        m20 = (sec % 1200.0) / 60.0
        lower = heights[1:]
        for k, h in enumerate(lower):
            a = 7.5 + 5.0 * k / len(lower)
            b = 7.5 + 5.0 * (k + 1) / len(lower)
            valve[(m20 >= a) & (m20 < b)] = valves[h]
    order = sorted((v for v, (_, _, tgt) in tanks.items() if not tgt)) + \
        [v for v, (_, _, tgt) in tanks.items() if tgt]
    phase = np.floor(rng.uniform(0.0, cal_every_hours)) * 3600.0 + 1200.0   # at hh:20
    in_cycle = (sec - phase) % (cal_every_hours * 3600.0)
    for k, v in enumerate(order):
        sel = (in_cycle >= k * tank_minutes * 60) & (in_cycle < (k + 1) * tank_minutes * 60)
        valve[sel] = v
    return valve


def _flush(x, sec, valve, flush_tau_s) -> np.ndarray:
    """Flush transient: after every valve switch the reading relaxes exponentially (time constant
    ``flush_tau_s``) from the previous gas to the new one."""
    switch = np.r_[True, valve[1:] != valve[:-1]]
    seg = np.cumsum(switch) - 1
    seg_start = sec[switch]
    prev_last = np.r_[x[0], x[np.flatnonzero(switch)[1:] - 1]]
    dt = sec - seg_start[seg]
    return x + (prev_last[seg] - x) * np.exp(-dt / flush_tau_s) * (seg > 0)


def _flush_and_spikes(x, sec, valve, ambient, rng, flush_tau_s, spikes_per_day) -> tuple:
    """Flush transient after every valve switch, then rare positive spikes (ambient only).
    Returns the CO2 reading, the spike mask and the spike increments (ppm)."""
    x = _flush(x, sec, valve, flush_tau_s)
    n = len(x)
    spike = np.zeros(n, bool)
    added = np.zeros(n)
    for _ in range(rng.poisson(spikes_per_day * (sec[-1] / 86400.0))):
        i = rng.integers(0, n)
        if not ambient[i]:
            continue
        ln = rng.integers(1, 3)
        spike[i:i + ln] = True
        u = rng.uniform(8.0, 25.0)
        x[i:i + ln] += u
        added[i:i + ln] += u
    return x, spike, added


def _instrument(x, sec, rng, offset_drift_ppm_per_day, noise_ppm, alarms_per_day) -> tuple:
    """Response (offset, gain, noise), alarm periods and one cavity-temperature excursion."""
    n = len(x)
    days = sec / 86400.0
    o0, g0 = rng.uniform(-0.5, 0.5), rng.uniform(-1e-3, 1e-3)
    ph = rng.uniform(0, 2 * np.pi)
    offset = o0 + offset_drift_ppm_per_day * days + 0.05 * np.sin(2 * np.pi * days / 1.7 + ph)
    gain = 1.0 + g0 + 2e-4 * days
    raw = offset + gain * x + rng.normal(0.0, noise_ppm, n)
    alarm = np.zeros(n, np.int64)
    pressure = 140.0 + rng.normal(0, 0.01, n)
    ctemp = 45.0 + rng.normal(0, 0.002, n)
    for _ in range(rng.poisson(alarms_per_day * days[-1]) or 1):
        start = rng.uniform(0, sec[-1])
        sel = (sec >= start) & (sec < start + rng.uniform(600, 1800))
        alarm[sel] = 2 ** int(rng.integers(0, 4))
        pressure[sel] += rng.uniform(0.5, 2.0)
        raw[sel] += rng.normal(2.0, 0.5, sel.sum())
    start = rng.uniform(0, sec[-1])
    sel = (sec >= start) & (sec < start + 300)
    ctemp[sel] += 0.3
    raw[sel] += 1.0
    return raw, offset, gain, alarm, pressure, ctemp


def _records(time, sec, raw, valve, ambient, alarm, pressure, ctemp, gas_dry, rng) -> pd.DataFrame:
    """The analyser's columns: water, the other species and the wet readings. ``gas_dry``: the
    dry CH4 and CO at the analyser (ppb; tanks included) before its noise."""
    n = len(raw)
    days = sec / 86400.0
    amb = ambient.astype(float)
    h2o = amb * (2.0 + 0.5 * np.sin(2 * np.pi * (days + 0.3))) + (1 - amb) * 0.002 + \
        rng.normal(0, 0.005, n)
    ch4 = gas_dry["ch4"] + rng.normal(0, 0.5, n)
    co = gas_dry["co"] + rng.normal(0, 2.0, n)
    # the analyser's wet readings: dilution and pressure broadening, the relation its firmware
    # inverts for CO2_dry / CH4_dry (picarro.WATER_CORRECTION, Chen et al. 2010); CO is written wet
    # only (the G2401 has no CO_dry column), with picarro.co_dry_to_wet (h2o_reported = b_h2o_pct = H2O)
    def wet(species):
        _, a, b = picarro.WATER_CORRECTION[species]
        return 1.0 + a * h2o + b * h2o ** 2
    rec = pd.DataFrame({
        "EPOCH_TIME": (time - pd.Timestamp("1970-01-01")) / pd.Timedelta(seconds=1),
        "ALARM_STATUS": alarm, "INST_STATUS": np.full(n, 963),
        "CavityPressure": pressure, "CavityTemp": ctemp,
        "DasTemp": 35.0 + rng.normal(0, 0.05, n), "EtalonTemp": 45.0 + rng.normal(0, 0.001, n),
        "WarmBoxTemp": 45.0 + rng.normal(0, 0.001, n), "species": np.full(n, 2),
        "MPVPosition": valve.astype(float), "OutletValve": 20000.0 + rng.normal(0, 50, n),
        "solenoid_valves": np.zeros(n),
        "CO": picarro.co_dry_to_wet(co / 1000.0, h2o, h2o), "CO2": raw * wet("co2"), "CO2_dry": raw,
        "CH4": ch4 / 1000.0 * wet("ch4"), "CH4_dry": ch4 / 1000.0, "H2O": h2o, "h2o_reported": h2o,
        "b_h2o_pct": h2o,
    })
    rec["EPOCH_TIME"] = np.round(rec["EPOCH_TIME"].to_numpy(), 3)
    rec["ch4_dry_ppb"] = ch4
    rec["co_dry_ppb"] = co
    return rec


#: a local plume spike's CH4 and CO per ppm of its CO2 (a combustion plume: ppb/ppm)
SPIKE_PPB_PER_PPM = {"ch4": 5.0, "co": 15.0}


def _inlet_signal(truth, site, hours, heights, valves, valve, time, tanks, shape, gas) -> np.ndarray:
    """The gas at the analyser inlet for every record: the hourly truth of each inlet as a
    continuous signal (``shape``) while its valve is open, the tank values during calibration."""
    ghours, gseries = _truth_series(truth, site)
    if not ghours.equals(hours):
        raise ValueError(f"{gas} truth signal of site {site['id']}: hours {ghours[0]}..{ghours[-1]} "
                         f"differ from the CO2 truth signal's {hours[0]}..{hours[-1]}; rebuild both")
    x = np.full(len(valve), np.nan)
    for h in heights:
        sel = valve == valves[h]
        x[sel] = (plateau_signal(hours, gseries[h], time[sel]) if shape == "plateau" else
                  area_preserving_signal(hours, gseries[h], time[sel]))
    for v, (_, val, _) in tanks.items():
        x[valve == v] = val
    return x


def proxy_gas_truth(truth: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """CH4 and CO truth tables scaled from a CO2 one, for tests of the station chain that have no
    gas signals (the demo pipeline always passes its own): CH4 = 1980 ppb + 6 ppb/ppm × (CO2 − 420
    ppm), CO = 120 ppb + 10 ppb/ppm × (CO2 − 420 ppm), background, enhancement and noise alike."""
    out = {}
    for gas, base, k in (("ch4", 1980.0, 6.0), ("co", 120.0, 10.0)):
        t = truth.copy()
        t["background"] = base + k * (t["background"] - 420.0)
        t["enhancement"] = k * t["enhancement"]
        t["noise"] = k * t["noise"]
        out[gas] = t
    return out


def simulate_site(truth: pd.DataFrame, site: dict, seed: int, record_seconds: float = 5.0,
                  cal_every_hours: float = 6.0, tank_minutes: float = 5.0,
                  offset_drift_ppm_per_day: float = 0.3, noise_ppm: float = 0.07,
                  flush_tau_s: float = 10.0, alarms_per_day: float = 1.0,
                  spikes_per_day: float = 3.0, shape: str = "plateau",
                  gases: dict | None = None) -> pd.DataFrame:
    """Records of the site's analyser (Picarro columns) plus hidden truth columns.

    ``gases``: the CH4 and CO truth-signal tables (``{"ch4": df, "co": df}``, ppb, the columns of
    ``truth``); the analyser's CH4 and CO come from them exactly as its CO2 from ``truth`` (same
    within-hour shape, valve schedule, tanks, flush transient; a local spike adds
    ``SPIKE_PPB_PER_PPM`` × its CO2). Without them (tests of the CO2 chain) they come from
    :func:`proxy_gas_truth`.

    ``shape``: within-hour shape of the true signal, ``"plateau"`` (:func:`plateau_signal`,
    default) or ``"spline"`` (:func:`area_preserving_signal`). Both keep every full-hour mean equal
    to the hourly truth.

    Hidden columns (not written to files): ``true_value`` (CO2 at the analyser inlet before the
    instrument response, ppm), ``gain``, ``offset``, ``spike`` (bool), ``ch4_dry_ppb`` and
    ``co_dry_ppb`` (the dry CH4 and CO the analyser measured before writing them; CO is then
    written wet). The random draws come in
    a fixed order (schedule, spikes, instrument, species), so a seed gives the same files.
    """
    rng = site_rng(seed, site["id"])
    truth = normalize_truth(truth)
    hours, series = _truth_series(truth, site)
    gases = proxy_gas_truth(truth) if gases is None else gases
    heights = sorted(series, reverse=True)
    valves = {float(i["height"]): int(i["valve"]) for i in site["inlets"]}
    t0, t1 = hours[0], hours[-1] + pd.Timedelta(hours=1)
    n = int((t1 - t0) / pd.Timedelta(seconds=record_seconds))
    sec = np.arange(n) * record_seconds + rng.uniform(0.0, 0.3 * record_seconds, n)
    time = t0 + pd.to_timedelta(np.round(sec * 1000).astype("int64"), unit="ms")
    tanks = tank_table(site, "co2")
    valve = _valve_schedule(sec, heights, valves, tanks, rng, cal_every_hours, tank_minutes)
    x = np.empty(n)                                   # gas at the inlet
    for h in heights:
        sel = valve == valves[h]
        x[sel] = (plateau_signal(hours, series[h], time[sel]) if shape == "plateau" else
                  area_preserving_signal(hours, series[h], time[sel]))
    for v, (_, val, _) in tanks.items():
        x[valve == v] = val
    true_value = x.copy()
    ambient = np.isin(valve, list(valves.values()))
    x, spike, added = _flush_and_spikes(x, sec, valve, ambient, rng, flush_tau_s, spikes_per_day)
    raw, offset, gain, alarm, pressure, ctemp = _instrument(x, sec, rng, offset_drift_ppm_per_day,
                                                            noise_ppm, alarms_per_day)
    gas_dry = {}
    for gas in ("ch4", "co"):
        if gas not in gases:
            raise ValueError(f"demo raw files of site {site['id']}: no {gas} truth signal given")
        g = _inlet_signal(normalize_truth(gases[gas], where=f"{gas} truth signal"), site, hours, heights,
                          valves, valve, time, tank_table(site, gas), shape, gas)
        gas_dry[gas] = _flush(g, sec, valve, flush_tau_s) + SPIKE_PPB_PER_PPM[gas] * added
    rec = _records(time, sec, raw, valve, ambient, alarm, pressure, ctemp, gas_dry, rng)
    rec["time"] = time
    rec["true_value"] = true_value
    rec["gain"] = gain
    rec["offset"] = offset
    rec["spike"] = spike
    return rec


def write_site_files(records: pd.DataFrame, serial: str, outdir: str | os.PathLike,
                     restart_overlap: int = 15) -> list[Path]:
    """Write ``records`` as hourly ``DataLog_User`` files; return their paths.

    The first file of every UTC day after the first repeats the last ``restart_overlap`` lines of
    the previous file (a restart), as real analysers do.
    """
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    hour = records["time"].dt.floor("h")
    paths, prev = [], None
    for h, grp in records.groupby(hour, sort=True):
        out = grp
        if prev is not None and h.hour == 0 and restart_overlap:
            out = pd.concat([prev.tail(restart_overlap), grp])
        p = outdir / picarro.file_name(serial, h)
        picarro.write_dat(p, out)
        paths.append(p)
        prev = grp
    return paths


def write_demo_raw(truth_signal: str | os.PathLike | pd.DataFrame, site: dict, outdir,
                   seed: int, record_seconds: float = 5.0, gases: dict | None = None, **kw) -> list[Path]:
    """Demo raw files of one site from the truth signal (and the CH4/CO signals ``gases``, paths
    or tables; see :func:`simulate_site`); returns the written paths."""
    truth = truth_signal if isinstance(truth_signal, pd.DataFrame) else read_truth_signal(truth_signal)
    if gases is not None:
        gases = {g: (t if isinstance(t, pd.DataFrame) else read_truth_signal(t)) for g, t in gases.items()}
    rec = simulate_site(truth, site, seed, record_seconds=record_seconds, gases=gases, **kw)
    serial = (site.get("analyser") or {}).get("serial") or f"SN{site['id']}"
    outdir = Path(outdir)
    tmp = outdir.with_name(outdir.name + f".tmp{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    paths = write_site_files(rec, serial, tmp)
    if outdir.exists():
        shutil.rmtree(outdir)
    os.replace(tmp, outdir)           # the directory appears complete or not at all
    paths = [outdir / p.name for p in paths]
    log.info("site %s: %d records in %d files -> %s", site["id"], len(rec), len(paths), outdir)
    return paths
