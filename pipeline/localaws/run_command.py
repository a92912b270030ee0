"""SSM Run Command for ``AWS-RunShellScript`` on managed instances (moto's own is replaced).

``SendCommand``, ``GetCommandInvocation``, ``ListCommandInvocations`` and ``CancelCommand``.
An invocation's life on the emulation clock (``node.command`` knobs of the scenario in force
when it was sent; README "SSM Run Command"): unknown to ``GetCommandInvocation``
(``InvocationDoesNotExist``) for ``visible_after_s``, ``Pending`` for half a second, then
``InProgress`` for ``duration_s`` and a terminal status. ``TimeoutSeconds`` is the delivery
timeout (a command that has not started by then is ``TimedOut``/``DeliveryTimedOut``); the
document's ``executionTimeout`` parameter (default 3600 s) bounds the run
(``TimedOut``/``ExecutionTimedOut``). The probe's answer comes from ``node_probe``; any other
script succeeds with empty output.
"""

from __future__ import annotations

import calendar
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pipeline.localaws import node_probe, query
from pipeline.localaws.context import Ctx, Handler, Params, Result
from pipeline.localaws.fleet import Fleet, Host
from pipeline.localaws.scenario import Scenario
from pipeline.localaws.scenario_sections import NodeKnobs
from pipeline.localaws.ssm import is_online
from pipeline.localaws.wire import ServiceError

DOCUMENT = "AWS-RunShellScript"
PLUGIN = "aws:runShellScript"
PENDING_S = 0.5
CANCELLING_S = 1.0
DEFAULT_DELIVERY_TIMEOUT = 3600  # SendCommand's TimeoutSeconds default
DEFAULT_EXECUTION_TIMEOUT = 3600  # AWS-RunShellScript's executionTimeout default
_DOCUMENT_PARAMETERS = {"commands", "workingDirectory", "executionTimeout"}
# AWS-RunShellScript's allowedPattern for executionTimeout (1..172800 seconds).
_EXECUTION_TIMEOUT = re.compile(
    r"([1-9][0-9]{0,4})|(1[0-6][0-9]{4})|(17[0-1][0-9]{3})|(172[0-7][0-9]{2})|(172800)"
)
_COMMAND_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_TERMINAL = frozenset({"Success", "Cancelled", "TimedOut", "Failed"})
# CommandPluginStatus has neither Delayed nor Cancelling.
_PLUGIN_STATUS = {"Delayed": "Pending", "Cancelling": "InProgress"}


@dataclass(frozen=True, slots=True)
class State:
    status: str
    details: str
    code: int = -1
    started: float | None = None
    ended: float | None = None
    stdout: str = ""
    stderr: str = ""


@dataclass
class Invocation:
    command_id: str
    instance_id: str
    requested: float
    params: dict[str, Any]
    knobs: NodeKnobs
    delivery_timeout: int
    execution_timeout: int
    stdout: str  # what the script prints when it runs to the end
    cancelled: float | None = None

    @property
    def visible(self) -> float:
        return self.requested + self.knobs.visible_after_s

    def state(self, now: float) -> State:
        state = self._course(now)
        if self.cancelled is not None and state.status not in _TERMINAL:
            if now < self.cancelled + CANCELLING_S:
                return State("Cancelling", "Cancelling", -1, state.started)
            return State("Cancelled", "Cancelled", -1, state.started, self.cancelled)
        return state

    def _course(self, now: float) -> State:
        knobs = self.knobs
        start = self.visible + PENDING_S
        if knobs.outcome == "DeliveryTimedOut" or start > self.requested + self.delivery_timeout:
            expiry = self.requested + self.delivery_timeout
            if now < expiry:
                return State("Delayed", "Delayed") if now >= start else State("Pending", "Pending")
            return State("TimedOut", "DeliveryTimedOut", -1, None, expiry)
        if now < start:
            return State("Pending", "Pending")
        run = float("inf") if knobs.outcome == "TimedOut" else knobs.duration_s
        if knobs.outcome == "Undeliverable":
            if now < start + run:
                return State("Pending", "Pending")
            return State("Failed", "Undeliverable", -1, None, start + run)
        if run > self.execution_timeout:
            end = start + self.execution_timeout
            if now < end:
                return State("InProgress", "InProgress", -1, start)
            return State("TimedOut", "ExecutionTimedOut", -1, start, end, "", "")
        end = start + run
        if now < end:
            return State("InProgress", "InProgress", -1, start)
        if knobs.outcome == "Failed":
            stderr = f"failed to run commands: exit status {knobs.exit_code}"
            return State("Failed", "Failed", knobs.exit_code, start, end, "", stderr)
        return State("Success", "Success", 0, start, end, self.stdout)


