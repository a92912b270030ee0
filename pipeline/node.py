"""Node readiness (pure): the catalogue of what an EKS node needs after hardening, the probe's
line format, and the gate that judges the probe's output from each test instance.

The probe (``packer/scripts/node/probe.sh``) runs on the test instance through SSM Run Command
and prints, ASCII only::

    NODE-PROBE|1|<checks it will report>
    NODE|<check id>|PASS|<what it saw>
    NODE|<check id>|FAIL|<what it saw>
    NODE-PROBE-END|<NODE lines printed>

Everything it prints is untrusted. A probe that did not run to the end (the command not
``Success``, a missing or inconsistent header or trailer, output cut at SSM's 24,000-character
limit, a check reported twice or one nobody asked for) proves nothing: ERROR (exit 4). A check
that FAILed, or that a complete probe did not report, blocks: FAIL (exit 3). Node checks have no
exceptions: a node that cannot run Kubernetes is never releasable.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError, one_line
from pipeline.outcome import Outcome, worst

FORMAT_VERSION = "1"
HEADER, LINE, TRAILER = "NODE-PROBE", "NODE", "NODE-PROBE-END"
PASS, FAIL = "PASS", "FAIL"
OUTPUT_LIMIT = 24_000  # SSM cuts StandardOutputContent here; full output only in S3/CloudWatch
MAX_OBSERVED = 200  # characters of what the probe saw, per check
EVIDENCE_FILE = "node-probe.json"
CATALOGUE_FILE = "amazon-linux-2023.json"
PROBE_SCRIPT = Path("packer") / "scripts" / "node" / "probe.sh"


@dataclass(frozen=True, slots=True)
class NodeCheck:
    id: str
    title: str
    rationale: str
    source: str


@dataclass(frozen=True)
class NodeCatalogue:
    platform: str
    checks: tuple[NodeCheck, ...]
    sha256: str

    @property
    def ids(self) -> frozenset[str]:
        return frozenset(c.id for c in self.checks)

    def get(self, check_id: str) -> NodeCheck | None:
        return next((c for c in self.checks if c.id == check_id), None)


@cache
def load_catalogue() -> NodeCatalogue:
    """The shipped catalogue (``pipeline/data/node/``); ConfigError if it is not well-formed."""
    source = f"pipeline/data/node/{CATALOGUE_FILE}"
    data = resources.files("pipeline").joinpath("data", "node", CATALOGUE_FILE).read_bytes()
    return parse_catalogue(data, source)


def parse_catalogue(data: bytes, source: str) -> NodeCatalogue:
    try:
        raw = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{source}: not JSON: {exc}") from exc
    checks_raw = raw.get("checks") if isinstance(raw, dict) else None
    if not isinstance(checks_raw, list) or not checks_raw:
        raise ConfigError(f"{source}: $.checks: a non-empty list is required")
    checks: list[NodeCheck] = []
    for index, item in enumerate(checks_raw):
        fields = {k: item.get(k) if isinstance(item, dict) else None for k in NodeCheck.__slots__}
        bad = [k for k, v in fields.items() if not isinstance(v, str) or not v.strip()]
        if bad:
            raise ConfigError(f"{source}: $.checks[{index}].{bad[0]}: a non-empty string is needed")
        check = NodeCheck(**fields)  # type: ignore[arg-type]
        if (
            not check.id.startswith("node.")
            or "|" in check.id
            or any(c.id == check.id for c in checks)
        ):
            raise ConfigError(
                f"{source}: $.checks[{index}].id: {check.id!r} is not a new node.* ID"
            )
        checks.append(check)
    return NodeCatalogue(str(raw.get("platform")), tuple(checks), hashlib.sha256(data).hexdigest())


def header(count: int) -> str:
    return f"{HEADER}|{FORMAT_VERSION}|{count}"


def trailer(count: int) -> str:
    return f"{TRAILER}|{count}"


def format_line(check_id: str, passed: bool, observed: str) -> str:
    """One check's line, as the probe prints it (observed text made one safe ASCII line)."""
    seen = observed.encode("ascii", "replace").decode().replace("\n", " ")
    seen = "".join(c if c.isprintable() else "?" for c in seen)[:MAX_OBSERVED]
    return f"{LINE}|{check_id}|{PASS if passed else FAIL}|{seen}"


