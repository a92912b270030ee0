"""The node gate (pipeline.node): what a probe's output proves, and what it does not."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pipeline import node
from pipeline.errors import ConfigError
from pipeline.outcome import Outcome

CAT = node.load_catalogue()
IDS = [c.id for c in CAT.checks]
I1, I2 = "i-0aaaaaaaaaaaaaaa1", "i-0aaaaaaaaaaaaaaa2"


def _output(failing: dict[str, str] | None = None, ids: list[str] | None = None) -> list[str]:
    failing = failing or {}
    chosen = IDS if ids is None else ids
    lines = [node.header(len(CAT.checks))]
    lines += [node.format_line(i, i not in failing, failing.get(i, "as expected")) for i in chosen]
    return [*lines, node.trailer(len(chosen))]


def _doc(*outputs: tuple[str, Any]) -> dict[str, Any]:
    invocations = {}
    for target, out in outputs:
        if isinstance(out, list):
            out = {"Status": "Success", "ResponseCode": 0, "StandardOutputContent": "\n".join(out)}
        invocations[target] = out
    return {"probe": {"sha256": "ab" * 32}, "invocations": invocations}


def _outcomes(verdict: node.NodeVerdict) -> dict[str, Outcome]:
    return {t.target: t.verdict for t in verdict.targets}


def _edit(change: Callable[[list[str]], list[str]]) -> dict[str, Any]:
    return _doc((I1, change(_output())))


CASES: list[tuple[str, dict[str, Any], Outcome, str]] = [
    ("healthy node", _doc((I1, _output())), Outcome.PASS, ""),
    (
        "a failed check blocks, naming what was seen",
        _doc((I1, _output({"node.sysctl.ip_forward": "net.ipv4.ip_forward=0 (want 1)"}))),
        Outcome.FAIL,
        "ip_forward=0",
    ),
    (
        "an unreported check of a complete probe blocks",
        _doc((I1, _output(ids=IDS[1:]))),
        Outcome.FAIL,
        "not reported",
    ),
    (
        "command TimedOut: the probe did not run",
        _doc(
            (I1, {"Status": "TimedOut", "StatusDetails": "ExecutionTimedOut", "ResponseCode": -1})
        ),
        Outcome.ERROR,
        "TimedOut",
    ),
    (
        "undeliverable",
        _doc((I1, {"Status": "Failed", "StatusDetails": "Undeliverable", "ResponseCode": -1})),
        Outcome.ERROR,
        "Undeliverable",
    ),
    (
        "never sent",
        _doc((I1, {"error": "ssm:SendCommand: InvalidInstanceId"})),
        Outcome.ERROR,
        "InvalidInstanceId",
    ),
    ("no invocation for a test instance", _doc(), Outcome.ERROR, "did not run"),
    ("trailer missing: output cut", _edit(lambda x: x[:-1]), Outcome.ERROR, "end line"),
    ("header missing", _edit(lambda x: x[1:]), Outcome.ERROR, "header"),
    (
        "trailer count disagrees: a line was dropped",
        _edit(lambda x: x[:3] + x[4:]),
        Outcome.ERROR,
        "output was lost",
    ),
    ("a check reported twice", _edit(lambda x: x[:2] + x[1:]), Outcome.ERROR, "more than once"),
    (
        "a check nobody asked for",
        _edit(lambda x: x[:1] + [node.format_line("node.made.up", True, "")] + x[1:]),
        Outcome.ERROR,
        "not a check of the node catalogue",
    ),
    (
        "a line after the end",
        _edit(lambda x: x + [node.format_line(IDS[0], True, "late")]),
        Outcome.ERROR,
        "after the end line",
    ),
    (
        "a malformed status",
        _edit(lambda x: [x[0], "NODE|" + IDS[0] + "|MAYBE|x", *x[2:]]),
        Outcome.ERROR,
        "format",
    ),
    (
        "another probe version",
        _edit(lambda x: ["NODE-PROBE|2|14", *x[1:]]),
        Outcome.ERROR,
        "version",
    ),
    (
        "output at SSM's limit may be cut",
        _edit(lambda x: [*x, "#" * node.OUTPUT_LIMIT]),
        Outcome.ERROR,
        "24000-character limit",
    ),
]


@pytest.mark.parametrize(
    ("doc", "outcome", "needle"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_probe_output_is_judged_fail_closed(
    doc: dict[str, Any], outcome: Outcome, needle: str
) -> None:
    verdict = node.evaluate(doc, [I1])
    assert verdict.verdict is outcome
    assert _outcomes(verdict)[I1] is outcome
    text = " ".join([*verdict.errors, *(f"{r.check_id} {r.observed}" for r in verdict.failed)])
    assert needle in text
    if outcome is Outcome.PASS:
        assert len(verdict.passed) == len(IDS) and not verdict.failed
    if outcome is Outcome.ERROR:
        assert not verdict.passed  # nothing from an untrusted output is counted as proven


def test_each_instance_is_judged_and_the_worst_wins() -> None:
    doc = _doc((I1, _output()), (I2, _output({IDS[0]: "missing"})))
    verdict = node.evaluate(doc, [I1, I2])
    outcomes = _outcomes(verdict)
    assert (outcomes[I1], outcomes[I2], verdict.verdict) == (
        Outcome.PASS,
        Outcome.FAIL,
        Outcome.FAIL,
    )
    assert [r.target for r in verdict.failed] == [I2]


def test_an_invocation_for_an_instance_the_run_did_not_launch_is_an_error() -> None:
    verdict = node.evaluate(_doc((I1, _output()), (I2, _output())), [I1])
    assert verdict.verdict is Outcome.ERROR and I2 in " ".join(verdict.errors)


def test_no_instance_proves_nothing() -> None:
    assert node.evaluate(_doc(), []).verdict is Outcome.ERROR


def test_observed_text_is_one_capped_ascii_line() -> None:
    line = node.format_line(IDS[0], False, "a\nb\x1b[31m\u202e" + "x" * 500)
    assert "\n" not in line and "\x1b" not in line and "\u202e" not in line
    assert len(line.split("|", 3)[3]) == node.MAX_OBSERVED


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"{", "not JSON"),
        (b'{"checks": []}', "$.checks"),
        (b'{"checks": [{"id": "node.a", "title": "t", "rationale": "r"}]}', "source"),
        (
            b'{"checks": [{"id": "kubelet", "title": "t", "rationale": "r", "source": "s"}]}',
            "node.*",
        ),
    ],
)
def test_a_broken_catalogue_is_refused_naming_the_path(body: bytes, needle: str) -> None:
    with pytest.raises(ConfigError, match="cat.json") as err:
        node.parse_catalogue(body, "cat.json")
    assert needle in str(err.value)


def test_the_shipped_catalogue_names_a_source_for_every_check() -> None:
    assert CAT.checks and all(c.source.startswith("https://") for c in CAT.checks)
    assert all(c.title and c.rationale for c in CAT.checks)
