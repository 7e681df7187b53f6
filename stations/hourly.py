"""Raw records -> calibrated, QC-flagged hourly means per inlet (ObsPack-like NetCDF).

:func:`process_site` chains reading (:mod:`stations.picarro`), instrument QC
(:mod:`stations.qc`), calibration (:mod:`stations.calibration`), the spike filter and
:func:`aggregate`. :func:`write_hourly_dir` writes ``{site}_{height}m.nc`` per inlet,
``ingest_summary.csv`` (every raw line accounted for, per file), ``calibration_cycles.csv`` and
``target_tank.csv``.

Hourly ``qcflag`` bits: 1 = LOW_COVERAGE (usable ambient records cover less than ``min_coverage``
of the time the inlet is normally sampled in an hour; also set for hours without data),
2 = CAL_EXTRAPOLATED (some records used a calibration held constant beyond the calibration
cycles). Coverage of inlet *i* = n_usable × median record interval / (3600 s × duty_i), where duty_i
is the inlet's share of all ambient records of the data set (1 for a single-inlet site).
"""
from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from gzcarbon.config import PlausibilityConfig, StationsConfig, TargetTankConfig, load_config

from . import calibration as calm
from . import picarro
from . import plausibility as plm
from . import qc as qcm
from .chain import ChainResult, run_chain
from .errors import SpeciesMismatchError
from .hourly_common import (HOUR_CAL_EXTRAPOLATED, HOUR_EXCLUDE, HOUR_FLAG_NAMES,  # noqa: F401
                            HOUR_IMPLAUSIBLE_RECORDS, HOUR_OUT_OF_RANGE, HOUR_STEP, HOUR_TARGET,
                            LOW_COVERAGE, SiteIngest, hour_plausibility)
from .hourly_files import process_site_hourly_files  # noqa: F401  (the already-hourly route)
from .read import detect_format
from .settings import DEFAULT
from .sites import calibration_scale, inlet_valves, site_path_name
from .units import UNITS

log = logging.getLogger(__name__)

#: raw columns the chain uses (the reader still checks every field of every line)
USED_COLUMNS = tuple(picarro.REQUIRED_COLUMNS) + tuple(
    c for cols in (*picarro.SPECIES_COLUMNS.values(), *picarro.ISOTOPOLOGUE_SUMS.values()) for c in cols) + ("H2O",)


def aggregate(time: np.ndarray, value: np.ndarray, usable: np.ndarray, extrap: np.ndarray,
              record_seconds: float, duty: float, min_coverage: float,
              hours: pd.DatetimeIndex) -> pd.DataFrame:
    """Hourly mean, std (ddof=1), count, coverage and qcflag of usable records on ``hours``."""
    t = pd.DatetimeIndex(time[usable]).floor("h")
    df = pd.DataFrame({"h": t, "v": value[usable], "x": extrap[usable]})
    g = df.groupby("h")
    out = pd.DataFrame(index=hours)
    out["value"] = g["v"].mean().reindex(hours)
    out["value_std_dev"] = g["v"].std().reindex(hours)
    out["nvalue"] = g["v"].size().reindex(hours).fillna(0).astype(np.int64)
    out["coverage"] = out["nvalue"] * record_seconds / (3600.0 * max(duty, 1e-9))
    flag = np.where(out["coverage"] < min_coverage, LOW_COVERAGE, 0)
    flag = flag | np.where(g["x"].any().reindex(hours).fillna(False).astype(bool),
                           HOUR_CAL_EXTRAPOLATED, 0)
    out["qcflag"] = flag.astype(np.int64)
    out.index.name = "time"
    return out


