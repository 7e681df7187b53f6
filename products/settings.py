"""The products stage's settings: defaults from the typed configuration (`gzcarbon.config`), the one
source of defaults, so that the products written from Python without settings use the same values
as the pipeline with an empty config.

- :data:`INSTITUTION`: ``products.institution`` (the CF flux product's ``institution``);
- :data:`UTC_OFFSET_HOURS`, :data:`SELECT_HOURS_LOCAL`: ``stations.utc_offset_hours`` and
  ``stations.select_hours_local`` (the report's station problems and availability);
- :func:`report_settings`: the settings of :func:`products.report.build_report` /
  ``write_report`` from a (partial) configuration, as the pipeline's rule ``report`` passes them.
"""
from __future__ import annotations

from collections.abc import Mapping

from gzcarbon.config import PipelineConfig, ProductsConfig, StationsConfig, load_config

#: ``products.institution`` by default
INSTITUTION = ProductsConfig().institution
#: ``stations.utc_offset_hours`` by default (local time = UTC + this)
UTC_OFFSET_HOURS = StationsConfig().utc_offset_hours
#: ``stations.select_hours_local`` by default (``[start, end)`` local hours)
SELECT_HOURS_LOCAL = tuple(StationsConfig().select_hours_local)


def hours_per_day(select_hours_local) -> int:
    """Selected hours per day of the window ``[start, end)`` (``start > end`` wraps midnight)."""
    h0, h1 = (int(h) for h in select_hours_local)
    return (h1 - h0) % 24 or 24


def report_settings(cfg: PipelineConfig | Mapping | None = None) -> dict:
    """Keyword arguments of :func:`products.report.write_report` that come from the configuration
    ``cfg`` (the typed `PipelineConfig`, a partial config mapping, or None: every default):
    ``pdf_engine`` (``report_pdf``), ``budgets``, ``utc_offset_hours``, ``select_hours_local``,
    ``hours_per_day`` (of the selection window) and ``language`` (``report.language``)."""
    typed = cfg if isinstance(cfg, PipelineConfig) else load_config(dict(cfg or {}))
    window = tuple(typed.stations.select_hours_local)
    return {"pdf_engine": typed.report_pdf, "budgets": typed.budgets,
            "utc_offset_hours": typed.stations.utc_offset_hours, "select_hours_local": window,
            "hours_per_day": hours_per_day(window), "language": typed.report.language}
