"""S3 for the evidence store: the bucket's protections, write-once uploads with checksums, reads.

Every call names the expected bucket owner (the pipeline's account).
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pipeline.aws import AwsClients, ClientError, aws_error, error_code
from pipeline.aws._paginate import collect
from pipeline.errors import AwsError, ConfigError

IAM_ACTIONS: tuple[str, ...] = (
    "s3:CreateBucket",
    "s3:ListBucket",
    "s3:PutBucketVersioning",
    "s3:GetBucketVersioning",
    "s3:PutBucketPublicAccessBlock",
    "s3:GetBucketPublicAccessBlock",
    "s3:PutEncryptionConfiguration",
    "s3:GetEncryptionConfiguration",
    "s3:PutBucketPolicy",
    "s3:GetBucketPolicy",
    "s3:PutBucketObjectLockConfiguration",
    "s3:GetBucketObjectLockConfiguration",
    "s3:PutBucketTagging",
    "s3:PutObject",
    "s3:GetObject",
)
# API operations whose IAM action has another name (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html).
OPERATION_ACTIONS: dict[str, str] = {
    "s3:HeadBucket": "s3:ListBucket",
    "s3:ListObjectsV2": "s3:ListBucket",
    "s3:HeadObject": "s3:GetObject",
    "s3:PutBucketEncryption": "s3:PutEncryptionConfiguration",
    "s3:GetBucketEncryption": "s3:GetEncryptionConfiguration",
    "s3:PutPublicAccessBlock": "s3:PutBucketPublicAccessBlock",
    "s3:GetPublicAccessBlock": "s3:GetBucketPublicAccessBlock",
    "s3:PutObjectLockConfiguration": "s3:PutBucketObjectLockConfiguration",
    "s3:GetObjectLockConfiguration": "s3:GetBucketObjectLockConfiguration",
}
_BLOCK_ALL = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}
_MISSING = {"NoSuchBucket", "NotFound", "404", "NoSuchKey"}


def _s3(clients: AwsClients) -> Any:
    if clients.s3 is None:
        raise AwsError("no S3 client in this client bundle")
    return clients.s3


RETENTION = "object lock default retention"
LOCK_MODES = ("GOVERNANCE", "COMPLIANCE")


@dataclass(frozen=True, slots=True)
class BucketState:
    """The protections ``invoke setup`` puts on the evidence bucket, as found."""

    name: str
    versioning: bool
    public_access_blocked: bool
    encrypted: bool
    tls_only: bool
    object_lock: bool
    # The default retention of an object-locked bucket as (mode, days); None: none set, so
    # Object Lock protects nothing (each object would need its own retention).
    retention: tuple[str, int] | None = None

    def missing(self, *, tls: bool = True, retention: tuple[str, int] | None = None) -> list[str]:
        """Protections not (yet) in place, in the order setup applies them (``tls``: include
        the TLS-only policy, which would lock out a client talking plain HTTP; ``retention``:
        the default retention an object-locked bucket must have)."""
        wanted = {
            "versioning": self.versioning,
            "public access block": self.public_access_blocked,
            "default encryption": self.encrypted,
            "TLS-only bucket policy": self.tls_only or not tls,
            RETENTION: not (self.object_lock and retention) or self.retention == retention,
        }
        return [name for name, ok in wanted.items() if not ok]


def tls_only_policy(bucket: str) -> dict[str, Any]:
    """A bucket policy denying every request not made over TLS."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }


def bucket_state(clients: AwsClients, bucket: str, owner: str) -> BucketState | None:
    """The bucket's protections, or None when no such bucket exists (for ``owner``)."""
    s3 = _s3(clients)
    try:
        s3.head_bucket(Bucket=bucket, ExpectedBucketOwner=owner)
    except ClientError as exc:
        if error_code(exc) in _MISSING:
            return None
        raise aws_error(f"s3:HeadBucket {bucket}", exc) from exc
    versioning = s3.get_bucket_versioning(Bucket=bucket, ExpectedBucketOwner=owner)
    block = _optional(lambda: s3.get_public_access_block(Bucket=bucket, ExpectedBucketOwner=owner))
    config = (block or {}).get("PublicAccessBlockConfiguration", {})
    encryption = _optional(
        lambda: s3.get_bucket_encryption(Bucket=bucket, ExpectedBucketOwner=owner)
    )
    policy = _optional(lambda: s3.get_bucket_policy(Bucket=bucket, ExpectedBucketOwner=owner))
    lock = _optional(
        lambda: s3.get_object_lock_configuration(Bucket=bucket, ExpectedBucketOwner=owner)
    )
    rule = (lock or {}).get("ObjectLockConfiguration", {}).get("Rule", {})
    default = rule.get("DefaultRetention", {})
    mode, days = default.get("Mode"), default.get("Days")
    return BucketState(
        name=bucket,
        versioning=versioning.get("Status") == "Enabled",
        public_access_blocked=all(config.get(k) is True for k in _BLOCK_ALL),
        encrypted=bool(encryption),
        tls_only=_denies_plain_http(policy),
        object_lock=((lock or {}).get("ObjectLockConfiguration", {}).get("ObjectLockEnabled"))
        == "Enabled",
        retention=(str(mode), int(days)) if mode and isinstance(days, int) else None,
    )