def process_site(raw, site: dict, species: str = "co2", flush_seconds: float = DEFAULT.flush_seconds,
                 min_coverage: float = DEFAULT.min_coverage, on_bad_lines: str = "skip",
                 qc_kw: dict | None = None, spike_kw: dict | None = None,
                 period: tuple | None = None, margin_hours: float = 12.0,
                 plausibility: PlausibilityConfig | dict | None = None,
                 target_tank: TargetTankConfig | dict | None = None,
                 allow_wet_correction: bool = DEFAULT.allow_wet_correction, sites: list | None = None,
                 stations_file: str = "config/stations.yaml") -> SiteIngest:
    """Read, QC, calibrate and aggregate the raw files ``raw`` (directory/files) of ``site``.

    ``period`` = (start, end) UTC, end exclusive: the hourly axis of the output. Files whose
    name dates them (``...-YYYYMMDD-HHMMSSZ-DataLog_User.dat``) more than ``margin_hours`` outside
    the period are not read (listed in the summary with that reason); records in the margin
    still serve calibration. Files that are not raw files are listed with the reason too.
    ``plausibility``: ``stations.plausibility`` (:mod:`stations.plausibility`); ``target_tank``:
    ``stations.target_tank`` (:func:`stations.calibration.target_settings`): the typed sections
    or mappings of some of their keys; every setting not given (these two, ``flush_seconds``,
    ``min_coverage``, ``allow_wet_correction``) takes the config's default
    (`gzcarbon.config.StationsConfig`, :mod:`stations.settings`); ``sites``: all site
    entries (names the owner of a foreign analyser serial in the error). The records go through
    :func:`stations.chain.run_chain` (the same chain as :func:`stations.read`), then the
    target-tank check, the spike filter and :func:`aggregate` per inlet.
    """
    pset = plm.settings(plausibility)
    tset = calm.target_settings(target_tank)
    srcs, skipped = raw_sources(raw, site, period, margin_hours)
    counts = _check_serials(srcs, site, sites, stations_file)
    rr = picarro.read_raw(srcs, on_bad_lines=on_bad_lines, columns=USED_COLUMNS, species=species)
    ch = run_chain(rr, species, site, flush_seconds=flush_seconds, qc_kw=qc_kw, plausibility=pset,
                   allow_wet_correction=allow_wet_correction)
    _log_chain(site["id"], raw, rr, ch, species, pset)
    periods = _target_flags(site["id"], ch, species, tset)
    _spike_flags(ch, inlet_valves(site), spike_kw)
    out = pd.DataFrame({"time": ch.records["time"], "file": ch.records["file"],
                        "line": ch.records["line"], "valve": ch.valve, "kind": ch.kind,
                        "raw": ch.raw, "value": ch.value, "qc": ch.qc})
    hourly = _hourly_per_inlet(out, ch, site, species, pset, min_coverage, period)
    summary = _site_summary(rr, out, ch, srcs, skipped, raw)
    cal = ch.calibration
    n_hours_flag = {h: {nm: int(((hr["qcflag"] & b) != 0).sum()) for b, nm in HOUR_FLAG_NAMES.items()}
                    for h, hr in hourly.items()}
    log.info("site %s: %d records, %d used, %d calibration cycles, target bias %.3f (%s); hours "
             "flagged per inlet: %s", site["id"], len(out), int(out["used"].sum()), len(cal.cycles),
             cal.target_summary["bias"], species, n_hours_flag)
    info = {"dry_mole_fraction": _dry_note(ch.sources, ch.corrected, species),
            "records_wet_corrected": int(ch.corrected.sum()),
            "raw_files_read": int((summary["status"] == "read").sum()),
            "raw_files_not_raw": int((summary["status"] == "not_raw").sum()),
            "raw_files_outside_period": int((summary["status"] == "outside_period").sum()),
            "analyser_serials": ",".join(sorted(counts)),
            "target_tank_action": tset.action,
            "target_tank_max_bias": tset.max_bias[species],
            "target_failed_periods": int(len(periods)),
            "plausible_range": list(pset.range[species]),
            "max_hourly_step": pset.max_hourly_step[species],
            "stuck_minutes": pset.stuck_minutes}
    return SiteIngest(out, summary, cal, hourly, rr.problems, skipped=skipped, info=info)


def stations_config(cfg: StationsConfig | Mapping | None = None) -> StationsConfig:
    """``cfg`` (the typed ``stations`` section, a mapping of some of its keys such as a partial
    ``config["stations"]``, or None) as a checked `StationsConfig`; missing keys take the config's
    defaults. A bad value raises ``gzcarbon.config.ConfigError`` naming the key."""
    if isinstance(cfg, StationsConfig):
        return cfg
    return load_config({"stations": dict(cfg or {})}).stations


