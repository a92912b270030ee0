"""Issue 20 #5: promote and revoke race. Promote verifies and checks revocation once, then copies
(minutes), waits and writes the channel parameters; a revoke in that window must win: promote
re-reads the revocation record after the copy and before each write, and after each write (a
revoke that recorded between the check and the write may have read the parameters before it),
putting the previous value back. Exit 3, one line saying why."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from pipeline.aws import AwsClients, make_clients
from pipeline.aws import release as aws
from pipeline.errors import ExitCode, GateBlocked
from pipeline.release.promote import PromoteRequest
from pipeline.release.revoke import RevokeRequest, run_revoke
from tests.release.conftest import pipeline_ami, promote, release

PARAM = "/eks-cis-ami/al2023/x86_64/1.32/stable/image-id"


def _promote(clients: AwsClients, ami: str, regions: tuple[str, ...] = ()) -> Any:
    return promote(clients, PromoteRequest(ami=ami, regions=regions or ("us-east-1",)))


def _revoke(clients: AwsClients, ami: str) -> None:
    run_revoke(
        RevokeRequest(ami, "CVE-2026-0030"), release(), clients, datetime.now(UTC), lambda _: None
    )


def _once(monkeypatch: pytest.MonkeyPatch, name: str, before: Callable[[], None]) -> list[bool]:
    """Run ``before`` the first time promote calls ``aws.<name>`` (revoke's own calls pass)."""
    real = getattr(aws, name)
    fired: list[bool] = []

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not fired:
            fired.append(True)
            before()
        return real(*args, **kwargs)

    monkeypatch.setattr(aws, name, wrapper)
    return fired


def _blocked(clients: AwsClients, ami: str, regions: tuple[str, ...] = ()) -> list[str]:
    with pytest.raises(GateBlocked) as caught:
        _promote(clients, ami, regions)
    assert caught.value.exit_code == ExitCode.GATE_BLOCKED
    return list(caught.value.problems)


def test_a_revoke_during_the_copy_stops_the_publication(
    clients: AwsClients, monkeypatch: pytest.MonkeyPatch
) -> None:
    ami = pipeline_ami(clients, "revoked-in-flight")
    fired = _once(monkeypatch, "wait_available", lambda: _revoke(clients, ami))
    problems = _blocked(clients, ami, ("eu-west-1",))
    assert fired
    assert len(problems) == 1 and "revoked while being promoted (after the copy)" in problems[0]
    assert "CVE-2026-0030" in problems[0]
    eu = make_clients(region="eu-west-1")
    assert aws.get_parameter(eu, PARAM) is None


def test_a_revoke_between_the_check_and_the_write_is_undone_by_promote(
    clients: AwsClients, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Revoke runs whole after promote's last check and before its write: revoke finds no
    parameter to roll back, so promote, reading the record after its write, puts back the
    previous image itself."""
    previous = pipeline_ami(clients, "previous")
    _promote(clients, previous)
    ami = pipeline_ami(clients, "revoked-at-the-write")
    fired = _once(monkeypatch, "put_parameter", lambda: _revoke(clients, ami))
    problems = _blocked(clients, ami)
    assert fired
    assert problems == [
        f"--ami {ami}: revoked while being promoted (after setting {PARAM}): "
        + str(aws.get_parameter(clients, f"/eks-cis-ami/revoked/{ami}"))
    ]
    assert aws.get_parameter(clients, PARAM) == previous


def test_a_first_promotion_undone_deletes_the_parameter(
    clients: AwsClients, monkeypatch: pytest.MonkeyPatch
) -> None:
    ami = pipeline_ami(clients, "first-and-revoked")
    _once(monkeypatch, "put_parameter", lambda: _revoke(clients, ami))
    _blocked(clients, ami)
    assert aws.get_parameter(clients, PARAM) is None


def test_a_revoke_just_before_the_write_is_seen_before_it(
    clients: AwsClients, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Revoke recorded after the copy check and before the parameter check (while sharing)."""
    ami = pipeline_ami(clients, "revoked-while-sharing")
    calls: list[str] = []
    real = aws.get_parameter

    def get_parameter(rc: AwsClients, name: str) -> str | None:
        if name == PARAM and not calls:  # promote reads the channel's current value
            calls.append(name)
            _revoke(clients, ami)
        return real(rc, name)

    monkeypatch.setattr(aws, "get_parameter", get_parameter)
    problems = _blocked(clients, ami)
    assert calls
    assert f"revoked while being promoted (before setting {PARAM})" in problems[0]
    assert real(clients, PARAM) is None
