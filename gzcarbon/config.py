"""The pipeline configuration, typed: one pydantic model per config section.

These models are the single source of the defaults, the allowed values and the meaning of every
key: the Snakefile validates `config` with :func:`validate_config` when it is parsed (a bad value
stops the run before any job starts, with one message naming the key and what is allowed), library
functions take the section objects (`StationsConfig`, `TransportConfig`, `InversionConfig`, …)
instead of dicts with their own defaults, and the option table of ``config/README.md`` is
generated from them (``python -m gzcarbon.config --markdown``; a test fails when the committed
table is stale).

    from gzcarbon.config import load_config
    cfg = load_config({"inversion": {"obs_sigma_ppm": 2.0}})   # every other key: its default
    cfg.inversion.diurnal_corr                                   # -0.3, as the pipeline uses
"""
from __future__ import annotations

import os
import sys
import typing
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

REPO_DIR = str(Path(__file__).resolve().parents[1])
SITE_ID = r"^[A-Z0-9]+$"
MONTH = r"^[0-9]{4}-(0[1-9]|1[0-2])$"


class ConfigError(Exception):
    """A bad configuration value: the message names the key and the fix."""


#: String options with a non-empty default whose empty value is meaningful (`neighbours_file`:
#: the outer ring only); with those whose default is empty they take YAML null as "".
EMPTY_ALLOWED = frozenset({"neighbours_file"})


class Section(BaseModel):
    """A config section: unknown keys are errors (usually typos); strings that Snakemake passes
    for nested ``--config`` values (``demo='{"days": 7}'`` gives ``{"days": "7"}``) are parsed
    as YAML where the field wants a list or a mapping (numbers and booleans are converted by
    pydantic's lax mode)."""

    model_config = ConfigDict(extra="forbid", validate_default=True, frozen=False)

    @model_validator(mode="before")
    @classmethod
    def _yaml_strings(cls, data: Any) -> Any:
        if isinstance(data, str):
            try:
                data = yaml.safe_load(data)
            except yaml.YAMLError:
                return data
        if not isinstance(data, dict):
            return data
        out = dict(data)
        for key, value in data.items():
            field = cls.model_fields.get(key)
            if (field is not None and value is None and field.annotation is str
                    and (field.default == "" or key in EMPTY_ALLOWED)):
                # `--config key=` / `key: ` arrive as YAML null: "empty" for options where empty means "none"
                out[key] = ""
                continue
            if field is None or not isinstance(value, str):
                continue
            ann = str(field.annotation)
            if any(t in ann for t in ("list", "dict", "tuple", "Config")):
                try:
                    parsed = yaml.safe_load(value)
                except yaml.YAMLError:
                    continue
                if isinstance(parsed, (list, dict)):
                    out[key] = parsed
        return out

    def get(self, key: str, default: Any = None) -> Any:
        """Mapping-style read (``cfg.get("numpar")``) for code that still takes dicts."""
        return getattr(self, key, default)

    def __getitem__(self, key: str) -> Any:
        try:
            return getattr(self, key)
        except AttributeError:
            raise KeyError(key) from None

    def __contains__(self, key: str) -> bool:
        return key in type(self).model_fields

    def as_dict(self) -> dict:
        return self.model_dump(mode="python")


def _doc(text: str, **kw) -> Any:
    return Field(description=" ".join(text.split()), **kw)


# ------------------------------------------------------------------------------------ sections
class DemoConfig(Section):
    enabled: bool = _doc("""build the synthetic Guangzhou world and invert it; `false` reads
        `inputs.*`. `demo: false` is accepted as shorthand""", default=True)
    days: Annotated[int, Field(ge=1, le=31)] = _doc("""number of days (from the 1st of the month) of
        the demo run (a real run takes the whole month, or `period`)""", default=2)
    seed: Annotated[int, Field(ge=0)] = _doc("""seed of every random draw of the demo world (met,
        inventory, truth, analysers, dispatch)""", default=20250101)
    truth_transport: dict[Literal["numpar", "seed", "siguverr", "tluverr", "zcoruverr",
                                  "horcoruverr", "sigzierr", "tlzierr", "horcorzierr"], float] = _doc(
        """overrides of the demo truth's own transport (its footprints are not the inversion's:
        other seed, more particles, wind and mixed-layer-height errors); the pre-registered
        defaults and their meaning are in docs/demo.md (`gzcarbon/demo/truth_errors.py`, the one
        place of the demo's errors). Settings equal to the inversion's transport make an
        identical-twin demo, warned in the log and the report""", default_factory=dict)


class PeriodConfig(Section):
    start: date | None = _doc("""first UTC day inverted (`YYYY-MM-DD`, inside `month`); unset: the
        1st of the month""", default=None)
    end: date | None = _doc("""last UTC day inverted (inclusive, inside `month`); unset: the last
        day of the month (demo: of `demo.days`). A period shorter than a month runs every stage on
        those days only (receptors, met, observations, prior and power hours, products); the
        spin-up days before `start` (transport.n_hours) are read as for a month""", default=None)

    @model_validator(mode="after")
    def _ordered(self) -> "PeriodConfig":
        if self.start and self.end and self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self


class GridConfig(Section):
    lon_min: Annotated[float, Field(ge=-180, le=180)] = _doc(
        "western edge of the state and footprint grid (degrees, WGS84)", default=112.9)
    lon_max: Annotated[float, Field(ge=-180, le=180)] = _doc("eastern edge", default=114.1)
    lat_min: Annotated[float, Field(ge=-90, le=90)] = _doc("southern edge", default=22.5)
    lat_max: Annotated[float, Field(ge=-90, le=90)] = _doc("northern edge", default=24.0)
    res: Annotated[float, Field(gt=0, le=1)] = _doc("""cell size in degrees (0.01° ≈ 1 km); the edges
        must span a whole number of cells""", default=0.01)

    @model_validator(mode="after")
    def _whole_cells(self) -> "GridConfig":
        from gzcarbon.grid import Grid, GridError

        if not (self.lon_min < self.lon_max and self.lat_min < self.lat_max):
            raise ValueError("lon_min < lon_max and lat_min < lat_max are required")
        try:
            Grid.from_config(self.as_dict())
        except GridError as err:
            raise ValueError(str(err).replace("config grid: ", "")) from None
        return self


class MetConfig(Section):
    lon_min: float = _doc("""western edge of the demo meteorology (degrees); the met domain must
        contain `grid`; wide (to the north-east especially) so that 24-h back-trajectories in the
        winter monsoon stay inside""", default=108.5)
    lon_max: float = _doc("eastern edge of the demo meteorology", default=119.5)
    lat_min: float = _doc("southern edge of the demo meteorology", default=19.5)
    lat_max: float = _doc("northern edge of the demo meteorology", default=28.0)
    res: Annotated[float, Field(gt=0, le=2)] = _doc("resolution of the demo meteorology, degrees",
                                                    default=0.1)


class OuterGridConfig(Section):
    enabled: bool = _doc("""nest the state grid in a coarser outer grid out to the met domain
        (issue 19, docs/transport.md "Nested grid"): footprints, Jacobian and prior gain the outer
        cells outside the inner box; `false`: the inner grid alone""", default=True)
    res: Annotated[float, Field(gt=0, le=5)] = _doc("""outer cell size in degrees; a whole multiple
        of `grid.res`""", default=0.3)
    lon_min: Annotated[float, Field(ge=-180, le=360)] | None = _doc("""western edge of the outer
        grid (degrees); unset: the met domain trimmed to whole outer cells on the inner grid's
        edges (108.7 with the default `grid` and `met`). The outer box must contain `grid` and
        the inner edges must lie on outer cell edges""", default=None)
    lon_max: Annotated[float, Field(ge=-180, le=360)] | None = _doc("""eastern edge of the outer grid;
        unset: from the met domain (119.5 by default)""", default=None)
    lat_min: Annotated[float, Field(ge=-90, le=90)] | None = _doc("""southern edge of the outer grid;
        unset: from the met domain (19.5 by default)""", default=None)
    lat_max: Annotated[float, Field(ge=-90, le=90)] | None = _doc("""northern edge of the outer grid;
        unset: from the met domain (27.9 by default)""", default=None)


Hour = Annotated[int, Field(ge=0, le=24)]
Direction = Annotated[float, Field(ge=0, le=360)]


class BackgroundSiteConfig(Section):
    """Per-site overrides of the background settings (no defaults: unset keys inherit)."""

    method: Literal["upwind", "baseline"] | None = None
    upwind_site: Annotated[str, Field(pattern=SITE_ID)] | None = None
    sectors: Annotated[list[tuple[Direction, Direction]], Field(min_length=1)] | None = None
    wind_at: Literal["upwind_site", "site"] | None = None
    min_wind_speed_ms: Annotated[float, Field(ge=0)] | None = None
    half_window_hours: Annotated[int, Field(ge=0, le=12)] | None = None
    upwind_sigma_ppm: Annotated[float, Field(gt=0)] | None = None
    gap_sigma_ppm_per_hour: Annotated[float, Field(ge=0)] | None = None
    max_gap_hours: Annotated[float, Field(ge=0)] | None = None


