"""The settings of a whole run (``invoke build-and-validate``): what the chain and the nightly
decision share."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.channels import ReleaseSettings
from pipeline.settings import EvidenceSettings
from pipeline.validate import ValidateSettings


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
    # Every validate setting (instance profile, subnet, security group, public IP, instance
    # types, timeouts, TTL): built by ``validate.run_settings``, as ``invoke validate`` builds
    # its own; the chain fills in the AMIs, the run ID, the level and the folders.
    validate: ValidateSettings = ValidateSettings(amis=())
    build_vars: tuple[tuple[str, str], ...] = ()  # Packer variables (--var, pipeline.build.vars)
    skip_unchanged: bool = False  # re-validate the newest AMI when the inputs' fingerprint matches
    evidence: EvidenceSettings = EvidenceSettings(None, None)  # bucket + signing key (setup's)
    release: ReleaseSettings | None = None  # with it: the drift report against drift_channel
