"""The demo world's error model, pre-registered: every way the demo truth differs from what the
inversion assumes, in one place (docs/demo.md has the table and the basis of each number).

These values were fixed *before* the validation numbers of docs/inversion.md ("Validation on the
demo world", issue 18) were measured, and are not tuned to improve a table. A value found wrong is
changed in its own commit, with the numbers before and after.

Three groups:

* :class:`TruthErrors` fields ``district_bias`` … ``background_day_sigma_ppm``: how the true flux and
  background differ from the prior inventory (used by :func:`gzcarbon.demo.inventory.make_truth`
  through :data:`TRUTH_CHANGES`);
* ``noise_ppm`` / ``noise_rel``: the random model-data mismatch added to every hourly value
  (:mod:`gzcarbon.demo.signal`);
* :class:`TruthTransport`: the transport the truth is seen through. The true signal comes from
  footprints of *its own* HYSPLIT-STILT runs (other seed, more particles, and HYSPLIT-STILT's
  random wind and mixed-layer-height errors, Lin and Gerbig 2005), not from the inversion's
  footprints: the inversion has to live with transport errors, as with real data.

A run may override the transport part with ``demo.truth_transport`` in the config (keys of
:class:`TruthTransport`); until the typed config has that section (`gzcarbon.config.DemoConfig`),
:meth:`TruthTransport.from_config` reads it from the raw mapping.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

log = logging.getLogger(__name__)

#: pystilt / HYSPLIT-STILT wind-error keys (set in full or not at all): m/s, minutes, m, km.
WIND_ERROR_KEYS = ("siguverr", "tluverr", "zcoruverr", "horcoruverr")
#: pystilt / HYSPLIT-STILT mixed-layer-height error keys (set in full or not at all): %, min, km.
ZI_ERROR_KEYS = ("sigzierr", "tlzierr", "horcorzierr")


class TruthTransportError(ValueError):
    """A bad ``demo.truth_transport`` setting (the message names the key and what is allowed)."""


@dataclass(frozen=True)
class TruthTransport:
    """How the demo truth's footprints are made (config ``demo.truth_transport``).

    The rest of the transport settings (hours back, mixing option, gridding) are the inversion's
    (config ``transport``), so only what is listed here differs.
    """

    #: particles per receptor (the inversion's default is 100): less sampling noise in the truth.
    #: 150, not 200: the wind errors cost ~40 % more HYSPLIT time per particle; 150 particles with
    #: both errors cost 1.68 inversion receptors (200: ~2.25), keeping the default run near 7.5 min
    #: on 2 cores (docs/demo.md, Cost: benchmarks/truth_transport.py)
    numpar: int = 150
    #: HYSPLIT seed (``krand=2``); the inversion's default is 7
    seed: int = 1007
    #: standard deviation of the horizontal wind error, m/s (HYSPLIT-STILT WINDERR; 0 = none)
    siguverr: float = 2.0
    #: its correlation time scale, minutes
    tluverr: float = 60.0
    #: its vertical correlation length, m
    zcoruverr: float = 500.0
    #: its horizontal correlation length, km
    horcoruverr: float = 40.0
    #: standard deviation of the mixed-layer-height error, percent (HYSPLIT-STILT ZIERR; 0 = none)
    sigzierr: float = 20.0
    #: its correlation time scale, minutes
    tlzierr: float = 60.0
    #: its horizontal correlation length, km
    horcorzierr: float = 40.0

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> "TruthTransport":
        """The defaults with ``values`` (a partial mapping) applied; unknown keys and bad values
        raise :class:`TruthTransportError` naming the key."""
        values = dict(values or {})
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise TruthTransportError(
                f"config key 'demo.truth_transport': unknown key(s) {unknown}; allowed: {names}")
        kw = {}
        for f in dataclasses.fields(cls):
            if f.name not in values:
                continue
            kind = int if f.type in ("int", int) else float
            try:
                kw[f.name] = kind(values[f.name])
            except (TypeError, ValueError):
                raise TruthTransportError(
                    f"config key 'demo.truth_transport.{f.name}': {values[f.name]!r} is not a "
                    f"{'whole' if kind is int else ''} number") from None
        out = cls(**kw)
        out.check()
        return out

    @classmethod
    def from_config(cls, demo: Mapping[str, Any] | None) -> "TruthTransport":
        """From the config's ``demo`` section (its optional ``truth_transport`` mapping)."""
        demo = demo or {}
        getter = demo.get if hasattr(demo, "get") else (lambda k, d=None: getattr(demo, k, d))
        tt = getter("truth_transport", None)
        if tt is not None and not isinstance(tt, Mapping):
            tt = tt.model_dump() if hasattr(tt, "model_dump") else dataclasses.asdict(tt)
        return cls.from_mapping(tt)

    def check(self) -> None:
        if self.numpar < 10:
            raise TruthTransportError(f"config key 'demo.truth_transport.numpar': {self.numpar} "
                                      "particles; give at least 10 (default 150)")
        if self.seed < 1:
            raise TruthTransportError(f"config key 'demo.truth_transport.seed': {self.seed}; give a "
                                      "positive HYSPLIT seed")
        for name in WIND_ERROR_KEYS + ZI_ERROR_KEYS:
            v = getattr(self, name)
            if not math.isfinite(v) or v < 0:
                raise TruthTransportError(f"config key 'demo.truth_transport.{name}': {v} must be a "
                                          "finite number >= 0")
        for sig, rest in (("siguverr", WIND_ERROR_KEYS[1:]), ("sigzierr", ZI_ERROR_KEYS[1:])):
            if getattr(self, sig) > 0 and any(getattr(self, k) <= 0 for k in rest):
                raise TruthTransportError(
                    f"config key 'demo.truth_transport': {sig} > 0 needs positive {list(rest)} "
                    "(correlation scales of the error)")

    @property
    def wind_errors(self) -> bool:
        return self.siguverr > 0

    @property
    def zi_errors(self) -> bool:
        return self.sigzierr > 0

    def hysplit_params(self) -> dict:
        """The HYSPLIT-STILT namelist keys of the perturbations (pystilt's names), for
        ``StiltSettings.extra``; a group with σ 0 is left out (no perturbation)."""
        out = {}
        if self.wind_errors:
            out.update({k: float(getattr(self, k)) for k in WIND_ERROR_KEYS})
        if self.zi_errors:
            out.update({k: float(getattr(self, k)) for k in ZI_ERROR_KEYS})
        return out

    def transport_config(self, transport: Mapping[str, Any]) -> dict:
        """The config ``transport`` mapping of the truth's footprints: the inversion's, with this
        object's particles, seed and perturbations (added to ``hysplit``)."""
        out = dict(transport)
        out["numpar"] = int(self.numpar)
        out["seed"] = int(self.seed)
        hysplit = {k: v for k, v in dict(out.get("hysplit") or {}).items()
                   if k not in WIND_ERROR_KEYS + ZI_ERROR_KEYS}
        hysplit.update(self.hysplit_params())
        out["hysplit"] = hysplit
        return out

    def identical_twin(self, transport: Mapping[str, Any]) -> bool:
        """True when the truth's footprints would be the inversion's own: the same particles and
        seed and no perturbation (the inversion's ``transport.hysplit`` wind/mixed-layer errors,
        if any, counting as the same perturbation)."""
        inv_extra = dict(transport.get("hysplit") or {})
        inv_pert = {k: float(inv_extra[k]) for k in WIND_ERROR_KEYS + ZI_ERROR_KEYS if k in inv_extra}
        return (int(self.numpar) == int(transport.get("numpar", 100))
                and int(self.seed) == int(transport.get("seed", 7))
                and inv_pert == self.hysplit_params())

    def record(self, transport: Mapping[str, Any]) -> dict:
        """What the demo's files and ``diagnostics.json`` record as ``truth_transport``."""
        return {
            **dataclasses.asdict(self),
            "inversion_numpar": int(transport.get("numpar", 100)),
            "inversion_seed": int(transport.get("seed", 7)),
            "hysplit": self.hysplit_params(),
            "identical_twin": self.identical_twin(transport),
            "units": {"siguverr": "m s-1", "tluverr": "min", "zcoruverr": "m", "horcoruverr": "km",
                      "sigzierr": "percent", "tlzierr": "min", "horcorzierr": "km"},
        }


