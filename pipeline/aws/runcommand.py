"""SSM Run Command: run the node probe on the test instances and read what it printed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pipeline.aws import AwsClients, ClientError, aws_error

IAM_ACTIONS: tuple[str, ...] = ("ssm:SendCommand", "ssm:GetCommandInvocation")
DOCUMENT = "AWS-RunShellScript"
DONE = frozenset({"Success", "Cancelled", "TimedOut", "Failed"})


def send_script(
    clients: AwsClients, instance_ids: Sequence[str], script: str, timeout_s: int, comment: str
) -> str:
    """Run ``script`` with ``AWS-RunShellScript`` on the instances; the command's ID.

    ``timeout_s`` bounds both the delivery (``TimeoutSeconds``) and the run on the instance
    (the document's ``executionTimeout``)."""
    try:
        resp = clients.ssm.send_command(
            DocumentName=DOCUMENT,
            InstanceIds=list(instance_ids),
            Parameters={"commands": [script], "executionTimeout": [str(int(timeout_s))]},
            TimeoutSeconds=max(30, int(timeout_s)),
            Comment=comment[:100],
        )
    except ClientError as exc:
        raise aws_error(f"ssm:SendCommand {DOCUMENT}", exc) from exc
    return str(resp["Command"]["CommandId"])


def invocation(clients: AwsClients, command_id: str, instance_id: str) -> dict[str, Any]:
    """``GetCommandInvocation`` as the API returned it (its output cut at 24,000 characters);
    a refusal becomes ``{"error": ...}``: the probe's evidence says why it has no output."""
    try:
        resp = dict(
            clients.ssm.get_command_invocation(CommandId=command_id, InstanceId=instance_id)
        )
    except ClientError as exc:
        return {"error": str(aws_error(f"ssm:GetCommandInvocation {instance_id}", exc))}
    resp.pop("ResponseMetadata", None)
    return resp
