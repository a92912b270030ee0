"""SSM managed-instance registration and ``ssm:DescribeInstanceInformation`` (moto has neither).

An instance is a managed node once it has run for the scenario's registration delay (default
1 s, ``ssm.online_after_s``; ``never`` = never registers) with an instance-profile role that
grants the SSM core actions (any policy; ``iam_eval``). As documented, stopped and terminated
nodes are not listed; running ones are ``Online``, stopping / shutting-down ones
``ConnectionLost``. An ``InstanceIds`` value that is not an instance of this account and region
is ``InvalidInstanceId``. Filters: the legacy ``InstanceInformationFilterList`` or ``Filters``
(the documented keys, ``SourceIds``/``SourceTypes`` included, plus ``tag:<key>``/``tag-key``;
tag filters cannot be combined with other filters), values OR'ed, filters AND'ed; 5..50 results
a page (default 10).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pipeline.catalog import Platform
from pipeline.localaws import model, query
from pipeline.localaws.context import Ctx, Handler, Params, Result
from pipeline.localaws.fleet import Fleet, Host
from pipeline.localaws.scenario import Scenario
from pipeline.localaws.wire import ServiceError

AGENT_VERSION = "3.3.1142.0"
_PLATFORMS = {
    Platform.AMAZON_LINUX_2023: ("Amazon Linux", "2023"),
    Platform.AMAZON_LINUX_2: ("Amazon Linux", "2"),
}
# "This operation does not return information for nodes that are either Stopped or Terminated."
_LISTED_STATES = frozenset({"pending", "running", "stopping", "shutting-down"})
_FIELDS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "InstanceIds": lambda info: info["InstanceId"],
    "AgentVersion": lambda info: info["AgentVersion"],
    "PingStatus": lambda info: info["PingStatus"],
    "PlatformTypes": lambda info: info["PlatformType"],
    "ActivationIds": lambda info: info.get("ActivationId"),
    "IamRole": lambda info: info.get("IamRole"),
    "ResourceType": lambda info: info["ResourceType"],
    "AssociationStatus": lambda info: info.get("AssociationStatus"),
    "SourceIds": lambda info: info["SourceId"],
    "SourceTypes": lambda info: info["SourceType"],
}
# Filter keys whose values must come from a model enum.
_ENUMS = {
    "PingStatus": "PingStatus",
    "PlatformTypes": "PlatformType",
    "ResourceType": "ResourceType",
}
# Filter keys whose valid values only the documentation lists (InstanceInformationStringFilter).
_DOCUMENTED_VALUES = {
    "AssociationStatus": ("Success", "Pending", "Failed"),
    "SourceTypes": (
        "AWS::EC2::Instance",
        "AWS::SSM::ManagedInstance",
        "AWS::IoT::Thing",
        "Microsoft.Compute/virtualMachines",
        "compute.googleapis.com/Instance",
    ),
}


def registered_at(host: Host, online_after: float | None) -> float | None:
    """When ``host`` became a managed node, or None if it cannot (no SSM role, never)."""
    if online_after is None or not host.ssm_capable:
        return None
    return host.launched_at + online_after


def is_online(host: Host, now: float, online_after: float | None) -> bool:
    """Running and registered: what Inspector needs to reach the instance through SSM."""
    since = registered_at(host, online_after)
    return host.state == "running" and since is not None and now >= since


class SsmService:
    """The emulated part of SSM (everything else about SSM is moto's)."""

    def __init__(self, fleet: Fleet, scenario: Callable[[], Scenario]) -> None:
        self._fleet = fleet
        self._scenario = scenario

    def operations(self) -> dict[str, Handler]:
        return {"DescribeInstanceInformation": self.describe_instance_information}

    def online_after(self) -> float | None:
        return self._scenario().ssm_online_after_s

    def describe_instance_information(self, ctx: Ctx, params: Params) -> Result:
        legacy = params.get("InstanceInformationFilterList") or []
        filters = params.get("Filters") or []
        if legacy and filters:
            raise ServiceError(
                "ValidationException",
                "InstanceInformationFilterList and Filters cannot be combined",
            )
        nodes = [(host, self._info(ctx, host, since)) for host, since in self._managed(ctx)]
        conditions = [(f["key"], f["valueSet"]) for f in legacy] + [
            (f["Key"], f["Values"]) for f in filters
        ]
        tags = [key for key, _ in conditions if key.startswith("tag:") or key == "tag-key"]
        if tags and len(tags) < len(conditions):
            # The docs: "Tag filters can't be combined with other filter types"; the error code
            # the service answers with is not documented (one the operation declares is used).
            raise ServiceError(
                "InvalidFilterKey", "Tag filters can't be combined with other filter types"
            )
        for key, values in conditions:
            if key == "InstanceIds":
                self._check_ids(ctx, values)
        for key, values in conditions:
            matcher = _matcher(key, values)
            nodes = [(host, info) for host, info in nodes if matcher(host, info)]
        infos = sorted((info for _, info in nodes), key=lambda info: info["InstanceId"])
        page = query.paginate(
            infos,
            params,
            page_max=50,
            default_size=10,
            token_key="NextToken",
            size_key="MaxResults",
            bad_token=lambda msg: ServiceError("InvalidNextToken", msg),
        )
        result: Result = {"InstanceInformationList": page.items}
        if page.next_token:
            result["NextToken"] = page.next_token
        return result

    def _check_ids(self, ctx: Ctx, ids: list[str]) -> None:
        """ "If you specify a node ID that isn't valid or a node that you don't own, you receive
        an error": IDs that are no instance of this account and region. (An own instance that
        is not, or not yet, a managed node is simply not listed: what AWS does then is not
        documented, and the pipeline polls exactly such instances.)"""
        known = {host.instance_id for host in self._fleet.hosts(ctx.region)}
        bad = [i for i in ids if i not in known]
        if bad:
            raise ServiceError(
                "InvalidInstanceId",
                f"Instance Id {bad[0]} is not valid or is not owned by this account",
            )

    def _managed(self, ctx: Ctx) -> list[tuple[Host, float]]:
        online_after = self.online_after()
        managed = []
        for host in self._fleet.hosts(ctx.region):
            since = registered_at(host, online_after)
            if since is not None and ctx.now >= since and host.state in _LISTED_STATES:
                managed.append((host, since))
        return managed

    def _info(self, ctx: Ctx, host: Host, since: float) -> dict[str, Any]:
        online = host.state == "running"
        name, version = (
            _PLATFORMS.get(host.profile.platform, ("Linux", "")) if host.profile else ("Linux", "")
        )
        info: dict[str, Any] = {
            "InstanceId": host.instance_id,
            "PingStatus": "Online" if online else "ConnectionLost",
            "LastPingDateTime": ctx.now if online else since,
            "AgentVersion": AGENT_VERSION,
            "IsLatestVersion": False,
            "PlatformType": "Linux",
            "PlatformName": name,
            "PlatformVersion": version,
            "ResourceType": "EC2Instance",
            "RegistrationDate": since,
            "SourceId": host.instance_id,
            "SourceType": "AWS::EC2::Instance",
        }
        if host.role_name:
            info["IamRole"] = host.role_name
        if host.private_ip:
            info["IPAddress"] = host.private_ip
            info["ComputerName"] = _computer_name(host.private_ip, ctx.region)
        return info


def _computer_name(ip: str, region: str) -> str:
    domain = "ec2.internal" if region == "us-east-1" else f"{region}.compute.internal"
    return f"ip-{ip.replace('.', '-')}.{domain}"


def _matcher(key: str, values: list[str]) -> Callable[[Host, dict[str, Any]], bool]:
    """One filter as a predicate over (host, InstanceInformation); unknown keys are errors."""
    if key in _ENUMS or key in _DOCUMENTED_VALUES:
        allowed = _DOCUMENTED_VALUES.get(key) or model.enum("ssm", _ENUMS[key])
        bad = [v for v in values if v not in allowed]
        if bad:
            raise ServiceError(
                "InvalidInstanceInformationFilterValue",
                f"{bad[0]} is not a valid value for {key} (valid: {', '.join(allowed)})",
            )
    if key in _FIELDS:
        get = _FIELDS[key]
        return lambda host, info: get(info) in values
    if key.startswith("tag:"):
        return lambda host, info: host.tags.get(key[4:]) in values
    if key == "tag-key":
        return lambda host, info: any(k in values for k in host.tags)
    raise ServiceError("InvalidFilterKey", f"The filter key {key!r} is not valid")