IDENTICAL_TWIN_WARNING = (
    "identical-twin demo: demo.truth_transport makes the truth's footprints the inversion's own "
    "(same particles and seed, no wind or mixed-layer error), so the demo has no transport error and "
    "every recovery and coverage figure is optimistic; set demo.truth_transport (docs/demo.md)")


def warn_if_identical_twin(tt: TruthTransport, transport: Mapping[str, Any],
                           logger: logging.Logger | None = None) -> bool:
    """Log :data:`IDENTICAL_TWIN_WARNING` when ``tt`` copies the inversion's transport; the flag."""
    twin = tt.identical_twin(transport)
    if twin:
        (logger or log).warning(IDENTICAL_TWIN_WARNING)
    return twin


#: The truth's road-traffic diurnal profile by local hour (night freight: trucks are banned from
#: the centre by day; a later evening peak). The prior's is in gzcarbon.demo.inventory.PROFILES.
ROAD_PROFILE_TRUTH = (0.65, 0.60, 0.58, 0.58, 0.62, 0.70, 0.90, 1.30, 1.45, 1.25, 1.10, 1.05,
                      1.05, 1.08, 1.10, 1.18, 1.30, 1.45, 1.60, 1.55, 1.30, 1.05, 0.90, 0.75)


@dataclass(frozen=True)
class TruthErrors:
    """Every pre-registered error of the demo truth (docs/demo.md, "The error model")."""

    #: multiplicative bias of industry + road + residential, by district
    district_bias: Mapping[str, float] = field(default_factory=lambda: {
        "Tianhe": 0.25, "Baiyun": -0.20, "Panyu": 0.15, "Zengcheng": -0.10})
    #: an unreported industrial site (not in the prior), Huangpu north
    missing_source: Mapping[str, Any] = field(default_factory=lambda: {
        "name": "unreported industrial site", "lon": 113.50, "lat": 23.20, "sigma_km": 0.8,
        "mt_per_year": 2.0, "profile": "industry"})
    #: real power-plant emissions above the registry-based values (factor)
    power_factor: float = 1.05
    #: the truth's road-traffic profile (the prior has a day-time profile)
    road_profile: tuple = ROAD_PROFILE_TRUTH
    #: smooth random multiplicative texture of the anthropogenic fields: exp(s z − s²/2), z ~ N(0, 1)
    texture_sigma: float = 0.15
    texture_length_cells: float = 3.0
    #: day-to-day cloudiness: GPP × U(lo, hi) per local day
    gpp_day_factor_range: tuple = (0.75, 1.10)
    #: background: base + daily anchors N(0, σ), cubic spline between local noons (ppm)
    background_ppm: float = 428.0
    background_day_sigma_ppm: float = 1.5
    #: random model-data mismatch of every hourly value: N(0, √(noise_ppm² + (noise_rel·enh)²))
    noise_ppm: float = 0.5
    noise_rel: float = 0.15
    #: the truth's own transport (footprints)
    transport: TruthTransport = field(default_factory=TruthTransport)

    def changes(self) -> dict:
        """The truth-flux part as the mapping `make_truth` takes (and truth.nc records)."""
        return {
            "district_bias": dict(self.district_bias),
            "missing_source": dict(self.missing_source),
            "power_factor": self.power_factor,
            "road_profile": list(self.road_profile),
            "texture_sigma": self.texture_sigma, "texture_length_cells": self.texture_length_cells,
            "gpp_day_factor_range": list(self.gpp_day_factor_range),
            "background_ppm": self.background_ppm,
            "background_day_sigma_ppm": self.background_day_sigma_ppm,
        }

    def table(self) -> list[tuple[str, str]]:
        """(parameter, value) rows of docs/demo.md's table (a test keeps the page in step)."""
        rows = [(f"district bias {d}", f"{b:+.0%}") for d, b in self.district_bias.items()]
        ms = self.missing_source
        rows += [
            ("unreported source", f"{ms['mt_per_year']} Mt/yr at {ms['lon']}°E {ms['lat']}°N, "
                                  f"σ {ms['sigma_km']} km, {ms['profile']} profile"),
            ("power-plant factor", f"{self.power_factor}"),
            ("road profile", "night freight, later evening peak (ROAD_PROFILE_TRUTH)"),
            ("texture", f"σ {self.texture_sigma}, length {self.texture_length_cells} cells"),
            ("GPP day factor", f"U({self.gpp_day_factor_range[0]}, {self.gpp_day_factor_range[1]})"),
            ("background", f"{self.background_ppm} ppm + daily N(0, {self.background_day_sigma_ppm} ppm)"),
            ("hourly noise", f"N(0, {self.noise_ppm} ppm ⊕ {self.noise_rel:.0%} of the enhancement)"),
        ]
        t = self.transport
        rows += [
            ("truth particles / seed", f"{t.numpar} / {t.seed}"),
            ("wind error", f"σ {t.siguverr} m/s, {t.tluverr} min, {t.zcoruverr} m, {t.horcoruverr} km"),
            ("mixed-layer-height error", f"σ {t.sigzierr} %, {t.tlzierr} min, {t.horcorzierr} km"),
        ]
        return rows


