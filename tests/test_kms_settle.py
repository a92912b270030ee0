"""Permissions made moments ago (``invoke setup``, tag-based grants) can take minutes to take
effect: the first signature and the public-key export wait for them, bounded and visibly."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError

from pipeline.aws import kms
from pipeline.errors import AwsError


def _denied(operation: str, code: str = "AccessDeniedException") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "not yet"}}, operation)


class FakeKms:
    """Answers ``failures`` errors, then succeeds."""

    def __init__(self, failures: list[ClientError]) -> None:
        self.failures = failures
        self.calls = 0

    def _next(self) -> None:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)

    def sign(self, **_: Any) -> dict[str, Any]:
        self._next()
        return {"KeyId": "arn:aws:kms:us-east-1:123456789012:key/k", "Signature": b"sig"}

    def get_public_key(self, **_: Any) -> dict[str, Any]:
        self._next()
        return {"PublicKey": b"der"}


def _run(failures: list[ClientError], **kw: Any) -> tuple[Any, FakeKms, list[float], list[str]]:
    fake = FakeKms(failures)
    slept: list[float] = []
    lines: list[str] = []
    clients = SimpleNamespace(kms=fake)
    result = kms.sign_digest(
        clients, "alias/k", b"d" * 32, sleep=slept.append, echo=lines.append, **kw
    )
    return result, fake, slept, lines


def test_the_first_signature_waits_for_new_permissions() -> None:
    result, fake, slept, lines = _run([_denied("Sign"), _denied("Sign")])
    assert result == ("arn:aws:kms:us-east-1:123456789012:key/k", b"sig")
    assert fake.calls == 3 and slept == [kms.SETTLE_STEP_S] * 2
    assert len(lines) == 2 and all("waiting for KMS permissions" in line for line in lines)


def test_other_errors_are_not_waited_for() -> None:
    with pytest.raises(AwsError, match="kms:Sign"):
        _run([_denied("Sign", "DisabledException")])


def test_the_wait_is_bounded() -> None:
    fake = FakeKms([_denied("Sign")] * 1000)
    slept: list[float] = []
    with pytest.raises(ClientError, match="AccessDenied"):
        kms.settled(lambda: fake.sign(), "kms:Sign", sleep=slept.append, echo=lambda _: None)
    assert sum(slept) == kms.SETTLE_S and fake.calls == kms.SETTLE_S // kms.SETTLE_STEP_S + 1
    fake = FakeKms([_denied("Sign")] * 1000)
    with pytest.raises(ClientError):
        kms.settled(
            lambda: fake.sign(), "kms:Sign", sleep=slept.append, echo=lambda _: None, settle_s=0
        )
    assert fake.calls == 1  # no settling asked for: the first answer stands


def test_the_public_key_waits_only_when_asked() -> None:
    fake = FakeKms([_denied("GetPublicKey")])
    clients = SimpleNamespace(kms=fake)
    with pytest.raises(AwsError, match="GetPublicKey"):
        kms.public_key_der(clients, "alias/k", sleep=lambda _: None, echo=lambda _: None)
    fake = FakeKms([_denied("GetPublicKey")])
    clients = SimpleNamespace(kms=fake)
    der = kms.public_key_der(
        clients, "alias/k", settle_s=kms.SETTLE_S, sleep=lambda _: None, echo=lambda _: None
    )
    assert der == b"der" and fake.calls == 2
