"""Tag keys the pipeline writes and trusts, in one place.

Ownership: everything the pipeline creates carries ``MANAGED_TAG=MANAGED_VALUE`` plus its run
ID (``RUN_TAG`` for validation resources, ``BUILD_RUN_TAG`` for build resources). The reaper
touches only resources that carry both, matched exactly (case and white space included).
Tags are a convenience for people; the signed validation record is the source of truth.

Key families and who writes them (``WRITES`` in pipeline/aws/iam_policy.py, from these names,
is what each job's IAM policy lets it write; policies/iam/README.md has the table): ``cis-ami:``
build (Packer's provenance, the fingerprint); ``cis-pipeline:`` build and validate (ownership and
heartbeat on what they create); ``cis-validate:`` validate (its instances and groups); ``cis:``
validate (the verdict and the pointer to the signed record); ``cis-release:`` promote and revoke,
and the nightly chain's drift record (validate's role). ``Name``: build and validate, on what
they create. A regional copy gets its source's tags when promote creates it.
"""

from __future__ import annotations

from collections.abc import Iterable

AMI_TAG_PREFIX = "cis-ami:"
PIPELINE_TAG_PREFIX = "cis-pipeline:"
VALIDATE_TAG_PREFIX = "cis-validate:"
CIS_TAG_PREFIX = "cis:"  # validation outcomes, written after the scan (reserved: not Packer's)
RELEASE_TAG_PREFIX = "cis-release:"
NAME_TAG = "Name"

MANAGED_TAG = "cis-pipeline:managed"
MANAGED_VALUE = "true"
RUN_TAG = "cis-validate:run-id"  # test instances, per-run security groups, scan configurations
BUILD_RUN_TAG = "cis-ami:run-id"  # AMIs and Packer's temporary resources
HEARTBEAT_TAG = "cis-pipeline:heartbeat"  # RFC 3339 UTC time a live run last said it is alive
EXPIRES_TAG = "cis-validate:expires-at"
PIPELINE_TAG = "cis-validate:pipeline"
LOCAL_TAG = "cis-ami:local"  # the AMI was built on the project's local AWS
# Release (pipeline/release): fingerprint of the build's inputs, copies, channels, revocation.
FINGERPRINT_TAG = "cis-ami:fingerprint"  # sha256 of the build inputs (pipeline/fingerprint.py)
COPIED_FROM_TAG = "cis-release:copied-from"  # on a regional copy: "<region>/<ami-id>" of the source
COPY_TAG_PREFIX = "cis-release:copy:"  # on the source: "cis-release:copy:<region>" = the copy's ID
CHANNEL_TAG_PREFIX = "cis-release:channel:"  # "cis-release:channel:<name>:{at,by,previous}"
REVOKED_TAG = "cis-release:revoked"  # "true" on a revoked AMI and its copies
REVOKED_REASON_TAG = "cis-release:revoked-reason"
REVOKED_AT_TAG = "cis-release:revoked-at"
REVOKED_BY_TAG = "cis-release:revoked-by"
# Validate: where the signed record of the AMI's last validation is (pipeline/evidence/store.py).
ATTESTATION_TAG = "cis:attestation"
ATTESTATION_SHA_TAG = "cis:attestation-sha256"
SIGNING_KEY_TAG = "cis:signing-key"
# The nightly chain's drift record on the AMI it validated (pipeline/orchestration/nightly.py).
DRIFT_FAILED_TAG = "cis-release:failed-checks"  # FAILED check IDs of the last chain validation
DRIFT_COUNTS_TAG = "cis-release:counts"  # passed=N,failed=N,skipped=N of the last chain validation
# What a regional copy takes from its source when promote creates it (keys or ``prefix*``):
# name, provenance, ownership, the validation tags; plus COPIED_FROM_TAG, never release state.
COPIED_TAG_KEYS = (NAME_TAG, f"{AMI_TAG_PREFIX}*", MANAGED_TAG, f"{CIS_TAG_PREFIX}*")


def key_matches(key: str, patterns: Iterable[str]) -> bool:
    """``key`` is one of ``patterns``: an exact key, or a ``prefix*`` (IAM StringLike's reading
    of such a pattern: case-sensitive, ``*`` any run of characters)."""
    return any(key.startswith(p[:-1]) if p.endswith("*") else key == p for p in patterns)
