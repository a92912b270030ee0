"""The least-privilege IAM policy of the pipeline, derived from what the code declares.

Each ``pipeline/aws`` module lists the IAM actions it uses in ``IAM_ACTIONS``; Packer's own
needs are declared by ``pipeline.build``. Tests check that every AWS call a run makes is
declared, so this policy cannot silently fall behind the code.
"""

from __future__ import annotations

import importlib
from typing import Any

MODULES = (
    "pipeline.aws.account",
    "pipeline.aws.ec2",
    "pipeline.aws.iam",
    "pipeline.aws.images",
    "pipeline.aws.inspector",
    "pipeline.aws.ssm",
)


def declared_actions(include_packer: bool = True) -> list[str]:
    """Every IAM action the pipeline's AWS boundary (and Packer) declares, sorted."""
    actions: set[str] = set()
    for name in MODULES:
        actions.update(importlib.import_module(name).IAM_ACTIONS)
    if include_packer:
        from pipeline.build import PACKER_IAM_ACTIONS

        actions.update(PACKER_IAM_ACTIONS)
    return sorted(actions)


def policy_document(include_packer: bool = True) -> dict[str, Any]:
    """An identity policy granting exactly the declared actions."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "EksCisAmiPipeline",
                "Effect": "Allow",
                "Action": declared_actions(include_packer),
                "Resource": "*",
            }
        ],
    }