class BoundaryModelConfig(Section):
    files: list[str] = _doc("""boundary-field NetCDF files of one `format` covering the period, the
        back-trajectories before it and the met domain (e.g. CarbonTracker's daily
        `CT2022.molefrac_glb3x2_YYYY-MM-DD.nc`); empty in the demo: the demo's own CT-layout field
        (`docs/boundary.md`)""", default_factory=list)
    format: Literal["carbontracker", "cams", "cf"] = _doc("""`carbontracker` (CT2022/CT-NRT
        molefrac), `cams` (EGG4/CAMS GHG, kg kg-1 with geopotential `z`) or `cf` (by
        standard_name)""", default="carbontracker")
    sigma_ppm: Annotated[float, Field(gt=0)] = _doc("""σ of the sampled model boundary (model
        error), combined with the particles' spread / √n""", default=1.0)
    inside_min_agl_m: Annotated[float, Field(ge=0)] = _doc("""particles whose run ended inside the
        domain are sampled at least this high above ground (above the delta's boundary layer,
        whose own emissions the state counts)""", default=1500.0)


class BackgroundConfig(Section):
    method: Literal["upwind", "baseline", "model"] = _doc("""`upwind`: the upwind site's top inlet
        in in-sector wind hours; `baseline`: network-minimum filter (`docs/stations.md`,
        Background); `model`: a global/regional model sampled where the particles leave the
        domain, with a bias per day and inflow side in the inversion (`docs/boundary.md`)""",
        default="upwind")
    model: BoundaryModelConfig = _doc("the model boundary (`method: model`)",
                                      default_factory=BoundaryModelConfig)
    upwind_site: Annotated[str, Field(pattern=SITE_ID)] = _doc("site giving the background",
                                                                 default="CHU")
    sectors: Annotated[list[tuple[Direction, Direction]], Field(min_length=1)] = _doc(
        """wind-from directions (degrees) in which the upwind site sees clean air; `[a, b]` with
        a > b wraps through north""", default=[(0.0, 90.0)])
    wind_at: Literal["upwind_site", "site"] = _doc("""where the 10-m wind (from the ARL met) is
        taken: `upwind_site` or `site`""", default="upwind_site")
    min_wind_speed_ms: Annotated[float, Field(ge=0)] = _doc("calmer hours are not in-sector",
                                                            default=1.0)
    half_window_hours: Annotated[int, Field(ge=0, le=12)] = _doc("smoothing half window", default=2)
    upwind_sigma_ppm: Annotated[float, Field(gt=0)] = _doc("representativeness σ of the upwind site",
                                                           default=0.5)
    gap_sigma_ppm_per_hour: Annotated[float, Field(ge=0)] = _doc(
        "σ growth per hour from the nearest in-sector hour", default=0.25)
    max_gap_hours: Annotated[float, Field(ge=0)] = _doc(
        "beyond this the baseline is used (σ = `stations.background_sigma_ppm`)", default=12.0)
    sites: dict[Annotated[str, Field(pattern=SITE_ID)], BackgroundSiteConfig] = _doc(
        """per-site overrides with the same keys (no defaults), e.g. `{HDU: {method:
        baseline}}`""", default_factory=dict)


class NightTowerConfig(Section):
    enabled: bool = _doc("""also select tower top inlets at night when the inlet is above the
        boundary layer (needs night receptors: see `docs/stations.md`)""", default=False)
    hours_local: Annotated[list[Hour], Field(min_length=2, max_length=2)] = _doc(
        "night window in local hours (wraps midnight)", default=[22, 6])
    min_height_above_pbl_m: float = _doc(
        "required margin of inlet height above the boundary-layer height", default=0.0)
    sites: list[str] = _doc("empty = every site with `role: tower`", default_factory=list)


class SpeciesRange(Section):
    co2: Annotated[list[float], Field(min_length=2, max_length=2)] = [350.0, 1500.0]
    ch4: Annotated[list[float], Field(min_length=2, max_length=2)] = [1700.0, 50000.0]
    co: Annotated[list[float], Field(min_length=2, max_length=2)] = [30.0, 50000.0]

    @model_validator(mode="after")
    def _ordered(self) -> "SpeciesRange":
        for sp in ("co2", "ch4", "co"):
            lo, hi = getattr(self, sp)
            if not lo < hi:
                raise ValueError(f"{sp}: [{lo}, {hi}] must have low < high")
        return self


class SpeciesStep(Section):
    co2: Annotated[float, Field(gt=0)] = 300.0
    ch4: Annotated[float, Field(gt=0)] = 5000.0
    co: Annotated[float, Field(gt=0)] = 10000.0


class SpeciesBias(Section):
    co2: Annotated[float, Field(gt=0)] = 0.2
    ch4: Annotated[float, Field(gt=0)] = 5.0
    co: Annotated[float, Field(gt=0)] = 5.0


class PlausibilityConfig(Section):
    range: SpeciesRange = _doc("""plausible values (ppm CO2, ppb CH4/CO); records and hours outside
        are flagged and never selected (`docs/stations.md`, Plausibility)""",
                               default_factory=SpeciesRange)
    max_hourly_step: SpeciesStep = _doc("""an hour differing from both neighbouring usable hours by
        more than this (same direction) is flagged `step`""", default_factory=SpeciesStep)
    stuck_minutes: Annotated[float, Field(gt=0)] = _doc(
        "the same analyser reading repeated this long is flagged `stuck`", default=5.0)


class TargetTankConfig(Section):
    action: Literal["flag", "warn"] = _doc("""`flag`: a target-tank run beyond `max_bias` flags the
        ambient data from the previous to the next passing target run; `warn`: log only""",
                                           default="flag")
    max_bias: SpeciesBias = _doc("""limit of the target bias (ppm CO2, ppb CH4/CO: WMO extended
        compatibility goals, GAW Report 255)""", default_factory=SpeciesBias)


class StationsConfig(Section):
    utc_offset_hours: Annotated[int, Field(ge=-12, le=14)] = _doc(
        "local time = UTC + this (selection and display only)", default=8)
    select_hours_local: Annotated[list[Hour], Field(min_length=2, max_length=2)] = _doc(
        """well-mixed window `[start, end)` in local hours; the inversion uses these hours of the
        top inlet. `start > end` wraps midnight (`[22, 6]`: 22:00–06:00 local)""",
        default=[12, 16])
    flush_seconds: Annotated[float, Field(ge=0)] = _doc("data discarded after every valve switch",
                                                        default=60.0)
    min_coverage: Annotated[float, Field(ge=0, le=1)] = _doc(
        "minimum fraction of an hour with valid ambient data for an hourly mean", default=0.5)
    background_sigma_ppm: Annotated[float, Field(gt=0)] = _doc(
        "1σ uncertainty of the hourly background estimate", default=2.0)
    background: BackgroundConfig = _doc("hourly background (`docs/stations.md`, Background)",
                                        default_factory=BackgroundConfig)
    night_tower: NightTowerConfig = _doc("night-time tower observations",
                                         default_factory=NightTowerConfig)
    plausibility: PlausibilityConfig = _doc("observation plausibility tests",
                                            default_factory=PlausibilityConfig)
    target_tank: TargetTankConfig = _doc("target-tank check", default_factory=TargetTankConfig)
    allow_wet_correction: bool = _doc("""files without `CO2_dry`: correct the wet `CO2` with `H2O`
        (Chen et al. 2010) and say so; `false`: stop""", default=True)
    time_reference: Literal["start", "middle", "end"] | None = _doc("""ObsPack files whose time
        variable does not say what its times mark: `start`, `middle` or `end` of the averaging
        interval; unset = start, logged and recorded in the hourly file (`docs/stations.md`)""",
        default=None)

    @field_validator("select_hours_local")
    @classmethod
    def _window(cls, v: list[int]) -> list[int]:
        h0, h1 = v
        if h0 == h1 or h0 == 24:
            raise ValueError(f"[{h0}, {h1}] is not a window; give [start, end) local hours with start "
                             "in 0-23, e.g. [12, 16] (start > end wraps midnight: [22, 6])")
        return v


