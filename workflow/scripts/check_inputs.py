"""Rule check_inputs (real runs): does every input cover the run, before any stage starts?

Four parts, one job each (rule check_inputs_part: ``{R}/input_check/{met,obs,inventory,power}.csv``),
joined into ``{R}/input_check.csv`` by rule check_inputs (columns ``check, item, status, needed,
found, detail``; status ``ok``, ``warning`` or ``missing``), each table also in its log. A
``missing`` row stops the run with one line per missing piece (the part's table is then kept beside
its log, ``logs/<month>/input_check_<part>.csv``); the stage rules wait for the parts they read
(workflow/rules/check.smk). The checks call the stages' public readers:

- met: ``transport.check_met_coverage`` per site (every receptor's back-trajectory window and
  position), or the time span of ERA5/WRF files, or the footprint files matching the receptors;
- obs: per site, the files under ``inputs.raw_obs_dir/<site>`` (format by content) and the period
  they cover (Picarro raw files by the time in their names, station files by their records);
- inventory: format, grid covered, month/year held (``inversion.read_inventory``), and the
  proxy, temporal-profile and biosphere files of the prior;
- power: generation, load (and external intensity, flows) for every hour (``power.inputs``).

Run directly for tests: ``run_checks(settings) -> DataFrame`` with ``settings`` the dict the rule
passes as params (docs/formats.md, "Input check").
"""


import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

log = logging.getLogger("check_inputs")
COLUMNS = ["check", "item", "status", "needed", "found", "detail"]


class InputCheckError(RuntimeError):
    """One line per missing input piece."""


def _row(check, item, status, needed="", found="", detail=""):
    return {"check": check, "item": item, "status": status, "needed": needed, "found": found,
            "detail": " ".join(str(detail).split())}


def _span(t0, t1) -> str:
    return f"{pd.Timestamp(t0):%Y-%m-%d %H:%M} .. {pd.Timestamp(t1):%Y-%m-%d %H:%M}"


# ------------------------------------------------------------------------------------------ met
def receptors_of(s: dict) -> pd.DataFrame:
    """The month's receptors as rule `receptors` makes them (transport.receptors)."""
    from transport.receptors import night_schedule, schedule

    rec = schedule(s["sites"], s["days"], hours_local=s["hours_local"], utc_offset=s["utc_offset"])
    night = s.get("night_tower") or {}
    if night.get("enabled"):
        towers = [x for x in s["sites"] if x["id"] in (night.get("sites") or [])
                  or (not night.get("sites") and x.get("role") == "tower")]
        extra = night_schedule(towers, s["days"], night.get("hours_local", (22, 6)), s["utc_offset"])
        rec = pd.concat([rec, extra]).drop_duplicates("receptor_id").reset_index(drop=True)
    return rec


def check_met(s: dict, rec: pd.DataFrame) -> list[dict]:
    if s.get("footprints_from") == "files":
        return check_footprint_files(s, rec)
    source = s.get("met_source", "arl")
    if source != "arl":
        return check_gridded_met(s, rec, source)
    from transport import check_met_coverage

    rows = []
    n_hours = int(s["n_hours"])
    for site, r in rec.groupby("site", sort=False):
        needed = _span(r["time"].min() - pd.Timedelta(hours=n_hours), r["time"].max())
        try:
            check_met_coverage(s["met_files"], r, n_hours, bounds=s.get("met_bounds"),
                               file_format=s.get("met_file_format"))
            rows.append(_row("met", site, "ok", needed, f"{len(s['met_files'])} ARL file(s)",
                             f"{len(r)} receptors covered"))
        except (ValueError, OSError) as exc:  # MetCoverageError, ArlFormatError, missing files
            rows.append(_row("met", site, "missing", needed, "", exc))
    return rows


def _file_times(path) -> pd.DatetimeIndex:
    """Valid times of an ERA5 (``valid_time`` or ``time``) or WRF (``Times``/``XTIME``) file."""
    with xr.open_dataset(path) as ds:
        for name in ("valid_time", "time", "XTIME"):
            if name in ds.variables and np.issubdtype(ds[name].dtype, np.datetime64):
                return pd.DatetimeIndex(np.ravel(ds[name].values))
        if "Times" in ds.variables:
            text = ["".join(c.decode() if isinstance(c, bytes) else str(c) for c in np.atleast_1d(row))
                    for row in np.atleast_2d(ds["Times"].values)]
            return pd.to_datetime([t.replace("_", " ") for t in text])
    raise ValueError(f"{path}: no time variable (valid_time, time, Times, XTIME)")


