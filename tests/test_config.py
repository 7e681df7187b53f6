"""The typed configuration (gzcarbon.config): one source of defaults, documented, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gzcarbon.config import (BEGIN, END, ConfigError, InversionConfig, PipelineConfig, load_config,
                             options_markdown, option_rows, validate_config)

ROOT = Path(__file__).resolve().parents[1]


def test_option_table_in_config_readme_is_generated_from_the_models():
    text = (ROOT / "config" / "README.md").read_text()
    table = text[text.index(BEGIN) + len(BEGIN):text.index(END)].strip() + "\n"
    assert table == options_markdown(), "stale: run `python -m gzcarbon.config --markdown`"
    keys = [k for k, _, _ in option_rows()]
    assert "inversion.innovation_screen.threshold_sigma" in keys and "stations.plausibility.range" in keys
    assert all(meaning for k, _, meaning in option_rows()), "every option needs a meaning"


def _leaves(d, prefix=""):
    for k, v in d.items():
        if isinstance(v, dict) and v:
            yield from _leaves(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


def test_config_yaml_sets_only_defaults_of_the_default_run():
    """config/config.yaml is the default run's choices, not a second set of defaults: every value
    it sets equals the model's default (the demo's days: 2 included)."""
    doc = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    defaults = load_config({}).model_dump(mode="json")
    for key, value in _leaves(doc):
        node = defaults
        for part in key.split("."):
            node = node[part]
        assert node == value, key


def test_partial_config_fills_the_same_defaults_as_the_pipeline():
    cfg = {"inversion": {"obs_sigma_ppm": 2.0}}
    typed = load_config(cfg)
    assert typed.inversion.obs_sigma_ppm == 2.0
    assert typed.inversion.diurnal_corr == -0.3 and typed.inversion.district_scale_sigma == 0.25
    assert typed.inversion.profile_scale_sigma == 0.5
    assert InversionConfig().model_dump() == PipelineConfig().inversion.model_dump()
    piped = validate_config(dict(cfg))
    assert piped["inversion"] == typed.inversion.model_dump(mode="json")


@pytest.mark.parametrize("bad, message", [
    ({"inversion": {"time_step_hours": 5}},
     "config key 'inversion.time_step_hours' (length of a flux-correction step (divides 24); the prior "
     "keeps its hourly shape): 5 is not one of [1, 2, 3, 4, 6, 8, 12, 24]."),
    ({"transport": {"numpars": 3}},
     "config key 'transport': unknown key 'numpars' (a typo?). Allowed keys here: "
     "far_numpar, far_output_minutes, footprint_files, footprint_layer_height, footprints_from, "
     "hysplit, kmixd, left_domain_warn, n_hours, near_field_hours, near_field_solar_hours, numpar, "
     "seed, smooth_factor, "
     "timeout."),
    ({"inversion": {"diurnal_corr": -0.5}},
     "config key 'inversion.diurnal_corr': -0.5 must be > -0.3333 with 4 steps per day"),
    ({"grid": {"res": 0.013}}, "is not a positive whole number of cells"),
    ({"met": {"lon_min": 113.0}}, "config key 'met' (demo meteorology domain): the met domain must "
                                  "contain the state 'grid'"),
    ({"sites": ["ns"]}, "config key 'sites.0': 'ns' does not match the pattern ^[A-Z0-9]+$"),
    ({"budgets": {"2025": {"Tianhe": -3}}}, "config key 'budgets.2025.Tianhe': -3 must be greater than 0"),
    ({"demo": {"truth_transport": {"numparr": 300}}},
     "config key 'demo.truth_transport': unknown key 'numparr' (a typo?). Allowed keys here: 'numpar'"),
    # the power stage refuses intensities above 1.5 kg/kWh: the config must not let one through
    ({"power": {"external_factor": 1.8}}, "config key 'power.external_factor'"),
])
def test_bad_values_name_the_key_and_what_is_allowed(bad, message):
    with pytest.raises(ConfigError) as err:
        load_config(bad)
    assert message in str(err.value)


def test_shorthands_and_yaml_quirks():
    assert load_config({"demo": "false"}).demo.enabled is False
    assert load_config({"demo": False}).demo.enabled is False
    assert load_config({"inversion": {"innovation_screen": {"action": False}}}).inversion \
        .innovation_screen.action == "off"           # YAML reads a bare `off` as false
    assert load_config({"budgets": {2025: {"Tianhe": 5200}}}).budgets == {"2025": {"Tianhe": 5200.0}}
    assert load_config({"stations": '{"select_hours_local": [22, 6]}'}).stations.select_hours_local == [22, 6]
