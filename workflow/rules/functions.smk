"""Functions of the stage files: inputs, parameters and parse-time checks.

Kept apart from the rules themselves (`snakemake --lint` asks for this). Included by the Snakefile
right after common.smk, so every stage file can use them.
"""

import os


def _stations_cfg(key, default=None):
    """config['stations'][key] read with a default (keys the schema may not list yet)."""
    return config["stations"].get(key, default) or default


def _check_background_config():
    """Stop at parse time on a bad stations.background (unknown upwind site, bad sectors)."""
    from stations.background import BackgroundConfigError, settings
    cfg = _stations_cfg("background", {})
    for sid in [None] + list((cfg.get("sites") or {})):
        try:
            st = settings(cfg, sid)
        except BackgroundConfigError as err:
            raise SystemExit(f"\nConfiguration error:\n{err}\n(see docs/stations.md, Background)\n")
        if st["method"] == "upwind" and st["upwind_site"] not in _ALL_SITE_IDS:
            raise SystemExit(
                f"\nConfiguration error:\nconfig key 'stations.background"
                f"{f'.sites.{sid}' if sid else ''}.upwind_site': {st['upwind_site']!r} is not a site "
                f"of {STATIONS_FILE}; allowed: {_ALL_SITE_IDS}\n")
    inputs = config["inputs"]
    if not DEMO and _select_needs_met() and not (
            inputs["met_files"] or inputs["met_dir"] or inputs["era5_files"] or inputs["wrf_files"]):
        raise SystemExit(
            "\nConfiguration error:\nthe selection reads the met (stations.background method "
            "'upwind' or stations.night_tower) but no met is given: set inputs.met_dir (or "
            "met_files, era5_files, wrf_files), or use stations.background.method: baseline\n")


def _select_needs_met():
    from stations.background import needs_met
    return needs_met(_stations_cfg("background", {}), SITE_IDS) or \
        bool(_stations_cfg("night_tower", {}).get("enabled", False))


def select_met_files(wildcards):
    """ARL files the selection reads (10-m wind, PBL height) when the upwind background or the
    night-time tower selection is configured; none otherwise."""
    return met_files(wildcards) if _select_needs_met() else []


def _inversion_inputs(wildcards):
    files = {
        "jacobian": res("jacobian_hourly.npz").format(month=wildcards.month),
        "selected": res("obs/selected.csv").format(month=wildcards.month),
        "prior": res("prior.nc").format(month=wildcards.month),
        "districts": DISTRICTS_FILE,
    }
    if DEMO:
        files["truth"] = demo("truth.nc").format(month=wildcards.month)
        # the truth's transport vs the inversion's (rule demo_truth_transport) -> diagnostics.json
        files["truth_transport"] = demo("truth_transport.json").format(month=wildcards.month)
    return files




def _budget_months(month, in_this_run):
    """Earlier months of `month`'s year for the budget comparison (docs/report.md).

    in_this_run=True: months that this call also produces (declared inputs, so they run first);
    False: months not in this call whose results already exist on disk (read as params, so a
    monthly run never re-triggers earlier months).
    """
    budgets = config.get("budgets") or {}
    year, mm = month.split("-")
    if year not in {str(k) for k in budgets}:
        return []
    out = []
    for i in range(1, int(mm)):
        m = f"{year}-{i:02d}"
        base = f"{config['results_dir']}/{m}"
        if in_this_run and m in MONTHS:
            out.append(base)
        elif not in_this_run and m not in MONTHS and os.path.exists(os.path.join(base, "districts.csv")) \
                and os.path.exists(os.path.join(base, "diagnostics.json")):
            out.append(base)
    return out