@dataclass(frozen=True, slots=True)
class NodeResult:
    target: str
    check_id: str
    passed: bool
    observed: str  # untrusted: what the probe printed (or why nothing was)
    title: str


@dataclass(frozen=True, slots=True)
class NodeTarget:
    target: str
    verdict: Outcome
    passed: int
    failed: int
    errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class NodeVerdict:
    """The node section of the verdict."""

    verdict: Outcome
    probe_sha256: str | None
    catalogue_sha256: str
    targets: tuple[NodeTarget, ...]
    failed: tuple[NodeResult, ...]
    passed: tuple[NodeResult, ...]
    errors: tuple[str, ...] = ()


def evaluate(
    document: Any,
    expected_targets: Collection[str],
    catalogue: NodeCatalogue | None = None,
    source: str = f"evidence/{EVIDENCE_FILE}",
) -> NodeVerdict:
    """Judge the stored probe evidence (``evidence/node-probe.json``) of every expected target."""
    cat = catalogue or load_catalogue()
    errors: list[str] = []
    invocations: Mapping[str, Any] = {}
    probe_sha: str | None = None
    if not isinstance(document, dict) or not isinstance(document.get("invocations"), dict):
        errors.append(f"{source}: $.invocations: the probe's results are missing")
    else:
        invocations = document["invocations"]
        sha = (
            document.get("probe", {}).get("sha256")
            if isinstance(document.get("probe"), dict)
            else None
        )
        probe_sha = sha if isinstance(sha, str) else None
        if probe_sha is None:
            errors.append(f"{source}: $.probe.sha256: which probe ran is not recorded")
    if not expected_targets:
        errors.append("the node probe had no instance to run on: nothing was proven")
    for target in invocations:
        if target not in expected_targets:
            errors.append(
                f"{source}: $.invocations.{one_line(str(target), 40)}: not a test instance "
                "of the run"
            )
    targets: list[NodeTarget] = []
    failed: list[NodeResult] = []
    passed: list[NodeResult] = []
    for target in expected_targets:
        judged = _judge(target, invocations.get(target), cat, f"{source}: $.invocations.{target}")
        targets.append(judged.target)
        failed += judged.failed
        passed += judged.passed
        errors += judged.target.errors
    outcome = worst([Outcome.ERROR] if errors else [t.verdict for t in targets] or [Outcome.ERROR])
    return NodeVerdict(
        verdict=outcome,
        probe_sha256=probe_sha,
        catalogue_sha256=cat.sha256,
        targets=tuple(targets),
        failed=tuple(failed),
        passed=tuple(passed),
        errors=tuple(errors),
    )


@dataclass
class _Judged:
    target: NodeTarget
    failed: list[NodeResult]
    passed: list[NodeResult]


def _judge(target: str, invocation: Any, cat: NodeCatalogue, where: str) -> _Judged:
    problems = _invocation_problems(target, invocation, where)
    if problems:
        return _Judged(NodeTarget(target, Outcome.ERROR, 0, 0, tuple(problems)), [], [])
    output = invocation["StandardOutputContent"]
    lines, problems = _read_lines(target, output, cat)
    failed: list[NodeResult] = []
    passed: list[NodeResult] = []
    for check in cat.checks:
        seen = lines.get(check.id)
        if seen is None:
            failed.append(
                NodeResult(target, check.id, False, "not reported by the probe", check.title)
            )
        elif seen[0]:
            passed.append(NodeResult(target, check.id, True, seen[1], check.title))
        else:
            failed.append(NodeResult(target, check.id, False, seen[1], check.title))
    verdict = Outcome.ERROR if problems else Outcome.FAIL if failed else Outcome.PASS
    counted = NodeTarget(target, verdict, len(passed), len(failed), tuple(problems))
    return _Judged(counted, [] if problems else failed, [] if problems else passed)


