"""SSM: which instances Systems Manager sees as managed, and their ping status."""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.aws import AwsClients
from pipeline.aws._paginate import collect

IAM_ACTIONS: tuple[str, ...] = ("ssm:DescribeInstanceInformation",)


def ping_status(clients: AwsClients, instance_ids: Sequence[str]) -> dict[str, str]:
    """``PingStatus`` (Online, ConnectionLost, Inactive) of each managed instance among the IDs.

    An instance SSM does not know is absent from the result.
    """
    if not instance_ids:
        return {}
    items = collect(
        clients.ssm,
        "describe_instance_information",
        "InstanceInformationList",
        Filters=[{"Key": "InstanceIds", "Values": list(instance_ids)}],
    )
    return {str(i["InstanceId"]): str(i.get("PingStatus", "Unknown")) for i in items}
