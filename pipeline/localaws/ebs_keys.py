"""EBS encryption of AMI copies and sharing, as AWS enforces it (moto ignores both):

* ``CopyImage`` encrypts the copy's snapshots with ``KmsKeyId``, else with the region's
  AWS-managed key ``alias/aws/ebs``; a key of another region, or one that does not exist or
  is not enabled, is refused (EC2 copies only with a usable key of the destination region).
* Sharing a snapshot, or an image whose snapshots, the AWS-managed key encrypts is refused
  with ``OperationNotPermitted``, the error AWS documents ("Encrypted snapshots with EBS
  default key cannot be shared"): https://docs.aws.amazon.com/ebs/latest/userguide/modify-snapshot-attribute.html
* ``RunInstances`` by another account (header ``x-moto-account-id``) of an image of this
  account needs launch permission and a key policy (or grant) admitting that account
  (``pipeline.kms_policy.admission``). AWS starts such an instance and terminates it with
  ``Client.InternalError``; the local AWS refuses the request with that code instead.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs

from pipeline.kms_policy import KeyFacts, admission, key_region
from pipeline.localaws import moto_state
from pipeline.localaws.wire import AwsRequest, ServiceError

DEFAULT_KEY_SHARED = "Encrypted snapshots with EBS default key cannot be shared"


def _form(request: AwsRequest) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.body.decode("utf-8", "replace")).items()}


class EbsKeys:
    """The encryption of the snapshots of one account's AMIs, in every region."""

    def __init__(self, account_id: str) -> None:
        self.account_id = account_id
        self._pending: dict[tuple[str, str], str] = {}  # (region, source AMI) -> key ARN

    def reset(self) -> None:
        self._pending.clear()

    # -- before moto -------------------------------------------------------------------------

    def check(self, request: AwsRequest, caller: str) -> None:
        """Raise ServiceError when AWS would refuse ``request`` (see the module doc)."""
        region = request.region or "us-east-1"
        check = {
            "CopyImage": self._copy,
            "ModifySnapshotAttribute": self._share_snapshot,
            "ModifyImageAttribute": self._share_image,
            "RunInstances": self._launch,
        }.get(request.operation or "")
        if request.service == "ec2" and check is not None:
            check(region, _form(request), caller)

    def _copy(self, region: str, form: dict[str, str], caller: str) -> None:
        wanted = form.get("KmsKeyId")
        source, source_region = form.get("SourceImageId", ""), form.get("SourceRegion", region)
        inherited = {
            moto_state.snapshot_key(self.account_id, source_region, s)
            for s in moto_state.image_snapshots(self.account_id, source_region, source)
        } - {None}
        if not wanted and form.get("Encrypted") != "true" and not inherited:
            return  # an unencrypted copy of an unencrypted image
        if not wanted and source_region == region and len(inherited) == 1:
            key = str(next(iter(inherited)))  # same region: the source's key
        elif not wanted:
            key = moto_state.aws_managed_ebs_key(self.account_id, region)
        else:
            where = key_region(wanted)
            if where is not None and where != region:
                raise ServiceError(
                    "InvalidParameterValue",
                    f"The KMS key {wanted} is in {where}; CopyImage into {region} needs a key "
                    f"of {region}",
                )
            found = moto_state.kms_key(self.account_id, region, wanted)
            if found is None:
                raise ServiceError("InvalidParameterValue", f"KMS key {wanted} does not exist")
            if found.state != "Enabled":
                raise ServiceError(
                    "KMSKeyNotAccessibleFault", f"KMS key {found.arn} is {found.state}"
                )
            key = found.arn
        self._pending[(region, source)] = key

    def _default_keyed(self, region: str, snapshots: list[str]) -> bool:
        ebs = moto_state.kms_key(self.account_id, region, "alias/aws/ebs")
        keys = {moto_state.snapshot_key(self.account_id, region, s) for s in snapshots}
        return ebs is not None and ebs.arn in keys

    def _share_snapshot(self, region: str, form: dict[str, str], caller: str) -> None:
        adding = form.get("OperationType") == "add" or any(
            k.startswith("CreateVolumePermission.Add") for k in form
        )
        snapshot = form.get("SnapshotId", "")
        if adding and self._default_keyed(region, [snapshot]):
            raise ServiceError("OperationNotPermitted", DEFAULT_KEY_SHARED)

    def _share_image(self, region: str, form: dict[str, str], caller: str) -> None:
        adding = any(k.startswith("LaunchPermission.Add") for k in form)
        snapshots = moto_state.image_snapshots(self.account_id, region, form.get("ImageId", ""))
        if adding and self._default_keyed(region, snapshots):
            raise ServiceError("OperationNotPermitted", DEFAULT_KEY_SHARED)

    def _launch(self, region: str, form: dict[str, str], caller: str) -> None:
        image = form.get("ImageId", "")
        users = moto_state.image_launch_users(self.account_id, region, image)
        if caller == self.account_id or users is None:
            return  # the owner's own launch, or an image of another account
        if caller not in users and "all" not in users:
            raise ServiceError("InvalidAMIID.NotFound", f"The image id '[{image}]' does not exist")
        for snapshot in moto_state.image_snapshots(self.account_id, region, image):
            arn = moto_state.snapshot_key(self.account_id, region, snapshot)
            key = moto_state.kms_key(self.account_id, region, arn) if arn else None
            if arn is None or key is None:
                continue
            why = self._why_not(key, caller, region)
            if why is not None:
                raise ServiceError(
                    "Client.InternalError",
                    f"Client error on launch: account {caller} cannot use KMS key {key.arn} of "
                    f"snapshot {snapshot} ({why}); AWS terminates such an instance at launch",
                )

    def _why_not(self, key: moto_state.KeyView, account: str, region: str) -> str | None:
        if key.manager != "CUSTOMER":
            return "an AWS-managed key"
        if key.state != "Enabled":
            return f"the key is {key.state}"
        try:
            policy = json.loads(key.policy) if key.policy else {}
        except ValueError:
            policy = {}
        grants = tuple(
            (grantee, tuple(ops))
            for grantee, ops in moto_state.key_grants(self.account_id, region, key.arn)
        )
        facts = KeyFacts(key.arn, key.manager, key.state, policy=policy, grants=grants)
        return admission(facts, account, region)

    # -- after moto --------------------------------------------------------------------------

    def after_copy(self, request: AwsRequest) -> None:
        """Encrypt the new copy's snapshots with the key ``check`` chose."""
        region = request.region or "us-east-1"
        source = _form(request).get("SourceImageId", "")
        key = self._pending.pop((region, source), None)
        if key is None:
            return
        for image in moto_state.copies_of(self.account_id, region, source):
            for snapshot in moto_state.image_snapshots(self.account_id, region, image):
                if moto_state.snapshot_key(self.account_id, region, snapshot) is None:
                    moto_state.encrypt_snapshot(self.account_id, region, snapshot, key)
