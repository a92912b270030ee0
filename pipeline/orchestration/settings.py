"""The settings of a whole run (``invoke build-and-validate``): what the chain and the nightly
decision share."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.channels import ReleaseSettings
from pipeline.settings import EvidenceSettings


@dataclass(frozen=True)
class ChainSettings:
    platforms: tuple[str, ...]
    archs: tuple[str, ...]
    k8s_version: str | None
    level: int
    out_dir: Path
    policy_dir: Path
    local: bool = False
    scenario: Path | None = None
    enable_inspector: bool = False
    instance_profile: str | None = None
    subnet_id: str | None = None
    instance_types: Mapping[str, Any] | None = None  # invoke.yaml validate.instance_types
    skip_unchanged: bool = False  # re-validate the newest AMI when the inputs' fingerprint matches
    evidence: EvidenceSettings = EvidenceSettings(None, None)  # bucket + signing key (setup's)
    release: ReleaseSettings | None = None  # with it: the drift report against drift_channel
