"""The inversion's settings: the typed ``inversion`` config section, the one source of defaults.

Every library function of this package that takes settings goes through :func:`inversion_config`:
a mapping (e.g. a partial ``config["inversion"]`` from Python) is completed with the defaults of
`gzcarbon.config.InversionConfig`, the same model the pipeline validates ``config.yaml`` with, so
``invert(...)`` called from Python solves the same problem as ``snakemake`` with the same file.
"""

from __future__ import annotations

from collections.abc import Mapping

from gzcarbon.config import InversionConfig


def inversion_config(cfg=None) -> InversionConfig:
    """``cfg`` (None, a mapping of some keys, or an `InversionConfig`) as a checked `InversionConfig`.

    Unknown keys and bad values raise ``ValueError`` naming the key (pydantic's ValidationError)."""
    if isinstance(cfg, InversionConfig):
        return cfg
    if cfg is None:
        return InversionConfig()
    if hasattr(cfg, "model_dump"):
        cfg = cfg.model_dump()
    if not isinstance(cfg, Mapping):
        raise TypeError(f"inversion settings must be a mapping or an InversionConfig, got {type(cfg).__name__}")
    return InversionConfig(**dict(cfg))