def ingest(raw, site: dict, cfg: StationsConfig | Mapping | None = None, *, species: str = "co2",
           period: tuple | None = None, sites: list | None = None,
           stations_file: str = "config/stations.yaml", on_bad_lines: str = "skip") -> SiteIngest:
    """The hourly data of one site, as the pipeline's rule ``hourly_obs`` makes them: raw analyser
    files (:func:`process_site`) or already-hourly files (:func:`process_site_hourly_files`),
    detected from the content of ``raw``, with the settings of the ``stations`` section ``cfg``
    (``flush_seconds``, ``min_coverage``, ``plausibility``, ``target_tank``,
    ``allow_wet_correction``, ``time_reference``; see :func:`stations_config`)."""
    st = stations_config(cfg)
    fmt = detect_format(raw)
    log.info("site %s: %s holds %s files", site["id"], raw, fmt)
    try:
        if fmt == "picarro":
            return process_site(raw, site, species, flush_seconds=st.flush_seconds, min_coverage=st.min_coverage,
                                on_bad_lines=on_bad_lines, period=period, plausibility=st.plausibility,
                                target_tank=st.target_tank, allow_wet_correction=st.allow_wet_correction,
                                sites=sites, stations_file=stations_file)
        return process_site_hourly_files(raw, site, species, min_coverage=st.min_coverage, period=period,
                                         plausibility=st.plausibility, time_reference=st.time_reference)
    except SpeciesMismatchError as err:
        if species == "co2":
            raise
        raise SpeciesMismatchError(
            f"site {site['id']}: config species asks for {species}, but its files do not carry it: "
            f"{err} Fix: leave {species} out of config species (e.g. species: [co2]), or limit the "
            f"run to sites whose analysers measure {species} (config sites).") from err


def raw_sources(raw, site: dict, period: tuple | None, margin_hours: float) -> tuple[list, list]:
    """The raw files (zip members expanded) of a site to read, and ``(file, reason, status)`` of
    every file not read (``not_raw`` or ``outside_period``)."""
    files, skipped = picarro.find_raw_files(raw)
    skipped = [(f, why, "not_raw") for f, why in skipped]
    if not files:
        raise picarro.PicarroFormatError(
            f"{raw}: no Picarro raw files ({', '.join(picarro.RAW_SUFFIXES)}) for site {site['id']}; "
            f"{len(skipped)} other file(s): {[str(f) for f, *_ in skipped[:5]]}")
    srcs, zsk = picarro.expand_archives(files)
    skipped += [(f, why, "not_raw") for f, why in zsk]
    if period is not None:
        p0 = pd.Timestamp(period[0]) - pd.Timedelta(hours=margin_hours)
        p1 = pd.Timestamp(period[1]) + pd.Timedelta(hours=margin_hours)
        inside = [f for f in srcs if _file_in(f, p0, p1)]
        skipped += [(f, f"dated outside the run's period {period[0]} - {period[1]} (+- {margin_hours:g} h)",
                     "outside_period") for f in srcs if not _file_in(f, p0, p1)]
        srcs = inside
        if not srcs:
            raise FileNotFoundError(f"{raw}: no raw files dated between {p0} and {p1}")
    for f, why, status in skipped:
        if status != "outside_period":
            log.warning("site %s: not read: %s: %s", site["id"], f, why)
    n_out = sum(1 for *_, k in skipped if k == "outside_period")
    if n_out:
        log.info("site %s: %d raw file(s) dated outside the period not read (listed in ingest_summary.csv)",
                 site["id"], n_out)
    return srcs, skipped


def _check_serials(srcs, site, sites, stations_file) -> dict:
    counts, unnamed = picarro.check_serials(srcs, site, sites, stations_file)
    if unnamed:
        log.warning("site %s: %d raw file(s) carry no analyser serial in their name (not checked "
                    "against analyser.serial), e.g. %s", site["id"], len(unnamed), unnamed[0])
    log.info("site %s: analyser serial(s) in the file names: %s (expected %s)", site["id"], counts,
             picarro.expected_serials(site) or "not configured: not checked")
    return counts


def _log_chain(site_id, raw, rr, ch: ChainResult, species: str, pset: PlausibilityConfig) -> None:
    """Warnings of the chain: wet-corrected files, no calibration cycle, implausible records."""
    if ch.corrected.any() and picarro.WATER_CORRECTION.get(species, (None,))[0] == picarro.SPECIES_COLUMNS[species][0]:
        log.info("site %s: %s written wet by the analyser: corrected for water vapour with H2O for %d "
                 "records (%s)", site_id, species.upper(), int(ch.corrected.sum()),
                 picarro.water_correction_ref(species))
    elif ch.corrected.any():
        wet_files = [n for n, src in zip(rr.summary["file"], ch.sources) if "+H2O" in src]
        log.warning("site %s: %d file(s) lack %s: the wet value is corrected with H2O for %d records "
                    "(%s), e.g. %s", site_id, len(wet_files), picarro.SPECIES_COLUMNS[species][0],
                    int(ch.corrected.sum()), picarro.WATER_CORRECTION_REF, wet_files[0])
    if ch.calibration.cycles.empty:
        log.warning("site %s: no calibration cycle found in %s (tank valves of stations.yaml "
                    "never seen with usable records): every record is flagged 'missing'", site_id, raw)
    _log_implausible(site_id, ch.records, ch.qc, ch.raw, species, pset)


