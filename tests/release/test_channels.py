"""The channel naming scheme and the release settings: strict components, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pipeline import channels
from pipeline.aws.release import known_regions
from pipeline.catalog import Platform
from pipeline.errors import ConfigError
from pipeline.release.promote import release_config

CASES = Path(__file__).resolve().parents[1] / "cases" / "release" / "config_invalid"
KNOWN = known_regions()


def test_parameter_name_scheme() -> None:
    name = channels.parameter_name(
        "/eks-cis-ami", Platform.AMAZON_LINUX_2023, "arm64", "1.33", "candidate"
    )
    assert name == "/eks-cis-ami/al2023/arm64/1.33/candidate/image-id"


@pytest.mark.parametrize(
    ("prefix", "arch", "k8s", "channel", "needle"),
    [
        ("/eks-cis-ami", "x86_64", "1.3", "stable", "Kubernetes version '1.3'"),
        ("/eks-cis-ami", "x86_64", "1.33/../x", "stable", "expected 1.NN"),
        ("/eks-cis-ami", "x86_64", "1.33\n", "stable", "expected 1.NN"),
        ("/eks-cis-ami", "x86_64", "1.33", "stable\n", "channel"),
        ("/eks-cis-ami", "x86_64", "1.33", "Stable", "channel"),
        ("/eks-cis-ami", "x86_64", "1.33", "a" * 33, "channel"),
        ("/eks-cis-ami", "x86_64", "1.33", "stable/x", "channel"),
        ("/eks-cis-ami", "amd64", "1.33", "stable", "architecture 'amd64'"),
        ("eks-cis-ami", "x86_64", "1.33", "stable", "parameter_prefix"),
        ("/aws/../x", "x86_64", "1.33", "stable", "parameter_prefix"),
    ],
)
def test_every_component_is_checked(
    prefix: str, arch: str, k8s: str, channel: str, needle: str
) -> None:
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace(".", r"\.")):
        channels.parameter_name(prefix, Platform.AMAZON_LINUX_2023, arch, k8s, channel)


def test_accounts_and_regions() -> None:
    assert channels.split_accounts("111122223333, 444455556666,111122223333") == (
        "111122223333",
        "444455556666",
    )
    for bad in ("11112222333", "1111222233334", "11112222333a", "-11122223333"):
        with pytest.raises(ConfigError, match=f"--accounts {bad}: not a 12-digit"):
            channels.split_accounts(bad)
    assert channels.split_regions("us-east-1,eu-west-1", KNOWN) == ("us-east-1", "eu-west-1")
    assert "cn-north-1" in KNOWN and "us-gov-west-1" in KNOWN
    with pytest.raises(ConfigError, match="--regions us-east-9"):
        channels.split_regions("us-east-1,us-east-9", KNOWN)


def test_defaults_and_per_channel_level() -> None:
    settings = release_config({"level": 1})
    assert settings.default_channel == "stable"
    assert settings.channel(None).min_level == 1  # the build level
    two = release_config(
        {"level": 2, "release": {"channels": {"stable": {}, "edge": {"min_level": 1}}}}
    )
    assert (two.channel("stable").min_level, two.channel("edge").min_level) == (2, 1)


def test_the_checked_in_configuration_is_valid() -> None:
    import yaml

    root = Path(__file__).resolve().parents[2]
    config = yaml.safe_load((root / "invoke.yaml").read_text())["pipeline"]
    settings = release_config(config)
    assert {"candidate", "stable"} <= set(settings.channels)


@pytest.mark.parametrize("case", sorted(CASES.glob("*.json")), ids=lambda p: p.stem)
def test_invalid_release_configuration(case: Path) -> None:
    spec: dict[str, Any] = json.loads(case.read_text())
    with pytest.raises(ConfigError) as caught:
        channels.release_settings(spec["config"], build_level=2, known_regions=KNOWN)
    assert spec["error"] in str(caught.value), f"GOT {caught.value}\nWANT {spec['error']}"