def _transport_software():
    """pystilt version, HYSPLIT version and binary hash, read without importing pystilt (parse
    time): a `footprints` param, so a new pystilt or HYSPLIT re-runs the site-days (the
    per-receptor cache key then recomputes every receptor)."""
    import hashlib
    import platform
    from importlib import metadata
    from pathlib import Path

    try:
        dist = metadata.distribution("pystilt")
    except metadata.PackageNotFoundError:
        return {"pystilt": "not installed"}
    out = {"pystilt": dist.version}
    exe_dir = (config["transport"].get("hysplit") or {}).get("exe_dir")
    base = (Path(exe_dir) if exe_dir else
            Path(dist.locate_file("stilt/transport/hysplit/bin")))
    sub = {"Linux": "linux_x64", "Darwin": "macos_x64"}.get(platform.system(), "none")
    binary = base / "hycs_std" if exe_dir else base / sub / "hycs_std"
    for key, f in (("hysplit", (base / "version")), ("hycs_std_blake2b", binary)):
        try:
            out[key] = (f.read_text().strip() if key == "hysplit" else
                        hashlib.blake2b(f.read_bytes(), digest_size=16).hexdigest())
        except OSError:
            out[key] = "unknown"
    return out


TRANSPORT_SOFTWARE = _transport_software()


def _station_position(wildcards):
    """Position and top inlet of the footprint job's site (stations file): a param, so moving a
    station re-runs its site-days even when receptors.csv is older than the outputs."""
    for s in SITES:
        if s["id"] == wildcards.site:
            heights = [float(i["height"]) if isinstance(i, dict) else float(i)
                       for i in (s.get("inlets") or [])]
            return {"lon": float(s["lon"]), "lat": float(s["lat"]),
                    "top_inlet": max(heights) if heights else None}
    return {}


# (prior.smk)
def prior_inventory_options(wildcards=None):
    """How the prior reads the inventory (inversion.prior.InventoryOptions); the demo world writes
    the pipeline's own inventory.nc."""
    if DEMO:
        return {"inventory_format": "gzcarbon"}
    return {key: config["inputs"][key] for key in (
        "inventory_format", "inventory_species", "downscale_proxy", "temporal_profiles", "bio_prior")}


# (prior.smk)
def prior_inputs(wildcards):
    """The inventory, the power stage's point sources and, in a real run, the optional proxy,
    profile and biosphere files (inputs, so that a changed file re-runs the prior)."""
    files = {"inventory": inventory_file(wildcards),
             "point_sources": res("power/point_sources.csv").format(month=wildcards.month)}
    opts = prior_inventory_options()
    for key in ("downscale_proxy", "temporal_profiles", "bio_prior"):
        if opts.get(key):
            files[key] = opts[key]
    return files


# (check.smk)
def input_check_file(wildcards):
    """The whole input check of the month (real runs only)."""
    return [] if DEMO else [res("input_check.csv").format(month=wildcards.month)]


# (check.smk)
def _input_check_parts(parts):
    def files(wildcards):
        if DEMO:
            return []
        return [res(f"input_check/{p}.csv").format(month=wildcards.month) for p in parts]
    return files


# (check.smk)
def _check_inputs_present(wildcards):
    """The real input files of the part that exist (inputs, so that a changed or late file re-runs
    the part; a missing one is reported by the check itself)."""
    from types import SimpleNamespace

    inputs, part = config["inputs"], wildcards.part
    files = [STATIONS_FILE] if part in ("met", "obs") else []
    if part == "met" and inputs["met_source"] == "arl" and config["transport"]["footprints_from"] != "files":
        files += met_files(wildcards)
    elif part == "met":
        files += list(inputs["era5_files"]) + list(inputs["wrf_files"])
    elif part == "obs":
        for sid in SITE_IDS:
            found = raw_obs_inputs(SimpleNamespace(month=wildcards.month, site=sid))
            files += found if isinstance(found, list) else []
    elif part == "inventory":
        files += [v for k, v in prior_inputs(wildcards).items() if k != "point_sources"]
    else:
        files += [DISTRICTS_FILE, PLANTS_FILE] + [inputs[f"power_{k}"] for k in
                                                  ("generation", "load", "external", "flows")]
    return sorted({f for f in files if f and isinstance(f, str) and os.path.isfile(f)})


# (check.smk)
def _check_settings(wildcards):
    return {k: v for k, v in _all_check_settings(wildcards).items() if k in PART_SETTINGS[wildcards.part]}