def _target_flags(site_id: str, ch: ChainResult, species: str, tset: TargetTankConfig) -> pd.DataFrame:
    """Periods in which the target tank failed; ambient records in them get TARGET (action flag)."""
    periods = calm.target_failed_periods(ch.calibration.target, tset.max_bias[species])
    for _, pr in periods.iterrows():
        log.warning("site %s: target tank bias up to %.3f %s (limit %g, stations.target_tank.max_bias) "
                    "in %d run(s) from %s: period %s - %s %s", site_id, pr["max_abs_bias"],
                    UNITS[species], tset.max_bias[species], pr["runs"], pr["first_run"],
                    pr["start"] if pd.notna(pr["start"]) else "start of data",
                    pr["end"] if pd.notna(pr["end"]) else "end of data",
                    "flagged 'target'" if tset.action == "flag" else "NOT flagged (action: warn)")
    if tset.action == "flag" and len(periods):
        ambient = np.asarray(ch.kind.codes == 0)
        ch.qc[ambient & calm.in_periods(ch.records["time"].to_numpy(), periods)] |= qcm.TARGET
    return periods


def _spike_flags(ch: ChainResult, inlets: dict, spike_kw: dict | None) -> None:
    times = ch.records["time"].to_numpy()
    for v in inlets:
        ok = (ch.valve == v) & ((ch.qc & qcm.EXCLUDE) == 0)
        ch.qc[qcm.flag_spikes(times, ch.value, ok, **(spike_kw or {}))] |= qcm.SPIKE


def _hour_axis(times: np.ndarray, period: tuple | None) -> pd.DatetimeIndex:
    if period is not None:
        return pd.date_range(pd.Timestamp(period[0]), pd.Timestamp(period[1]), freq="h", inclusive="left")
    return pd.date_range(pd.Timestamp(times[0]).floor("h"), pd.Timestamp(times[-1]).floor("h"), freq="h")


def _hourly_per_inlet(out: pd.DataFrame, ch: ChainResult, site: dict, species: str, pset: PlausibilityConfig,
                      min_coverage: float, period: tuple | None) -> dict:
    """Hourly table per inlet height; adds ``used``, ``hour_flagged``, ``in_period`` to ``out``."""
    times = out["time"].to_numpy()
    qc, valve = ch.qc, ch.valve
    dt = float(np.median(np.diff(times).astype("timedelta64[ms]").astype(float))) / 1000.0 \
        if len(times) > 1 else 1.0
    n_amb = max(int((ch.kind == "ambient").sum()), 1)
    hours = _hour_axis(times, period)
    hourly = {}
    used = np.zeros(len(out), bool)
    hour_flagged = np.zeros(len(out), bool)
    rec_hour = pd.DatetimeIndex(times).floor("h")
    for v, h in inlet_valves(site).items():
        sel = valve == v
        ok = sel & ((qc & qcm.EXCLUDE) == 0)
        hr = aggregate(times, ch.value, ok, ch.extrapolated, dt, sel.sum() / n_amb, min_coverage, hours)
        hr["qcflag"] = hr["qcflag"].to_numpy() | hour_plausibility(
            hr["value"].to_numpy(), hr["qcflag"].to_numpy(), species, pset,
            implausible=hours.isin(rec_hour[sel & ((qc & qcm.IMPLAUSIBLE) != 0)]),
            target=hours.isin(rec_hour[sel & ((qc & qcm.TARGET) != 0)]))
        hourly[h] = hr
        good_hours = hr.index[(hr["qcflag"] & HOUR_EXCLUDE) == 0]
        low_hours = hr.index[(hr["qcflag"] & LOW_COVERAGE) != 0]
        in_good = rec_hour.isin(good_hours)
        used |= ok & in_good
        hour_flagged |= ok & ~in_good & ~rec_hour.isin(low_hours) & rec_hour.isin(hours)
    out["used"] = used
    out["hour_flagged"] = hour_flagged
    out["in_period"] = rec_hour.isin(hours)
    return hourly