def bucket_versioned(clients: AwsClients, bucket: str, owner: str) -> bool | None:
    """Whether the bucket has versioning enabled; None when no such bucket exists for ``owner``
    (s3:HeadBucket and GetBucketVersioning, both with ExpectedBucketOwner): what a validate
    run checks of the evidence store before it scans."""
    s3 = _s3(clients)
    try:
        s3.head_bucket(Bucket=bucket, ExpectedBucketOwner=owner)
    except ClientError as exc:
        if error_code(exc) in _MISSING:
            return None
        raise aws_error(f"s3:HeadBucket {bucket}", exc) from exc
    try:
        versioning = s3.get_bucket_versioning(Bucket=bucket, ExpectedBucketOwner=owner)
    except ClientError as exc:
        raise aws_error(f"s3:GetBucketVersioning {bucket}", exc) from exc
    return bool(versioning.get("Status") == "Enabled")


def _optional(call: Any) -> dict[str, Any] | None:
    """The response, or None when S3 says the configuration does not exist."""
    try:
        return dict(call())
    except ClientError as exc:
        code = error_code(exc) or ""
        if code.startswith("NoSuch") or code.endswith("NotFoundError") or code in _MISSING:
            return None
        raise aws_error(f"s3:{exc.operation_name}", exc) from exc


def _denies_plain_http(policy: dict[str, Any] | None) -> bool:
    if not policy:
        return False
    try:
        document = json.loads(policy.get("Policy", "{}"))
    except ValueError:
        return False
    for statement in document.get("Statement", []):
        condition = statement.get("Condition", {}).get("Bool", {})
        if statement.get("Effect") == "Deny" and condition.get("aws:SecureTransport") in (
            "false",
            False,
        ):
            return True
    return False


def create_bucket(clients: AwsClients, bucket: str, *, object_lock: bool = False) -> None:
    """Create the bucket in the clients' region, owned by the caller."""
    params: dict[str, Any] = {"Bucket": bucket, "ObjectLockEnabledForBucket": object_lock}
    if clients.region != "us-east-1":
        params["CreateBucketConfiguration"] = {"LocationConstraint": clients.region}
    try:
        _s3(clients).create_bucket(**params)
    except ClientError as exc:
        if error_code(exc) == "BucketAlreadyExists":
            raise ConfigError(
                f"evidence bucket {bucket}: the name is taken by another account; choose "
                "another with --evidence-bucket or pipeline.evidence_bucket"
            ) from exc
        if error_code(exc) != "BucketAlreadyOwnedByYou":
            raise aws_error(f"s3:CreateBucket {bucket}", exc) from exc


def protect_bucket(
    clients: AwsClients,
    bucket: str,
    owner: str,
    missing: list[str],
    retention: tuple[str, int] | None = None,
) -> None:
    """Apply the protections named in ``missing`` (``BucketState.missing()`` names);
    ``retention`` (mode, days) is the object lock default retention to set."""
    s3 = _s3(clients)
    mode, days = retention or ("GOVERNANCE", 1)
    steps = {
        # Object Lock without a default retention protects no object written without its own.
        RETENTION: lambda: s3.put_object_lock_configuration(
            Bucket=bucket,
            ExpectedBucketOwner=owner,
            ObjectLockConfiguration={
                "ObjectLockEnabled": "Enabled",
                "Rule": {"DefaultRetention": {"Mode": mode, "Days": days}},
            },
        ),
        "versioning": lambda: s3.put_bucket_versioning(
            Bucket=bucket,
            ExpectedBucketOwner=owner,
            VersioningConfiguration={"Status": "Enabled"},
        ),
        "public access block": lambda: s3.put_public_access_block(
            Bucket=bucket, ExpectedBucketOwner=owner, PublicAccessBlockConfiguration=_BLOCK_ALL
        ),
        "default encryption": lambda: s3.put_bucket_encryption(
            Bucket=bucket,
            ExpectedBucketOwner=owner,
            ServerSideEncryptionConfiguration={
                "Rules": [
                    {
                        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"},
                        "BucketKeyEnabled": True,
                    }
                ]
            },
        ),
        "TLS-only bucket policy": lambda: s3.put_bucket_policy(
            Bucket=bucket, ExpectedBucketOwner=owner, Policy=json.dumps(tls_only_policy(bucket))
        ),
    }
    for name in missing:
        try:
            steps[name]()
        except ClientError as exc:
            raise aws_error(f"evidence bucket {bucket}: {name}", exc) from exc


