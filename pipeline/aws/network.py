"""Where an instance is launched: a subnet whose availability zone offers its instance types, a
public IP or not, a security group, and whether that subnet can reach Systems Manager at all.

``prepare`` is the one network preflight of every command that launches (``invoke build``:
Packer's ``subnet_id``, ``associate_public_ip_address``, ``security_group_id``; ``invoke
validate``: the test instances). It refuses in seconds, with the fix named (ConfigError, exit 2),
what would otherwise cost a 15-minute wait for SSM: a subnet whose instances cannot reach the
``ssm``, ``ssmmessages`` and ``ec2messages`` endpoints (no public IP with an internet gateway
route, no NAT gateway route, no interface VPC endpoints).
https://docs.aws.amazon.com/systems-manager/latest/userguide/setup-create-vpc.html
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.aws import AwsClients, ClientError, aws_error, error_code
from pipeline.aws._paginate import collect
from pipeline.errors import ConfigError
from pipeline.settings import NETWORK_FLAGS, NetworkSettings
from pipeline.tags import MANAGED_TAG, MANAGED_VALUE

IAM_ACTIONS: tuple[str, ...] = (
    "ec2:DescribeSubnets",
    "ec2:DescribeInstanceTypeOfferings",
    "ec2:DescribeRouteTables",
    "ec2:DescribeVpcEndpoints",
    "ec2:DescribeSecurityGroups",
)
SSM_SERVICES = ("ssm", "ssmmessages", "ec2messages")  # what the SSM agent talks to
SUBNET_FLAG, GROUP_FLAG, PUBLIC_IP_FLAG = NETWORK_FLAGS


def _named(flag: str, value: str) -> str:
    """``--subnet-id subnet-1 (pipeline.network.subnet_id)``: the flag, its value, the setting."""
    return f"{flag} {value} ({NETWORK_FLAGS[flag]})"


PRIVATE_FIX = (
    "give the instances a public IP in a subnet routing 0.0.0.0/0 to an internet gateway "
    f"({PUBLIC_IP_FLAG} true or {NETWORK_FLAGS[PUBLIC_IP_FLAG]}: true), route 0.0.0.0/0 to a "
    "NAT gateway, or create the interface VPC "
    f"endpoints {', '.join(SSM_SERVICES)} (private DNS on) in the VPC; see README.md, "
    "'Private subnets'"
)


@dataclass(frozen=True, slots=True)
class Network:
    """What ``prepare`` established: launch there, with that, and SSM is reachable by ``route``."""

    vpc_id: str
    subnet_id: str
    zone: str
    public_ip: bool
    security_group_id: str | None
    route: str  # how the instances reach SSM, for the log: "internet gateway igw-..." ...


def prepare(
    clients: AwsClients, settings: NetworkSettings, instance_types: Sequence[str]
) -> Network:
    """Choose (or check) the subnet, the public IP and the security group; prove SSM is reachable.

    The subnet: the one given, whose zone must offer every instance type; else the default VPC's
    default subnet (lowest ID) in a zone that does (ec2:DescribeInstanceTypeOfferings). A given
    security group must be in that VPC and carry the ownership tag (the job policies launch only
    into the pipeline's groups). Raises ConfigError naming the setting and the fix.
    """
    types = sorted(set(instance_types))
    zones = offering_zones(clients, types)
    if settings.subnet_id:
        subnet = describe_subnet(clients, settings.subnet_id)
        lacking = [t for t in types if t not in zones.get(str(subnet["AvailabilityZone"]), ())]
        if lacking:
            raise ConfigError(
                f"{_named(SUBNET_FLAG, settings.subnet_id)}: its zone "
                f"{subnet['AvailabilityZone']} does not offer {', '.join(lacking)}; choose a "
                f"subnet in {_zones_offering(zones, types)}"
            )
    else:
        subnet = _default_subnet(clients, zones, types)
    vpc_id, subnet_id = str(subnet["VpcId"]), str(subnet["SubnetId"])
    public_ip = settings.public_ip
    if public_ip is None:
        public_ip = bool(subnet.get("MapPublicIpOnLaunch", False))
    group = settings.security_group_id
    if group:
        _check_group(clients, group, vpc_id, subnet_id)
    route = ssm_route(clients, vpc_id, subnet_id, public_ip)
    if route is None:
        ip = "with a public IP" if public_ip else "without a public IP"
        raise ConfigError(
            f"{_named(SUBNET_FLAG, subnet_id)} in VPC {vpc_id}: an instance there {ip} cannot "
            "reach Systems Manager, so Session Manager and the SSM agent would never connect: "
            f"{PRIVATE_FIX}"
        )
    return Network(vpc_id, subnet_id, str(subnet["AvailabilityZone"]), public_ip, group, route)


def offering_zones(clients: AwsClients, instance_types: Sequence[str]) -> dict[str, set[str]]:
    """{availability zone: the instance types of ``instance_types`` it offers}."""
    offers = collect(
        clients.ec2,
        "describe_instance_type_offerings",
        "InstanceTypeOfferings",
        LocationType="availability-zone",
        Filters=[{"Name": "instance-type", "Values": list(instance_types)}],
    )
    zones: dict[str, set[str]] = {}
    for offer in offers:
        zones.setdefault(str(offer["Location"]), set()).add(str(offer["InstanceType"]))
    return zones


def _zones_offering(zones: Mapping[str, set[str]], types: Sequence[str]) -> str:
    good = sorted(z for z, offered in zones.items() if set(types) <= offered)
    return ", ".join(good) or f"no zone of this region (none offers all of {', '.join(types)})"


def describe_subnet(clients: AwsClients, subnet_id: str) -> Mapping[str, Any]:
    """The subnet (ec2:DescribeSubnets); an unknown one is a ConfigError naming the flag."""
    try:
        subnets = clients.ec2.describe_subnets(SubnetIds=[subnet_id])["Subnets"]
    except ClientError as exc:
        if error_code(exc) in {"InvalidSubnetID.NotFound", "InvalidSubnetID.Malformed"}:
            raise ConfigError(f"{_named(SUBNET_FLAG, subnet_id)}: no such subnet") from exc
        raise aws_error(f"ec2:DescribeSubnets {subnet_id}", exc) from exc
    if not subnets:
        raise ConfigError(f"{_named(SUBNET_FLAG, subnet_id)}: no such subnet")
    return subnets[0]


def _default_subnet(
    clients: AwsClients, zones: Mapping[str, set[str]], types: Sequence[str]
) -> Mapping[str, Any]:
    """The default VPC's default subnet with the lowest ID in a zone offering every type."""
    defaults = collect(
        clients.ec2,
        "describe_subnets",
        "Subnets",
        Filters=[{"Name": "default-for-az", "Values": ["true"]}],
    )
    if not defaults:
        raise ConfigError(
            f"no default subnet in this region: give {SUBNET_FLAG} "
            f"(or {NETWORK_FLAGS[SUBNET_FLAG]})"
        )
    fitting = [s for s in defaults if set(types) <= zones.get(str(s["AvailabilityZone"]), set())]
    if not fitting:
        raise ConfigError(
            f"no default subnet is in a zone offering {', '.join(types)} "
            f"({_zones_offering(zones, types)}): give {SUBNET_FLAG} "
            f"(or {NETWORK_FLAGS[SUBNET_FLAG]})"
        )
    return min(fitting, key=lambda s: str(s["SubnetId"]))


def _check_group(clients: AwsClients, group_id: str, vpc_id: str, subnet_id: str) -> None:
    try:
        groups = clients.ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
    except ClientError as exc:
        if error_code(exc) in {"InvalidGroup.NotFound", "InvalidGroupId.Malformed"}:
            raise ConfigError(f"{_named(GROUP_FLAG, group_id)}: no such security group") from exc
        raise aws_error(f"ec2:DescribeSecurityGroups {group_id}", exc) from exc
    if not groups:
        raise ConfigError(f"{_named(GROUP_FLAG, group_id)}: no such security group")
    group = groups[0]
    if str(group["VpcId"]) != vpc_id:
        raise ConfigError(
            f"{_named(GROUP_FLAG, group_id)}: in {group['VpcId']}, not in the instances' VPC "
            f"{vpc_id} (subnet {subnet_id})"
        )
    tags = {t["Key"]: t["Value"] for t in group.get("Tags", [])}
    if tags.get(MANAGED_TAG) != MANAGED_VALUE:
        raise ConfigError(
            f"{_named(GROUP_FLAG, group_id)}: not tagged {MANAGED_TAG}={MANAGED_VALUE}; the "
            "build and validate policies launch only into the pipeline's security groups: tag it "
            f"(aws ec2 create-tags --resources {group_id} --tags "
            f"Key={MANAGED_TAG},Value={MANAGED_VALUE})"
        )


def ssm_route(clients: AwsClients, vpc_id: str, subnet_id: str, public_ip: bool) -> str | None:
    """How an instance in the subnet reaches SSM, or None: a 0.0.0.0/0 route to a NAT gateway,
    or (with a public IP) to an internet gateway, in the subnet's route table or else the VPC's
    main one (one ec2:DescribeRouteTables); else the ``ssm``, ``ssmmessages`` and
    ``ec2messages`` interface endpoints in the VPC (ec2:DescribeVpcEndpoints)."""
    for route in _default_routes(clients, vpc_id, subnet_id):
        if route.get("NatGatewayId"):
            return f"NAT gateway {route['NatGatewayId']}"
        gateway = str(route.get("GatewayId") or "")
        if public_ip and gateway.startswith("igw-"):
            return f"internet gateway {gateway} (public IP)"
    endpoints = _endpoints(clients, vpc_id)
    if all(s in endpoints for s in SSM_SERVICES):
        return "interface VPC endpoints " + ", ".join(endpoints[s] for s in SSM_SERVICES)
    return None


def _endpoints(clients: AwsClients, vpc_id: str) -> dict[str, str]:
    """{service short name: endpoint ID} of the VPC's available interface endpoints with private
    DNS (without it the agent still resolves the public names, which the subnet cannot reach)."""
    names = {f"com.amazonaws.{clients.region}.{s}": s for s in SSM_SERVICES}
    found = collect(
        clients.ec2,
        "describe_vpc_endpoints",
        "VpcEndpoints",
        Filters=[
            {"Name": "vpc-id", "Values": [vpc_id]},
            {"Name": "service-name", "Values": list(names)},
        ],
    )
    out: dict[str, str] = {}
    for endpoint in found:
        service = names.get(str(endpoint.get("ServiceName")))
        usable = (
            endpoint.get("VpcEndpointType") == "Interface"
            and str(endpoint.get("State", "")).lower() == "available"
            and endpoint.get("PrivateDnsEnabled") is True
        )
        if service and usable:
            out[service] = str(endpoint["VpcEndpointId"])
    return out


def _default_routes(clients: AwsClients, vpc_id: str, subnet_id: str) -> list[Mapping[str, Any]]:
    """The active 0.0.0.0/0 routes of the subnet's route table, else of the VPC's main one."""
    tables = collect(
        clients.ec2,
        "describe_route_tables",
        "RouteTables",
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}],
    )

    def associated(table: Mapping[str, Any], main: bool) -> bool:
        links = table.get("Associations", [])
        if main:
            return any(link.get("Main") for link in links)
        return any(link.get("SubnetId") == subnet_id for link in links)

    chosen = [t for t in tables if associated(t, False)] or [
        t for t in tables if associated(t, True)
    ]
    return [
        route
        for table in chosen[:1]
        for route in table.get("Routes", [])
        if route.get("DestinationCidrBlock") == "0.0.0.0/0" and route.get("State") != "blackhole"
    ]
