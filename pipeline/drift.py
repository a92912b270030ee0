"""The drift report (pure): a new verdict compared with the stored verdict of the channel's
current image: new failures, newly passing checks, changed counts, exceptions expiring within
30 days, exceptions that matched nothing; for an unchanged image re-validated, the findings new
since its previous record (vulnerabilities published since it was validated). Goes to
verdict.json (context["drift"]) and summary.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.gate import ExceptionNote, Verdict
from pipeline.vulnpolicy import SEVERITIES

COUNT_KEYS = ("passed", "failed", "skipped")
_UNSAFE = re.compile(r"[^A-Za-z0-9 ._:/(),=-]")
FALLBACK = "verdict tags (unsigned fallback)"


@dataclass(frozen=True, slots=True)
class Baseline:
    """The channel's current image and what is stored about its last verdict."""

    ami: str
    source: str  # "signed record" or FALLBACK: where verdict and level came from
    verdict: str | None
    level: str | None
    failed: frozenset[str] | None  # FAILED check IDs; None when not recorded
    counts: Mapping[str, int] | None


@dataclass(frozen=True, slots=True)
class PreviousFindings:
    """The vulnerability IDs of a re-validated image's previous record (its signed
    ``evidence/findings.json``), or why they are not known."""

    record: str | None  # the previous record's URI
    ids: frozenset[str] | None  # None: not known (``why``)
    why: str | None = None


def vulnerability_ids(document: Any, target: str) -> frozenset[str] | None:
    """The vulnerability IDs of ``target``'s findings in a stored ``evidence/findings.json``
    (``{instance: [ListFindings pages]}``); None when the document has no pages for it."""
    pages = document.get(target) if isinstance(document, Mapping) else None
    if not isinstance(pages, list):
        return None
    ids = set()
    for page in (p for p in pages if isinstance(p, Mapping)):
        for raw in page.get("findings") or []:
            details = raw.get("packageVulnerabilityDetails") if isinstance(raw, Mapping) else None
            vid = details.get("vulnerabilityId") if isinstance(details, Mapping) else None
            if isinstance(vid, str) and vid:
                ids.add(vid)
    return frozenset(ids)


def observed_findings(verdict: Verdict, target: str) -> dict[str, str]:
    """Each vulnerability ID found on ``target`` in the new verdict, with its highest severity."""
    found = verdict.vulnerabilities
    if found is None:
        return {}
    every = [j.finding for j in (*found.blocking, *found.excepted)] + list(found.below)
    out: dict[str, str] = {}
    for f in sorted(every, key=lambda f: _SEVERITY_RANK.get(f.severity, 0)):
        if f.target == target:
            out[f.vulnerability_id] = f.severity
    return out


_SEVERITY_RANK = {s: -i for i, s in enumerate(SEVERITIES)}


def new_findings(previous: PreviousFindings, now: Mapping[str, str]) -> dict[str, Any]:
    """The findings present now but not in the previous record (JSON-ready)."""
    if previous.ids is None:
        return {"since": previous.record, "findings": None, "note": previous.why}
    new = sorted(set(now) - previous.ids)
    return {
        "since": previous.record,
        "findings": [{"vulnerability_id": v, "severity": now[v]} for v in new],
        "note": None,
    }


@dataclass(frozen=True, slots=True)
class Observed:
    """One image's outcome in the new verdict."""

    failed: frozenset[str]
    passed: frozenset[str]
    counts: Mapping[str, int]


def observed(verdict: Verdict, target: str) -> Observed:
    """The FAILED and PASSED check IDs and the counts of ``target`` in ``verdict``."""
    failed = {
        f.result.check_id
        for f in (*verdict.failed_unexcepted, *verdict.failed_excepted)
        if f.result.target == target
    }
    passed = {r.check_id for r in verdict.passed if r.target == target}
    skipped = sum(1 for f in verdict.skipped if f.result.target == target)
    counts = {"passed": len(passed), "failed": len(failed), "skipped": skipped}
    return Observed(frozenset(failed), frozenset(passed), counts)


def encode_counts(counts: Mapping[str, int]) -> str:
    """``passed=213,failed=9,skipped=21`` (a tag value)."""
    return ",".join(f"{k}={int(counts.get(k, 0))}" for k in COUNT_KEYS)


def decode_counts(text: str | None) -> dict[str, int] | None:
    """Inverse of ``encode_counts``; None for anything malformed."""
    if not text:
        return None
    out: dict[str, int] = {}
    for part in text.split(","):
        key, _, value = part.partition("=")
        if key not in COUNT_KEYS or not value.isdigit():
            return None
        out[key] = int(value)
    return out if set(out) == set(COUNT_KEYS) else None


def encode_failed(failed: Iterable[str], limit: int = 256) -> str:
    """Sorted FAILED check IDs, space separated; ``…`` marks a list cut at the tag limit."""
    text = " ".join(sorted(failed))
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + " …"


def decode_failed(text: str | None) -> frozenset[str] | None:
    if text is None or text.endswith("…"):
        return None  # never recorded, or cut short: no per-check comparison
    return frozenset(text.split())


def _notes(notes: Sequence[ExceptionNote]) -> list[dict[str, str]]:
    seen: dict[tuple[str, str], dict[str, str]] = {}
    for n in notes:
        key = (n.exception.check_id, str(n.policy.source))
        seen.setdefault(
            key,
            {
                "check_id": n.exception.check_id,
                "title": n.exception.title,
                "expires": str(n.exception.expires),
            },
        )
    return list(seen.values())


