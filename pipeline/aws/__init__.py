"""The AWS boundary: the only package that imports boto3/botocore (ruff TID251 enforces it).

Clients come from one ``boto3.Session`` that honours the standard configuration (profiles,
region, ``AWS_ENDPOINT_URL``), with botocore's standard retry mode and a user agent naming the
project. Whether that endpoint is AWS or the project's local AWS is not this code's business.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from threading import Lock
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from pipeline import USER_AGENT
from pipeline.errors import AwsError, ConfigError

if TYPE_CHECKING:
    from types_boto3_ec2 import EC2Client
    from types_boto3_iam import IAMClient
    from types_boto3_inspector2 import Inspector2Client
    from types_boto3_ssm import SSMClient
    from types_boto3_sts import STSClient


@dataclass
class CallCounter:
    """Counts AWS API calls by ``service:Operation`` (botocore event hooks), thread-safe."""

    counts: Counter[str] = field(default_factory=Counter)
    _lock: Lock = field(default_factory=Lock, repr=False)

    def __call__(self, event_name: str, **_: Any) -> None:
        # event name: "before-call.<service>.<Operation>"; retries do not re-emit it.
        parts = event_name.split(".", 2)
        service, operation = parts[1], parts[2]
        with self._lock:
            self.counts[f"{service}:{operation}"] += 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def as_dict(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self.counts.items()))


@dataclass(frozen=True)
class AwsClients:
    """Every client the pipeline uses, built once from one session."""

    region: str
    ec2: EC2Client
    iam: IAMClient
    inspector2: Inspector2Client
    ssm: SSMClient
    sts: STSClient
    calls: CallCounter
    endpoint_url: str | None = None


def make_clients(
    *,
    region: str | None = None,
    profile: str | None = None,
    max_attempts: int = 10,
    session: boto3.Session | None = None,
) -> AwsClients:
    """Build the client bundle. Raises ConfigError when no region can be resolved.

    ``AWS_ENDPOINT_URL`` (and ``AWS_ENDPOINT_URL_<SERVICE>``) are honoured by botocore itself.
    """
    sess = session or boto3.Session(profile_name=profile, region_name=region)
    resolved = sess.region_name
    if not resolved:
        raise ConfigError(
            "no AWS region: pass --region, set AWS_REGION/AWS_DEFAULT_REGION or a profile region"
        )
    config = Config(
        retries={"mode": "standard", "max_attempts": max_attempts},
        user_agent_extra=USER_AGENT,
    )
    counter = CallCounter()
    made: dict[str, Any] = {}
    for service in ("ec2", "iam", "inspector2", "ssm", "sts"):
        client = sess.client(service, region_name=resolved, config=config)  # type: ignore[call-overload,unused-ignore]
        client.meta.events.register("before-call.*.*", counter)
        made[service] = client
    return AwsClients(
        region=resolved,
        calls=counter,
        endpoint_url=made["ec2"].meta.endpoint_url,
        **made,
    )


def describe_error(exc: Exception) -> str:
    """A one-line description of a botocore error for user-facing messages."""
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return f"{err.get('Code', 'Error')}: {err.get('Message', '')}".strip()
    if isinstance(exc, NoCredentialsError):
        return "no AWS credentials found (set a profile, environment variables or OIDC role)"
    if isinstance(exc, NoRegionError):
        return "no AWS region configured"
    return str(exc)


def error_code(exc: Exception) -> str | None:
    """The AWS error code of a ClientError, else None."""
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code")
        return str(code) if code is not None else None
    return None


def is_aws_endpoint(endpoint_url: str | None) -> bool:
    """True for AWS's own endpoints (``*.amazonaws.com[.cn]``, or none configured), False for
    any other URL, such as the project's local AWS on loopback."""
    if not endpoint_url:
        return True
    host = urlsplit(endpoint_url).hostname or ""
    return host.endswith((".amazonaws.com", ".amazonaws.com.cn"))


@contextmanager
def boundary(action: str) -> Iterator[None]:
    """Turn any botocore error that escaped a function into a one-line AwsError/ConfigError."""
    try:
        yield
    except NoCredentialsError as exc:
        raise ConfigError(f"{action}: {describe_error(exc)}") from exc
    except (ClientError, BotoCoreError) as exc:
        raise aws_error(action, exc) from exc


def aws_error(action: str, exc: Exception) -> AwsError:
    """Wrap a botocore failure with what the pipeline was doing."""
    return AwsError(f"{action}: {describe_error(exc)}")


__all__ = [
    "AwsClients",
    "BotoCoreError",
    "CallCounter",
    "ClientError",
    "aws_error",
    "boundary",
    "describe_error",
    "error_code",
    "is_aws_endpoint",
    "make_clients",
]