class TransportConfig(Section):
    n_hours: Annotated[int, Field(ge=1, le=240)] = _doc("hours of back-trajectory per receptor",
                                                        default=24)
    numpar: Annotated[int, Field(ge=10, le=100000)] = _doc("particles per receptor", default=100)
    seed: Annotated[int, Field(ge=1)] = _doc(
        "HYSPLIT random seed (`krand=2`) so footprints are reproducible", default=7)
    kmixd: Literal[0, 1, 2, 3] = _doc("HYSPLIT mixing-depth option; 0 uses the met PBL height",
                                      default=0)
    left_domain_warn: Annotated[float, Field(ge=0, le=1)] = _doc("""the Jacobian step warns (naming
        the receptors) when a larger share of a receptor's particles left the met domain before
        `n_hours`""", default=0.1)
    timeout: Annotated[int, Field(ge=10)] = _doc("""seconds one receptor's HYSPLIT run may take
        before it is recorded as failed""", default=1800)
    smooth_factor: Annotated[float, Field(ge=0)] = _doc("""STILT kernel-bandwidth factor of the
        footprint gridding (1 = STILT's default bandwidth; 0 = no smoothing)""", default=1.0)
    near_field_hours: Annotated[int, Field(ge=0, le=240)] = _doc("""hours back covered by the
        near-field HYSPLIT run (`numpar` particles, output every 1-minute step); the later hours
        come from a far-field run of `far_numpar` particles over all `n_hours`. 0 (or ≥ `n_hours`):
        one run of `numpar` particles for all hours (docs/performance.md, "Footprint cost")""",
        default=6)
    near_field_solar_hours: Annotated[list[float], Field(min_length=2, max_length=2)] = _doc(
        """the split is used only for receptors released between these local solar hours
        (UTC + longitude/15°; daytime mixed layer: the benchmark found the split within 0.01 ppm
        of one run there, but 0.2 ppm low at night, when stagnant air keeps the city's signal
        in the footprint beyond 6 h); other receptors get one run of `numpar` particles""",
        default_factory=lambda: [10.0, 18.0])
    far_numpar: Annotated[int, Field(ge=10, le=100000)] = _doc("""particles of the far-field run
        (with `near_field_hours` > 0)""", default=25)
    far_output_minutes: Annotated[int, Field(ge=1, le=60)] = _doc("""HYSPLIT output interval
        (`outdt`, minutes) of the far-field run; HYSPLIT sums each particle's `foot` over the
        interval""", default=10)
    hysplit: dict[str, Any] = _doc("""further HYSPLIT namelist parameters passed to pystilt as
        they are (e.g. `{tlfrac: 0.1, vscales: -1}`; the bundled `hycs_std` ignores `delt`: its step
        is always 1 minute, docs/performance.md); part of the footprint cache
        key""", default_factory=dict)
    footprints_from: Literal["stilt", "files"] = _doc("""`stilt`: compute footprints with
        HYSPLIT-STILT; `files`: read footprints the user already has (`footprint_files`: pystilt,
        STILT-R, NAME/openghg, FLEXPART/PARIS; `transport.read_footprints`) instead of running
        HYSPLIT""", default="stilt")
    footprint_files: str = _doc("""with `footprints_from: files`: a directory or a glob pattern
        of footprint files covering the receptors of the period""", default="")
    footprint_layer_height: Annotated[float, Field(gt=0)] | None = _doc("""height (m) of the
        output layer of native FLEXPART residence times (s m3 kg-1), needed to convert them to
        ppm per (µmol m-2 s-1); unset for every other format""", default=None)


class InnovationScreenConfig(Section):
    threshold_sigma: Annotated[float, Field(gt=0)] = _doc("""innovation screening before the solve:
        an observation whose prior residual d = observed − prior model exceeds this many σ of its
        prior prediction, σ = √((H Q Hᵀ)_ii + R_ii) (background offsets included), is flagged,
        logged, named in `diagnostics.json` `innovation_screen` and marked in `modelled.csv`
        (`screened`); docs/inversion.md, "Innovation screening\"""", default=3.0)
    action: Literal["exclude", "flag", "off"] = _doc("""`exclude`: flagged observations are left out
        of the solve (CarbonTracker's practice); `flag`: named but kept; `off`: no screening (the
        normalised innovations are still written)""", default="exclude")
    chi2_p_min: Annotated[float, Field(ge=0, lt=1)] = _doc("""the report shows a problem when the
        upper-tail p-value of the innovation χ² (dᵀ(H Q Hᵀ + R)⁻¹d, n_obs degrees of freedom) is
        below this; the run is never refused on χ²""", default=0.001)

    @field_validator("action", mode="before")
    @classmethod
    def _bare_off(cls, v: Any) -> Any:
        return "off" if v is False else v  # YAML reads a bare `off` as false


class CrossValidationConfig(Section):
    enabled: bool = _doc("""leave-one-site-out and k folds of whole days: the posterior of the other
        observations predicted at the left-out ones, prior and posterior RMSE, bias and
        correlation (`diagnostics.json` `cross_validation`, report section; docs/inversion.md,
        "Cross-validation"); exact, from the Cholesky factor, no re-inversion""", default=True)
    folds_days: Annotated[int, Field(ge=0)] = _doc("""number of contiguous blocks of days left out
        in turn (capped at the number of days with observations); 0 = no day folds""", default=4)

    @model_validator(mode="before")
    @classmethod
    def _bare_bool(cls, data: Any) -> Any:
        return {"enabled": data} if isinstance(data, bool) else data


class JointCOConfig(Section):
    """Settings of the joint fossil-CO2/CO inversion (`inversion.joint`, docs/gases.md): fossil CO2
    by sector, biogenic CO2 and CO in one linear state, CO tied to fossil CO2 by the prior
    cross-covariance of the sector emission ratios (`inputs.emission_ratios_co`). Rule `joint`
    when `enabled` (results/<month>/joint/); also `python tools/gas_osse.py RUN_DIR`."""

    enabled: bool = _doc("""`true`: rule `joint` writes `<results_dir>/<month>/joint/districts.csv`
        (fossil and biogenic CO2 per district and the city ± σ and their posterior correlation)
        and `joint/diagnostics.json`; needs `co` in `species` and `outer_grid.enabled: false`
        (its state is the single grid). Off by default: its solve costs
        several times the CO2 inversion's (docs/gases.md, "Cost")""", default=False)
    transport_error_correlation: Annotated[float, Field(gt=-1, lt=1)] = _doc("""joint fossil-CO2/CO
        inversion (docs/gases.md, `tools/gas_osse.py`): correlation of the CO2 and CO model-data
        mismatch at the same receptor (one transport error acts on both gases); enters R""",
        default=0.5)
    ratio_corr_length_km: Annotated[float, Field(ge=0)] = _doc("""joint fossil-CO2/CO
        inversion: e-folding length of the spatial correlation of the CO:CO2 emission-ratio errors
        of each sector (largely sector-wide: fleet and combustion technology)""", default=50.0)