def tag_bucket(clients: AwsClients, bucket: str, owner: str, tags: dict[str, str]) -> None:
    try:
        _s3(clients).put_bucket_tagging(
            Bucket=bucket,
            ExpectedBucketOwner=owner,
            Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in sorted(tags.items())]},
        )
    except ClientError as exc:
        raise aws_error(f"s3:PutBucketTagging {bucket}", exc) from exc


def put_new_object(
    clients: AwsClients, bucket: str, key: str, body: bytes, owner: str, content_type: str
) -> str:
    """Write ``body`` at ``key`` once: never over an existing object; checksum verified.

    S3 checks the SHA-256 we send on arrival; the checksum its answer reports must equal ours.
    Returns the hex SHA-256. Raises AwsError when the key exists already or a checksum disagrees.
    """
    s3 = _s3(clients)
    digest = hashlib.sha256(body).digest()
    encoded = base64.b64encode(digest).decode("ascii")
    where = f"s3://{bucket}/{key}"
    try:
        put = s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=body,
            ContentType=content_type,
            ChecksumAlgorithm="SHA256",
            ChecksumSHA256=encoded,
            IfNoneMatch="*",
            ExpectedBucketOwner=owner,
        )
    except ClientError as exc:
        if error_code(exc) in ("PreconditionFailed", "ConditionalRequestConflict"):
            raise AwsError(f"{where} exists already: evidence is never overwritten") from exc
        raise aws_error(f"s3:PutObject {where}", exc) from exc
    # S3 rejects a body whose SHA-256 is not the one sent (BadDigest) and echoes the checksum it
    # stored; a second read (HeadObject) would cost one call per object and prove nothing more.
    got = put.get("ChecksumSHA256")
    if got != encoded:
        raise AwsError(f"{where}: PutObject reports SHA-256 {got!r}, we sent {encoded}")
    return digest.hex()


class ObjectTooLarge(AwsError):
    """An object is larger than the caller's ``max_bytes`` (its bytes were not read)."""


def get_object(
    clients: AwsClients, bucket: str, key: str, owner: str, max_bytes: int | None = None
) -> bytes | None:
    """The object's bytes, or None when there is no such key or bucket.

    Raises ObjectTooLarge, having read at most ``max_bytes`` + 1 bytes, when it is larger.
    """
    try:
        response = _s3(clients).get_object(Bucket=bucket, Key=key, ExpectedBucketOwner=owner)
    except ClientError as exc:
        if error_code(exc) in _MISSING:
            return None
        raise aws_error(f"s3:GetObject s3://{bucket}/{key}", exc) from exc
    if max_bytes is None:
        return bytes(response["Body"].read())
    size = int(response.get("ContentLength") or 0)
    body = b"" if size > max_bytes else bytes(response["Body"].read(max_bytes + 1))
    response["Body"].close()
    if size > max_bytes or len(body) > max_bytes:
        raise ObjectTooLarge(
            f"s3://{bucket}/{key} is {max(size, len(body))} bytes, more than {max_bytes}"
        )
    return body


def list_keys(clients: AwsClients, bucket: str, prefix: str, owner: str) -> list[str]:
    """Every key under ``prefix`` (empty when the bucket does not exist)."""
    return sorted(list_modified(clients, bucket, prefix, owner))


def list_modified(clients: AwsClients, bucket: str, prefix: str, owner: str) -> dict[str, str]:
    """Every key under ``prefix`` with its ``LastModified`` as an ISO 8601 UTC string (S3's own
    clock: a writer cannot choose it). Empty when the bucket does not exist."""
    try:
        items = collect(
            _s3(clients),
            "list_objects_v2",
            "Contents",
            Bucket=bucket,
            Prefix=prefix,
            ExpectedBucketOwner=owner,
        )
    except ClientError as exc:
        if error_code(exc) in _MISSING:
            return {}
        raise aws_error(f"s3:ListObjectsV2 s3://{bucket}/{prefix}", exc) from exc
    return {str(i["Key"]): _utc(i.get("LastModified")) for i in items}


def _utc(value: Any) -> str:
    if isinstance(value, datetime):
        when = value if value.tzinfo else value.replace(tzinfo=UTC)
        return when.astimezone(UTC).isoformat(timespec="microseconds")
    return ""
