"""The help text of every task's flags (``invoke --help TASK``), by task, so that one flag reads
the same in every task; ``tasks.py`` declares the tasks with them."""

from __future__ import annotations

JSON = "Print the result as one JSON document on stdout (progress goes to stderr)."
DRY_RUN = "Print the plan; change nothing."
OUT = "Folder for reports and evidence (default: ./out)."
LEVEL = "CIS level: 1 or 2 (default from invoke.yaml: 2)."
TODAY = "Judge expiry as of this date, YYYY-MM-DD (default: today, UTC)."
EVIDENCE_BUCKET = "S3 evidence bucket (default: invoke.yaml, $CIS_EVIDENCE_BUCKET)."
PUBLIC_KEY = "PEM public key: verify the record offline (no kms:Verify)."
CHANNEL = "Release channel from invoke.yaml pipeline.release.channels (default stable)."
VAR = (
    "NAME=VALUE for a variable of packer/variables.pkr.hcl (repeatable; overrides "
    "invoke.yaml pipeline.build.vars)."
)

NETWORK = {
    "subnet_id": "Subnet to launch in (default: invoke.yaml pipeline.network, else a default "
    "subnet in a zone offering the instance type); it must reach SSM.",
    "security_group_id": "Security group tagged cis-pipeline:managed=true (default: a "
    "temporary group, no ingress).",
    "public_ip": "true, false or auto: a public IP for the instances (default: invoke.yaml; "
    "auto: the subnet's own setting).",
}

_BUILD = {
    "platform": "al2023 and/or al2, comma-separated (default from invoke.yaml: al2023).",
    "arch": "x86_64 and/or arm64, comma-separated (default: x86_64).",
    "k8s_version": "Kubernetes version of the EKS base AMI (default: 1.33 AL2023, 1.32 AL2).",
    "level": LEVEL,
    "local": "Run against the local AWS with Debian's packer (no AWS account needed).",
    "var": VAR,
    **NETWORK,
    "json": JSON,
}

