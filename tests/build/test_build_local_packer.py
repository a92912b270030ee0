"""The real packer binary builds the local template against the local AWS (slow, needs packer).

Four images (AL2023/AL2 x x86_64/arm64) are built in parallel through ``run_build(local=True)``;
the AMIs, their provenance tags and the build instances' run tags are then read back with a
plain boto3 client. Which local AWS served the build is printed (run with ``-s`` to see it).
"""

from __future__ import annotations

import functools
import shutil
import time
from pathlib import Path

import pytest
from _local_aws import LocalEndpoint, eks_base_ami, raw_client

from pipeline.aws import AwsClients
from pipeline.build import run_build, run_process
from pipeline.packer import parse_manifest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("packer") is None, reason="packer binary not installed"),
]

EXPECTED = {
    "al2023-x86_64": ("AMAZON_LINUX_2023", "1.33", "CIS Amazon Linux 2023 Benchmark v1.0.0"),
    "al2023-arm64": ("AMAZON_LINUX_2023", "1.33", "CIS Amazon Linux 2023 Benchmark v1.0.0"),
    "al2-x86_64": ("AMAZON_LINUX_2", "1.32", "CIS Amazon Linux 2 Benchmark v2.0.0"),
    "al2-arm64": ("AMAZON_LINUX_2", "1.32", "CIS Amazon Linux 2 Benchmark v2.0.0"),
}


def test_local_packer_build_registers_tagged_amis(
    tmp_path: Path, local_clients: AwsClients, local_endpoint: LocalEndpoint
) -> None:
    lines: list[str] = []
    started = time.monotonic()
    builds = run_build(
        ["al2023", "al2"],
        ["x86_64", "arm64"],
        level=2,
        local=True,
        out_dir=tmp_path,
        out=lines.append,
        clients=local_clients,
        runner=functools.partial(run_process, timeout=120),
    )
    elapsed = time.monotonic() - started
    print(f"\nlocal AWS: {local_endpoint.kind}; 4 parallel packer builds: {elapsed:.1f}s wall")

    assert sorted(b.name for b in builds) == sorted(EXPECTED)
    (run_id,) = {b.run_id for b in builds}
    ec2 = raw_client("ec2", local_endpoint.url)
    for build in builds:
        platform, k8s, benchmark = EXPECTED[build.name]
        (image,) = ec2.describe_images(ImageIds=[build.ami_id])["Images"]
        assert image["State"] == "available"
        tags = {t["Key"]: t["Value"] for t in image["Tags"]}
        commit = tags.pop("cis-ami:git-commit")
        assert len(commit) == 40 or commit == "unknown"
        assert tags.pop("cis-ami:fingerprint").startswith("sha256:")  # build.tag_builds
        assert tags == {
            "Name": f"eks-cis-{build.name}-k8s{k8s}-l2-{run_id}",
            "cis-ami:source-ami": eks_base_ami(local_endpoint.url, k8s, *build.name.split("-")),
            "cis-ami:kubernetes-version": k8s,
            "cis-ami:platform": platform,
            "cis-ami:architecture": build.name.split("-")[1],
            "cis-ami:hardening-level": "2",
            "cis-ami:benchmark": benchmark,
            "cis-ami:run-id": run_id,
            "cis-ami:built-by": "eks-cis-ami-pipeline",
            "cis-ami:local": "true",
            "cis-pipeline:managed": "true",
        }
        assert image["Name"] == tags["Name"]
        # The AMI ID came from the manifest packer wrote into out_dir.
        manifest = tmp_path / f"{build.name}.manifest.json"
        assert build.manifest_path == manifest.resolve()
        assert [b.ami_id for b in parse_manifest(manifest.read_text())] == [build.ami_id]

    reservations = ec2.describe_instances(
        Filters=[{"Name": "tag:cis-ami:run-id", "Values": [run_id]}]
    )["Reservations"]
    instances = [i for r in reservations for i in r["Instances"]]
    assert len(instances) == 4  # one build instance per image, tagged by run_tags
    assert {i["State"]["Name"] for i in instances} == {"terminated"}
    for name in EXPECTED:
        assert any(line.startswith(f"[{name}] ") and "cleaning up" in line for line in lines)
