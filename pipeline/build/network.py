"""The build instance's network: the subnet, public IP and security group Packer launches with,
chosen and checked before Packer runs (``pipeline.aws.network.prepare``: a zone offering the
instance type, a route to Systems Manager), passed as the template's variables."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

from pipeline.aws import AwsClients, network
from pipeline.errors import ConfigError
from pipeline.packer import BuildSpec
from pipeline.settings import NetworkSettings

_INSTANCE_TYPE = re.compile(r'^\s*instance_type\s*=\s*"([^"]+)"', re.MULTILINE)


def instance_type(spec: BuildSpec, extra_vars: Mapping[str, str]) -> str:
    """The build instance's type: ``--var instance_type``, else the image's var file's."""
    if extra_vars.get("instance_type"):
        return extra_vars["instance_type"]
    try:
        found = _INSTANCE_TYPE.search(spec.var_file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{spec.var_file}: {exc.strerror or exc}") from None
    if found is None:
        raise ConfigError(f"{spec.var_file}: $.instance_type: not set")
    return found.group(1)


def packer_network(
    clients: AwsClients,
    specs: Sequence[BuildSpec],
    settings: NetworkSettings,
    extra_vars: Mapping[str, str],
    say: Callable[[str], None],
) -> dict[str, str]:
    """The template's ``subnet_id``, ``associate_public_ip_address`` and ``security_group_id``:
    one subnet for every image of the run, in a zone offering every build instance type."""
    types = [instance_type(spec, extra_vars) for spec in specs]
    placed = network.prepare(clients, settings, types)
    ip = "a public IP" if placed.public_ip else "no public IP"
    say(
        f"network: subnet {placed.subnet_id} ({placed.zone}, {placed.vpc_id}), {ip}; SSM through "
        f"{placed.route}"
    )
    return {
        "subnet_id": placed.subnet_id,
        "associate_public_ip_address": "true" if placed.public_ip else "false",
        "security_group_id": placed.security_group_id or "",
    }
