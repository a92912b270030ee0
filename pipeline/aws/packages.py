"""Amazon Inspector's package scan of EC2 instances: coverage, findings and their counts, each
page kept as the API returned it (the gate, ``pipeline.findings``, judges them)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pipeline.aws import AwsClients, ClientError, aws_error

IAM_ACTIONS: tuple[str, ...] = (
    "inspector2:ListCoverage",
    "inspector2:ListFindings",
    "inspector2:ListFindingAggregations",
)
MAX_PAGES = 200  # 20,000 findings for one instance; past that the last page keeps its token
PAGE_SIZE = 100


def _equals(values: Sequence[str]) -> list[dict[str, str]]:
    return [{"comparison": "EQUALS", "value": v} for v in values]


def _all_pages(call: Callable[..., Any], what: str, **params: Any) -> list[dict[str, Any]]:
    """Every page, tokens kept: a last page with a token means pages were left unread."""
    out: list[dict[str, Any]] = []
    token: str | None = None
    try:
        while len(out) < MAX_PAGES:
            resp = dict(call(**params, **({"nextToken": token} if token else {})))
            resp.pop("ResponseMetadata", None)
            out.append(resp)
            token = resp.get("nextToken")
            if not token:
                break
    except ClientError as exc:
        raise aws_error(f"inspector2:{what}", exc) from exc
    return out


def coverage(clients: AwsClients, instance_ids: Sequence[str]) -> list[dict[str, Any]]:
    """``ListCoverage`` of the instances' package scans (one request for all of them)."""
    return _all_pages(
        clients.inspector2.list_coverage,
        "ListCoverage",
        filterCriteria={
            "resourceId": _equals(instance_ids),
            "resourceType": _equals(["AWS_EC2_INSTANCE"]),
            "scanType": _equals(["PACKAGE"]),
        },
        maxResults=PAGE_SIZE,
    )


def findings(clients: AwsClients, instance_id: str) -> list[dict[str, Any]]:
    """``ListFindings``: the instance's ACTIVE and SUPPRESSED package vulnerabilities."""
    return _all_pages(
        clients.inspector2.list_findings,
        "ListFindings",
        filterCriteria={
            "resourceId": _equals([instance_id]),
            "findingType": _equals(["PACKAGE_VULNERABILITY"]),
            "findingStatus": _equals(["ACTIVE", "SUPPRESSED"]),
        },
        maxResults=PAGE_SIZE,
    )


def counts(clients: AwsClients, instance_id: str) -> list[dict[str, Any]]:
    """``ListFindingAggregations`` of type ``AWS_EC2_INSTANCE`` for the instance."""
    return _all_pages(
        clients.inspector2.list_finding_aggregations,
        "ListFindingAggregations",
        aggregationType="AWS_EC2_INSTANCE",
        aggregationRequest={"ec2InstanceAggregation": {"instanceIds": _equals([instance_id])}},
        maxResults=PAGE_SIZE,
    )
