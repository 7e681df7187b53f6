"""Transport settings come from the typed configuration (issue 14): the defaults of StiltSettings
agree with TransportConfig's, and a partial config gives the same settings from Python as the
pipeline (which validates the YAML through TransportConfig)."""

import dataclasses

from gzcarbon.config import TransportConfig
from transport.stilt_driver import StiltSettings


def test_stilt_settings_defaults_agree_with_the_typed_config():
    cfg = TransportConfig()
    s = StiltSettings.from_config(cfg)
    shared = [f.name for f in dataclasses.fields(StiltSettings) if f.name in TransportConfig.model_fields]
    assert set(shared) >= {"n_hours", "numpar", "seed", "kmixd"}
    for name in shared:
        assert getattr(s, name) == getattr(cfg, name) == getattr(StiltSettings(), name), name


def test_partial_config_from_python_equals_the_pipelines():
    partial = {"n_hours": 12, "numpar": 50}
    from_python = StiltSettings.from_config(TransportConfig(**partial))
    from_dict = StiltSettings.from_config(TransportConfig(**partial).as_dict())
    assert from_python == from_dict
    assert (from_python.n_hours, from_python.numpar, from_python.seed) == (12, 50, 7)
