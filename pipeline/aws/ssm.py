"""SSM: which instances Systems Manager sees as managed, and their ping status."""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.aws import AwsClients, ClientError, aws_error
from pipeline.aws._paginate import collect

IAM_ACTIONS: tuple[str, ...] = ("ssm:DescribeInstanceInformation", "ssm:PutParameter")


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


def put_image_parameter(clients: AwsClients, name: str, ami_id: str, description: str) -> int:
    """Write ``ami_id`` to the SSM parameter ``name`` (data type aws:ec2:image); its version."""
    try:
        resp = clients.ssm.put_parameter(
            Name=name,
            Value=ami_id,
            Type="String",
            DataType="aws:ec2:image",
            Overwrite=True,
            Description=description[:1024],
        )
    except ClientError as exc:
        raise aws_error(f"ssm:PutParameter {name}", exc) from exc
    return int(resp.get("Version", 0))