def _invocation_problems(target: str, invocation: Any, where: str) -> list[str]:
    if not isinstance(invocation, dict):
        return [f"{target}: the node probe did not run (no command invocation recorded)"]
    if "error" in invocation:
        return [f"{target}: the node probe did not run: {one_line(str(invocation['error']), 300)}"]
    status = invocation.get("Status")
    if status != "Success" or invocation.get("ResponseCode") != 0:
        detail = one_line(str(invocation.get("StatusDetails") or status), 80)
        return [
            f"{target}: the node probe did not run to the end: command {one_line(str(status), 40)} "
            f"({detail}, response code {one_line(str(invocation.get('ResponseCode')), 20)})"
        ]
    output = invocation.get("StandardOutputContent")
    if not isinstance(output, str):
        return [f"{where}.StandardOutputContent: missing: the probe's output was not collected"]
    if len(output) >= OUTPUT_LIMIT:
        return [
            f"{target}: the probe's output reached SSM's {OUTPUT_LIMIT}-character limit: it may "
            "be cut, so it proves nothing"
        ]
    return []


def _read_lines(
    target: str, output: str, cat: NodeCatalogue
) -> tuple[dict[str, tuple[bool, str]], list[str]]:
    """The reported checks (id → passed, observed) and every reason the output is not whole."""
    problems: list[str] = []
    found: dict[str, tuple[bool, str]] = {}
    headers: list[list[str]] = []
    trailers: list[list[str]] = []
    count = 0
    for number, raw in enumerate(output.splitlines(), start=1):
        line = raw.rstrip("\r")
        parts = line.split("|", 3)
        kind = parts[0]
        if kind == HEADER:
            headers.append(parts)
        elif kind == TRAILER:
            trailers.append(parts)
            if len(trailers) == 1 and count != _int(parts, 1):
                problems.append(
                    f"{target}: the probe says it printed {one_line(line, 60)!s} but "
                    f"{count} check lines came before it: output was lost"
                )
        elif kind == LINE:
            count += 1
            problem = _check_line(target, number, parts, cat, found, bool(trailers))
            if problem:
                problems.append(problem)
        elif kind.startswith(LINE):
            problems.append(f"{target}: probe output line {number} is not in the probe's format")
    if (
        len(headers) != 1
        or headers[0][1:2] != [FORMAT_VERSION]
        or _int(headers[0], 2) != len(cat.checks)
    ):
        problems.append(
            f"{target}: the probe's header is missing, repeated or not version {FORMAT_VERSION} "
            f"with {len(cat.checks)} checks: not the probe this pipeline ships"
        )
    if len(trailers) != 1:
        problems.append(f"{target}: the probe's end line is missing or repeated: output was cut")
    return found, problems


def _check_line(
    target: str,
    number: int,
    parts: list[str],
    cat: NodeCatalogue,
    found: dict[str, tuple[bool, str]],
    after_end: bool,
) -> str | None:
    if len(parts) != 4 or parts[2] not in (PASS, FAIL):
        return f"{target}: probe output line {number} is not in the probe's format"
    check_id, status, observed = parts[1], parts[2], parts[3][:MAX_OBSERVED]
    shown = one_line(check_id, 64)
    if after_end:
        return f"{target}: probe output line {number} ({shown}) comes after the end line"
    if check_id not in cat.ids:
        return f"{target}: the probe reports {shown}, which is not a check of the node catalogue"
    if check_id in found:
        return f"{target}: the probe reports {shown} more than once"
    found[check_id] = (status == PASS, observed)
    return None


def _int(parts: list[str], index: int) -> int | None:
    try:
        value = parts[index]
    except IndexError:
        return None
    return int(value) if value.isdigit() and len(value) < 6 else None


def probe_script(root: Path | None = None) -> tuple[str, str]:
    """The shipped probe's text and its sha256 (ConfigError when the checkout lacks it)."""
    base = root or Path(__file__).resolve().parent.parent
    path = base / PROBE_SCRIPT
    try:
        body = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{PROBE_SCRIPT}: the node probe cannot be read: {exc.strerror}") from exc
    return body.decode("utf-8"), hashlib.sha256(body).hexdigest()
