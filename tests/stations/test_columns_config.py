"""observations: off by default; enabling a type that the pipeline does not run yet is a clear error."""
import pytest

from gzcarbon.config import ConfigError, load_config


def test_observations_defaults_and_enabled_is_refused():
    cfg = load_config({})
    assert cfg.observations.column.enabled is False and cfg.observations.mobile.enabled is False
    assert cfg.observations.column.top_m == 3000.0 and cfg.observations.mobile.segment_seconds == 60
    for kind in ("column", "mobile"):
        with pytest.raises(ConfigError) as e:
            load_config({"observations": {kind: {"enabled": True}}})
        assert f"observations.{kind}.enabled" in str(e.value) and "docs/columns.md" in str(e.value)
    with pytest.raises(ConfigError, match="ground_kernel"):
        load_config({"observations": {"column": {"ground_kernel": "tccon"}}})
