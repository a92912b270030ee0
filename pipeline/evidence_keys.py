"""Where the evidence store keeps things (pure): the bucket's name, the key layout and the names
of the objects one validation run writes. ``pipeline/evidence/store.py`` writes by it,
``pipeline/evidence/verify.py`` reads by it, and ``pipeline/aws/iam_policy.py`` derives from it
the only object keys the validate role may write (policies/iam/validate.json).
"""

from __future__ import annotations

BUCKET_PREFIX = "eks-cis-ami-pipeline-evidence-"
LAYOUT = """
s3://<bucket>/<account>/<region>/<ami-id>/<run-id>/      (a resumed run that published: <run-id>~N/)
    evidence/scan.json  evidence/targets.json  evidence/run.json  evidence/results.json
    evidence/checks.json  evidence/cis-report.csv  evidence/node-probe.json
    evidence/coverage.json  evidence/findings.json  evidence/finding-counts.json
    evidence/launched.json  verdict.json  junit.xml  summary.md
    policies/<file>  catalogue.json
    attestation.dsse.json    (the signed record; every other object is one of its inputs)
"""
ENVELOPE = "attestation.dsse.json"
POLICIES = "policies/"  # + the exceptions policy file's name
CATALOGUE = "catalogue.json"
# Under an AMI's prefix, not a run's: promote's record of each regional copy it made
# (``releases/<copy region>/<copy id>.json``), which revoke reads and no tag can remove.
RELEASES = "releases/"
# (path under the run's output folder, key under the run's prefix, content type)
REPORTS: tuple[tuple[str, str, str], ...] = (
    ("evidence/scan.json", "evidence/scan.json", "application/json"),
    ("evidence/targets.json", "evidence/targets.json", "application/json"),
    ("evidence/run.json", "evidence/run.json", "application/json"),
    ("evidence/results.json", "evidence/results.json", "application/json"),
    ("evidence/checks.json", "evidence/checks.json", "application/json"),
    ("evidence/cis-report.csv", "evidence/cis-report.csv", "text/csv"),
    # node readiness (pipeline.node) and package vulnerabilities (pipeline.findings)
    ("evidence/node-probe.json", "evidence/node-probe.json", "application/json"),
    ("evidence/coverage.json", "evidence/coverage.json", "application/json"),
    ("evidence/findings.json", "evidence/findings.json", "application/json"),
    ("evidence/finding-counts.json", "evidence/finding-counts.json", "application/json"),
    ("evidence/launched.json", "evidence/launched.json", "application/json"),
    ("verdict.json", "verdict.json", "application/json"),
    ("junit.xml", "junit.xml", "application/xml"),
    ("summary.md", "summary.md", "text/markdown"),
)
# Every key a run writes under its prefix (``*``: any policy file name), the envelope last.
RUN_OBJECTS: tuple[str, ...] = (
    *(key for _, key, _ in REPORTS),
    f"{POLICIES}*",
    CATALOGUE,
    ENVELOPE,
)


def default_bucket(account: str, region: str) -> str:
    """The bucket ``invoke setup`` creates when none is configured."""
    return f"{BUCKET_PREFIX}{account}-{region}"


def ami_prefix(account: str, region: str, ami_id: str) -> str:
    return f"{account}/{region}/{ami_id}/"


def run_prefix(account: str, region: str, ami_id: str, run_id: str) -> str:
    return f"{ami_prefix(account, region, ami_id)}{run_id}/"


def releases_prefix(account: str, region: str, ami_id: str) -> str:
    """Where promote records each regional copy it made of the AMI (the release history)."""
    return f"{ami_prefix(account, region, ami_id)}{RELEASES}"


def release_key(account: str, region: str, ami_id: str, copy_region: str, copy_id: str) -> str:
    return f"{releases_prefix(account, region, ami_id)}{copy_region}/{copy_id}.json"
