"""How fast the local AWS starts and answers (a script that prints numbers, not a test).

    python benchmarks/bench_localaws.py [--rounds 5]

Start-up is measured in fresh interpreters (module imports included): until the port answers
``/_localaws/health``, until warm-up is done (moto imported, us-east-1/us-west-2 seeded, IAM
managed policies loaded), and until a boto3 EC2 call made right after ``start()`` returns.
Then, in this process: 100 CIS API calls over HTTP (boto3), and reset + first request after it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHILD = """
import json, time, urllib.request
t0 = time.perf_counter()
import boto3
from pipeline.localaws import LocalAws
t_import = time.perf_counter() - t0
aws = LocalAws()
t1 = time.perf_counter()
aws.start()
with urllib.request.urlopen(aws.endpoint + "/_localaws/health") as r:
    r.read()
t_listen = time.perf_counter() - t1
ec2 = boto3.client("ec2", endpoint_url=aws.endpoint, region_name="us-east-1",
                   aws_access_key_id="testing", aws_secret_access_key="testing")
ec2.describe_instances()  # waits for the warm-up, then served by moto
t_first = time.perf_counter() - t1
aws.wait_ready()
t_ready = time.perf_counter() - t1
aws.stop()
times = {"import": t_import, "listen": t_listen, "first_ec2_call": t_first, "ready": t_ready}
print(json.dumps(times))
"""


def start_times(rounds: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {}
    for _ in range(rounds):
        command = [sys.executable, "-c", CHILD]
        out = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=True)
        for key, value in json.loads(out.stdout.splitlines()[-1]).items():
            samples.setdefault(key, []).append(value)
    return samples


def cis_calls(count: int = 100) -> dict[str, float]:
    import boto3

    from pipeline.localaws import LocalAws
    from pipeline.localaws.clock import ManualClock

    aws = LocalAws(clock=ManualClock()).start().wait_ready()
    try:

        def client(service: str) -> Any:
            return boto3.client(
                service,
                endpoint_url=aws.endpoint,
                region_name="us-east-1",
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )

        ec2, iam, ssm, insp = (client(s) for s in ("ec2", "iam", "ssm", "inspector2"))
        instance = _scanned_instance(aws, ec2, iam, ssm)
        arn = insp.create_cis_scan_configuration(
            scanName="bench",
            securityLevel="LEVEL_2",
            schedule={"oneTime": {}},
            targets={"accountIds": ["SELF"], "targetResourceTags": {"bench": ["1"]}},
        )["scanConfigurationArn"]
        aws.advance(10)
        flt = {"scanConfigurationArnFilters": [{"comparison": "EQUALS", "value": arn}]}
        scan_arn = insp.list_cis_scans(filterCriteria=flt)["scans"][0]["scanArn"]
        calls = [
            lambda: insp.list_cis_scans(filterCriteria=flt),
            lambda: insp.list_cis_scan_configurations(),
            lambda: insp.list_cis_scan_results_aggregated_by_target_resource(scanArn=scan_arn),
            lambda: insp.list_cis_scan_results_aggregated_by_checks(scanArn=scan_arn),
            lambda: insp.get_cis_scan_result_details(
                scanArn=scan_arn, targetResourceId=instance, accountId=aws.account_id
            ),
        ]
        t = time.perf_counter()
        for index in range(count):
            calls[index % len(calls)]()
        mixed = time.perf_counter() - t
        t = time.perf_counter()
        for _ in range(count):
            insp.list_cis_scans()
        simple = time.perf_counter() - t
        t = time.perf_counter()
        aws.reset()
        reset = time.perf_counter() - t
        t = time.perf_counter()
        ec2.describe_instances()
        after_reset = time.perf_counter() - t
        return {
            f"{count} CIS calls, mixed (incl. 243-row details pages)": mixed,
            f"{count} ListCisScans calls": simple,
            "reset()": reset,
            "first EC2 call after reset (re-seeds the region)": after_reset,
        }
    finally:
        aws.stop()


def _scanned_instance(aws: Any, ec2: Any, iam: Any, ssm: Any) -> str:
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ec2.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    iam.create_role(RoleName="bench", AssumeRolePolicyDocument=json.dumps(trust))
    for name in ("AmazonSSMManagedInstanceCore", "AmazonInspector2ManagedCisPolicy"):
        iam.attach_role_policy(RoleName="bench", PolicyArn=f"arn:aws:iam::aws:policy/{name}")
    iam.create_instance_profile(InstanceProfileName="bench")
    iam.add_role_to_instance_profile(InstanceProfileName="bench", RoleName="bench")
    name = (
        "/aws/service/eks/optimized-ami/1.32/amazon-linux-2023/x86_64/standard/recommended/image_id"
    )
    image = ssm.get_parameter(Name=name)["Parameter"]["Value"]
    instance = ec2.run_instances(
        ImageId=image,
        MinCount=1,
        MaxCount=1,
        IamInstanceProfile={"Name": "bench"},
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "bench", "Value": "1"}]}],
    )["Instances"][0]["InstanceId"]
    aws.advance(2)
    return str(instance)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="fresh-process start-ups to time")
    args = parser.parse_args()
    print(f"start-up, {args.rounds} fresh processes (median / max, seconds):")
    for key, values in start_times(args.rounds).items():
        print(f"  {key:<16} {statistics.median(values):6.3f} / {max(values):6.3f}")
    print("in process (seconds):")
    for key, value in cis_calls().items():
        print(f"  {key:<55} {value:6.3f}")


if __name__ == "__main__":
    main()
