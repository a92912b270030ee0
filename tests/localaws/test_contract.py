"""Contract: every emulated operation, driven through real boto3 clients and paginators, answers
with bodies that satisfy botocore's output shapes (required members, types, enums, patterns,
limits, and no member the model does not know), both on the wire and as botocore parsed them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pipeline.catalog import Platform
from pipeline.localaws import model

World = Any
ACCOUNT = "123456789012"


class Recorder:
    """Keeps the raw body and the parsed response of every call a client makes."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, bytes, dict[str, Any]]] = []

    def attach(self, client: Any) -> None:
        service = client.meta.service_model.service_name
        client.meta.events.register(f"after-call.{service}", self._record)

    def detach(self, client: Any) -> None:
        service = client.meta.service_model.service_name
        client.meta.events.unregister(f"after-call.{service}", self._record)

    def _record(
        self, http_response: Any, parsed: dict[str, Any], model: Any, **kwargs: Any
    ) -> None:
        self.calls.append(
            (model.service_model.service_name, model.name, http_response.content, parsed)
        )


@pytest.fixture
def recorder(world: World) -> Any:
    rec = Recorder()
    for client in (world.c.inspector, world.c.ssm):
        rec.attach(client)
    yield rec
    for client in (world.c.inspector, world.c.ssm):
        rec.detach(client)


def _drive_every_operation(world: World) -> None:
    insp, ssm, aws = world.c.inspector, world.c.ssm, world.aws
    insp.enable(resourceTypes=["EC2"])  # no accountIds: the caller's account
    insp.batch_get_account_status()
    aws.advance(1)
    insp.batch_get_account_status(accountIds=[aws.account_id, "111122223333"])
    insp.enable(accountIds=["111122223333"], resourceTypes=["ECR"])

    hardened = world.hardened(Platform.AMAZON_LINUX_2023, 2)
    world.launch(ami=hardened, tags={"cis-scan": "run-1", "n": "1"})
    world.launch(ami=world.base_ami("amazon-linux-2", "1.32"), tags={"cis-scan": "run-1", "n": "2"})
    world.launch(tags={"cis-scan": "run-1", "n": "3"}, policies=[world.SSM_POLICY])
    world.launch(ami="ami-ekslinux", tags={"cis-scan": "run-1", "n": "4"})
    world.launch(tags={"cis-scan": "run-1", "n": "5"}, policies=None)
    aws.advance(2)
    for _ in ssm.get_paginator("describe_instance_information").paginate(
        PaginationConfig={"PageSize": 5}
    ):
        pass
    ssm.describe_instance_information(
        Filters=[{"Key": "tag:n", "Values": ["1", "2"]}], MaxResults=5
    )
    ssm.describe_instance_information(
        InstanceInformationFilterList=[{"key": "PingStatus", "valueSet": ["Online"]}]
    )

    config = insp.create_cis_scan_configuration(
        scanName="contract",
        securityLevel="LEVEL_2",
        schedule={"oneTime": {}},
        targets={"accountIds": ["SELF"], "targetResourceTags": {"cis-scan": ["run-1"]}},
        tags={"owner": "pipeline", "empty": ""},
    )["scanConfigurationArn"]
    weekly = insp.create_cis_scan_configuration(
        scanName="weekly",
        securityLevel="LEVEL_1",
        schedule={
            "weekly": {"startTime": {"timeOfDay": "04:30", "timezone": "Etc/UTC"}, "days": ["SUN"]}
        },
        targets={"accountIds": ["ALL_ACCOUNTS"], "targetResourceTags": {"nothing": ["here"]}},
    )["scanConfigurationArn"]
    insp.update_cis_scan_configuration(scanConfigurationArn=weekly, scanName="weekly-2")
    for _ in insp.get_paginator("list_cis_scan_configurations").paginate(
        PaginationConfig={"PageSize": 1}
    ):
        pass
    insp.list_cis_scan_configurations(sortBy="SCAN_CONFIGURATION_ARN", sortOrder="DESC")

    flt = {"scanConfigurationArnFilters": [{"comparison": "EQUALS", "value": config}]}
    (scan_arn,) = [s["scanArn"] for s in insp.list_cis_scans(filterCriteria=flt)["scans"]]
    insp.list_cis_scan_results_aggregated_by_target_resource(scanArn=scan_arn)  # in progress
    insp.list_cis_scan_results_aggregated_by_checks(scanArn=scan_arn)  # in progress: empty
    insp.get_cis_scan_report(scanArn=scan_arn, reportFormat="CSV")  # in progress
    aws.advance(10)

    for _ in insp.get_paginator("list_cis_scans").paginate(
        filterCriteria={"scanStatusFilters": [{"comparison": "EQUALS", "value": "COMPLETED"}]},
        sortBy="FAILED_CHECKS",
        PaginationConfig={"PageSize": 1},
    ):
        pass
    for _ in insp.get_paginator("list_cis_scan_results_aggregated_by_checks").paginate(
        scanArn=scan_arn,
        sortBy="FAILED_COUNTS",
        sortOrder="DESC",
        PaginationConfig={"PageSize": 100},
    ):
        pass
    targets = []
    for page in insp.get_paginator("list_cis_scan_results_aggregated_by_target_resource").paginate(
        scanArn=scan_arn, PaginationConfig={"PageSize": 2}
    ):
        targets += [t["targetResourceId"] for t in page["targetResourceAggregations"]]
    for target in targets:
        for _ in insp.get_paginator("get_cis_scan_result_details").paginate(
            scanArn=scan_arn,
            targetResourceId=target,
            accountId=aws.account_id,
            PaginationConfig={"PageSize": 100},
        ):
            pass
    insp.get_cis_scan_result_details(
        scanArn=scan_arn,
        targetResourceId=targets[0],
        accountId=aws.account_id,
        filterCriteria={"findingStatusFilters": [{"comparison": "EQUALS", "value": "PASSED"}]},
        sortBy="STATUS",
    )
    insp.get_cis_scan_report(scanArn=scan_arn, reportFormat="CSV")
    insp.get_cis_scan_report(scanArn=scan_arn)  # PDF, the default
    insp.delete_cis_scan_configuration(scanConfigurationArn=weekly)
    insp.disable(resourceTypes=["EC2"])
    insp.disable()