#: The demo world's error model (the one instance every demo generator reads).
TRUTH_ERRORS = TruthErrors()


@dataclass(frozen=True)
class GasTruthErrors:
    """Every pre-registered error of the demo's CH4 and CO truth (issue 20; docs/demo.md, "The
    other gases"). Fixed before any CH4 or CO recovery number was measured; not tuned to improve a
    table. Used by :mod:`gzcarbon.demo.gases`."""

    #: CH4 sectors of the truth = the prior's × these factors
    ch4_sector_factor: Mapping[str, float] = field(default_factory=lambda: {
        "landfill": 1.3, "wastewater": 0.8})
    #: a landfill the CH4 inventory lacks (Baiyun, west of the Jingzhu expressway); its emission is
    #: ``share_of_city`` of the true city CH4 over the run's hours (itself included), flat in time
    ch4_unreported_landfill: Mapping[str, Any] = field(default_factory=lambda: {
        "name": "unreported landfill", "district": "Baiyun", "lon": 113.22, "lat": 23.26,
        "sigma_km": 0.5, "share_of_city": 0.10})
    #: seasonal timing: the truth's month factor of month m is the prior's of month m - shift
    #: (the true season runs one month late: later transplanting and pond draining)
    ch4_month_shift: Mapping[str, int] = field(default_factory=lambda: {"rice": 1, "aquaculture": 1})
    #: CO: the true emission ratio of each combustion sector = the prior table's × (1 + error);
    #: signs fixed: old kilns/boilers and household stoves burn worse than the inventory says,
    #: vehicles and power units better (inventories overestimate urban CO/CO2, Li et al. 2026)
    co_ratio_error: Mapping[str, float] = field(default_factory=lambda: {
        "industry": 0.30, "road": -0.30, "residential": 0.30, "power": -0.30})
    #: the CO2 truth's unreported industrial site emits CO at the true ratio of this sector
    co_unreported_sector: str = "industry"
    #: backgrounds: base + daily anchors N(0, σ), cubic spline between local noons (ppb)
    ch4_background_ppb: float = 2010.0
    ch4_background_day_sigma_ppb: float = 10.0
    co_background_ppb: float = 300.0
    co_background_day_sigma_ppb: float = 30.0
    #: CO's secondary production from VOC oxidation, a regional term in the CO background: production
    #: P(h) = peak × sin(π (h − 8)/9) between 08 and 17 local time, ppb per hour, mixed out with an
    #: e-folding time (h); OH loss of CO over 24 h is neglected (lifetime ~1-2 months). Size approx.:
    #: a third of the 5.9 ppb/h daytime OVOC production of Dai et al. 2025 (ACP 25, 7467; summer,
    #: industrial city), for January (docs/demo.md)
    co_secondary_peak_ppb_per_hour: float = 2.0
    co_secondary_ventilation_hours: float = 6.0
    #: random model-data mismatch per gas: N(0, √(abs² + (rel·enh)²)), ppb
    ch4_noise_ppb: float = 3.0
    ch4_noise_rel: float = 0.15
    co_noise_ppb: float = 4.0
    co_noise_rel: float = 0.15
    #: correlation of a gas's hourly mismatch with the CO2 mismatch of the same site, inlet and hour
    #: (the same transport error acts on every gas; less for CH4, whose sources lie elsewhere)
    ch4_noise_corr_co2: float = 0.5
    co_noise_corr_co2: float = 0.7

    def noise(self, gas: str) -> tuple[float, float, float]:
        """(abs ppb, relative, correlation with CO2) of ``gas``'s hourly mismatch."""
        return (float(getattr(self, f"{gas}_noise_ppb")), float(getattr(self, f"{gas}_noise_rel")),
                float(getattr(self, f"{gas}_noise_corr_co2")))

    def changes(self) -> dict:
        """The mapping the gas truths record in their attribute ``truth_changes``."""
        return {k: (dict(v) if isinstance(v, Mapping) else v)
                for k, v in dataclasses.asdict(self).items()}

    def table(self) -> list[tuple[str, str]]:
        """(parameter, value) rows of docs/demo.md's gas table (a test keeps the page in step)."""
        u = self.ch4_unreported_landfill
        rows = [(f"CH4 {s}", f"× {f}") for s, f in self.ch4_sector_factor.items()]
        rows += [("CH4 unreported landfill", f"{u['share_of_city']:.0%} of the true city CH4 at "
                                             f"{u['lon']}°E {u['lat']}°N ({u['district']}), σ {u['sigma_km']} km")]
        rows += [(f"CH4 {s} season", f"{n:+d} month") for s, n in self.ch4_month_shift.items()]
        rows += [(f"CO ratio {s}", f"{e:+.0%}") for s, e in self.co_ratio_error.items()]
        rows += [
            ("CO of the unreported CO2 site", f"true {self.co_unreported_sector} ratio"),
            ("CH4 background", f"{self.ch4_background_ppb} ppb + daily N(0, {self.ch4_background_day_sigma_ppb} ppb)"),
            ("CO background", f"{self.co_background_ppb} ppb + daily N(0, {self.co_background_day_sigma_ppb} ppb)"),
            ("CO secondary production", f"sine over 08-17 local, peak {self.co_secondary_peak_ppb_per_hour} "
                                        f"ppb/h, mixed out in {self.co_secondary_ventilation_hours} h"),
            ("CH4 hourly noise", f"N(0, {self.ch4_noise_ppb} ppb ⊕ {self.ch4_noise_rel:.0%}), "
                                 f"correlation {self.ch4_noise_corr_co2} with CO2's"),
            ("CO hourly noise", f"N(0, {self.co_noise_ppb} ppb ⊕ {self.co_noise_rel:.0%}), "
                                f"correlation {self.co_noise_corr_co2} with CO2's"),
        ]
        return rows