# (check.smk)
def _all_check_settings(wildcards):
    m = wildcards.month
    inputs = config["inputs"]
    return {
        "month": m,
        "period": list(hour_axis(m)),
        "spinup_days": _spinup_days(),
        "days": period_days(m),
        "sites": SITES,
        "hours_local": config["stations"]["select_hours_local"],
        "utc_offset": config["stations"]["utc_offset_hours"],
        "night_tower": config["stations"].get("night_tower", {}),
        "n_hours": config["transport"]["n_hours"],
        "footprints_from": config["transport"].get("footprints_from", "stilt"),
        "footprint_files": config["transport"].get("footprint_files", ""),
        "footprint_layer_height": config["transport"].get("footprint_layer_height"),
        "met_source": inputs["met_source"],
        "met_files": met_files(wildcards) if inputs["met_source"] == "arl" else [],
        "met_file_format": None if inputs["met_files"] else inputs["met_file_format"],
        "era5_files": inputs["era5_files"],
        "wrf_files": inputs["wrf_files"],
        "raw_obs_dir": inputs["raw_obs_dir"],
        "grid": config["grid"],
        "inventory": inputs["inventory"],
        "inventory_options": prior_inventory_options(),
        "districts_file": DISTRICTS_FILE,
        "plants_file": PLANTS_FILE,
        "power": {"generation": inputs["power_generation"], "load": inputs["power_load"],
                  "external": inputs["power_external"], "flows": inputs["power_flows"]},
    }


# (demo.smk)
def _truth_transport_settings():
    """The truth's transport (demo.truth_transport over the pre-registered defaults of
    gzcarbon.demo.truth_errors.TruthTransport) as a plain dict; a bad key stops the run here."""
    import dataclasses

    from gzcarbon.demo.truth_errors import TruthTransport, TruthTransportError

    try:
        tt = TruthTransport.from_config(config["demo"])
    except TruthTransportError as err:
        raise SystemExit(f"\nConfiguration error:\n{err}\n(see docs/demo.md)\n")
    if DEMO and tt.identical_twin(config["transport"]):
        from gzcarbon.demo.truth_errors import IDENTICAL_TWIN_WARNING

        print(f"Warning: {IDENTICAL_TWIN_WARNING}", file=sys.stderr)
    return dataclasses.asdict(tt)


# (stations.smk, prior.smk, inversion.smk, products.smk: the other gases, rules *_gas)
def gas_setting(gas, key):
    """config gases.<gas>.<key> (ppb, nmol m-2 s-1)."""
    return config["gases"][gas][key]


def gas_background(wildcards):
    """stations.background for the gas's selection: the CO2 method and sectors, the σ in ppb from
    gases.<gas> (per-site σ overrides in ppm do not carry over)."""
    g = config["gases"][wildcards.gas]
    bg = dict(config["stations"]["background"])
    bg.update(upwind_sigma_ppm=g["upwind_sigma_ppb"], gap_sigma_ppm_per_hour=g["gap_sigma_ppb_per_hour"])
    if bg.get("method") == "model":  # the model boundary is CO2's (docs/boundary.md): gases take the baseline
        bg["method"] = "baseline"
    bg["sites"] = {sid: {k: v for k, v in dict(over).items()
                         if k not in ("upwind_sigma_ppm", "gap_sigma_ppm_per_hour")}
                   for sid, over in (bg.get("sites") or {}).items()}
    return bg


def gas_inversion_config(wildcards):
    """The inversion section for the gas: CO2's, with the gas's prior σ (relative, floor in
    nmol m-2 s-1), model-data mismatch and background-offset σ (ppb) from gases.<gas>."""
    g = config["gases"][wildcards.gas]
    cfg = dict(config["inversion"])
    cfg.update(prior_rel_sigma=g["prior_rel_sigma"], prior_floor_sigma=g["prior_floor_sigma"],
               obs_sigma_ppm=g["obs_sigma_ppb"], bg_sigma_ppm=g["bg_sigma_ppb"],
               # the nested state's outer cells: the gas's coarse-inventory σ, no biosphere term
               outer_rel_sigma=g["outer_rel_sigma"], outer_floor_sigma=g["outer_floor_sigma"],
               outer_bio_rel_sigma=0.0)
    return cfg