def _site_summary(rr, out: pd.DataFrame, ch: ChainResult, srcs: list, skipped: list, raw) -> pd.DataFrame:
    """ingest_summary.csv: the files read (line and record accounts) and the files not read."""
    summary = _summary(rr.summary, out)
    summary.insert(1, "status", "read")
    summary.insert(2, "reason", "")
    summary["serial"] = [picarro.file_serial(f) or "" for f in srcs]
    summary["dry_source"] = ch.sources
    rec = ch.records
    summary["records_wet_corrected"] = np.bincount(rec["file"].cat.codes.to_numpy()[ch.corrected],
                                                   minlength=len(summary)).astype(int) \
        if len(rec) else 0
    if not skipped:
        return summary
    extra = pd.DataFrame({"file": [getattr(f, "name", str(f)) if isinstance(f, picarro.ZipMember)
                                   else str(Path(f).relative_to(raw)) if _under(f, raw) else str(f)
                                   for f, *_ in skipped],
                          "status": [k for *_, k in skipped],
                          "reason": [why for _, why, _ in skipped],
                          "serial": [picarro.file_serial(f) or "" for f, *_ in skipped]})
    summary = pd.concat([summary, extra], ignore_index=True)
    for c in summary.columns:
        if c not in ("file", "status", "reason", "serial", "dry_source"):
            summary[c] = summary[c].fillna(0).astype(np.int64)
    summary["dry_source"] = summary["dry_source"].fillna("")
    return summary


def _under(f, root) -> bool:
    try:
        Path(f).relative_to(root)
        return not isinstance(root, (list, tuple))
    except (ValueError, TypeError):
        return False


def _dry_note(sources: list, corrected: np.ndarray, species: str) -> str:
    dry = picarro.SPECIES_COLUMNS[species][0]
    n_wet = sum("+H2O" in s for s in sources)
    if not n_wet:
        return f"{dry} column of the analyser"
    return (f"{dry} column of the analyser; {n_wet} of {len(sources)} files without it: wet value "
            f"corrected with H2O for {int(corrected.sum())} records ({picarro.water_correction_ref(species)})")


def _log_implausible(site_id, rec, qc, raw_v, species, pset) -> None:
    """One warning per run of implausible records: the file, its first line, the time and values."""
    files = rec["file"].astype(str).to_numpy()
    lines = rec["line"].to_numpy()
    t = rec["time"].to_numpy()
    for bit, what in ((qcm.UNIT, "in another unit (ppm <-> ppb switch: 1000 x the range)"),
                      (qcm.STUCK, f"stuck: the same reading for >= {pset.stuck_minutes:g} min"),
                      (qcm.RANGE, f"outside the plausible range {pset.range[species]} {UNITS[species]}")):
        rs = plm.runs((qc & bit) != 0)
        for a, b in rs[:10]:
            log.warning("site %s: %d records %s: %s line %d (%s) to %s line %d (%s), values %.6g to %.6g; "
                        "flagged '%s', not used", site_id, b - a + 1, what, files[a], lines[a], t[a],
                        files[b], lines[b], t[b], np.nanmin(raw_v[a:b + 1]), np.nanmax(raw_v[a:b + 1]),
                        qcm.FLAG_NAMES[bit])
        if len(rs) > 10:
            log.warning("site %s: ... %d more runs flagged '%s'", site_id, len(rs) - 10, qcm.FLAG_NAMES[bit])


def _file_in(path, p0: pd.Timestamp, p1: pd.Timestamp) -> bool:
    m = picarro.FILE_PATTERN.match(picarro.dat_name(path))
    if not m:
        return True
    t = pd.Timestamp(m.group("date") + "T" + m.group("time"))
    return p0 - pd.Timedelta(days=1) <= t <= p1


