"""Site metadata from ``config/stations.yaml`` (ids, positions, inlets, calibration tanks)."""
from __future__ import annotations

import os
import re

import yaml

#: Site ids name files and directories and are Snakemake wildcards: capitals and digits only.
SITE_ID_PATTERN = re.compile(r"^[A-Z0-9]+$")


def load_sites(stations_file: str | os.PathLike) -> list[dict]:
    """All site entries of a stations file (a list of dicts, YAML anchors resolved)."""
    with open(stations_file) as fh:
        doc = yaml.safe_load(fh)
    sites = doc.get("sites") if isinstance(doc, dict) else None
    if not sites:
        raise ValueError(f"{stations_file}: no 'sites' list; see config/stations.yaml for the layout")
    seen = {}
    for i, s in enumerate(sites):
        for key in ("id", "lon", "lat", "elevation", "inlets"):
            if key not in s:
                raise ValueError(f"{stations_file}: site {s.get('id', '?')!r} lacks field {key!r}")
        sid = s["id"]
        if not isinstance(sid, str) or not SITE_ID_PATTERN.match(sid):
            raise ValueError(
                f"{stations_file}: site id {sid!r} (entry {i + 1} of 'sites') is not allowed: ids name "
                "files and directories, so use capital letters and digits only (e.g. 'NST', 'HPU2').")
        if sid in seen:
            raise ValueError(
                f"{stations_file}: site id {sid!r} appears twice (entries {seen[sid] + 1} and {i + 1} of "
                "'sites'); each site needs its own id, or its observations would be counted twice. "
                "Rename or remove one entry.")
        seen[sid] = i
    return sites


def get_site(sites: list[dict] | str | os.PathLike, site_id: str) -> dict:
    """The entry of ``site_id`` from a list of sites or a stations file."""
    where = ""
    if not isinstance(sites, list):
        where = f"{sites}: "
        sites = load_sites(sites)
    for s in sites:
        if s["id"] == site_id:
            return s
    raise KeyError(f"{where}site {site_id!r} not found; known sites: {[s['id'] for s in sites]}")


def inlet_valves(site: dict) -> dict[int, float]:
    """Map MPVPosition -> intake height (m) of the site's ambient inlets."""
    return {int(i["valve"]): float(i["height"]) for i in site["inlets"]}


def top_height(site: dict) -> float:
    """Highest intake height of the site (the inlet the inversion uses)."""
    return max(float(i["height"]) for i in site["inlets"])


def calibration_scale(site: dict, species: str = "co2") -> str:
    """The calibration scale of ``species`` at ``site`` (stations.yaml ``calibration``): ``scales``
    by gas (``{ch4: "WMO CH4 X2004A", co: "WMO CO X2014A"}``) first, then ``scale`` — which names the
    CO2 scale (e.g. "WMO CO2 X2019") and so is used for CO2 only, or for another gas only when it does
    not name a different gas; else "unknown" (never another gas's scale)."""
    cal = site.get("calibration") or {}
    by_gas = cal.get("scales") or {}
    if species in by_gas:
        return str(by_gas[species])
    scale = cal.get("scale")
    if not scale:
        return "unknown"
    named = {g for g in ("co2", "ch4", "co") if re.search(rf"\b{g}\b", str(scale), re.I)}
    return str(scale) if (species == "co2" or not named or species in named) else "unknown"


def tank_table(site: dict, species: str = "co2") -> dict[int, tuple[str, float, bool]]:
    """Map MPVPosition -> (tank name, assigned value of ``species``, is_target)."""
    cal = site.get("calibration") or {}
    out = {}
    for t in cal.get("tanks", []):
        out[int(t["valve"])] = (t["name"], float(t[species]), False)
    tgt = cal.get("target")
    if tgt:
        out[int(tgt["valve"])] = (tgt["name"], float(tgt[species]), True)
    return out


def height_label(height: float) -> str:
    """``220`` for 220.0, ``12.5`` for 12.5 (used in file names ``{site}_{height}m.nc``)."""
    return f"{height:g}"


def site_path_name(site_id: str, height: float) -> str:
    return f"{site_id}_{height_label(height)}m.nc"

