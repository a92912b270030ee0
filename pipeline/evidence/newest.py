"""Which record speaks for an AMI: the newest by what was signed, never by storage metadata.

An attacker who may write the evidence bucket (never sign) controls every key, body and
``LastModified`` there: re-uploading last month's PASS at its own key makes it the object S3
stored last. So every envelope under ``<account>/<region>/<ami-id>/`` is read and must prove
itself: a signature that verifies, a statement about this AMI, signed for the run whose folder
holds it. Of those, the one with the newest signed ``timeVerified`` speaks. Anything that cannot
prove itself (unreadable, unsigned, moved, about another AMI) or a tie on the signed time is a
reason to trust none of them: hiding a newer FAIL must make verification fail, never bring back
an older PASS.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from pipeline.evidence import dsse, statement, store
from pipeline.evidence.record import SignatureCheck, unique_keys

MAX_RECORDS = 1000  # one a night for more than two years; more were planted: none is trusted


@dataclass(frozen=True)
class Signed:
    """What a record's verified signature vouches for that decides which record is newest."""

    time: datetime
    run: str | None
    subject: str | None


Reader = Callable[[str], "Signed | str"]  # key -> signed claims, or why the record cannot count


def newest_record(
    keys: Iterable[str], prefix: str, subject: str, read: Reader
) -> tuple[str | None, tuple[str, ...]]:
    """The key of the record that speaks for the image ``subject`` (its ARN), or None and every
    reason none can.

    ``keys`` are the envelopes under the AMI's ``prefix``; ``read`` proves one (signature,
    signed claims). No key at all is (None, ()): the AMI has no record.
    """
    ordered = sorted(set(keys))
    if len(ordered) > MAX_RECORDS:
        return None, (
            f"{len(ordered)} records under {prefix} (more than {MAX_RECORDS}): none is trusted",
        )
    problems: list[str] = []
    proven: dict[str, Signed] = {}
    for key in ordered:
        got = read(key)
        if isinstance(got, str):
            problems.append(
                f"record {key} {got}: while it is under the AMI, which validation is the newest "
                "cannot be told"
            )
        elif got.subject != subject:
            problems.append(f"record {key} was signed for {got.subject}, not {subject}")
        elif got.run is None or key != f"{prefix}{got.run}/{store.ENVELOPE}":
            problems.append(
                f"record {key} was signed for run {got.run}, not for the folder it is stored in"
            )
        else:
            proven[key] = got
    if problems or not proven:
        return None, tuple(problems)
    top = max(signed.time for signed in proven.values())
    best = [key for key, signed in proven.items() if signed.time == top]
    if len(best) > 1:
        return None, (
            f"records {', '.join(best)} are signed for the same time {top.isoformat()}: which one "
            "is the newest cannot be told",
        )
    return best[0], ()


def prove(body: bytes, signature_ok: SignatureCheck | None) -> Signed | str:
    """The signed claims of one envelope's bytes, or why they prove nothing."""
    try:
        envelope = dsse.parse(body)
        claims, _ = statement.read(json.loads(envelope.payload, object_pairs_hook=unique_keys))
    except (dsse.EnvelopeError, ValueError, AttributeError) as exc:
        return f"is not a readable signed statement ({exc})"
    if claims.time_verified is None:
        return "has no signed timeVerified"
    if signature_ok is None:
        return "cannot be checked (no signature check)"
    failures = [signature_ok(envelope, s) for s in envelope.signatures]
    if None not in failures:
        return "does not verify: " + ("; ".join(f for f in failures if f) or "no signature")
    return Signed(claims.time_verified, claims.run_id, claims.subject_name)
