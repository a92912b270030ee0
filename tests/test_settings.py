"""Settings resolve flag, then invoke.yaml, then the default; bad values name their flag."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipeline import settings, validate
from pipeline.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
PROJECT = yaml.safe_load((ROOT / "invoke.yaml").read_text())["pipeline"]


def test_flags_override_invoke_yaml_which_overrides_defaults() -> None:
    cfg = validate.validate_settings(
        PROJECT, ROOT, ami="ami-1,ami-2", level="1", ssm_timeout="60", subnet_id="subnet-9"
    )
    assert cfg.amis == ("ami-1", "ami-2")
    assert (cfg.level, cfg.ssm_timeout_s, cfg.subnet_id) == (1, 60.0, "subnet-9")
    assert cfg.scan_timeout_s == PROJECT["validate"]["scan_timeout_s"]
    assert cfg.instance_types["arm64"] == PROJECT["validate"]["instance_types"]["arm64"]
    defaults = validate.validate_settings({}, ROOT, ami="ami-1")
    assert (defaults.level, defaults.ssm_timeout_s, defaults.scan_timeout_s) == (2, 900, 2700)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"ami": ""}, "--ami: give one or more AMI IDs"),
        ({"ami": "i-123"}, "--ami i-123: not an AMI ID"),
        ({"ami": "ami-1", "level": "3"}, "--level 3: choose 1 or 2"),
        ({"ami": "ami-1", "ssm_timeout": "soon"}, "--ssm-timeout 'soon': not a number"),
        ({"ami": "ami-1", "scan_timeout": "-5"}, "--scan-timeout '-5': must be positive"),
    ],
)
def test_bad_values_name_their_flag(flags: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        validate.validate_settings(PROJECT, ROOT, **flags)


@pytest.mark.parametrize(("value", "level"), [("1", 1), (2, 2), ("LEVEL_2", 2), ("level_1", 1)])
def test_levels(value: object, level: int) -> None:
    assert settings.as_level(value) == level
