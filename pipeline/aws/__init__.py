"""The AWS boundary: the only package that imports boto3/botocore (ruff TID251 enforces it).

Clients come from one ``boto3.Session`` that honours the standard configuration (profiles,
region, ``AWS_ENDPOINT_URL``), with botocore's standard retry mode and a user agent naming the
project. Whether that endpoint is AWS or the project's local AWS is not this code's business.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from threading import Lock
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import boto3
import botocore
import botocore.loaders
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from pipeline import USER_AGENT
from pipeline.endpoints import check_endpoint_url, endpoint_urls
from pipeline.errors import AwsError, ConfigError

if TYPE_CHECKING:
    from types_boto3_ec2 import EC2Client
    from types_boto3_iam import IAMClient
    from types_boto3_inspector2 import Inspector2Client
    from types_boto3_kms import KMSClient
    from types_boto3_s3 import S3Client
    from types_boto3_ssm import SSMClient
    from types_boto3_sts import STSClient


@dataclass
class CallCounter:
    """Counts AWS API calls by ``service:Operation`` (botocore event hooks), thread-safe."""

    counts: Counter[str] = field(default_factory=Counter)
    retries: Counter[str] = field(default_factory=Counter)
    _lock: Lock = field(default_factory=Lock, repr=False)

    def __call__(self, event_name: str, **_: Any) -> None:
        # event name: "before-call.<service>.<Operation>"; retries do not re-emit it.
        parts = event_name.split(".", 2)
        service, operation = parts[1], parts[2]
        with self._lock:
            self.counts[f"{service}:{operation}"] += 1

    def count_retry(self, event_name: str, attempts: int = 1, **_: Any) -> None:
        """``needs-retry.<service>.<Operation>`` fires once after every HTTP attempt, with that
        attempt's number; attempt 2 and later exist only because the retry handler asked for
        them, so counting those counts actual retries (throttling, 5xx, connection errors)."""
        if attempts > 1:
            parts = event_name.split(".", 2)
            with self._lock:
                self.retries[f"{parts[1]}:{parts[2]}"] += 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def retries_total(self) -> int:
        with self._lock:
            return sum(self.retries.values())

    def as_dict(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self.counts.items()))

    def retries_as_dict(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self.retries.items()))


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
    s3: S3Client | None = None  # the evidence store; None only in bundles built by hand
    kms: KMSClient | None = None  # the signing key


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
    try:
        sess = session or boto3.Session(profile_name=profile, region_name=region)
    except BotoCoreError as exc:  # ProfileNotFound (AWS_PROFILE), a malformed config file
        raise ConfigError(f"AWS configuration (AWS_PROFILE, ~/.aws/config): {exc}") from None
    resolved = sess.region_name
    if not resolved:
        raise ConfigError(
            "no AWS region: pass --region, set AWS_REGION/AWS_DEFAULT_REGION or a profile region"
        )
    _preflight(sess, resolved)
    config = Config(
        retries={"mode": "standard", "max_attempts": max_attempts},
        user_agent_extra=USER_AGENT,
        connect_timeout=CONNECT_TIMEOUT_S,
    )
    counter = CallCounter()
    made: dict[str, Any] = {}
    for service in ("ec2", "iam", "inspector2", "ssm", "sts", "s3", "kms"):
        client = sess.client(service, region_name=resolved, config=config)  # type: ignore[call-overload,unused-ignore]
        client.meta.events.register("before-call.*.*", counter)
        client.meta.events.register("needs-retry.*.*", counter.count_retry)
        made[service] = client
    return AwsClients(
        region=resolved,
        calls=counter,
        endpoint_url=made["ec2"].meta.endpoint_url,
        **made,
    )


CONNECT_TIMEOUT_S = 2.0  # a dead endpoint is reported in seconds, not after minutes of retries


def _preflight(sess: boto3.Session, region: str) -> None:
    """Exit-2 checks before the first call: endpoint URLs, region, credentials, a live endpoint.

    All offline except one TCP connect to a loopback endpoint (the local AWS), so "nothing is
    listening" is one line instead of botocore's retries.
    """
    urls = endpoint_urls(os.environ)
    for name, url in sorted(urls.items()):
        check_endpoint_url(url, name)
    known = _known_regions()
    if region not in known:
        raise ConfigError(
            f"region {region!r} (AWS_REGION/AWS_DEFAULT_REGION/--region): not an AWS region "
            f"botocore {botocore.__version__} knows"
        )
    try:
        credentials = sess.get_credentials()
    except BotoCoreError as exc:
        raise ConfigError(f"AWS credentials: {exc}") from None
    if credentials is None:
        raise ConfigError(
            "no AWS credentials found: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile "
            "or an OIDC role (the local AWS prints its exports)"
        )
    if "AWS_ENDPOINT_URL" in urls:
        _check_listening(urls["AWS_ENDPOINT_URL"])


def _known_regions() -> frozenset[str]:
    """Every region of every partition in botocore's bundled data (offline)."""
    data = botocore.loaders.create_loader().load_data("partitions")
    return frozenset(r for part in data["partitions"] for r in part.get("regions", {}))


def _check_listening(url: str) -> None:
    """One TCP connect to a loopback endpoint; nothing answering is a ConfigError (exit 2)."""
    parts = urlsplit(url.strip())
    host = parts.hostname or ""
    if host != "localhost" and not _is_loopback(host):
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise ConfigError(
            f"AWS_ENDPOINT_URL {url}: nothing answers on {host}:{port} "
            f"({exc.strerror or exc}): start `invoke local-aws` or unset AWS_ENDPOINT_URL"
        ) from None


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