class RunCommandService:
    """Commands of the one emulated account, all regions."""

    def __init__(self, fleet: Fleet, scenario: Callable[[], Scenario]) -> None:
        self._fleet = fleet
        self._scenario = scenario
        self._lock = threading.Lock()
        self._commands: dict[str, list[Invocation]] = {}
        self._regions: dict[str, str] = {}

    def operations(self) -> dict[str, Handler]:
        return {
            "SendCommand": self.send_command,
            "GetCommandInvocation": self.get_command_invocation,
            "ListCommandInvocations": self.list_command_invocations,
            "CancelCommand": self.cancel_command,
        }

    def reset(self) -> None:
        with self._lock:
            self._commands.clear()
            self._regions.clear()

    # -- operations -------------------------------------------------------------------------

    def send_command(self, ctx: Ctx, params: Params) -> Result:
        name = params["DocumentName"]
        if name != DOCUMENT:
            raise ServiceError(
                "InvalidDocument",
                f"Document {name} is not supported by the local AWS (only {DOCUMENT})",
            )
        if params.get("Targets"):
            raise ServiceError("InvalidParameters", "the local AWS addresses InstanceIds only")
        ids = list(params.get("InstanceIds") or [])
        if not ids:
            raise ServiceError("ValidationException", "InstanceIds or Targets must be given")
        if len(set(ids)) != len(ids):
            raise ServiceError("DuplicateInstanceId", "Instance IDs are duplicated")
        commands, execution_timeout = _document_parameters(params.get("Parameters") or {})
        hosts = self._online(ctx, ids)
        knobs = self._scenario().node
        probe = node_probe.is_probe("\n".join(commands))
        command_id = str(uuid.uuid4())
        delivery = int(params.get("TimeoutSeconds") or DEFAULT_DELIVERY_TIMEOUT)
        invocations = [
            Invocation(
                command_id=command_id,
                instance_id=host.instance_id,
                requested=ctx.now,
                params=params,
                knobs=knobs,
                delivery_timeout=delivery,
                execution_timeout=execution_timeout,
                stdout=node_probe.output(host.profile, knobs) if probe else "",
            )
            for host in hosts
        ]
        with self._lock:
            self._commands[command_id] = invocations
            self._regions[command_id] = ctx.region
        return {"Command": self._command(ctx, invocations)}

    def get_command_invocation(self, ctx: Ctx, params: Params) -> Result:
        plugin = params.get("PluginName")
        if plugin is not None and plugin != PLUGIN:
            raise ServiceError("InvalidPluginName", f"Plugin {plugin} is not in the document")
        found = None
        for inv in self._invocations(ctx, params["CommandId"]):
            if inv.instance_id == params["InstanceId"] and ctx.now >= inv.visible:
                found = inv
        if found is None:
            raise ServiceError("InvocationDoesNotExist", "The invocation does not exist (yet)")
        state = found.state(ctx.now)
        result: Result = {
            **_common(found, state),
            "PluginName": PLUGIN,
            "ResponseCode": state.code,
            "StandardOutputContent": state.stdout[: node_probe.STDOUT_LIMIT],
            "StandardOutputUrl": "",
            "StandardErrorContent": state.stderr[: node_probe.STDERR_LIMIT],
            "StandardErrorUrl": "",
            "CloudWatchOutputConfig": {"CloudWatchOutputEnabled": False},
        }
        # ExecutionElapsedTime is left out: the service sends durations such as "PT0.058S",
        # which the model's StringDateTime pattern does not accept.
        if state.started is not None:
            result["ExecutionStartDateTime"] = _iso(state.started)
        if state.ended is not None:
            result["ExecutionEndDateTime"] = _iso(state.ended)
        return result

    def list_command_invocations(self, ctx: Ctx, params: Params) -> Result:
        command_id = params.get("CommandId")
        if command_id is not None:
            invocations = self._invocations(ctx, command_id)
        else:
            with self._lock:
                invocations = [
                    inv
                    for cid, invs in self._commands.items()
                    if self._regions[cid] == ctx.region
                    for inv in invs
                ]
        instance_id = params.get("InstanceId")
        rows = [
            (inv, inv.state(ctx.now))
            for inv in invocations
            if ctx.now >= inv.visible and instance_id in (None, inv.instance_id)
        ]
        for flt in params.get("Filters") or []:
            rows = [(inv, st) for inv, st in rows if _matches(flt["key"], flt["value"], inv, st)]
        rows.sort(key=lambda row: (-row[0].requested, row[0].instance_id))
        page = query.paginate(
            rows,
            params,
            page_max=50,
            token_key="NextToken",
            size_key="MaxResults",
            bad_token=lambda msg: ServiceError("InvalidNextToken", msg),
        )
        items = [_listed(inv, st, bool(params.get("Details"))) for inv, st in page.items]
        result: Result = {"CommandInvocations": items}
        if page.next_token:
            result["NextToken"] = page.next_token
        return result

    def cancel_command(self, ctx: Ctx, params: Params) -> Result:
        invocations = self._invocations(ctx, params["CommandId"])
        if not invocations:
            raise ServiceError("InvalidCommandId", f"Command {params['CommandId']} not found")
        wanted = params.get("InstanceIds") or [inv.instance_id for inv in invocations]
        if len(set(wanted)) != len(wanted):
            raise ServiceError("DuplicateInstanceId", "Instance IDs are duplicated")
        with self._lock:
            for inv in invocations:
                if inv.instance_id in wanted and inv.cancelled is None:
                    inv.cancelled = ctx.now
        return {}

    # -- helpers ----------------------------------------------------------------------------

    def _invocations(self, ctx: Ctx, command_id: str) -> list[Invocation]:
        if not _COMMAND_ID.fullmatch(command_id):
            raise ServiceError("InvalidCommandId", f"{command_id} is not a valid command ID")
        with self._lock:
            if self._regions.get(command_id) != ctx.region:
                return []
            return list(self._commands.get(command_id, []))

    def _online(self, ctx: Ctx, ids: list[str]) -> list[Host]:
        """The hosts of ``ids``; InvalidInstanceId unless each is a running, Online managed node."""
        online_after = self._scenario().ssm_online_after_s
        hosts = {host.instance_id: host for host in self._fleet.hosts(ctx.region)}
        bad = [i for i in ids if i not in hosts or not is_online(hosts[i], ctx.now, online_after)]
        if bad:
            listed = ", ".join(bad)
            raise ServiceError(
                "InvalidInstanceId",
                f"Instances [[{listed}]] not in a valid state for account {ctx.account_id}",
            )
        return [hosts[i] for i in ids]

    def _command(self, ctx: Ctx, invocations: list[Invocation]) -> Result:
        first = invocations[0]
        params = first.params
        command: Result = {
            "CommandId": first.command_id,
            "DocumentName": DOCUMENT,
            "DocumentVersion": params.get("DocumentVersion", "$DEFAULT"),
            "Comment": params.get("Comment", ""),
            "ExpiresAfter": first.requested + first.delivery_timeout,
            "Parameters": params.get("Parameters") or {},
            "InstanceIds": [inv.instance_id for inv in invocations],
            "Targets": [],
            "RequestedDateTime": first.requested,
            "Status": "Pending",
            "StatusDetails": "Pending",
            "OutputS3Region": ctx.region,
            "OutputS3KeyPrefix": "",
            "MaxConcurrency": params.get("MaxConcurrency", "50"),
            "MaxErrors": params.get("MaxErrors", "0"),
            "TargetCount": len(invocations),
            "CompletedCount": 0,
            "ErrorCount": 0,
            "DeliveryTimedOutCount": 0,
            "ServiceRole": "",
            "NotificationConfig": {"NotificationArn": "", "NotificationEvents": []},
            "CloudWatchOutputConfig": {"CloudWatchOutputEnabled": False},
            "TimeoutSeconds": first.delivery_timeout,
        }
        return command


