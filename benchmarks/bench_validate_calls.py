"""Benchmark: AWS calls (by operation) and wall time of ``invoke validate`` on the local AWS.

One AMI and three AMIs, each with a 5-minute scan on the local AWS's virtual clock (sleeping
advances it), so the poll count is what a real 5-minute scan costs. Not a test.
Run: python benchmarks/bench_validate_calls.py
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from pipeline.aws import make_clients
from pipeline.aws.images import eks_ami_parameter
from pipeline.catalog import Platform
from pipeline.localaws import LocalAws, local_aws
from pipeline.packer import Arch
from pipeline.validate import Runtime, ValidateSettings, run_validate

ROOT = Path(__file__).resolve().parents[1]


def hardened_ami(aws: LocalAws, platform: Platform, arch: Arch) -> str:
    clients = make_clients()
    base = clients.ssm.get_parameter(Name=eks_ami_parameter("1.32", platform, arch))["Parameter"]
    instance = clients.ec2.run_instances(
        ImageId=base["Value"], InstanceType="t3.micro", MinCount=1, MaxCount=1
    )["Instances"][0]["InstanceId"]
    ami = clients.ec2.create_image(InstanceId=instance, Name=f"bench-{platform.short}-{arch}")
    clients.ec2.terminate_instances(InstanceIds=[instance])
    clients.ec2.create_tags(
        Resources=[ami["ImageId"]],
        Tags=[
            {"Key": "cis-ami:platform", "Value": platform.value},
            {"Key": "cis-ami:hardening-level", "Value": "2"},
        ],
    )
    return ami["ImageId"]


def measure(aws: LocalAws, amis: list[str]) -> tuple[int, dict[str, int], float, float]:
    clients = make_clients()
    clock = [0.0]

    def sleep(seconds: float) -> None:
        clock[0] += seconds
        aws.advance(seconds)

    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        verdict = run_validate(
            ValidateSettings(
                amis=tuple(amis),
                out_dir=Path(out),
                policy_dir=ROOT / "policies/exceptions",
                enable_inspector=True,
            ),
            clients,
            Runtime(echo=lambda _: None, sleep=sleep, clock=lambda: clock[0]),
        )
    assert verdict.verdict.value == "PASS", verdict.errors
    return clients.calls.total, clients.calls.as_dict(), time.perf_counter() - start, clock[0]


def main() -> None:
    with local_aws(scenario={"scan": {"duration_s": 300}}) as aws:
        os.environ.update(aws.env())
        one = [hardened_ami(aws, Platform.AMAZON_LINUX_2023, Arch.X86_64)]
        three = [
            hardened_ami(aws, Platform.AMAZON_LINUX_2023, Arch.X86_64),
            hardened_ami(aws, Platform.AMAZON_LINUX_2023, Arch.ARM64),
            hardened_ami(aws, Platform.AMAZON_LINUX_2, Arch.X86_64),
        ]
        for label, amis in (("1 AMI", one), ("3 AMIs", three)):
            total, by_op, wall, virtual = measure(aws, amis)
            polls = by_op.get("inspector2:ListCisScans", 0)
            print(
                f"{label:7} {total:3d} AWS calls ({polls} ListCisScans polls), "
                f"{virtual:.0f} s of virtual waiting, {wall:.2f} s wall"
            )
            for op, n in by_op.items():
                print(f"          {n:3d} {op}")
    print("goal: 1 AMI with a 5-minute scan <= 60 calls; 3 AMIs well under 3x")


if __name__ == "__main__":
    main()