def check_gridded_met(s: dict, rec: pd.DataFrame, source: str) -> list[dict]:
    """ERA5/WRF files (converted to ARL by a rule): their times span every receptor's window."""
    files = list(s.get(f"{source}_files") or [])
    need0 = rec["time"].min() - pd.Timedelta(hours=int(s["n_hours"]))
    need1 = rec["time"].max()
    missing = [f for f in files if not os.path.exists(f)]
    if not files or missing:
        return [_row("met", source, "missing", _span(need0, need1), "",
                     f"files not found: {missing[:5]}" if missing else f"inputs.{source}_files is empty")]
    times = pd.DatetimeIndex([])
    for f in files:
        try:
            times = times.append(_file_times(f))
        except (ValueError, OSError) as exc:
            return [_row("met", source, "missing", _span(need0, need1), "", f"{f}: {exc}")]
    times = times.sort_values().unique()
    step = pd.Timedelta(np.max(np.diff(times.values))) if times.size > 1 else pd.Timedelta(0)
    ok = times.size > 1 and times[0] <= need0 and times[-1] >= need1
    detail = (f"{len(files)} file(s), steps up to {step}" if ok else
              f"the {source} files cover {_span(times[0], times[-1])}; add the files of the missing hours")
    return [_row("met", source, "ok" if ok else "missing", _span(need0, need1), _span(times[0], times[-1]), detail)]


def check_footprint_files(s: dict, rec: pd.DataFrame) -> list[dict]:
    from transport.from_files import find_footprint_files, footprint_catalogue, match_receptors

    try:
        files = find_footprint_files(s.get("footprint_files", ""))
        cat = footprint_catalogue(files, layer_height=s.get("footprint_layer_height"))
        match_receptors(rec, cat)
    except (ValueError, OSError) as exc:  # FootprintMatchError, FileNotFoundError
        return [_row("footprints", "receptors", "missing", f"{len(rec)} receptors", "", exc)]
    return [_row("footprints", "receptors", "ok", f"{len(rec)} receptors", f"{len(files)} file(s)",
                 "every receptor has a footprint")]


# ------------------------------------------------------------------------------------------ obs
def _picarro_times(files) -> pd.DatetimeIndex:
    from stations.picarro import FILE_PATTERN, dat_name

    out = []
    for f in files:
        m = FILE_PATTERN.match(dat_name(f))
        if m:
            out.append(pd.Timestamp(f"{m['date']}T{m['time']}"))
    return pd.DatetimeIndex(out)


def _station_times(files, site, species) -> pd.DatetimeIndex:
    import stations

    times = []
    for f, _fmt in files:
        ds = stations.read(f, species=species, site=site)
        ok = np.isfinite(ds["value"].values) if "value" in ds else np.ones(ds.sizes["time"], bool)
        times.append(pd.DatetimeIndex(ds["time"].values[ok]))
    return pd.DatetimeIndex(np.concatenate([t.values for t in times])) if times else pd.DatetimeIndex([])