def gas_prior_inputs(wildcards):
    """CH4: its inventory (demo inventory_ch4.nc or inputs.inventory_ch4); CO: the CO2 prior and the
    CO/CO2 emission-ratio table (inputs.emission_ratios_co)."""
    m, g = wildcards.month, wildcards.gas
    # nested state: the gas's coarse outer inventory (demo inventory_outer_<gas>.nc or
    # inputs.outer_inventory_<gas>; none: zero outer prior, warned)
    outer = {}
    if OUTER_ENABLED:
        path = demo(f"inventory_outer_{g}.nc").format(month=m) if DEMO else config["inputs"][f"outer_inventory_{g}"]
        outer = {"outer_inventory": path} if path else {}
    if g == "ch4":
        return {"inventory": demo("inventory_ch4.nc").format(month=m) if DEMO
                else config["inputs"]["inventory_ch4"], **outer}
    return {"co2_prior": res("prior.nc").format(month=m),
            "ratios": config["inputs"]["emission_ratios_co"], **outer}


def gas_inversion_inputs(wildcards):
    """The CO2 Jacobian, the gas's selected observations and prior, the districts (demo: the gas's truth)."""
    m, g = wildcards.month, wildcards.gas
    files = {
        "jacobian": res("jacobian_hourly.npz").format(month=m),
        "selected": res(f"{g}/obs/selected.csv").format(month=m),
        "prior": res(f"{g}/prior.nc").format(month=m),
        "districts": DISTRICTS_FILE,
    }
    if DEMO:
        files["truth"] = demo(f"truth_{g}.nc").format(month=m)
        files["truth_transport"] = demo("truth_transport.json").format(month=m)
    if OUTER_ENABLED:  # the nested state: the neighbours' geometry and (demo) the outer cells' truth
        if config["neighbours_file"]:
            files["neighbours"] = config["neighbours_file"]
        if DEMO:
            files["truth_outer"] = demo(f"truth_outer_{g}.nc").format(month=m)
    return files


def joint_inputs(wildcards):
    """The CO2 inversion's inputs, the CO observations and the CO:CO2 ratio table (rule joint)."""
    files = _inversion_inputs(wildcards)
    files["co_selected"] = res("co/obs/selected.csv").format(month=wildcards.month)
    files["ratios"] = config["inputs"]["emission_ratios_co"]
    if OUTER_ENABLED:  # the nested state: the CO prior's outer cells, the neighbours, (demo) the outer truth
        files["co_prior"] = res("co/prior.nc").format(month=wildcards.month)
        if config["neighbours_file"]:
            files["neighbours"] = config["neighbours_file"]
        if DEMO:
            files["truth_outer"] = demo("truth_outer.nc").format(month=wildcards.month)
    return files


def gas_report_inputs(wildcards):
    """The other gases' district tables and maps for the report's gas sections."""
    m = wildcards.month
    return {f"{g}_{k}": res(f"{g}/{f}").format(month=m) for g in OTHER_GASES
            for k, f in (("districts", "districts.csv"), ("diagnostics", "diagnostics.json"), ("maps", "maps"))}


# (year.smk: flash reports and the annual report; docs/year.md)
def flash(path):
    """A path under a month's flash directory (keeps the {month} and {cutoff} wildcards)."""
    return os.path.join(config["results_dir"], "{month}", "flash", "{cutoff}", path)


if config.get("year") and not config["months"]:
    # a budget year without a months list: its twelve months (docs/year.md)
    MONTHS = [f"{int(config['year']):04d}-{i:02d}" for i in range(1, 13)]