def _document_parameters(parameters: dict[str, list[str]]) -> tuple[list[str], int]:
    """``commands`` and the execution timeout; InvalidParameters as the document defines them."""
    unknown = sorted(set(parameters) - _DOCUMENT_PARAMETERS)
    if unknown:
        raise ServiceError("InvalidParameters", f"Parameter {unknown[0]} is not in {DOCUMENT}")
    commands = parameters.get("commands") or []
    if not commands:
        raise ServiceError("InvalidParameters", "Parameter commands is required")
    timeout = parameters.get("executionTimeout") or [str(DEFAULT_EXECUTION_TIMEOUT)]
    if len(timeout) != 1 or not _EXECUTION_TIMEOUT.fullmatch(timeout[0]):
        raise ServiceError(
            "InvalidParameters", "Parameter executionTimeout must be 1..172800 (seconds)"
        )
    return list(commands), int(timeout[0])


def _common(inv: Invocation, state: State) -> Result:
    return {
        "CommandId": inv.command_id,
        "InstanceId": inv.instance_id,
        "Comment": inv.params.get("Comment", ""),
        "DocumentName": DOCUMENT,
        "DocumentVersion": inv.params.get("DocumentVersion", "$DEFAULT"),
        "Status": state.status,
        "StatusDetails": state.details,
    }


