"""The stations stage's settings: the typed ``stations`` config section, the one source of defaults.

Every library function of this package that takes settings gets them from
`gzcarbon.config.StationsConfig` (the model the pipeline validates ``config.yaml`` with): either
a section object (``PlausibilityConfig``, ``TargetTankConfig``, ``BackgroundConfig``,
``NightTowerConfig``), or a mapping of some of its keys (e.g. a partial
``config["stations"]["plausibility"]`` from Python), which :func:`section` completes with the
model's defaults and checks. Plain-value arguments (``flush_seconds``, ``min_coverage``, …) take
their defaults from :data:`DEFAULT`, so a function called from Python without them uses the same
numbers as ``snakemake`` with an empty config.

    from gzcarbon.config import load_config
    cfg = load_config({"stations": {"plausibility": {"stuck_minutes": 10}}}).stations
    hourly.process_site(raw, site, plausibility=cfg.plausibility, target_tank=cfg.target_tank,
                        flush_seconds=cfg.flush_seconds, min_coverage=cfg.min_coverage)
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from pydantic import BaseModel

from gzcarbon.config import ConfigError, StationsConfig, load_config

#: the stations section with every default (the defaults of the library functions come from here)
DEFAULT = StationsConfig()

M = TypeVar("M", bound=BaseModel)


def section(model: type[M], cfg, key: str, error: type[Exception] = ValueError, hint: str = "") -> M:
    """``cfg`` (None, a mapping of some keys, or a ``model`` instance) as a checked ``model``.

    ``key``: the section's name under ``stations`` (``plausibility``, ``background``, …). A bad
    value raises ``error`` with the config's message (``config key 'stations.<key>.<field>': …``,
    naming the key and what is allowed), followed by ``hint`` when given."""
    if isinstance(cfg, model):
        return cfg
    if cfg is None:
        return model()
    if isinstance(cfg, BaseModel):
        cfg = cfg.model_dump()
    if not isinstance(cfg, Mapping):
        raise error(f"config key 'stations.{key}': {cfg!r} is not a mapping of settings.")
    try:
        return getattr(load_config({"stations": {key: dict(cfg)}}).stations, key)
    except ConfigError as err:
        raise error(str(err) + (f" {hint}" if hint else "")) from None