class InversionConfig(Section):
    time_step_hours: Literal[1, 2, 3, 4, 6, 8, 12, 24] = _doc("""length of a flux-correction step
        (divides 24); the prior keeps its hourly shape""", default=6)
    prior_rel_sigma: Annotated[float, Field(gt=0)] = _doc("""prior σ per cell and step = rel ×
        |non-power prior flux| + power_rel_sigma × |power flux| + floor""", default=0.6)
    prior_floor_sigma: Annotated[float, Field(ge=0)] = _doc("µmol m⁻² s⁻¹", default=0.5)
    corr_length_km: Annotated[float, Field(gt=0)] = _doc("""e-folding length of the exponential
        spatial correlation of the cell corrections (errors of the inventory's spatial proxies);
        district-wide errors are carried by `district_scale_sigma`""", default=5.0)
    corr_time_hours: Annotated[float, Field(gt=0)] = _doc("""e-folding time of the exponential
        temporal correlation; inventory errors persist for weeks, and a short time (12 h) makes
        the prior over-confident about monthly totals (docs/performance.md)""", default=720.0)
    diurnal_corr: Annotated[float, Field(ge=-1, le=1)] = _doc("""correlation factor between
        *different times of day* of the cell corrections: 1 = plain exponential, 0 = each time of
        day its own error, < 0 (down to −1/(steps per day − 1), exclusive) = profile-shape errors
        that cancel over the day (docs/inversion.md, "Structured prior")""", default=-0.3)
    district_scale_sigma: Annotated[float, Field(ge=0, le=5)] = _doc("""prior σ of one relative
        factor per district for the period on its diffuse anthropogenic prior (total − power −
        biosphere); 0 = no district factors""", default=0.25)
    bio_day_scale_sigma: Annotated[float, Field(ge=0, le=5)] = _doc("""prior σ of one domain-wide
        factor per local day on the biosphere's uptake; 0 = off""", default=0.0)
    profile_scale_sigma: Annotated[float, Field(ge=0, le=5)] = _doc("""prior σ of the amplitude of
        four harmonics (24 h and 12 h, cos and sin) that modulate each diffuse sector's diurnal
        profile (`flux_industry`, `flux_road`, `flux_residential` of the prior) domain-wide while
        keeping its daily total; 0 = off""", default=0.5)
    sigma_basis: Literal["step", "day"] = _doc("""`day`: the anthropogenic part of the cell σ comes
        from the *daily* mean of the diffuse anthropogenic prior (and the biosphere gets its own
        term), so night steps can be corrected as much as afternoon ones (profile errors); `step`:
        from the step mean""", default="step")
    obs_sigma_ppm: Annotated[float, Field(gt=0)] = _doc("""model-data mismatch (transport,
        representation), added in quadrature to the measurement σ and the background σ. Check
        χ²_r in `diagnostics.json` (≈ 1 when Q and R are right): the demo month gives 0.8 with
        1.0 ppm; urban sites with real transport usually need 2–3 ppm""", default=1.0)
    obs_rel_sigma: Annotated[float, Field(ge=0, le=5)] = _doc("""part of the model-data mismatch
        proportional to the prior's modelled enhancement, added in quadrature (σ² =
        value_std_dev² + obs_sigma_ppm² + (rel · |H x_a|)² + background_sigma²): transport
        errors grow with the signal next to large sources""", default=0.0)
    obs_corr_hours: Annotated[float, Field(ge=0)] = _doc("""> 0: the model-data mismatch of one
        site is correlated in time, exp(−|Δt|/τ) with τ in hours (full R); 0 = diagonal R""",
        default=0.0)
    bg_sigma_ppm: Annotated[float, Field(gt=0)] = _doc(
        "prior σ of the daily background offset solved with the fluxes", default=2.0)
    boundary_bias_sigma_ppm: Annotated[float, Field(gt=0)] = _doc("""prior σ of the boundary bias
        per UTC day and inflow side (N/E/S/W), replacing the daily offset when the background is
        the model boundary (`stations.background.method: model`, `docs/boundary.md`)""",
        default=1.0)
    outer_rel_sigma: Annotated[float, Field(gt=0)] = _doc("""nested state (`outer_grid`): prior σ
        of an outer cell's correction per step = outer_rel_sigma × |anthropogenic outer prior flux
        (step mean)| + the biosphere's term (`outer_bio_rel_sigma`) + `outer_floor_sigma` (a coarse
        inventory's error at 0.3°: docs/inversion.md, "Nested outer domain")""", default=0.5)
    outer_bio_rel_sigma: Annotated[float, Field(ge=0)] = _doc("""nested state: prior σ of an outer
        cell's biosphere per step = outer_bio_rel_sigma × step mean of |hourly outer NEE prior|
        (`inputs.outer_bio_prior`), added to the anthropogenic term; 0.8 is CarbonTracker's prior σ
        of its ecosystem flux scaling factors (docs/inversion.md, "Nested outer domain")""",
        default=0.8)
    outer_floor_sigma: Annotated[float, Field(ge=0)] = _doc("""nested state: σ floor of the outer
        cells, µmol m⁻² s⁻¹ (sea, countryside, an outer domain without inventory)""", default=0.2)
    outer_corr_length_km: Annotated[float, Field(ge=0)] = _doc("""nested state: e-folding length of
        the exponential spatial correlation between outer cells (km, on the outer grid; inner and
        outer errors are uncorrelated; the time correlation is the inner one)""", default=100.0)
    coarse_block: Annotated[int, Field(ge=1, le=100)] = _doc(
        "posterior σ is reported on blocks of N×N cells", default=5)
    power_rel_sigma: Annotated[float, Field(ge=0)] = _doc("""relative prior σ of the power sector
        (plants' point sources, known from metered generation)""", default=0.1)
    tune_hyperparameters: bool = _doc("""`true`: scale Q and R by maximum likelihood before solving
        (`docs/inversion.md`, Hyperparameters); reported in `diagnostics.json`
        `hyperparameters`""", default=False)
    positivity: Literal["none", "clip"] = _doc("""`clip`: truncate the hourly posterior flux at
        min(prior, 0); the effect is reported in `diagnostics.json` `positivity` either way""",
                                               default="none")
    station_contributions: bool = _doc("""exact posterior σ of every district and the city with each
        station left out and with each station alone (from the same H Q Hᵀ: one small Cholesky
        factorisation per case, under a second for a month); `diagnostics.json`
        `station_contributions`, report section "What each station contributes". Needs the
        Cholesky solver (skipped above `max_dense_obs` observations)""", default=True)
    innovation_screen: InnovationScreenConfig = _doc("innovation screening and the χ² test",
                                                     default_factory=InnovationScreenConfig)
    cross_validation: CrossValidationConfig = _doc("cross-validation on the run's own data",
                                                   default_factory=CrossValidationConfig)
    joint_co: JointCOConfig = _doc("joint fossil-CO2/CO inversion (docs/gases.md)",
                                   default_factory=JointCOConfig)

    @field_validator("diurnal_corr")
    @classmethod
    def _diurnal_bound(cls, v: float, info) -> float:
        step = info.data.get("time_step_hours")
        per_day = 24 // step if step else 1
        if per_day > 1 and not v > -1.0 / (per_day - 1):
            raise ValueError(
                f"{v} must be > {-1.0 / (per_day - 1):.4g} with {per_day} steps per day "
                f"(time_step_hours {step}); below that the prior time correlation is not positive "
                "definite")
        return v


class PowerConfig(Section):
    external_factor: Annotated[float, Field(ge=0, le=1.5)] = _doc("""kg CO₂/kWh of electricity
        imported from the grid when no hourly series is given (2022 Southern grid, MEE/NBS
        2024-12)""", default=0.3869)


class ProductsConfig(Section):
    institution: str = _doc("""the `institution` attribute of the CF flux product (who runs this
        pipeline)""", default="gzcarbon pipeline")
    contact: str = _doc("""the `contact` attribute of the CF flux product (who answers questions
        about it: an e-mail address or a web page); empty: the attribute says it was not set""",
        default="")
    references: str = _doc("""the `references` attribute of the CF flux product: the method's
        publications and the repository files that describe the file (every repository path named
        here must exist: tests/products/test_cf_check.py)""",
        default="docs/formats.md (this file) and docs/inversion.md (the method) of the gzcarbon "
                "repository; Lin et al. (2003) doi:10.1029/2002JD003161 (STILT); Fasoli et al. "
                "(2018) doi:10.5194/gmd-11-2813-2018 (STILT-R v2); Yadav and Michalak (2013) "
                "doi:10.5194/gmd-6-583-2013 (Kronecker prior covariance)")


class ReportConfig(Section):
    language: Literal["zh", "en", "both"] = _doc("""language of the monthly, flash and annual
        reports and of the figures drawn for them: `zh` (Chinese, district names in characters), `en` (English) or
        `both` (Chinese first, then English, in one file: the city's analysts read Chinese, the
        scientists and the documentation English; docs/report.md, "Language")""", default="both")


class GasConfig(Section):
    """Settings of one gas other than CO2 where they differ from CO2's (units: ppb for mole
    fractions, nmol m-2 s-1 for fluxes). Every other setting (background method, selection,
    correlations, scaling factors, screening) is the CO2 one."""

    prior_rel_sigma: Annotated[float, Field(gt=0)] = _doc("""relative prior σ per cell and step
        (× |prior flux|)""", default=0.6)
    prior_floor_sigma: Annotated[float, Field(ge=0)] = _doc("prior σ floor, nmol m⁻² s⁻¹",
                                                            default=2.0)
    obs_sigma_ppb: Annotated[float, Field(gt=0)] = _doc("""model-data mismatch, ppb (the gas's
        `inversion.obs_sigma_ppm`)""", default=10.0)
    bg_sigma_ppb: Annotated[float, Field(gt=0)] = _doc("""prior σ of the daily background offset,
        ppb (the gas's `inversion.bg_sigma_ppm`)""", default=20.0)
    background_sigma_ppb: Annotated[float, Field(gt=0)] = _doc("""σ of the baseline background,
        ppb (the gas's `stations.background_sigma_ppm`)""", default=20.0)
    upwind_sigma_ppb: Annotated[float, Field(gt=0)] = _doc("""representativeness σ of the upwind
        site, ppb (the gas's `stations.background.upwind_sigma_ppm`)""", default=5.0)
    gap_sigma_ppb_per_hour: Annotated[float, Field(ge=0)] = _doc("""σ growth per hour from the
        nearest in-sector hour, ppb (the gas's `stations.background.gap_sigma_ppm_per_hour`)""",
        default=2.5)
    outer_rel_sigma: Annotated[float, Field(gt=0)] = _doc("""nested state (`outer_grid`): prior σ
        of an outer cell's correction per step = outer_rel_sigma × |outer prior (step mean)| +
        `outer_floor_sigma`; 0.8: a coarse CH4/CO inventory's error at 0.3° is larger than CO2's
        (0.5), its emission factors being less certain than fuel carbon (docs/gases.md, "CH4 and CO of
        the delta's neighbours")""", default=0.8)
    outer_floor_sigma: Annotated[float, Field(ge=0)] = _doc("""nested state: σ floor of the outer
        cells, nmol m⁻² s⁻¹ (CO2's 0.2 µmol m⁻² s⁻¹ × the region's molar ratio of the gas to CO2,
        about 0.01)""", default=2.0)


class GasesConfig(Section):
    ch4: GasConfig = _doc("methane (docs/inversion.md, \"Other gases\")",
                          default_factory=lambda: GasConfig(prior_rel_sigma=0.6, prior_floor_sigma=2.0))
    co: GasConfig = _doc("carbon monoxide (prior: the CO2 inventory's combustion sectors × "
                         "`inputs.emission_ratios_co`)",
                         default_factory=lambda: GasConfig(prior_rel_sigma=0.6, prior_floor_sigma=5.0))


