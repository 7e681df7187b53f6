"""observations: off by default; enabled in a demo run; a real run that enables a type must list
existing files (one clear error naming the key)."""
import pytest

from gzcarbon.config import ConfigError, load_config, validate_config


def test_observations_defaults_and_enabled():
    cfg = load_config({})
    assert cfg.observations.column.enabled is False and cfg.observations.mobile.enabled is False
    assert cfg.observations.column.top_m == 3000.0 and cfg.observations.mobile.segment_seconds == 60
    on = load_config({"observations": {"column": {"enabled": True}, "mobile": {"enabled": True}}})
    assert on.observations.column.enabled and on.observations.mobile.enabled
    with pytest.raises(ConfigError, match="ground_kernel"):
        load_config({"observations": {"column": {"ground_kernel": "tccon"}}})
    with pytest.raises(ConfigError, match="top_m"):
        load_config({"observations": {"column": {"enabled": True, "bottom_m": 500, "top_m": 400}}})


@pytest.mark.parametrize("kind", ["column", "mobile"])
def test_real_run_needs_the_files(tmp_path, kind):
    real = {"demo": {"enabled": False}, "transport": {"footprints_from": "files",
                                                      "footprint_files": str(tmp_path / "fp*.nc")},
            "inputs": {k: str(tmp_path) for k in ("raw_obs_dir", "inventory", "power_generation",
                                                  "power_load")}}
    with pytest.raises(ConfigError) as e:
        validate_config({**real, "observations": {kind: {"enabled": True}}})
    assert f"observations.{kind}.files" in str(e.value) and "list your files" in str(e.value)
    with pytest.raises(ConfigError, match="do not exist"):
        validate_config({**real, "observations": {kind: {"enabled": True, "files": [str(tmp_path / "x.csv")]}}})