def flash_cutoff(month):
    """The flash cut-off day of `month` (YYYY-MM-DD): config flash.cutoff, or for `complete` the
    last inverted day that has ended (UTC). A cut-off outside the month or its inverted days stops
    the run before any job starts."""
    days = _month_days(month)
    cut = str(config["flash"]["cutoff"])
    if cut == "complete":
        last = min(days[-1], datetime.now(timezone.utc).date() - timedelta(days=1))
        if last < days[0]:
            raise SystemExit(f"\nConfiguration error:\nconfig key 'flash.cutoff': complete: no inverted "
                             f"day of {month} has ended yet (first day {days[0]}); wait a day or give "
                             "a date.\n")
        return last.isoformat()
    d = date.fromisoformat(cut)
    if d.strftime("%Y-%m") != month:
        raise SystemExit(f"\nConfiguration error:\nconfig key 'flash.cutoff': {cut} is outside the month "
                         f"{month}; give a day of {month} (YYYY-MM-DD) or 'complete' (set month= to "
                         "the cut-off's month).\n")
    if not days[0] <= d <= days[-1]:
        raise SystemExit(f"\nConfiguration error:\nconfig key 'flash.cutoff': {cut} is not an inverted "
                         f"day of {month} ({days[0]} .. {days[-1]}: demo.days or period); give a day "
                         "in that range or 'complete'.\n")
    return d.isoformat()


def flash_days(month, cutoff):
    """Inverted UTC days of `month` up to and including the cut-off, as YYYYMMDD strings."""
    return [d for d in period_days(month) if d <= cutoff.replace("-", "")]


def flash_hour_axis(month, cutoff):
    """(start, end) of the flash's hourly axis: the month's start (with spin-up), the cut-off's end."""
    end = datetime.combine(date.fromisoformat(cutoff), datetime.min.time()) + timedelta(days=1)
    return hour_axis(month)[0], end.isoformat()


def flash_footprint_files(wildcards):
    return expand(res("footprints/{site}/{day}.nc"), month=wildcards.month, site=SITE_IDS,
                  day=flash_days(wildcards.month, wildcards.cutoff))


def flash_inversion_inputs(wildcards):
    files = _inversion_inputs(wildcards)
    files["jacobian"] = flash("jacobian_hourly.npz").format(month=wildcards.month, cutoff=wildcards.cutoff)
    return files


def flash_products(wildcards=None):
    """The flash report of every month of the run at its cut-off (target `flash`)."""
    return [flash("report.html").format(month=m, cutoff=flash_cutoff(m)) for m in MONTHS]


def existing_flash_dirs(month):
    """Flash directories of `month` on disk with a finished districts.csv (oldest cut-off first)."""
    top = os.path.join(config["results_dir"], month, "flash")
    if not os.path.isdir(top):
        return []
    return [os.path.join(top, d) for d in sorted(os.listdir(top))
            if os.path.exists(os.path.join(top, d, "districts.csv"))
            and os.path.exists(os.path.join(top, d, "flash.json"))]


def year_months(year):
    """(months of `year` this run produces, months of `year` found finished on disk)."""
    y = str(year)
    run = [m for m in MONTHS if m.startswith(f"{y}-")]
    disk = [f"{y}-{i:02d}" for i in range(1, 13) if f"{y}-{i:02d}" not in run
            and os.path.exists(os.path.join(config["results_dir"], f"{y}-{i:02d}", "districts.csv"))
            and os.path.exists(os.path.join(config["results_dir"], f"{y}-{i:02d}", "diagnostics.json"))]
    return run, disk


def annual_inputs(wildcards):
    """The months run: districts, diagnostics, flux product and accounting (the annual report's
    totals, mean flux map and two accountings)."""
    run, _ = year_months(wildcards.year)
    base = config["results_dir"]
    return {"districts": [os.path.join(base, m, "districts.csv") for m in run],
            "diagnostics": [os.path.join(base, m, "diagnostics.json") for m in run],
            "flux": [os.path.join(base, m, f"flux_{m}.nc") for m in run],
            "accounting": [os.path.join(base, m, "accounting.csv") for m in run]}


def annual_disk_files(year, name):
    """{month: <results_dir>/<month>/<name>} of the months of `year` found on disk (not run now)."""
    _, disk = year_months(year)
    return {m: os.path.join(config["results_dir"], m, name.format(month=m)) for m in disk}