HELP: dict[str, dict[str, str]] = {
    "policy.validate": {
        "policy": "Policy file to validate (repeatable; default: all under policies/exceptions/).",
        "today": TODAY,
        "json": JSON,
    },
    "gate": {
        "results": "GetCisScanResultDetails output: one response, a list of pages or of items.",
        "policy": "Exceptions policy to judge with (repeatable; default: by the platform).",
        "today": TODAY,
        "out": "Folder for verdict.json, junit.xml and summary.md (default: ./out).",
        "level": "The level the scan ran at, 1 or 2 (default: scan.json beside the results).",
        "json": JSON,
    },
    "validate": {
        "ami": "AMI ID(s) to validate, comma-separated; all are scanned in one scan.",
        "level": LEVEL,
        "out": OUT,
        "run_id": "Resume this run: reuse its instances and scan configuration.",
        "instance_profile": "Instance profile with the SSM core and Inspector CIS policies.",
        "subnet_id": NETWORK["subnet_id"],
        "enable_inspector": "Enable Inspector EC2 scanning if it is not enabled.",
        "keep": "Keep the test instances after the scan (debugging).",
        "ssm_timeout": "Seconds to wait for SSM to see the instances Online (900).",
        "scan_timeout": "Seconds to wait for the scan to finish (2700).",
        "evidence_bucket": EVIDENCE_BUCKET,
        "security_group_id": NETWORK["security_group_id"],
        "public_ip": NETWORK["public_ip"],
        "json": JSON,
    },
    "build": {**_BUILD, "out": "Folder for the Packer manifests (default: ./out/build)."},
    "build-and-validate": {
        **_BUILD,
        "out": OUT,
        "scenario": "With --local: a failure scenario for the local AWS (YAML/JSON).",
        "enable_inspector": "Enable Inspector EC2 scanning if needed (implied by --local).",
        "skip_unchanged": "Unchanged inputs: re-validate the newest AMI instead of building.",
    },
    "promote": {
        "ami": "The AMI to promote (its signed validation record must verify).",
        "channel": CHANNEL,
        "regions": "Comma-separated target regions (default: invoke.yaml, else this region).",
        "accounts": "Comma-separated 12-digit account IDs to share the AMI and snapshots with "
        "(default: invoke.yaml pipeline.release.accounts).",
        "dry_run": DRY_RUN,
        "public_key": PUBLIC_KEY,
        "json": JSON,
    },
    "setup": {
        "dry_run": DRY_RUN,
        "evidence_bucket": "S3 evidence bucket (default: invoke.yaml, CIS_EVIDENCE_BUCKET, or "
        "eks-cis-ami-pipeline-evidence-<account>-<region>).",
        "manage_instance_profile": "Also create the test-instance role and instance profile.",
        "object_lock": "Create the bucket with S3 Object Lock enabled (only at creation).",
        "public_key_out": "Write the signing key's PEM public key here (for offline verify).",
        "image_keys": "Create (or check a configured) KMS key per release region that the "
        "release accounts may use; record it in invoke.yaml pipeline.release.kms_keys.",
        "json": JSON,
    },
    "verify": {
        "ami": "The AMI whose signed validation record to verify.",
        "public_key": PUBLIC_KEY,
        "json": "Print the decoded statement and every check as JSON.",
        "regate": "Re-run the gate on the stored evidence and policy as of the record's date.",
        "level": "The CIS level the record must attest (default from invoke.yaml: 2).",
        "evidence_bucket": EVIDENCE_BUCKET,
        "export_public_key": "Write the signing key's PEM public key to this file and stop.",
    },
    "revoke": {
        "ami": "The AMI to revoke (its regional copies are found from its tags).",
        "reason": "Why (recorded in tags and the channel history).",
        "channel": "Only roll back this channel (default: every configured channel).",
        "dry_run": DRY_RUN,
        "allow_stale_rollback": "Roll back to an image whose verified record is older than "
        "max_age_days or under another exceptions policy (printed as a WARNING).",
        "json": JSON,
    },
    "reap": {
        "stale_minutes": "Reap a run once its newest heartbeat is this old (default 10).",
        "dry_run": "Only list what would be deleted.",
        "images": "Also deregister old unpromoted pipeline AMIs (pipeline.reap.retention).",
        "json": JSON,
    },
    "channels": {
        "channel": "Only this channel (default: every channel found under the prefix).",
        "json": JSON,
    },
    "audit": {
        "channel": "Only this channel (default: every channel found under the prefix).",
        "dry_run": "List the channel images it would re-validate; validate nothing.",
        "out": OUT,
        "enable_inspector": "Enable Inspector EC2 scanning first if it is off (as validate).",
        "json": JSON,
    },
    "local-aws": {
        "port": "Port on 127.0.0.1 (default: a free one).",
        "scenario": "A failure scenario to rehearse (YAML/JSON; see pipeline/localaws/README.md).",
    },
    "hardening-coverage": {
        "platform": "al2023 or al2 (default from invoke.yaml: al2023).",
        "level": LEVEL,
        "json": "Print JSON instead of text.",
    },
    "iam-policy": {"job": "build, validate, promote, reap or setup (default: all, keyed by job)."},
    "bench": {
        "json": "Print the numbers as JSON (docs/benchmarks.md records them).",
        "gate_targets": "Targets of the gate benchmark (x ~243 rows each; default 1000).",
    },
    "test": {"k": "Only tests matching this pytest -k expression.", "args": "Extra pytest args."},
    "catalogue.refresh": {
        "scan_arn": "A COMPLETED Inspector CIS scan (LEVEL_2 for --write) of a hardened image.",
        "platform": "al2023 or al2 (default: the only platform the scan has checks for).",
        "write": "Rewrite the shipped catalogue from the scan, then re-check the policies.",
        "json": JSON,
    },
}


def of(task: str) -> dict[str, str]:
    """A copy (Invoke pops the entries it uses) of ``task``'s flag help."""
    return dict(HELP[task])
