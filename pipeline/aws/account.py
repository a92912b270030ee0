"""Who and where: the caller's account (STS)."""

from __future__ import annotations

from pipeline.aws import AwsClients

IAM_ACTIONS: tuple[str, ...] = ("sts:GetCallerIdentity",)


def caller_account(clients: AwsClients) -> str:
    """The account ID the credentials belong to (sts:GetCallerIdentity)."""
    return str(clients.sts.get_caller_identity()["Account"])
