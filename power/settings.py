"""The power stage's settings: defaults from the typed configuration (`gzcarbon.config`), the one
source of defaults, so that ``power.emission_factors(...)`` called from Python without them uses
the same numbers as the pipeline with an empty config.

- :data:`POWER`: the ``power`` section (``external_factor``: kg CO2/kWh of imported electricity
  when no hourly series is given);
- :data:`UTC_OFFSET_HOURS`: ``stations.utc_offset_hours`` (local hour of day of the marginal
  factors, the heat map and the monthly summary).
"""
from __future__ import annotations

from gzcarbon.config import PowerConfig, StationsConfig

#: the ``power`` config section with every default
POWER = PowerConfig()
#: local time = UTC + this (``stations.utc_offset_hours``)
UTC_OFFSET_HOURS = StationsConfig().utc_offset_hours