class InputsConfig(Section):
    met_dir: str = _doc("real runs: directory of ARL files", default="")
    met_file_format: str = _doc("strftime pattern of one ARL file per UTC day in `met_dir`",
                                default="%Y%m%d_gz.arl")
    met_files: list[str] = _doc("""real runs: explicit list of ARL files (any names, e.g. GDAS
        `gdas1.jan25.w1`, any time step); when given it replaces `met_dir`/`met_file_format`""",
                                default_factory=list)
    met_source: Literal["arl", "era5", "wrf"] = _doc("""real runs: `arl` reads ARL files;
        `era5`/`wrf`: a rule converts `era5_files`/`wrf_files` to daily ARL files first
        (docs/transport.md)""", default="arl")
    era5_files: list[str] = _doc("""with `met_source: era5`: ERA5 pressure- and single-level
        NetCDF files (old or new CDS layout) covering the period""", default_factory=list)
    wrf_files: list[str] = _doc("with `met_source: wrf`: `wrfout` files covering the period",
                                default_factory=list)
    raw_obs_dir: str = _doc("real runs: `<raw_obs_dir>/<site>/` holds that site's analyser files",
                            default="")
    inventory: str = _doc("""real runs: the inventory in any format the prior reads (EDGAR, ODIAC
        GeoTIFF, CF NetCDF, the pipeline's own inventory.nc; `docs/inventory.md`)""", default="")
    outer_inventory: str = _doc("""nested state (`outer_grid`): a coarse inventory for the outer
        cells in any format the prior reads (e.g. EDGAR 0.1° global `emi_co2`), regridded
        conservatively onto the outer grid (zero under the inner box); the demo writes
        `inventory_outer.nc`; empty in a real run: the anthropogenic outer prior is zero (warned)""",
        default="")
    outer_inventory_ch4: str = _doc("""nested state with CH4 in `species`: a coarse CH4 inventory of
        the outer cells (EDGAR 0.1° `emi_ch4` TOTALS, annual or monthly, or a CF flux field),
        regridded conservatively onto the outer grid, flat in time; the demo writes
        `inventory_outer_ch4.nc`; empty in a real run: zero outer CH4 prior (warned)""", default="")
    outer_inventory_co: str = _doc("""nested state with CO in `species`: the same for CO (EDGAR
        `emi_co`); the demo writes `inventory_outer_co.nc`""", default="")
    inventory_format: Literal["auto", "edgar", "odiac", "cf", "gzcarbon"] = _doc("""format of
        `inventory`: `auto` by content (ODIAC GeoTIFF, EDGAR or CF NetCDF, the pipeline's
        inventory.nc); another value must agree with the content (docs/inventory.md)""",
        default="auto")
    inventory_species: Literal["co2", "ch4", "co"] = _doc("""species of `inventory` (EDGAR
        `emi_<species>`, molar mass of molar units)""", default="co2")
    downscale_proxy: str = _doc("""GeoTIFF/NetCDF proxy (population, night lights, ODIAC) sharing
        each coarse inventory cell over the grid cells; empty: coarse cells stay flat (warned)""",
        default="")
    temporal_profiles: str = _doc("""CSV `sector, profile (month|weekday|hour), index, factor`,
        local time (docs/inventory.md); empty: flat in time (warned)""", default="")
    outer_bio_prior: str = _doc("""nested state (`outer_grid`): CF NetCDF NEE on (time, lat, lon)
        covering the outer grid (e.g. CarbonTracker flux1x1 `bio_flux_opt`) for the outer cells'
        biosphere prior (`flux_outer_bio`); empty: `bio_prior`; both empty: no outer biosphere
        (warned); the demo writes `bio_outer.nc`""", default="")
    bio_prior: str = _doc("""CF NetCDF NEE on (time, lat, lon), e.g. CarbonTracker flux1x1
        `bio_flux_opt`; empty: no biosphere in the prior (warned)""", default="")
    power_generation: str = _doc("real runs: hourly generation per plant CSV (`docs/power.md`)",
                                 default="")
    power_load: str = _doc("real runs: hourly load per district CSV", default="")
    power_external: str = _doc("""real runs: hourly external-grid intensity CSV (optional; else
        `power.external_factor`)""", default="")
    power_flows: str = _doc("""real runs: hourly inter-district flows CSV (optional; else the
        pooling rule of `docs/power.md`)""", default="")

    inventory_ch4: str = _doc("""real runs with `ch4` in `species`: the CH4 inventory, either a
        real one (EDGAR `emi_ch4` / `fluxes` / `emissions`, annual or 12 months, TOTALS or a
        sector; any CF NetCDF with flux units; regridded conservatively) or in the layout of the
        demo's `inventory_ch4.nc` (`emi_<sector>` kg CH4 m-2 s-1, `profile_<sector>` by local
        hour, optional `month_profile_<sector>`; docs/formats.md)""", default="")
    temporal_profiles_ch4: str = _doc("""with a real `inventory_ch4`: CSV of monthly/weekday/hourly
        factors per sector in the layout of `temporal_profiles` (local time); empty: flat in time
        within the inventory's year or month (warned)""", default="")
    emission_ratios_co: str = _doc("""runs with `co` in `species`: CO/CO2 emission ratio per
        combustion sector of the CO2 inventory (CSV, docs/formats.md); empty = the shipped
        `config/emission_ratios_co.csv`""", default="")

Budget = dict[Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z _-]*$")], Annotated[float, Field(gt=0)]]


class FlashConfig(Section):
    cutoff: str = _doc("""last UTC day a flash report of the month inverts
        (`YYYY-MM-DD`, inside the month and its inverted period), or `complete`: every UTC day that
        has ended (before today, UTC) up to the month's last inverted day. `snakemake --cores 2
        flash` writes the preliminary products to `<results_dir>/<month>/flash/<cutoff>/`
        (docs/year.md)""", default="complete")

    @field_validator("cutoff", mode="before")
    @classmethod
    def _cutoff(cls, v: Any) -> str:
        v = str(v).strip()
        if v != "complete":
            try:
                v = date.fromisoformat(v).isoformat()
            except ValueError:
                raise ValueError(f"{v!r} is neither a date YYYY-MM-DD nor 'complete'") from None
        return v


class CandidateConfig(Section):
    id: Annotated[str, Field(pattern=SITE_ID)] = _doc("""candidate id (capitals and digits, like a
        site id; not an id of `stations_file`)""")
    type: Literal["insitu", "column", "mobile"] = _doc("""observation type: `insitu` (a tower or
        station inlet at `height`; its model-data mismatch is the inversion's,
        `network_design.insitu`), `column` (a ground column spectrometer of the EM27/SUN type at
        the position, one column receptor per selected hour, errors of `observations.column` and
        `network_design.column`) or `mobile` (a vehicle driven out and back on the straight line
        from `lon`, `lat` to `to_lon`, `to_lat` over the selected hours of each candidate day,
        inlet at `height`, errors of `observations.mobile`, segments by
        `network_design.mobile`; docs/network.md, "Tower, column or mobile")""", default="insitu")
    lon: Annotated[float, Field(ge=-180, le=180)] = _doc("longitude (degrees, WGS84); a track's start")
    lat: Annotated[float, Field(ge=-90, le=90)] = _doc("latitude (degrees, WGS84); a track's start")
    height: Annotated[float, Field(ge=0, le=1000)] = _doc("""inlet height above ground (m), > 0 for
        `insitu` and `mobile`; a `column` sensor's column starts at `observations.column.bottom_m`
        (its height is not used)""", default=0.0)
    to_lon: Annotated[float, Field(ge=-180, le=180)] | None = _doc("""`mobile` only: longitude of
        the far end of the track""", default=None)
    to_lat: Annotated[float, Field(ge=-90, le=90)] | None = _doc("""`mobile` only: latitude of the
        far end of the track""", default=None)

    @model_validator(mode="after")
    def _type_fields(self) -> "CandidateConfig":
        if self.type in ("insitu", "mobile") and not self.height > 0:
            raise ValueError(f"candidate {self.id}: a {self.type} candidate needs height > 0 (its inlet, m)")
        if self.type == "mobile" and (self.to_lon is None or self.to_lat is None):
            raise ValueError(f"candidate {self.id}: a mobile candidate needs to_lon and to_lat (the far end "
                             "of its track)")
        if self.type != "mobile" and (self.to_lon is not None or self.to_lat is not None):
            raise ValueError(f"candidate {self.id}: to_lon/to_lat belong to mobile candidates only")
        return self


class CandidateGridConfig(Section):
    enabled: bool = _doc("""add a grid of in-situ candidates inside the city (the union of the
        district polygons), ids `G001`, `G002`, … west to east, south to north""", default=False)
    spacing_km: Annotated[float, Field(gt=0)] = _doc("spacing of the candidate grid (km)", default=15.0)
    height: Annotated[float, Field(gt=0, le=1000)] = _doc("inlet height of the grid candidates (m)",
                                                          default=50.0)


class InsituCandidateConfig(Section):
    value_std_dev_ppm: Annotated[float, Field(ge=0)] = _doc("""measurement σ of an hourly mean of a
        new in-situ inlet (ppm); its model-data mismatch is the inversion's (`inversion.obs_sigma_ppm`,
        `inversion.obs_rel_sigma` · |H x_a|)""", default=0.1)
    background_sigma_ppm: Annotated[float, Field(ge=0)] = _doc("""σ of the background a new site's
        observations are referred to (ppm), beyond the daily offsets the state solves for""",
        default=0.5)


class ColumnCandidateConfig(Section):
    retrieval_ppm: Annotated[float, Field(ge=0)] = _doc("""retrieval σ of an hourly column mean of
        a column candidate (ppm XCO2); its mismatch and background σ are `observations.column`'s""",
        default=0.2)


class MobileCandidateConfig(Section):
    speed_kmh: Annotated[float, Field(gt=0)] = _doc("speed of a mobile candidate's vehicle (km/h)",
                                                    default=30.0)
    every_minutes: Annotated[int, Field(ge=1, le=60)] = _doc("""one segment
        (`observations.mobile.segment_seconds` long, no plume spread: the mismatch floor) every N
        minutes of the drive, one point receptor each""", default=10)