#: The demo world's CH4 and CO error model (the one instance the gas generators read).
GAS_TRUTH_ERRORS = GasTruthErrors()


@dataclass(frozen=True)
class DeltaTruthErrors:
    """Every pre-registered error of the demo truth *outside* the inner box: the neighbours of the
    Pearl River Delta and the rest of the outer domain (issue 19; docs/demo.md, "The delta"). Fixed
    before any nested-inversion number was measured; not tuned to improve a table. Used by
    :func:`gzcarbon.demo.delta.make_outer_truth`; the prior of the outer cells is the coarse
    EDGAR-format inventory (annual mean, no diurnal cycle, no biosphere)."""

    #: multiplicative bias of a neighbour's emissions (its spread part and its large sources), by
    #: name_en of config/prd_cities.geojson; others 0. Signs as city inventories tend to err: fast-
    #: growing manufacturing cities under-reported, Hong Kong's audited inventory close
    city_bias: Mapping[str, float] = field(default_factory=lambda: {
        "Dongguan": 0.20, "Foshan": -0.15, "Shenzhen": 0.10, "Huizhou": 0.25, "Hong Kong": -0.05,
        "Zhongshan": 0.15, "Jiangmen": -0.10, "Qingyuan": 0.20, "Zhaoqing": -0.10})
    #: a source the coarse inventory lacks (a new petrochemical unit at Daya Bay, Huizhou), outside
    #: the inner box
    missing_source: Mapping[str, Any] = field(default_factory=lambda: {
        "name": "unreported petrochemical unit (Daya Bay)", "lon": 114.62, "lat": 22.72,
        "sigma_km": 3.0, "mt_per_year": 4.0, "profile": "industry"})
    #: smooth multiplicative texture of the non-point emissions on the 0.1° cells: exp(s z − s²/2),
    #: rescaled so each neighbour keeps its (biased) total
    texture_sigma: float = 0.25
    texture_length_cells: float = 2.0
    #: the truth has diurnal cycles (non-point: the city's sector mix with the truth's road profile;
    #: large sources: the industry profile); the inventory is an annual mean
    diurnal: str = "city sector mix (truth road profile) / industry profile for large sources"
    #: the biosphere on land: the city's NEE curve with vegetation 0.55 × (1 − urban), the inner
    #: truth's GPP day factors (same cloudiness); absent from the coarse inventory
    vegetation: float = 0.55
    #: used only when the inner truth's GPP day factors are not given
    gpp_day_factor_range: tuple = (0.75, 1.10)

    def changes(self) -> dict:
        return {k: (dict(v) if isinstance(v, Mapping) else (list(v) if isinstance(v, tuple) else v))
                for k, v in dataclasses.asdict(self).items()}

    def table(self) -> list[tuple[str, str]]:
        """(parameter, value) rows of docs/demo.md's delta table (a test keeps the page in step)."""
        rows = [(f"bias {c}", f"{b:+.0%}") for c, b in self.city_bias.items()]
        ms = self.missing_source
        rows += [
            ("unreported source", f"{ms['mt_per_year']} Mt/yr at {ms['lon']}°E {ms['lat']}°N, "
                                  f"σ {ms['sigma_km']} km, {ms['profile']} profile"),
            ("texture (0.1° cells)", f"σ {self.texture_sigma}, length {self.texture_length_cells} cells"),
            ("diurnal cycle", self.diurnal),
            ("biosphere", f"vegetation {self.vegetation} × (1 − urban), the inner truth's GPP day factors"),
        ]
        return rows


#: The demo world's error model outside the inner box (the one instance the delta generator reads).
DELTA_TRUTH_ERRORS = DeltaTruthErrors()