def check_obs(s: dict) -> list[dict]:
    from stations.hourly_files import site_files

    t0, t1 = pd.Timestamp(s["period"][0]), pd.Timestamp(s["period"][1])
    rows = []
    for site in s["sites"]:
        top = Path(s["raw_obs_dir"]) / site["id"]
        if not top.is_dir():
            rows.append(_row("obs", site["id"], "missing", _span(t0, t1), "",
                             f"no folder {top}; put the site's analyser or station files there"))
            continue
        try:
            found, skipped = site_files(top)
            formats = sorted({f for _, f in found})
            pic = [p for p, f in found if f == "picarro"]
            times = _picarro_times(pic) if pic else _station_times(found, site, s.get("species", "co2"))
        except (ValueError, OSError, KeyError) as exc:
            rows.append(_row("obs", site["id"], "missing", _span(t0, t1), "", f"{top}: {exc}"))
            continue
        inside = times[(times >= t0 - pd.Timedelta(days=1)) & (times < t1)]
        days = pd.DatetimeIndex(inside.normalize().unique())
        want = pd.date_range(t0.normalize(), t1 - pd.Timedelta(seconds=1), freq="D")
        lacking = [d for d in want[s.get("spinup_days", 0):] if d not in days]
        found_txt = (f"{len(found)} file(s) ({', '.join(formats) or 'none'}), "
                     + (_span(times.min(), times.max()) if len(times) else "no records"))
        note = f"{len(skipped)} file(s) not read" if skipped else ""
        if not len(inside):
            rows.append(_row("obs", site["id"], "missing", _span(t0, t1), found_txt,
                             f"no data in the run's period under {top}. {note}"))
        elif lacking:
            rows.append(_row("obs", site["id"], "warning", _span(t0, t1), found_txt,
                             f"no data on {len(lacking)} day(s): {', '.join(f'{d:%Y-%m-%d}' for d in lacking[:5])}. {note}"))
        else:
            rows.append(_row("obs", site["id"], "ok", _span(t0, t1), found_txt, note))
    return rows


# ------------------------------------------------------------------------------------ inventory
def check_inventory(s: dict) -> list[dict]:
    from gzcarbon.grid import Grid
    from inversion.inventories import check_inventory_format, odiac_month, read_inventory

    grid = Grid.from_config(s["grid"])
    path, opts = s["inventory"], s.get("inventory_options") or {}
    year, month = (int(x) for x in s["month"].split("-"))
    need = f"{grid.describe()}; {s['month']}"
    try:
        fmt = check_inventory_format(path, opts.get("inventory_format", "auto"))
        if fmt == "gzcarbon":
            read_inventory(path, grid)
            return [_row("inventory", path, "ok", need, "the pipeline's inventory.nc on the grid")]
        ym = odiac_month(path) if fmt == "odiac" else None
        inv = read_inventory(path, species=opts.get("inventory_species", "co2"),
                             year=ym[0] if ym else year, month=ym[1] if ym else month,
                             bounds=(grid.lon_min, grid.lon_max, grid.lat_min, grid.lat_max))
    except (ValueError, OSError) as exc:
        return [_row("inventory", path, "missing", need, "", exc)]
    lo, la = inv.lon_edges, inv.lat_edges
    found = (f"{inv.kind}, sectors {', '.join(inv.sectors)}, {lo[0]:.3f}..{lo[-1]:.3f} E x {la[0]:.3f}..{la[-1]:.3f} N, "
             f"per {inv.period}" + (f" {ym[0]:04d}-{ym[1]:02d}" if ym else ""))
    rows = []
    lon_ok = lo[-1] - lo[0] >= 360.0 - 1e-6 or (lo[0] <= grid.lon_min + 1e-9 and lo[-1] >= grid.lon_max - 1e-9)
    if not lon_ok or la[0] > grid.lat_min + 1e-9 or la[-1] < grid.lat_max - 1e-9:  # global: periodic
        rows.append(_row("inventory", path, "missing", need, found,
                         "the inventory does not cover the state grid; give one that does or shrink config grid"))
    elif ym and ym[1] != month:
        rows.append(_row("inventory", path, "missing", need, found,
                         f"an ODIAC file of month {ym[1]:02d} for a run in month {month:02d}: give the run's month"))
    else:
        lag = ym and ym[0] != year
        rows.append(_row("inventory", path, "warning" if lag else "ok", need, found,
                         f"ODIAC of {ym[0]} used for {year}" if lag else ""))
    return rows + check_prior_extras(s, grid)


def check_prior_extras(s: dict, grid) -> list[dict]:
    """Downscaling proxy (covers the grid), temporal profiles (valid CSV), biogenic prior (hours)."""
    from inversion.inventories import nee_hourly, proxy_on_grid, read_temporal_profiles

    opts = s.get("inventory_options") or {}
    hours = pd.date_range(s["period"][0], s["period"][1], freq="h", inclusive="left")
    rows = []
    for key, call in (("downscale_proxy", lambda p: proxy_on_grid(p, grid)),
                      ("temporal_profiles", read_temporal_profiles),
                      ("bio_prior", lambda p: nee_hourly(p, grid, hours))):
        path = opts.get(key)
        if not path:
            rows.append(_row("inventory", key, "warning", "", "not given",
                             {"downscale_proxy": "coarse inventory cells stay flat blocks",
                              "temporal_profiles": "every sector flat in time",
                              "bio_prior": "no biosphere flux in the prior"}[key]))
            continue
        try:
            call(path)
            rows.append(_row("inventory", key, "ok", "", path))
        except (ValueError, OSError) as exc:
            rows.append(_row("inventory", key, "missing", "", path, exc))
    return rows


