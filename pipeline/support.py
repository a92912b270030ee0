"""What a real AWS account can build and scan today, and what the local AWS needs installed.

The platform rule is pure (callers pass whether the endpoint is AWS's own; no clock); the extra
check only asks the import system.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import date
from importlib import util

from pipeline.catalog import Platform
from pipeline.errors import ConfigError

# https://docs.aws.amazon.com/eks/latest/userguide/eks-ami-deprecation-faqs.html and
# https://github.com/awslabs/amazon-eks-ami/issues/2545 ("As of November 26, 2025 ...")
AL2_EKS_END_OF_SUPPORT = date(2025, 11, 26)
# https://docs.aws.amazon.com/inspector/latest/user/supported.html (CIS scanning: Amazon Linux
# 2023 with CIS 1.0.0; Amazon Linux 2 is among the discontinued operating systems)
AL2_INSPECTOR_CIS_DISCONTINUED = date(2026, 6, 30)

# Platforms Amazon Inspector's CIS scanning supports on real AWS (and so platforms this
# pipeline can prove there). Everything else is for the local AWS rehearsal only.
REAL_AWS_PLATFORMS = frozenset({Platform.AMAZON_LINUX_2023})

# Top-level modules of the `local` extra (pyproject.toml); an ImportError of one of these
# means the extra is not installed, anything else is a bug and stays a traceback.
LOCAL_EXTRA_MODULES = frozenset({"moto", "werkzeug", "flask", "flask_cors", "regex"})
LOCAL_EXTRA_HINT = (
    "the local AWS needs the 'local' extra: .venv/bin/pip install -e '.[local]' "
    "(or `scripts/bootstrap`)"
)


def real_aws_problem(platform: Platform, what: str) -> str | None:
    """Why ``platform`` cannot be validated on real AWS (one line naming ``what``), or None."""
    if platform in REAL_AWS_PLATFORMS:
        return None
    return (
        f"{what}: Amazon Linux 2 cannot be validated on real AWS: the EKS-optimized AL2 AMIs "
        f"reached end of support on {AL2_EKS_END_OF_SUPPORT.isoformat()} and Amazon Inspector's "
        f"CIS scanning discontinued Amazon Linux 2 from "
        f"{AL2_INSPECTOR_CIS_DISCONTINUED.isoformat()} (it scans Amazon Linux 2023, CIS 1.0.0); "
        "build al2023, or rehearse al2 on the local AWS (--local)"
    )


def check_real_aws(platforms: Iterable[Platform], *, real_aws: bool, what: str) -> None:
    """Raise ConfigError (exit 2) when a platform cannot be validated on the real AWS.

    ``real_aws`` is ``pipeline.aws.is_aws_endpoint(...)`` of the clients in use; on the local
    AWS every platform is allowed.
    """
    if not real_aws:
        return
    for platform in platforms:
        problem = real_aws_problem(platform, what)
        if problem:
            raise ConfigError(problem)


def is_local_extra_missing(exc: ImportError) -> bool:
    """True when ``exc`` says a module of the ``local`` extra is not installed."""
    name = (exc.name or "").split(".")[0]
    return name in LOCAL_EXTRA_MODULES


def require_local_extra() -> None:
    """Raise ConfigError (exit 2, one line) unless the ``local`` extra's modules are importable.

    Reads the import system only (``importlib.util.find_spec``), so it is cheap enough to run
    before anything else, e.g. before a build starts.
    """
    for name in sorted(LOCAL_EXTRA_MODULES):
        try:
            missing = util.find_spec(name) is None
        except (ImportError, ValueError):
            missing = True
        if missing:
            raise ConfigError(LOCAL_EXTRA_HINT)


@contextmanager
def needs_local_extra() -> Iterator[None]:
    """Around the first import of ``pipeline.localaws``: a missing extra is one line, exit 2."""
    try:
        yield
    except ImportError as exc:
        if is_local_extra_missing(exc):
            raise ConfigError(LOCAL_EXTRA_HINT) from None
        raise