def _summary(files: pd.DataFrame, out: pd.DataFrame) -> pd.DataFrame:
    s = files.set_index("file").copy()
    fc = out["file"].cat
    code = fc.codes.to_numpy()
    # categories are the file names of the summary, in the same order (see picarro.read_raw)
    reorder = pd.Index(fc.categories).get_indexer(s.index)
    kind = out["kind"].to_numpy()
    amb = kind == "ambient"
    qc = out["qc"].to_numpy()
    excl = (qc & qcm.EXCLUDE) != 0
    in_period = out["in_period"].to_numpy()
    used = out["used"].to_numpy()
    hflag = out["hour_flagged"].to_numpy() if "hour_flagged" in out else np.zeros(len(out), bool)
    ncat = len(fc.categories)

    def cnt(mask):
        return np.bincount(code[mask], minlength=ncat)[reorder].astype(int)

    s["records_ambient"] = cnt(amb)
    s["records_tank"] = cnt(kind == "tank")
    s["records_other_valve"] = cnt(kind == "other")
    for bit, name in qcm.FLAG_NAMES.items():
        s[f"flag_{name}"] = cnt((qc & bit) != 0)
    s["ambient_excluded"] = cnt(amb & excl)
    s["ambient_outside_period"] = cnt(amb & ~excl & ~in_period)
    s["ambient_low_coverage"] = cnt(amb & ~excl & in_period & ~used & ~hflag)
    s["ambient_hour_flagged"] = cnt(hflag)
    s["ambient_used"] = cnt(used)
    return s.reset_index()


def to_dataset(hr: pd.DataFrame, site: dict, height: float, species: str, scale: str,
               target: dict | None = None, info: dict | None = None) -> xr.Dataset:
    """ObsPack-like dataset of one inlet (see docs/formats.md).

    Attributes count the hours per hourly flag (``hours_<flag name>``, ``hours_total``,
    ``hours_usable``) and carry ``info`` (provenance of the dry mole fraction, raw files read and
    not read, plausibility and target-tank settings; see docs/stations.md)."""
    units = UNITS[species]
    ds = xr.Dataset(
        {"value": ("time", hr["value"].to_numpy(float), {"units": units, "long_name": f"{species} dry mole fraction, hourly mean"}),
         "value_std_dev": ("time", hr["value_std_dev"].to_numpy(float), {"units": units, "long_name": "standard deviation of the records in the hour"}),
         "nvalue": ("time", hr["nvalue"].to_numpy(np.int64), {"long_name": "number of records averaged"}),
         "coverage": ("time", hr["coverage"].to_numpy(float), {"long_name": "fraction of the inlet's scheduled sampling time with usable records"}),
         "qcflag": ("time", hr["qcflag"].to_numpy(np.int64), {"flag_masks": list(HOUR_FLAG_NAMES), "flag_meanings": " ".join(HOUR_FLAG_NAMES.values()), "exclude_mask": HOUR_EXCLUDE})},
        coords={"time": ("time", hr.index.to_numpy(), {"long_name": "start of the hour (UTC); the value covers [time, time+1h)"})})
    ds.attrs = {"site": site["id"], "site_name": site.get("name", site["id"]),
                "lon": float(site["lon"]), "lat": float(site["lat"]),
                "intake_height": float(height), "elevation": float(site["elevation"]),
                "scale": scale, "species": species, "units": units,
                "time_convention": "start of averaging interval, UTC"}
    q = hr["qcflag"].to_numpy(np.int64)
    ds.attrs["hours_total"] = int(len(q))
    ds.attrs["hours_usable"] = int((((q & HOUR_EXCLUDE) == 0) & np.isfinite(hr["value"].to_numpy(float))).sum())
    for b, nm in HOUR_FLAG_NAMES.items():
        ds.attrs[f"hours_{nm}"] = int(((q & b) != 0).sum())
    for k, v in (info or {}).items():
        ds.attrs[k] = v
    if target:
        ds.attrs.update({"target_bias": target["bias"], "target_scatter": target["scatter"],
                         "target_n": target["n"], "target_goal": target["goal"],
                         "target_exceeds_goal": int(target["exceeds_goal"])})
    return ds


def write_hourly_dir(ing: SiteIngest, site: dict, out_dir: str | os.PathLike, species: str = "co2") -> list[Path]:
    """Write the hourly directory atomically (temporary sibling directory, then rename)."""
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(out_dir.name + f".tmp{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    scale = calibration_scale(site, species)
    paths = []
    for h, hr in ing.hourly.items():
        ds = to_dataset(hr, site, h, species, scale, ing.calibration.target_summary, ing.info)
        p = tmp / site_path_name(site["id"], h)
        ds.to_netcdf(p, encoding={"time": {"units": "seconds since 1970-01-01 00:00:00", "dtype": "int64"}})
        paths.append(out_dir / p.name)
    ing.summary.to_csv(tmp / "ingest_summary.csv", index=False)
    ing.calibration.cycles.to_csv(tmp / "calibration_cycles.csv", index=False)
    ing.calibration.target.to_csv(tmp / "target_tank.csv", index=False)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(tmp, out_dir)
    return paths