# ---------------------------------------------------------------------------------------- power
def check_power(s: dict) -> list[dict]:
    import power
    from power.inputs import read_external, read_flows, read_generation, read_load

    times = pd.date_range(s["period"][0], s["period"][1], freq="h", inclusive="left")
    need = _span(times[0], times[-1])
    try:
        districts = power.district_names(s["districts_file"])
        plants = power.read_plants(s["plants_file"], districts)
    except (ValueError, OSError) as exc:
        return [_row("power", "plants", "missing", need, "", exc)]
    p = s["power"]
    rows = []
    for item, call in (("generation", lambda f: read_generation(f, plants, times)),
                       ("load", lambda f: read_load(f, districts, times)),
                       ("external", lambda f: read_external(f, times, 0.0)),
                       ("flows", lambda f: read_flows(f, districts, times))):
        f = p.get(item)
        if not f:
            if item in ("generation", "load"):
                rows.append(_row("power", item, "missing", need, "", f"config inputs.power_{item} is empty"))
            continue
        try:
            call(f)
            rows.append(_row("power", item, "ok", need, f, "every hour present"))
        except (ValueError, OSError) as exc:  # PowerInputError names the file, row and fix
            rows.append(_row("power", item, "missing", need, f, exc))
    return rows


# ------------------------------------------------------------------------------------ the table
#: the parts of the check, each a job of its own (rule check_inputs_part)
PARTS = ("met", "obs", "inventory", "power")


def run_part(part: str, s: dict) -> pd.DataFrame:
    """One part of the check (``met``, ``obs``, ``inventory``, ``power``) as a table."""
    rows = {"met": lambda: check_met(s, receptors_of(s)), "obs": lambda: check_obs(s),
            "inventory": lambda: check_inventory(s), "power": lambda: check_power(s)}[part]()
    return pd.DataFrame(rows, columns=COLUMNS)


def run_checks(s: dict) -> pd.DataFrame:
    """Every check of ``s`` (the rule's params) as one table."""
    return pd.concat([run_part(p, s) for p in PARTS], ignore_index=True)


def failures(table: pd.DataFrame) -> list[str]:
    """One line per missing piece: ``<check> <item>: <detail>``."""
    bad = table[table["status"] == "missing"]
    return [f"{r.check} {r.item}: {r.detail}" for r in bad.itertuples()]


def main(smk) -> None:
    """Rule check_inputs_part: one part, fails with one line per missing piece; rule
    check_inputs: the parts' tables as one."""
    from gzcarbon.atomic import write_csv
    from gzcarbon.logs import script_logging

    script_logging(smk.log.log)
    if smk.rule == "check_inputs":
        table = pd.concat([pd.read_csv(f, keep_default_na=False) for f in smk.input.parts], ignore_index=True)
        write_csv(table, smk.output[0], index=False)
        log.info("input check of %s: %s", smk.wildcards.month, table["status"].value_counts().to_dict())
        return
    part = smk.wildcards.part
    table = run_part(part, dict(smk.params.settings))
    with pd.option_context("display.max_colwidth", 120, "display.width", 250):
        log.info("input check (%s) of %s:\n%s", part, smk.wildcards.month, table.to_string(index=False))
    lines = failures(table)
    if lines:
        write_csv(table, smk.log.table, index=False)
        raise InputCheckError(f"{len(lines)} {part} input(s) missing for {smk.wildcards.month} (table: "
                              f"{smk.log.table}); no stage reading them was started:\n  - " + "\n  - ".join(lines))
    for w in table[table["status"] == "warning"].itertuples():
        log.warning("%s %s: %s", w.check, w.item, w.detail)
    write_csv(table, smk.output[0], index=False)


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