PROBE = "# node-probe\nprintf 'NODE-PROBE|1|14\\n'"
LIES = {
    "node": {"fail": {"node.time.sync": "chronyd inactive"}, "padding": 30_000},
    "vulnerabilities": {
        "publish": ["CVE-2026-0001"],
        "drop": ["CVE-2025-90101"],
        "conflicting_duplicate": {"CVE-2025-90102": "LOW"},
        "other_resource": ["CVE-2025-90109"],
        "suppressed": ["CVE-2025-90104"],
        "leftover_token": True,
    },
}


def _drive_run_command_and_package_scan(world: World) -> None:
    """SSM Run Command and Inspector's EC2 package scan (issue 17), truthful and lying."""
    insp, ssm, aws = world.c.inspector, world.c.ssm, world.aws
    for scenario in (None, LIES, {"node": {"command": {"outcome": "Failed"}}}):
        aws.load_scenario(scenario)
        aws.emulation.accounts.activate(aws.region)
        hardened = world.hardened(Platform.AMAZON_LINUX_2023, 2)
        ids = [world.launch(ami=hardened, tags={"issue": "17"})[0], world.launch()[0]]
        aws.advance(2)
        insp.list_coverage(
            filterCriteria={"scanType": [{"comparison": "EQUALS", "value": "PACKAGE"}]}
        )
        command = ssm.send_command(
            InstanceIds=ids,
            DocumentName="AWS-RunShellScript",
            Parameters={"commands": [PROBE], "executionTimeout": ["600"]},
            TimeoutSeconds=300,
            Comment="node probe",
        )["Command"]["CommandId"]
        for step in (0.5, 0.5, 10):
            aws.advance(step)
            ssm.get_command_invocation(CommandId=command, InstanceId=ids[0])
            ssm.list_command_invocations(CommandId=command, Details=True)
        for _ in ssm.get_paginator("list_command_invocations").paginate(
            PaginationConfig={"PageSize": 1}
        ):
            pass
        other = ssm.send_command(
            InstanceIds=ids[:1], DocumentName="AWS-RunShellScript", Parameters={"commands": ["id"]}
        )["Command"]["CommandId"]
        aws.advance(1)
        ssm.cancel_command(CommandId=other)
        ssm.get_command_invocation(CommandId=other, InstanceId=ids[0])
        for _ in insp.get_paginator("list_coverage").paginate(PaginationConfig={"PageSize": 1}):
            pass
        pages = insp.list_findings(sortCriteria={"field": "SEVERITY", "sortOrder": "DESC"})
        while pages.get("nextToken") and pages["findings"]:
            pages = insp.list_findings(
                sortCriteria={"field": "SEVERITY", "sortOrder": "DESC"},
                nextToken=pages["nextToken"],
            )
        insp.list_findings(
            filterCriteria={"resourceId": [{"comparison": "EQUALS", "value": ids[1]}]}
        )
        insp.list_finding_aggregations(
            aggregationType="AWS_EC2_INSTANCE",
            aggregationRequest={"ec2InstanceAggregation": {"sortBy": "CRITICAL"}},
        )