def _listed(inv: Invocation, state: State, details: bool) -> Result:
    item: Result = {
        **_common(inv, state),
        "InstanceName": "",
        "RequestedDateTime": inv.requested,
        "TraceOutput": "",
        "StandardOutputUrl": "",
        "StandardErrorUrl": "",
        "CommandPlugins": [],
        "ServiceRole": "",
        "NotificationConfig": {"NotificationArn": "", "NotificationEvents": []},
        "CloudWatchOutputConfig": {"CloudWatchOutputEnabled": False},
    }
    if details:
        plugin: Result = {
            "Name": PLUGIN,
            "Status": _PLUGIN_STATUS.get(state.status, state.status),
            "StatusDetails": state.details,
            "ResponseCode": state.code,
            "Output": (state.stdout + state.stderr)[: node_probe.PLUGIN_OUTPUT_LIMIT],
            "StandardOutputUrl": "",
            "StandardErrorUrl": "",
            "OutputS3KeyPrefix": "",
        }
        if state.started is not None:
            plugin["ResponseStartDateTime"] = state.started
        if state.ended is not None:
            plugin["ResponseFinishDateTime"] = state.ended
        item["CommandPlugins"] = [plugin]
    return item


def _matches(key: str, value: str, inv: Invocation, state: State) -> bool:
    if key == "Status":
        return state.status == value
    if key == "DocumentName":
        return value == DOCUMENT
    if key == "ExecutionStage":
        if value not in ("Executing", "Complete"):
            raise ServiceError("InvalidFilterValue", f"{value} is not Executing or Complete")
        return (state.status in _TERMINAL) == (value == "Complete")
    if key in ("InvokedAfter", "InvokedBefore"):
        at = _parse_iso(value)
        return inv.requested >= at if key == "InvokedAfter" else inv.requested <= at
    raise ServiceError("InvalidFilterKey", f"The filter key {key!r} is not valid")


def _iso(at: float) -> str:
    """ISO 8601 in UTC, whole seconds (the model's StringDateTime pattern takes no millis)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


def _parse_iso(value: str) -> float:
    for fmt in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%d"):
        try:
            return float(calendar.timegm(time.strptime(value, fmt)))
        except ValueError:
            continue
    raise ServiceError("InvalidFilterValue", f"{value} is not an ISO 8601 time")
