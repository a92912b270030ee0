"""Versions, accounts, regions and image names are ASCII: ``\\d`` would also match other scripts'
digits ("1.٣٣", "1.３３"), which name no Kubernetes release, account or AMI."""

from __future__ import annotations

import pytest

from pipeline import channels, packer
from pipeline.catalog import Platform
from pipeline.errors import ConfigError
from pipeline.evidence.trust import BUILT_NAME

OTHER_DIGITS = ["\u0663\u0663", "\uff13\uff13", "\u09e9\u09e9"]  # Arabic-Indic, fullwidth, Bengali


@pytest.mark.parametrize("digits", OTHER_DIGITS)
def test_a_kubernetes_version_is_ascii(digits: str) -> None:
    assert packer.check_k8s_version(Platform.AMAZON_LINUX_2023, "1.33") == "1.33"
    with pytest.raises(ConfigError, match="--k8s-version"):
        packer.check_k8s_version(Platform.AMAZON_LINUX_2023, f"1.{digits}")
    assert channels.K8S_VERSION.fullmatch("1.33")
    assert not channels.K8S_VERSION.fullmatch(f"1.{digits}")


@pytest.mark.parametrize("digits", OTHER_DIGITS)
def test_an_image_name_account_and_region_are_ascii(digits: str) -> None:
    name = "eks-cis-al2023-x86_64-k8s1.{}-l2-20261126T120000Z-abc123"
    assert BUILT_NAME.match(name.format("33"))
    assert not BUILT_NAME.match(name.format(digits))
    assert channels.ACCOUNT.fullmatch("111122223333")
    assert not channels.ACCOUNT.fullmatch("1111222233" + digits)
    assert packer.parse_artifact_id("us-east-1:ami-0abc") == [("us-east-1", "ami-0abc")]
    with pytest.raises(ConfigError, match="artifact ID"):
        packer.parse_artifact_id(f"us-east-{digits[0]}:ami-0abc")