class NetworkDesignConfig(Section):
    candidates: list[CandidateConfig] = _doc("""candidate sites: a list of `{id, type, lon, lat,
        height}` (target `network_design`, docs/network.md)""", default_factory=list)
    grid: CandidateGridConfig = _doc("a grid of candidates inside the city",
                                     default_factory=CandidateGridConfig)
    k: Annotated[int, Field(ge=1, le=20)] = _doc("""sites chosen one after the other by the greedy
        selection (each step adds the candidate that most reduces the objective's σ)""", default=3)
    objective: str = _doc("""aggregate whose posterior σ the greedy selection minimises: `city` or a
        district's `name_en`""", default="city")
    max_candidate_days: Annotated[int, Field(ge=1, le=31)] = _doc("""candidate footprints are run for
        the first N days of the period only (HYSPLIT time ∝ candidates × days × selected hours); the
        existing network keeps every day""", default=2)
    max_candidates: Annotated[int, Field(ge=1)] = _doc("""more candidates than this (list + grid)
        stop with an error stating their cost: an in-situ candidate costs one HYSPLIT site-day of
        footprints per day (34 s of job time on an idle core for the default demo run's
        site-days), a column one a column receptor per selected hour (about 14 CPU s each), a
        mobile one 60 / `mobile.every_minutes` point receptors per hour (5–6 CPU s each;
        docs/network.md, "Cost")""", default=12)
    corr_length_km: Annotated[float, Field(ge=0)] = _doc("""correlation length (km) of the
        model-data mismatch between candidate sites in the same hour: exp(−d / L); 0 = independent.
        Nearby candidates then share their transport error, so the greedy choice does not cluster;
        with `station_correlation` also between an in-situ candidate and the nearest existing
        station""",
        default=10.0)
    station_correlation: bool = _doc("""correlate an in-situ candidate's mismatch with the nearest
        existing station's (same hour, exp(−d / `corr_length_km`)): a site next to a station
        repeats its transport error and gains little (docs/network.md, "Correlation with the
        stations"); `false`: independent of the stations, as the inversion treats its sites""",
        default=True)
    insitu: InsituCandidateConfig = _doc("errors of in-situ candidates",
                                         default_factory=InsituCandidateConfig)
    column: ColumnCandidateConfig = _doc("column candidates (their mismatch: `observations.column`)",
                                         default_factory=ColumnCandidateConfig)
    mobile: MobileCandidateConfig = _doc("mobile candidates (their mismatch: `observations.mobile`)",
                                         default_factory=MobileCandidateConfig)

    @field_validator("candidates")
    @classmethod
    def _unique_ids(cls, v: list) -> list:
        ids = [c.id for c in v]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"candidate id(s) {dup} given more than once")
        return v


class ColumnObservationsConfig(Section):
    enabled: bool = _doc("""add column observations (XCO2 of OCO-2/OCO-3 Lite files, XCO2/XCH4/XCO
        of EM27/SUN PROFFAST files) to the inversion's y, H and R (docs/columns.md); off by
        default""", default=False)
    files: list[str] = _doc("""column files of a real run (OCO Lite `.nc4`, PROFFAST
        `comb_invparms_*.csv`; read by content); the demo writes its own""",
        default_factory=list)
    mismatch_ppm: Annotated[float, Field(ge=0)] = _doc("""model-data mismatch σ of an hourly column
        mean (ppm XCO2), added in quadrature to the retrieval's own uncertainty: transport of the
        released column and the smoothing of a 1 km grid over the sounding's footprint""",
        default=0.8)
    background_sigma_ppm: Annotated[float, Field(ge=0)] = _doc("""σ of the column background
        (ppm), shared by the rows of one day and one instrument (their correlation is 1): the
        free troposphere and stratosphere above the released column are not transported""",
        default=0.5)
    bottom_m: Annotated[float, Field(ge=0)] = _doc("""bottom of the released column (m above
        ground); the lowest slab still reaches the ground""", default=5.0)
    top_m: Annotated[float, Field(gt=0, le=10000)] = _doc("""top of the released column (m above
        ground): air above carries no surface signal of the last `transport.n_hours` and is part
        of the column background""", default=3000.0)
    n_levels: Annotated[int, Field(ge=2, le=50)] = _doc("""release slabs of equal height between
        `bottom_m` and `top_m`; each needs particles (`transport.numpar` ≥ 10 × n_levels)""",
        default=10)
    ground_kernel: Literal["unity", "none"] = _doc("""averaging kernel of ground-based files that
        carry none (PROFFAST): `unity` (AK = 1, pressure weights from the measured surface
        pressure, no prior term; docs/columns.md says what this neglects) or `none` (such a file
        stops with an error naming it)""", default="unity")
    hour_mean: bool = _doc("""average the soundings of an instrument (or of an OCO overpass within
        0.1°) over each UTC hour into one row (one receptor); `false` keeps every sounding""",
        default=True)


class MobileObservationsConfig(Section):
    enabled: bool = _doc("""add mobile tracks (vehicle or UAV CSV: time, lat, lon, height, co2 /
        ch4 / co) to the inversion (docs/columns.md, "Mobile tracks"); off by default""",
        default=False)
    files: list[str] = _doc("track files of a real run; the demo writes its own",
                            default_factory=list)
    segment_seconds: Annotated[int, Field(ge=1, le=3600)] = _doc("""records are averaged over
        fixed windows of this length (s) into segments, one receptor each""", default=60)
    min_records: Annotated[int, Field(ge=1)] = _doc("good records a segment needs", default=10)
    max_speed_ms: Annotated[float, Field(gt=0)] = _doc("""a record further from the one before
        than this speed allows (m/s) is a GPS glitch and not used""", default=60.0)
    mismatch_ppm: Annotated[float, Field(ge=0)] = _doc("""model-data mismatch σ floor of a
        segment (ppm CO2): a 1 km grid does not resolve the road it drives on""", default=3.0)
    plume_factor: Annotated[float, Field(ge=0)] = _doc("""σ of a segment adds this factor × the
        standard deviation of its records (the road plumes driven through)""", default=1.0)
    measurement_ppm: Annotated[float, Field(ge=0)] = _doc("""σ of one record of the analyser
        (ppm); enters as σ² / n per segment""", default=0.1)
    corr_minutes: Annotated[float, Field(ge=0)] = _doc("""correlation time of the mismatch along a
        track: exp(−|Δt| / τ) between segments of the same track; 0 = independent""",
        default=5.0)
    background_sigma_ppm: Annotated[float, Field(ge=0)] = _doc("""σ of the background of a
        track (ppm), shared by its segments""", default=0.5)


class ObservationsConfig(Section):
    column: ColumnObservationsConfig = _doc("column observations (EM27/SUN, OCO-2/OCO-3)",
                                            default_factory=ColumnObservationsConfig)
    mobile: MobileObservationsConfig = _doc("mobile tracks (vehicle, UAV)",
                                            default_factory=MobileObservationsConfig)

    @model_validator(mode="after")
    def _weights_need_particles(self) -> "ObservationsConfig":
        c = self.column
        if c.enabled and c.top_m <= c.bottom_m:
            raise ValueError(f"observations.column.top_m ({c.top_m}) must lie above bottom_m "
                             f"({c.bottom_m})")
        return self