def _drive_kms(kms: Any, recorder: Recorder) -> None:
    """KMS Sign/Verify with MessageType=DIGEST (emulated; moto ignores MessageType). CreateKey
    is moto's (not recorded: its answer is moto's business)."""
    key = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    recorder.attach(kms)
    digest = bytes(range(32))
    common = {"KeyId": key, "MessageType": "DIGEST", "SigningAlgorithm": "ECDSA_SHA_256"}
    signature = kms.sign(Message=digest, **common)["Signature"]
    assert kms.verify(Message=digest, Signature=signature, **common)["SignatureValid"]


def _problems(service: str, operation: str, body: Any, *, output: bool = True) -> list[str]:
    shape = model.operation(service, operation).output_shape
    return [f"{operation}: {p}" for p in model.check(shape, body, output=output)]


def test_every_emulated_operation_answers_within_its_output_shape(
    world: World, recorder: Recorder
) -> None:
    _drive_every_operation(world)
    _drive_run_command_and_package_scan(world)
    _drive_kms(world.client(world.aws.endpoint, "kms"), recorder)
    raw_problems: list[str] = []
    parsed_problems: list[str] = []
    for service, operation, raw, parsed in recorder.calls:
        raw_problems += _problems(service, operation, json.loads(raw))
        parsed_problems += _problems(service, operation, parsed)
    assert raw_problems == []
    assert parsed_problems == []

    exercised = {(service, operation) for service, operation, _, _ in recorder.calls}
    emulated = set(world.aws.emulation.handlers)
    assert emulated - exercised == set(), "every emulated operation must be driven by this test"
    assert len(recorder.calls) > 30


def test_views_that_lie_still_answer_within_their_output_shapes(
    world: World, recorder: Recorder
) -> None:
    """The cross-check knobs (rows swapped, per-check view and report restated) change statuses
    only: every answer stays a valid one."""
    world.aws.load_scenario(
        {
            "results": {
                "swap_status": {"1.1.1.1": "3.2.1"},
                "aggregated_status": {"1.1.1.2": "SKIPPED"},
                "report_status": {"1.1.1.3": "FAILED"},
            }
        }
    )
    (instance,) = world.launch(ami=world.hardened(Platform.AMAZON_LINUX_2023, 2))
    scan_arn = world.scan()
    world.details(scan_arn, instance)
    insp = world.c.inspector
    for _ in insp.get_paginator("list_cis_scan_results_aggregated_by_checks").paginate(
        scanArn=scan_arn
    ):
        pass
    insp.list_cis_scan_results_aggregated_by_target_resource(scanArn=scan_arn)
    insp.get_cis_scan_report(scanArn=scan_arn, reportFormat="CSV")
    operations = {operation for _, operation, _, _ in recorder.calls}
    assert {
        "GetCisScanResultDetails",
        "ListCisScanResultsAggregatedByChecks",
        "GetCisScanReport",
    } <= operations
    problems = [
        problem
        for service, operation, raw, parsed in recorder.calls
        for problem in _problems(service, operation, json.loads(raw))
        + _problems(service, operation, parsed)
    ]
    assert problems == []


def test_the_validator_would_catch_a_broken_response() -> None:
    """The contract test can fail: a response missing required members, with an out-of-enum
    status, an unknown member and a malformed finding ARN breaks the shape."""
    bad = {
        "scanResultDetails": [
            {"status": "DONE", "findingArn": "arn:aws:inspector2:x", "statusCounts": {}},
            {"scanArn": f"arn:aws:inspector2:us-east-1:{ACCOUNT}:owner/{ACCOUNT}/cis-scan/nope"},
        ],
        "nextToken": 5,
    }
    problems = "\n".join(_problems("inspector2", "GetCisScanResultDetails", bad))
    for expected in (
        "1.member.scanArn' failed to satisfy constraint: Member must not be null",
        "enum value set: [PASSED, FAILED, SKIPPED]",
        "1.member.statusCounts' failed to satisfy constraint: Member is not in the model",
        "1.member.findingArn' failed to satisfy constraint: Member must satisfy regular",
        "2.member.scanArn' failed to satisfy constraint: Member must satisfy regular",
        "nextToken' failed to satisfy constraint: Member must be a string",
    ):
        assert expected in problems


def test_empty_result_lists_declared_min_1_are_left_out(world: World) -> None:
    uuid = "00000000-0000-4000-8000-000000000000"
    arn = f"arn:aws:inspector2:us-east-1:{ACCOUNT}:owner/{ACCOUNT}/cis-scan/{uuid}"
    response = world.c.inspector.list_cis_scan_results_aggregated_by_checks(scanArn=arn)
    assert "checkAggregations" not in response
    assert world.c.inspector.list_cis_scans()["scans"] == []  # min 0: present, empty