def year_products(wildcards=None):
    """The annual report when `year` is set (else nothing: the default rule graph is unchanged)."""
    if not config.get("year"):
        return []
    base = os.path.join(config["results_dir"], str(config["year"]))
    return [os.path.join(base, "districts.csv"), os.path.join(base, "report.html")]


# ---- the model boundary (stations.background.method: model; docs/boundary.md) -------------------
BOUNDARY_MODEL = config["stations"]["background"].get("method") == "model"


def boundary_field_inputs(wildcards):
    """The boundary field: stations.background.model.files, else (demo) the demo's CT-layout files."""
    files = (config["stations"]["background"].get("model") or {}).get("files") or []
    if files:
        return list(files)
    return [demo("boundary").format(month=wildcards.month)]


def select_boundary_input(wildcards):
    """{R}/boundary/background.csv when the background is the model boundary, else nothing."""
    return [res("boundary/background.csv").format(month=wildcards.month)] if BOUNDARY_MODEL else []


def _check_boundary_config():
    """Stop at parse time when the model boundary cannot work: no field files outside the demo,
    no exit points (footprints from files, or no outer grid)."""
    if not BOUNDARY_MODEL:
        return
    files = (config["stations"]["background"].get("model") or {}).get("files") or []
    problem = None
    if not DEMO and not files:
        problem = ("stations.background.method is model but stations.background.model.files is empty: give "
                   "the boundary field files (e.g. CarbonTracker's CT2022.molefrac_glb3x2_YYYY-MM-DD.nc)")
    elif config["transport"]["footprints_from"] != "stilt":
        problem = ("stations.background.method: model samples the field where HYSPLIT-STILT's particles leave "
                   "the domain; footprints from files carry no particles: use method upwind or baseline")
    elif not (config.get("outer_grid") or {}).get("enabled", True):
        problem = ("stations.background.method: model needs the particles' exit points from the outer domain: "
                   "set outer_grid.enabled: true")
    if problem:
        raise SystemExit(f"\nConfiguration error:\n{problem}\n(see docs/boundary.md)\n")


# (network.smk) network design: candidate sites (docs/network.md)
_NETWORK_TABLE = {}


def network_candidate_table():
    """The candidates of config network_design (inversion.network.candidate_table), read once; a
    bad candidate stops with the message naming it (only when a network_design target is asked)."""
    if "table" not in _NETWORK_TABLE:
        from inversion.network import candidate_table

        if config["transport"]["footprints_from"] != "stilt":
            raise SystemExit("\nConfiguration error:\nnetwork_design runs HYSPLIT-STILT at the candidates; with "
                             "transport.footprints_from: files there are no footprints of sites that do not "
                             "exist (docs/network.md)\n")

        g, m = config["grid"], config["met"]
        try:
            _NETWORK_TABLE["table"] = candidate_table(
                config["network_design"], DISTRICTS_FILE,
                (g["lon_min"], g["lon_max"], g["lat_min"], g["lat_max"]),
                (m["lon_min"], m["lon_max"], m["lat_min"], m["lat_max"]), _ALL_SITE_IDS)
        except ValueError as err:
            raise SystemExit(f"\nConfiguration error:\n{err}\n")
    return _NETWORK_TABLE["table"]


def network_candidate_records():
    """The candidates as plain dicts (no NaN: a param compares equal run after run)."""
    return [{k: (v if isinstance(v, str) else None if v is None or v != v else float(v)) for k, v in r.items()}
            for r in network_candidate_table().to_dict("records")]


def network_days(month):
    """UTC days of the candidates' footprints: the first network_design.max_candidate_days of the period."""
    from inversion.network import candidate_days

    return candidate_days(period_days(month), config["network_design"]["max_candidate_days"])


def network_ids(kind):
    """Ids of the candidates of one kind: "insitu" (footprint rules) or "extra" (column and mobile:
    rule network_extra_rows)."""
    t = network_candidate_table()
    m = t["type"] == "insitu"
    return list(t.loc[m if kind == "insitu" else ~m, "id"])