class PipelineConfig(Section):
    month: Annotated[str, Field(pattern=MONTH)] = _doc("month to invert, `YYYY-MM`",
                                                       default="2025-01")
    months: list[Annotated[str, Field(pattern=MONTH)]] = _doc("""several months in one call (each
        gets `results/<month>/`); overrides `month` of the same file when not empty.
        `--config month=…` on the command line wins over `months` of a config file (the monthly
        cron script relies on it; a note is printed)""", default_factory=list)
    period: PeriodConfig = _doc("""days of `month` to invert (shorter than a month, e.g. a test or
        a campaign)""", default_factory=PeriodConfig)
    demo: DemoConfig = _doc("the embedded demo world", default_factory=DemoConfig)
    sites: list[Annotated[str, Field(pattern=SITE_ID)]] = _doc(
        "subset of the site ids of `stations_file`; empty = every site", default_factory=list)
    species: list[Literal["co2", "ch4", "co"]] | None = _doc("""gases to invert, e.g. `[co2,
        ch4]`; `co2` is always inverted. Default (also when unset) `[co2]`, in the demo too: the two
        other gases add ~110 s of job time, which the default demo run's 10-minute budget on 2 cores
        does not hold; the demo's raw files carry CH4 and CO either way, so `--config
        'species=[co2,ch4,co]'` inverts them. CH4 and CO use the CO2 footprints (no extra HYSPLIT
        run) and write their products to `results/<month>/<gas>/` (docs/inversion.md, "Other
        gases")""", default=None)
    gases: GasesConfig = _doc("per-gas settings of CH4 and CO where they differ from CO2's",
                              default_factory=GasesConfig)
    stations_file: str = _doc("""site metadata: position, inlets, calibration tanks, analyser
        serial (see the comments in that file)""", default="config/stations.yaml")
    districts_file: str = _doc("the 11 district polygons (WGS84), see `docs/districts.md`",
                               default="config/districts.geojson")
    plants_file: str = _doc("power-plant registry, see `docs/power.md`",
                            default="config/power_plants.csv")
    neighbours_file: str = _doc("""nested state (`outer_grid`): polygons of the neighbouring cities
        and regions (the districts' layout plus `kind`: city | region; `gzcarbon.neighbours`) whose
        totals ± σ the inversion writes to `outer.csv`; empty: the outer ring's total only""",
                                default="config/prd_cities.geojson")
    results_dir: str = _doc("""products go to `<results_dir>/<month>/` (a trailing slash is
        ignored). One run at a time may use a results directory: a second run, even from another
        working directory, stops with a message naming the first (lock file
        `<results_dir>/.gzcarbon.lock`)""", default="results")
    data_dir: str = _doc("the demo world is written to `<data_dir>/demo/<month>/`", default="data")
    grid: GridConfig = _doc("state and footprint grid (cell edges)", default_factory=GridConfig)
    met: MetConfig = _doc("demo meteorology domain", default_factory=MetConfig)
    outer_grid: OuterGridConfig = _doc("""coarse outer grid nesting `grid` (cell edges, a whole
        multiple of its cells)""", default_factory=OuterGridConfig)
    stations: StationsConfig = _doc("stations stage", default_factory=StationsConfig)
    transport: TransportConfig = _doc("transport stage", default_factory=TransportConfig)
    inversion: InversionConfig = _doc("inversion stage", default_factory=InversionConfig)
    budgets: dict[Annotated[str, Field(pattern=r"^[0-9]{4}$")], Budget] = _doc(
        """annual CO₂ budgets, kt CO₂ per calendar year, e.g. `{"2025": {Tianhe: 5200, Guangzhou:
        62000}}` (keys: district `name_en` or `Guangzhou`). The report compares posterior
        emissions to date with the budget pro-rated over the covered hours, ± σ, with the
        probability of exceeding it (`docs/report.md`, "Carbon budgets")""", default_factory=dict)
    report_pdf: Literal["auto", "none", "weasyprint", "chromium"] = _doc("""PDF beside
        `report.html`: `auto` (WeasyPrint if the `[pdf]` extra is installed, else Chromium, else
        skipped with a logged note), `none`, `weasyprint`, `chromium`""", default="auto")
    report: ReportConfig = _doc("the monthly report", default_factory=ReportConfig)
    flash: FlashConfig = _doc("""flash reports: the days of a month available so far, preliminary
        (target `flash`; docs/year.md)""", default_factory=FlashConfig)
    year: Annotated[int, Field(ge=1900, le=2999)] | None = _doc("""a budget year: adds the annual
        report `<results_dir>/<year>/report.html` and `districts.csv` (annual totals ± σ with
        correlated months) to the run; the months run are `months` of that year, or all twelve
        when `months` is empty; months of the year found on disk are reused, the others reported
        as not covered (docs/year.md)""", default=None)
    power: PowerConfig = _doc("power stage", default_factory=PowerConfig)
    products: ProductsConfig = _doc("products stage", default_factory=ProductsConfig)
    inputs: InputsConfig = _doc("inputs of a real (non-demo) run; ignored when `demo.enabled`",
                                default_factory=InputsConfig)
    network_design: NetworkDesignConfig = _doc("""where to measure next: candidate sites and the
        exact district σ each would give (target `network_design`, docs/network.md)""",
        default_factory=NetworkDesignConfig)
    observations: ObservationsConfig = _doc("""observation types beside the in-situ sites (whose
        mismatch is `inversion.obs_sigma_ppm`): columns and mobile tracks, each with its own
        model-data mismatch and background σ (docs/columns.md)""",
        default_factory=ObservationsConfig)

    @field_validator("species")
    @classmethod
    def _species(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return v
        if "co2" not in v:
            raise ValueError(f"{v} lacks co2: CO2 is always inverted (the other gases share its "
                             "footprints and its report); give e.g. [co2, ch4]")
        return [g for g in ("co2", "ch4", "co") if g in v]

    @field_validator("demo", mode="before")
    @classmethod
    def _demo_shorthand(cls, v: Any) -> Any:
        if isinstance(v, str) and v.strip().lower() in ("true", "false"):
            v = v.strip().lower() == "true"
        return {"enabled": v} if isinstance(v, bool) else v

    @field_validator("results_dir", "data_dir")
    @classmethod
    def _normpath(cls, v: str) -> str:
        # 'results/' and 'results' must name the same files (a trailing slash gave a
        # MissingInputException: the rules' paths and the targets were spelled differently)
        return os.path.normpath(v)

    @field_validator("budgets", mode="before")
    @classmethod
    def _year_keys(cls, v: Any) -> Any:
        return {str(k): val for k, val in v.items()} if isinstance(v, dict) else v

    @field_validator("period")
    @classmethod
    def _period_in_month(cls, p: PeriodConfig, info) -> PeriodConfig:
        months = info.data.get("months") or [info.data.get("month")]
        for key in ("start", "end"):
            day = getattr(p, key)
            if day is not None and (len(months) > 1 or day.strftime("%Y-%m") != months[0]):
                raise ValueError(f"{key} {day} is not inside the month "
                                 f"{months[0] if len(months) == 1 else months}; a period is a part "
                                 "of one month (set `month` to its month, `months` empty)")
        return p

    @field_validator("met")
    @classmethod
    def _met_contains_grid(cls, m: MetConfig, info) -> MetConfig:
        g = info.data.get("grid")
        if g is not None and not (m.lon_min <= g.lon_min and m.lon_max >= g.lon_max
                                  and m.lat_min <= g.lat_min and m.lat_max >= g.lat_max):
            raise ValueError("the met domain must contain the state 'grid'")
        return m

    @field_validator("outer_grid")
    @classmethod
    def _outer_nests_grid(cls, o: OuterGridConfig, info) -> OuterGridConfig:
        from gzcarbon.grid import Grid, GridError, aligned_outer_box, check_nesting

        g, m = info.data.get("grid"), info.data.get("met")
        if g is None or m is None:
            return o   # grid or met is already reported
        inner = Grid.from_config(g.as_dict())
        keys = ("lon_min", "lon_max", "lat_min", "lat_max")
        if any(getattr(o, k) is None for k in keys):
            box = aligned_outer_box(inner, (m.lon_min, m.lon_max, m.lat_min, m.lat_max), o.res)
            for k, v in zip(keys, box):
                if getattr(o, k) is None:
                    setattr(o, k, v)
        if not o.enabled:
            return o
        try:
            check_nesting(inner, o)
        except GridError as err:
            raise ValueError(str(err).replace("config ", "", 1)) from None
        return o


# ------------------------------------------------------------------------------------ loading
_TYPE_WORDS = {"int": "integer", "float": "number", "bool": "boolean", "string": "string",
               "list": "array", "dict": "object", "model": "object", "tuple": "array"}


def _describe(err: dict, model: type[BaseModel] = PipelineConfig) -> str:
    loc = [str(p) for p in err["loc"] if not str(p).startswith(("function-", "tagged-union"))]
    key = ".".join(loc) or "(top level)"
    kind, value, ctx = err["type"], err.get("input"), err.get("ctx") or {}
    if kind == "extra_forbidden":
        parent, name = ".".join(loc[:-1]) or "(top level)", loc[-1]
        allowed = ", ".join(sorted(_fields_at(model, loc[:-1])))
        return (f"config key '{parent}': unknown key '{name}' (a typo?). Allowed keys here: "
                f"{allowed}.")
    desc = _description_at(model, loc)
    head = f"config key '{key}'" + (f" ({desc})" if desc else "")
    if kind == "literal_error" and loc and loc[-1] == "[key]":
        parent = ".".join(loc[:-2])
        return (f"config key '{parent}': unknown key {value!r} (a typo?). Allowed keys here: "
                f"{ctx.get('expected', '')}.")
    if kind == "literal_error":
        allowed = _literal_values(model, loc)
        return f"{head}: {value!r} is not one of {allowed}."
    for prefix, word in _TYPE_WORDS.items():
        if kind.startswith(prefix + "_") and ("type" in kind or "parsing" in kind):
            return f"{head}: {value!r} is not of type '{word}'."
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return f"{head}: {value!r} {err['msg'].lower().replace('input should be', 'must be')}."
    if kind == "string_pattern_mismatch":
        return f"{head}: {value!r} does not match the pattern {ctx.get('pattern')}."
    if kind in ("too_short", "too_long"):
        return f"{head}: {value!r}: {err['msg'].lower()}."
    msg = err["msg"].removeprefix("Value error, ")
    return f"{head}: {msg}."


def _field_model(model, name):
    field = model.model_fields.get(name) if isinstance(model, type) and issubclass(model, BaseModel) else None
    if field is None:
        return None, None
    ann = field.annotation
    for cand in (ann, *getattr(ann, "__args__", ())):
        if isinstance(cand, type) and issubclass(cand, BaseModel):
            return field, cand
    return field, None


def _literal_values(model, loc) -> list:
    field = None
    for name in loc:
        field, sub = _field_model(model, name)
        if field is None:
            return []
        model = sub
    args = [a for a in typing.get_args(field.annotation) if a is not type(None)]
    if args and typing.get_origin(args[0]) is Literal:  # Optional[Literal[...]]
        args = list(typing.get_args(args[0]))
    return list(args)


def _fields_at(model, loc) -> list[str]:
    for name in loc:
        _, model = _field_model(model, name)
        if model is None:
            return []
    return list(model.model_fields)


def _description_at(model, loc) -> str:
    field = None
    for name in loc:
        field, sub = _field_model(model, name)
        if field is None:
            return ""
        model = sub
    return (field.description or "") if field is not None and len(field.description or "") < 80 else ""


def load_config(cfg: dict | None = None) -> PipelineConfig:
    """The typed configuration of ``cfg`` (a partial dict: every missing key takes its default).

    Raises :class:`ConfigError` with one line per bad key. Relative paths are not resolved
    (:func:`validate_config` does that for the pipeline)."""
    try:
        return PipelineConfig.model_validate(dict(cfg or {}))
    except ValidationError as err:
        lines, seen = [], set()
        for e in err.errors():
            line = _describe(e)
            if line not in seen:
                seen.add(line)
                lines.append(line)
        raise ConfigError("\n".join(lines)) from None


_INPUT_PATHS = ("met_dir", "met_files", "era5_files", "wrf_files", "raw_obs_dir", "inventory",
                "downscale_proxy", "temporal_profiles", "bio_prior", "power_generation", "power_load",
                "power_external", "power_flows", "inventory_ch4", "temporal_profiles_ch4", "emission_ratios_co")


def _in_repo(path: str, repo_dir) -> str:
    """``path`` itself when it exists (or matches, a glob) from the working directory or is
    absolute; else the same path under ``repo_dir`` when that exists (the shipped examples name
    repository files, and Snakemake's ``--directory`` moves the working directory)."""
    import glob

    if not path or os.path.isabs(path) or glob.glob(path):
        return path
    alt = os.path.join(str(repo_dir), path)
    return alt if glob.glob(alt) else path


def _resolve_inputs(typed: PipelineConfig, repo_dir) -> None:
    for key in _INPUT_PATHS:
        val = getattr(typed.inputs, key)
        setattr(typed.inputs, key, [_in_repo(v, repo_dir) for v in val] if isinstance(val, list)
                else _in_repo(val, repo_dir))
    typed.transport.footprint_files = _in_repo(typed.transport.footprint_files, repo_dir)


def _resolve_species(typed: PipelineConfig, repo_dir) -> None:
    """``species`` unset: CO2 only (demo and real runs). A real run with CH4 needs
    ``inputs.inventory_ch4``; CO takes the shipped emission-ratio table unless another is given."""
    if typed.species is None:
        typed.species = ["co2"]
    if "co" in typed.species and not typed.inputs.emission_ratios_co:
        typed.inputs.emission_ratios_co = _in_repo("config/emission_ratios_co.csv", repo_dir)
    if typed.inversion.joint_co.enabled and "co" not in typed.species:
        raise ConfigError("config key 'inversion.joint_co.enabled' is true but 'species' has no co: the joint "
                          "fossil-CO2/CO inversion needs the CO observations; add co to species (e.g. "
                          "species: [co2, co]) or set inversion.joint_co.enabled: false.")
    if typed.demo.enabled:
        return
    if "ch4" in typed.species and not typed.inputs.inventory_ch4:
        raise ConfigError("config key 'species' asks for ch4 but 'inputs.inventory_ch4' is empty: give "
                          "the CH4 inventory (docs/formats.md), or leave ch4 out of species.")
    for key in ("inventory_ch4", "temporal_profiles_ch4", "emission_ratios_co", "outer_inventory_ch4",
                "outer_inventory_co"):
        val = getattr(typed.inputs, key)
        if val and not os.path.exists(val):
            raise ConfigError(f"config key 'inputs.{key}': path '{val}' does not exist.")


def validate_config(cfg: dict, repo_dir: str | os.PathLike = REPO_DIR) -> dict:
    """Validate the pipeline's config dict *in place* and fill every default.

    Also checks what depends on the machine: real runs (``demo.enabled: false``) need existing
    ``inputs.*``; relative ``stations_file``/``districts_file``/``plants_file``, ``inputs.*`` paths
    and ``transport.footprint_files`` are looked up in the working directory, then in
    ``repo_dir``. Returns ``cfg`` (plain dicts and lists, as the Snakefile and the rule params
    expect)."""
    typed = load_config(cfg)
    _resolve_inputs(typed, repo_dir)
    _resolve_species(typed, repo_dir)
    if not typed.demo.enabled:
        met_key = {"arl": "met_files" if typed.inputs.met_files else "met_dir",
                   "era5": "era5_files", "wrf": "wrf_files"}[typed.inputs.met_source]
        for key in (met_key, "raw_obs_dir", "inventory", "power_generation", "power_load"):
            val = getattr(typed.inputs, key)
            if key == met_key and not val and typed.transport.footprints_from == "files":
                continue  # footprints from files: only an upwind background reads met (the
                # Snakefile says so when it is missing)
            if isinstance(val, list):
                missing = [f for f in val if not os.path.exists(f)]
                if not val or missing:
                    raise ConfigError(f"config key 'inputs.{key}': "
                                      + (f"files {missing[:3]} do not exist." if missing else
                                         "empty but demo.enabled is false: list your files."))
                continue
            if not val:
                raise ConfigError(f"config key 'inputs.{key}' is empty but demo.enabled is false: "
                                  "give the path of your data, or set demo.enabled: true.")
            if not os.path.exists(val):
                raise ConfigError(f"config key 'inputs.{key}': path '{val}' does not exist.")
        for key in ("downscale_proxy", "temporal_profiles", "bio_prior", "power_external",
                    "power_flows", "outer_inventory", "outer_bio_prior", "outer_inventory_ch4", "outer_inventory_co"):
            val = getattr(typed.inputs, key)
            if val and not os.path.exists(val):
                raise ConfigError(f"config key 'inputs.{key}': path '{val}' does not exist; give "
                                  "an existing file or leave it empty.")
        for kind in ("column", "mobile"):  # docs/columns.md: a real run lists its files
            ob = getattr(typed.observations, kind)
            missing = [f for f in ob.files if not os.path.exists(f)]
            if ob.enabled and (not ob.files or missing):
                raise ConfigError(f"config key 'observations.{kind}.files': "
                                  + (f"files {missing[:3]} do not exist." if missing else
                                     f"empty but observations.{kind}.enabled is true and "
                                     "demo.enabled is false: list your files."))
        if typed.transport.footprints_from == "files" and not typed.transport.footprint_files:
            raise ConfigError("config key 'transport.footprint_files' is empty but "
                              "transport.footprints_from is 'files': give the directory or glob "
                              "pattern of your footprint files.")
    out = typed.model_dump(mode="json", exclude_none=True)  # unset per-site overrides: absent
    for key in ("stations_file", "districts_file", "plants_file", "neighbours_file"):
        if key == "neighbours_file" and not out[key]:
            continue  # no neighbours: the outer ring's total only
        if not os.path.exists(out[key]) and os.path.exists(os.path.join(repo_dir, out[key])):
            out[key] = os.path.join(repo_dir, out[key])
        if not os.path.exists(out[key]):
            raise ConfigError(f"config key '{key}': file '{out[key]}' does not exist.")
    cfg.clear()
    cfg.update(out)
    return cfg


# ------------------------------------------------------------------------------------ the table
def _fmt_default(value: Any) -> str:
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    if isinstance(value, tuple):
        value = list(value)
    if isinstance(value, str):
        return f'`"{value}"`' if value == "" or "%" in value else f"`{value}`"
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=1000).strip()
    text = text.removesuffix("\n...").strip()
    return f"`{text}`"