def compare(
    ami: str,
    channel: str,
    baseline: Baseline | None,
    now: Observed,
    verdict: Verdict,
    previous: PreviousFindings | None = None,
    target: str | None = None,
) -> dict[str, Any]:
    """The drift of ``ami`` against ``baseline`` (JSON-ready); ``previous``: the findings of
    ``ami``'s own previous record when it was re-validated unchanged (``target``: its instance
    in ``verdict``)."""
    out: dict[str, Any] = {
        "new_findings": None
        if previous is None
        else new_findings(previous, observed_findings(verdict, target or "")),
        "ami": ami,
        "channel": channel,
        "baseline": None,
        "new_failures": None,
        "newly_passing": None,
        "counts": {"before": None, "after": dict(now.counts)},
        "expiring_within_30_days": _notes(verdict.expiring_soon),
        "unused_exceptions": _notes(verdict.unused_exceptions),
        "notes": [],
    }
    if baseline is None:
        out["notes"].append(f"the {channel} channel has no current image: nothing to compare")
        return out
    out["baseline"] = {
        "ami": baseline.ami,
        "source": baseline.source,
        "verdict": baseline.verdict,
        "level": baseline.level,
    }
    if baseline.counts is not None:
        out["counts"]["before"] = dict(baseline.counts)
    if baseline.failed is None:
        out["notes"].append(
            f"{baseline.ami} has no recorded per-check result: new failures and newly passing "
            "checks cannot be listed"
        )
    else:
        out["new_failures"] = sorted(now.failed - baseline.failed)
        out["newly_passing"] = sorted(baseline.failed & now.passed)
    return out


def inert(text: str) -> str:
    """Markdown-inert text: every character outside a small safe set becomes ``?``."""
    return _UNSAFE.sub("?", text)[:300]


def render_markdown(drift: object, esc: Callable[[str], str] = inert) -> list[str]:
    """The summary.md section for ``verdict.context["drift"]`` (a list of compare() results);
    ``esc`` makes each interpolated value inert Markdown (report.common.md)."""
    if not isinstance(drift, list) or not drift:
        return []
    lines = ["### Drift against the channel's current image", ""]
    for item in drift:
        if not isinstance(item, Mapping):
            continue
        if "error" in item:
            lines += [f"- drift report incomplete: {esc(str(item['error']))}", ""]
            continue
        base = item.get("baseline")
        head = f"**{esc(str(item.get('ami')))}** vs {esc(str(item.get('channel')))}"
        if isinstance(base, Mapping):
            head += f" image {esc(str(base.get('ami')))} (from {esc(str(base.get('source')))})"
        lines += [head, ""]
        counts = item.get("counts") or {}
        if isinstance(counts, Mapping) and counts.get("before"):
            before, after = _counts(counts.get("before")), _counts(counts.get("after"))
            lines.append(f"- counts: {esc(before)} → {esc(after)}")
        for key, label in (("new_failures", "new failures"), ("newly_passing", "newly passing")):
            value = item.get(key)
            if isinstance(value, list):
                lines.append(f"- {label}: {esc(', '.join(map(str, value))) if value else 'none'}")
        lines += _findings_lines(item.get("new_findings"), esc)
        for key, label in (
            ("expiring_within_30_days", "exceptions expiring within 30 days"),
            ("unused_exceptions", "exceptions that matched nothing"),
        ):
            value = item.get(key) or []
            ids = [str(n.get("check_id")) for n in value if isinstance(n, Mapping)]
            lines.append(f"- {label}: {esc(', '.join(ids)) if ids else 'none'}")
        for note in item.get("notes") or []:
            lines.append(f"- note: {esc(str(note))}")
        lines.append("")
    return lines


def _findings_lines(value: object, esc: Callable[[str], str]) -> list[str]:
    if not isinstance(value, Mapping):
        return []
    since = esc(str(value.get("since") or "the previous record"))
    found = value.get("findings")
    if not isinstance(found, list):
        return [f"- findings new since {since}: not known ({esc(str(value.get('note')))})"]
    shown = [
        f"{f.get('vulnerability_id')} ({f.get('severity')})"
        for f in found
        if isinstance(f, Mapping)
    ]
    return [f"- findings new since {since}: {esc(', '.join(shown)) if shown else 'none'}"]


def _counts(value: object) -> str:
    if not isinstance(value, Mapping):
        return "unknown"
    return ", ".join(f"{value.get(k, 0)} {k}" for k in COUNT_KEYS)


def summary_sections(context: Mapping[str, object], esc: Callable[[str], str] = inert) -> list[str]:
    """summary.md sections from a verdict's context: the nightly rebuild decisions and drift."""
    lines: list[str] = []
    rebuild = context.get("rebuild")
    if isinstance(rebuild, list) and rebuild:
        lines += ["### Nightly rebuild", ""]
        for item in rebuild:
            if isinstance(item, Mapping):
                ami = f" {item.get('ami')}" if item.get("ami") else ""
                text = f"{item.get('image')}: {item.get('action')}{ami}: {item.get('why')}"
                lines.append(f"- {esc(text)}")
        lines.append("")
    return lines + render_markdown(context.get("drift"), esc)