def network_footprint_files(wildcards):
    return expand(res("network/footprints/{site}/{day}.nc"), month=wildcards.month,
                  site=network_ids("insitu"), day=network_days(wildcards.month))


def network_extra_files(wildcards):
    return expand(res("network/extra/{site}.npz"), month=wildcards.month, site=network_ids("extra"))


def network_candidate_row(wildcards):
    """The candidate of a network_extra_rows job as a dict (a param: moving it re-runs the job)."""
    t = network_candidate_table().set_index("id")
    if wildcards.site not in t.index:
        return {}
    r = t.loc[wildcards.site]
    return {"id": wildcards.site, **{k: (v if isinstance(v, str) else None if v is None or v != v else float(v))
                                     for k, v in r.items()}}


def network_station_position(wildcards):
    """Position and inlet of a candidate's footprint job (a param, like _station_position)."""
    t = network_candidate_table().set_index("id")
    if wildcards.site not in t.index:
        return {}
    r = t.loc[wildcards.site]
    return {"lon": float(r["lon"]), "lat": float(r["lat"]), "top_inlet": float(r["height"])}


def network_design_inputs(wildcards):
    """The inversion's inputs and outputs (districts.csv, diagnostics.json: the current network) and
    the candidates' receptors, footprints and Jacobian."""
    f = {k: v for k, v in _inversion_inputs(wildcards).items() if k not in ("truth", "truth_transport")}
    m = wildcards.month
    f.update({
        "cand_table": res("network/candidate_sites.csv").format(month=m),
        "cand_footprints": network_footprint_files(wildcards),
        "extra_rows": network_extra_files(wildcards),
        "districts_csv": res("districts.csv").format(month=m),
        "diagnostics": res("diagnostics.json").format(month=m),
    })
    if network_ids("insitu"):
        f["cand_jacobian"] = res("network/jacobian_hourly.npz").format(month=m)
        f["cand_receptors"] = res("network/receptors.csv").format(month=m)
    if config["outer_grid"]["enabled"] and config["neighbours_file"]:
        f["neighbours"] = config["neighbours_file"]
    return f


def network_design_products(wildcards=None):
    return [os.path.join(config["results_dir"], m, "network", n) for m in MONTHS
            for n in ("candidates.csv", "greedy.csv", "design.json", "map.png", "report.html")]


# (columns.smk, inversion.smk: column and mobile observations in the inversion; docs/columns.md)
COLUMN_ENABLED = bool(config["observations"]["column"]["enabled"])
MOBILE_ENABLED = bool(config["observations"]["mobile"]["enabled"])
# the demo world's column files and track (rules demo_columns, demo_mobile)
DEMO_COLUMN_FILES = ("columns/comb_invparms_GZE_SN193_{month}.csv",
                     "columns/oco2_LtCO2_{month}_B11100Ar_gzdemo.nc4")
DEMO_TRACK_FILE = "mobile/track_GZM_{month}.csv"


def column_files(wildcards):
    """The column files of the month: the demo world's, or observations.column.files."""
    if DEMO:
        return [demo(f).format(month=wildcards.month) for f in DEMO_COLUMN_FILES]
    return list(config["observations"]["column"]["files"])


def mobile_files(wildcards):
    """The track files of the month: the demo world's, or observations.mobile.files."""
    if DEMO:
        return [demo(DEMO_TRACK_FILE).format(month=wildcards.month)]
    return list(config["observations"]["mobile"]["files"])


def extra_obs_inputs():
    """The inversion's column and mobile rows (paths with {month}) when observations.column /
    .mobile are enabled."""
    out = {}
    if COLUMN_ENABLED:
        out["extra_column"] = res("extra/column_rows.npz")
    if MOBILE_ENABLED:
        out["extra_mobile"] = res("extra/mobile_rows.npz")
    return out


def extra_met_file_format(wildcards=None):
    """The met file names' format the column and mobile receptors read (as rule footprints)."""
    if MET_SOURCE == "arl":
        return None if config["inputs"]["met_files"] else config["inputs"]["met_file_format"]
    return "%Y%m%d_gz.arl"