def option_rows(model: type[BaseModel] = PipelineConfig, prefix: str = "") -> list[tuple[str, str, str]]:
    """(key, default, meaning) of every leaf option, in declaration order."""
    rows = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        sub = field.annotation if isinstance(field.annotation, type) and \
            issubclass(field.annotation, BaseModel) else None
        leafy = sub in (SpeciesRange, SpeciesStep, SpeciesBias)
        if sub is not None and not leafy:
            rows += option_rows(sub, key + ".")
            continue
        default = field.get_default(call_default_factory=True)
        rows.append((key, _fmt_default(default), field.description or ""))
    return rows


def options_markdown() -> str:
    """The option table of config/README.md (between its BEGIN/END OPTIONS markers)."""
    lines = ["| key | default | meaning |", "|---|---|---|"]
    for key, default, meaning in option_rows():
        meaning = meaning.replace("|", "\\|")  # a literal bar inside a table cell
        lines.append(f"| `{key}` | {default} | {meaning} |")
    return "\n".join(lines) + "\n"


BEGIN = "<!-- BEGIN OPTIONS: generated from gzcarbon/config.py by `python -m gzcarbon.config --markdown` -->"
END = "<!-- END OPTIONS -->"


def update_readme(path: str | os.PathLike = os.path.join(REPO_DIR, "config", "README.md")) -> bool:
    """Rewrite the option table of ``path``; True when it changed."""
    text = Path(path).read_text()
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    new = text[:start] + "\n" + options_markdown() + text[end:]
    if new != text:
        Path(path).write_text(new)
    return new != text


if __name__ == "__main__":  # python -m gzcarbon.config --markdown
    if "--markdown" in sys.argv:
        print("config/README.md " + ("updated" if update_readme() else "already up to date"))
    else:
        print(options_markdown(), end="")
