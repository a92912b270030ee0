"""Packer variables passed through to the template (``invoke build --var key=value``, repeatable,
and ``pipeline.build.vars`` in ``invoke.yaml``), like ``make ... key=value`` in amazon-eks-ami.

Every name must be a variable the template declares; the ones the pipeline sets itself (the
image's identity and provenance) are refused. Both are ConfigError (exit 2) naming the variable.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError
from pipeline.kms_policy import is_aws_ebs_key
from pipeline.packer import LOCAL_TEMPLATE, PACKER_DIR

VARS_AT = "invoke.yaml: $.pipeline.build.vars"
# Set by the pipeline from its flags (--platform, --arch, --k8s-version, --level) and the run:
# a pass-through value would make the image disagree with its tags and its evidence.
PIPELINE_VARS = frozenset(
    {
        "platform",
        "architecture",
        "kubernetes_version",
        "hardening_level",
        "source_ami",
        "run_id",
        "git_commit",
        "manifest_path",
        "region",
        "ec2_endpoint",
    }
)
# Set from the network flags and pipeline.network (one section for build and validate), after
# the preflight chose and checked them (pipeline.aws.network).
NETWORK_VARS = {
    "subnet_id": "--subnet-id (pipeline.network.subnet_id)",
    "associate_public_ip_address": "--public-ip (pipeline.network.public_ip)",
    "security_group_id": "--security-group-id (pipeline.network.security_group_id)",
}
# Declared, but the production template does not use them: they made the plugin copy the AMI
# without request tags, which policies/iam/build.json does not allow (pipeline.aws.packer).
REFUSED_VARS = {
    "ami_regions": "copies to other regions are `invoke promote --regions` (tagged on create)",
    "region_kms_key_ids": "the copies' keys are pipeline.release.kms_keys (`invoke promote`)",
}
_DECLARED = re.compile(r'^\s*variable\s+"([A-Za-z_][A-Za-z0-9_-]*)"', re.MULTILINE)


def declared(texts: Iterable[str]) -> frozenset[str]:
    """The variable names declared in these HCL texts (``variable "name" {``)."""
    return frozenset(name for text in texts for name in _DECLARED.findall(text))


def template_variables(local: bool, packer_dir: Path = PACKER_DIR) -> frozenset[str]:
    """What the template ``build`` runs declares: the local template file, or every ``*.pkr.hcl``
    of the production template directory."""
    files = [packer_dir / LOCAL_TEMPLATE] if local else sorted(packer_dir.glob("*.pkr.hcl"))
    return declared(f.read_text(encoding="utf-8") for f in files)


def _value(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    if isinstance(value, list | dict):
        return json.dumps(value)  # HCL reads JSON lists and objects
    raise ConfigError(f"{VARS_AT}.{name}: {value!r} is not a string, number, list or map")


def packer_vars(given: Sequence[str] | None, configured: Any) -> dict[str, str]:
    """``invoke.yaml``'s ``pipeline.build.vars`` overlaid by ``--var key=value`` flags."""
    if configured is None:
        configured = {}
    if not isinstance(configured, Mapping):
        raise ConfigError(f"{VARS_AT}: expected a map of Packer variable names to values")
    values = {str(k): _value(str(k), v) for k, v in configured.items()}
    for item in given or ():
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--var {item!r}: expected NAME=VALUE (a Packer variable)")
        values[name.strip()] = value
    return values


def check_vars(values: Mapping[str, str], local: bool, packer_dir: Path = PACKER_DIR) -> None:
    """Refuse a variable the template does not declare, or one the pipeline sets itself."""
    known = template_variables(local, packer_dir)
    template = packer_dir / LOCAL_TEMPLATE if local else packer_dir
    for name in values:
        if name in NETWORK_VARS:
            raise ConfigError(f"--var {name}: set by the pipeline from {NETWORK_VARS[name]}")
        if name in REFUSED_VARS:
            raise ConfigError(f"--var {name}: not used by the build: {REFUSED_VARS[name]}")
        if name in PIPELINE_VARS:
            raise ConfigError(
                f"--var {name}: set by the pipeline (from its flags and the run), not passed "
                "through"
            )
        if name not in known:
            raise ConfigError(
                f"--var {name}: {template} declares no such Packer variable "
                f"(it declares: {', '.join(sorted(known - PIPELINE_VARS - set(NETWORK_VARS)))})"
            )


def image_key_vars(
    values: Mapping[str, str],
    *,
    accounts: Sequence[str],
    kms_keys: Mapping[str, str],
    region: str,
) -> dict[str, str]:
    """``values`` with ``kms_key_id`` defaulting to the image key recorded for ``region``
    (``pipeline.release.kms_keys``, which ``invoke setup --image-keys`` writes). With release
    accounts configured, the default EBS key (no key, or ``alias/aws/ebs``) is a ConfigError:
    AWS refuses to share the snapshots it encrypts."""
    chosen = dict(values)
    if not chosen.get("kms_key_id") and kms_keys.get(region):
        chosen["kms_key_id"] = kms_keys[region]
    if accounts and is_aws_ebs_key(chosen.get("kms_key_id")):
        raise ConfigError(
            f"{VARS_AT}.kms_key_id: {chosen.get('kms_key_id') or 'empty (the default EBS key)'}"
            ": pipeline.release.accounts are configured, and AWS refuses to share images the "
            f"default EBS key encrypts: run `invoke setup --image-keys` (records "
            f"pipeline.release.kms_keys.{region}) or set a customer-managed key"
        )
    return chosen
