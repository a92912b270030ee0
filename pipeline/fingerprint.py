"""The fingerprint of a build's inputs, recorded on every built AMI (tag ``cis-ami:fingerprint``);
``fingerprint`` documents the exact definition. Pure, except that ``build_inputs`` reads files.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from pipeline import policy
from pipeline.catalog import Platform
from pipeline.packer import PACKER_DIR, Arch

FORMAT = "eks-cis-ami-fingerprint/v1"


@dataclass(frozen=True, slots=True)
class Inputs:
    """Everything that determines what a build produces."""

    platform: str
    arch: str
    k8s_version: str
    level: int
    local: bool
    source_ami: str
    scripts_sha256: str
    template_sha256: str
    variables_sha256: str
    policy_sha256: str


def fingerprint(inputs: Inputs) -> str:
    """``sha256:<hex>`` of the canonical JSON of ``inputs`` (pure, stable across runs).

    Format ``eks-cis-ami-fingerprint/v1``: the SHA-256 of the canonical JSON (sorted keys, no
    white space, UTF-8) of: format, platform, architecture, Kubernetes version, level, local,
    source AMI ID, the exceptions policy's SHA-256, and the SHA-256 of each input tree: the
    hardening scripts (``packer/scripts/**``), the Packer template (the local template's folder,
    or the production ``*.pkr.hcl`` files) and the image's variable file (``tree_sha256``). The
    git commit is deliberately not an input: a README change must not rebuild.
    """
    body = {"format": FORMAT, **asdict(inputs)}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def tree_sha256(base: Path, files: Iterable[Path]) -> str:
    """SHA-256 over ``<file sha256>  <relative path>`` lines sorted by path (see module doc)."""
    lines = sorted(
        (p.relative_to(base).as_posix(), hashlib.sha256(p.read_bytes()).hexdigest())
        for p in files
        if p.is_file()
    )
    text = "".join(f"{digest}  {rel}\n" for rel, digest in lines)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def build_inputs(
    *,
    platform: str,
    platform_short: str,
    arch: str,
    k8s_version: str,
    level: int,
    local: bool,
    source_ami: str,
    policy_sha256: str,
    packer_dir: Path,
) -> Inputs:
    """Read the input trees under ``packer_dir`` (files only; no AWS) into ``Inputs``."""
    scripts = (packer_dir / "scripts").rglob("*")
    template = (packer_dir / "local").rglob("*") if local else packer_dir.glob("*.pkr.hcl")
    var_file = packer_dir / "vars" / f"{platform_short}-{arch}.pkrvars.hcl"
    return Inputs(
        platform=platform,
        arch=arch,
        k8s_version=k8s_version,
        level=level,
        local=local,
        source_ami=source_ami,
        scripts_sha256=tree_sha256(packer_dir, scripts),
        template_sha256=tree_sha256(packer_dir, template),
        variables_sha256=tree_sha256(packer_dir, [var_file]),
        policy_sha256=policy_sha256,
    )


def policy_sha(policy_dir: Path, platform: Platform) -> str:
    """The platform's exceptions policy digest; ``none`` without one (validation refuses later)."""
    if not policy_dir.is_dir():
        return "none"
    found = policy.load_all(policy.discover(policy_dir)).get(platform)
    return found.sha256 if found else "none"


def inputs_fingerprint(
    platform: Platform,
    arch: Arch,
    k8s: str,
    level: int,
    local: bool,
    source_ami: str,
    policy_dir: Path,
    packer_dir: Path = PACKER_DIR,
) -> str:
    return fingerprint(
        build_inputs(
            platform=platform.value,
            platform_short=platform.short,
            arch=arch.value,
            k8s_version=k8s,
            level=level,
            local=local,
            source_ami=source_ami,
            policy_sha256=policy_sha(policy_dir, platform),
            packer_dir=packer_dir,
        )
    )
