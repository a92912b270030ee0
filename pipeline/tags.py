"""Tag keys the pipeline writes and trusts, in one place.

Ownership: everything the pipeline creates carries ``MANAGED_TAG=MANAGED_VALUE`` plus its run
ID (``RUN_TAG`` for validation resources, ``BUILD_RUN_TAG`` for build resources). The reaper
touches only resources that carry both, matched exactly (case and white space included).
Tags are a convenience for people; the signed validation record is the source of truth.
"""

from __future__ import annotations

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
