"""The declared boto3 floor is one whose botocore has every request member the pipeline sends;
on an older botocore this test fails (botocore would refuse the parameter at run time)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import botocore.session
import pytest

ROOT = Path(__file__).resolve().parents[1]
FLOOR = (1, 35, 2)  # the first botocore with both members below
# (service, operation input shape, member): what the pipeline's calls rely on
NEEDED = [
    ("s3", "PutObjectRequest", "IfNoneMatch"),  # write-once evidence (evidence/store.py)
    ("s3", "PutObjectRequest", "ChecksumSHA256"),
    ("inspector2", "GetCisScanReportRequest", "reportFormat"),  # the CSV report
    ("inspector2", "ListCisScanResultsAggregatedByChecksRequest", "scanArn"),
]


def _floor(requirement: str) -> tuple[int, ...]:
    match = re.fullmatch(r"boto3>=([0-9]+)\.([0-9]+)\.([0-9]+)", requirement.replace(" ", ""))
    assert match, f"pyproject.toml: boto3 must have a >= floor, got {requirement!r}"
    return tuple(int(g) for g in match.groups())


def test_the_declared_floor_is_the_first_botocore_with_what_we_send() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    (boto3,) = [d for d in project["dependencies"] if d.replace(" ", "").startswith("boto3")]
    assert _floor(boto3) >= FLOOR


@pytest.mark.parametrize(("service", "shape", "member"), NEEDED)
def test_the_installed_botocore_models_what_we_send(service: str, shape: str, member: str) -> None:
    model = botocore.session.get_session().get_service_model(service)
    assert member in model.shape_for(shape).members, (
        f"botocore {botocore.__version__} lacks {service} {shape}.{member}: "
        f"upgrade to >= {'.'.join(map(str, FLOOR))}"
    )
