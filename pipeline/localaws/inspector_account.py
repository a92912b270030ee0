"""Inspector activation: ``Enable``, ``Disable`` and ``BatchGetAccountStatus`` as the service does.

Enabling a resource type answers ``ENABLING`` and becomes ``ENABLED`` after the scenario's
delay (default 1 s); disabling goes through ``DISABLING``. ``accountIds`` may be omitted (the
caller's account; moto crashes there). Other accounts come back in ``failedAccounts`` with
ACCESS_DENIED (this account is no delegated administrator). The model requires
``errorCode``/``errorMessage`` in every ``State``; for a healthy state we send the code that
describes it (ALREADY_ENABLED, ENABLE_IN_PROGRESS, ...): an inference, the docs show no example.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from pipeline.localaws.context import Ctx, Handler, Params, Result
from pipeline.localaws.scenario import Scenario

# ResourceScanType -> member of ResourceStatus / ResourceState.
MEMBERS = {
    "EC2": "ec2",
    "ECR": "ecr",
    "LAMBDA": "lambda",
    "LAMBDA_CODE": "lambdaCode",
    "CODE_REPOSITORY": "codeRepository",
}
_ALL_MEMBERS = (*MEMBERS.values(), "ami")
_STATE_ERRORS = {
    "ENABLED": ("ALREADY_ENABLED", "Amazon Inspector scanning is enabled"),
    "ENABLING": ("ENABLE_IN_PROGRESS", "Amazon Inspector scanning is being enabled"),
    "DISABLING": ("DISABLE_IN_PROGRESS", "Amazon Inspector scanning is being disabled"),
    "DISABLED": ("RESOURCE_NOT_FOUND", "Amazon Inspector scanning is not enabled"),
}


@dataclass(frozen=True, slots=True)
class _Setting:
    target: str  # ENABLED | DISABLED
    ready_at: float

    def status(self, now: float) -> str:
        if now >= self.ready_at:
            return self.target
        return "ENABLING" if self.target == "ENABLED" else "DISABLING"


class InspectorAccounts:
    """Per-region activation state of the one emulated account."""

    def __init__(self, scenario: Callable[[], Scenario]) -> None:
        self._scenario = scenario
        self._lock = threading.Lock()
        self._regions: dict[str, dict[str, _Setting]] = {}

    def operations(self) -> dict[str, Handler]:
        return {
            "Enable": self.enable,
            "Disable": self.disable,
            "BatchGetAccountStatus": self.batch_get_account_status,
        }

    def reset(self) -> None:
        with self._lock:
            self._regions.clear()

    def status(self, region: str, member: str, now: float) -> str:
        """e.g. ``status("us-east-1", "ec2", now)`` -> ENABLED."""
        return self._region(region)[member].status(now)

    def enabled_since(self, region: str, member: str, now: float) -> float | None:
        """Since when ``member`` has been ENABLED in ``region`` (None: it is not, now)."""
        with self._lock:
            setting = self._region(region)[member]
        if setting.target != "ENABLED" or now < setting.ready_at:
            return None
        return setting.ready_at

    def activate(self, region: str, member: str = "ec2") -> None:
        """``member`` ENABLED at once in ``region`` (tests and rehearsals; not an AWS call)."""
        with self._lock:
            self._region(region)[member] = _Setting("ENABLED", 0.0)

    def enable(self, ctx: Ctx, params: Params) -> Result:
        return self._switch(ctx, params, "ENABLED", params["resourceTypes"])

    def disable(self, ctx: Ctx, params: Params) -> Result:
        return self._switch(ctx, params, "DISABLED", params.get("resourceTypes") or list(MEMBERS))

    def batch_get_account_status(self, ctx: Ctx, params: Params) -> Result:
        mine, others = _split(ctx, params)
        accounts = [self._account_state(ctx)] if mine else []
        return {"accounts": accounts, "failedAccounts": [_denied(a) for a in others]}

    def _switch(self, ctx: Ctx, params: Params, target: str, types: list[str]) -> Result:
        mine, others = _split(ctx, params)
        if mine:
            delay = self._scenario().enable_after_s
            with self._lock:
                settings = self._region(ctx.region)
                for member in (MEMBERS[t] for t in types):
                    if settings[member].status(ctx.now) not in (target, _transient(target)):
                        settings[member] = _Setting(target, ctx.now + delay)
        accounts = [self._account(ctx)] if mine else []
        return {"accounts": accounts, "failedAccounts": [_denied(a) for a in others]}

    def _region(self, region: str) -> dict[str, _Setting]:
        settings = self._regions.get(region)
        if settings is None:
            enabled = self._scenario().inspector_initially_enabled
            settings = {m: _Setting("DISABLED", 0.0) for m in _ALL_MEMBERS}
            if enabled:
                settings["ec2"] = _Setting("ENABLED", 0.0)
            self._regions[region] = settings
        return settings

    def _statuses(self, ctx: Ctx) -> dict[str, str]:
        with self._lock:
            return {m: s.status(ctx.now) for m, s in self._region(ctx.region).items()}

    def _account(self, ctx: Ctx) -> Result:
        statuses = self._statuses(ctx)
        return {
            "accountId": ctx.account_id,
            "status": _overall(statuses),
            "resourceStatus": statuses,
        }

    def _account_state(self, ctx: Ctx) -> Result:
        statuses = self._statuses(ctx)
        return {
            "accountId": ctx.account_id,
            "state": _state(_overall(statuses)),
            "resourceState": {m: _state(s) for m, s in statuses.items()},
        }


def _transient(target: str) -> str:
    return "ENABLING" if target == "ENABLED" else "DISABLING"


def _overall(statuses: dict[str, str]) -> str:
    for status in ("ENABLING", "ENABLED", "DISABLING"):
        if status in statuses.values():
            return status
    return "DISABLED"


def _state(status: str) -> Result:
    code, message = _STATE_ERRORS[status]
    return {"status": status, "errorCode": code, "errorMessage": message}


def _split(ctx: Ctx, params: Params) -> tuple[bool, list[str]]:
    requested = params.get("accountIds") or [ctx.account_id]
    return ctx.account_id in requested, [a for a in requested if a != ctx.account_id]


def _denied(account_id: str) -> Result:
    return {
        "accountId": account_id,
        "errorCode": "ACCESS_DENIED",
        "errorMessage": f"Account {account_id} is not a member of your organization",
    }
