"""``GetCisScanReport`` documents: a CSV (one row per check per target) or a small PDF.

Owns the report formats and the in-memory store the local server serves them from
(``GET /_localaws/cis-reports/<token>.<csv|pdf>``), standing in for the presigned S3 URL the
real service returns.
"""

from __future__ import annotations

import csv
import io
import threading
import uuid
from collections.abc import Iterable, Mapping

# Column order of the CSV report; names are the API's CisScanResultDetails members.
CSV_COLUMNS = (
    "scanArn",
    "accountId",
    "targetResourceId",
    "platform",
    "checkId",
    "title",
    "level",
    "status",
    "statusReason",
    "checkDescription",
    "remediation",
    "findingArn",
)
CONTENT_TYPES = {"CSV": "text/csv; charset=utf-8", "PDF": "application/pdf"}
PATH_PREFIX = "/_localaws/cis-reports/"


def csv_report(rows: Iterable[Mapping[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    return out.getvalue().encode("utf-8")


def pdf_report(title: str, lines: list[str]) -> bytes:
    """A plain, valid PDF: Helvetica text, 60 lines a page."""
    pages = [lines[i : i + 60] for i in range(0, max(len(lines), 1), 60)] or [[]]
    objects: list[bytes] = []
    page_ids = [4 + 2 * i for i in range(len(pages))]
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    kids = " ".join(f"{p} 0 R" for p in page_ids)
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for number, page in enumerate(pages):
        text = [title if number == 0 else f"{title} (continued)", "", *page]
        stream = _text_stream(text)
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 842 595]"
            b" /Resources << /Font << /F1 3 0 R >> >>"
            + f" /Contents {page_ids[number] + 1} 0 R >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    return _assemble(objects)


def _text_stream(lines: list[str]) -> bytes:
    body = ["BT /F1 8 Tf 30 570 Td 9 TL"]
    for line in lines:
        safe = line.encode("latin-1", "replace").decode("latin-1")
        safe = safe.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        body.append(f"({safe[:180]}) Tj T*")
    body.append("ET")
    return "\n".join(body).encode("latin-1")


def _assemble(objects: list[bytes]) -> bytes:
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, obj in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + obj + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return bytes(out)


class ReportStore:
    """Generated reports, by the token in their URL; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reports: dict[str, tuple[str, bytes]] = {}

    def put(self, fmt: str, content: bytes) -> str:
        """Store a report; return its path (under PATH_PREFIX)."""
        name = f"{uuid.uuid4().hex}.{fmt.lower()}"
        with self._lock:
            self._reports[name] = (CONTENT_TYPES[fmt], content)
        return PATH_PREFIX + name

    def get(self, path: str) -> tuple[str, bytes] | None:
        with self._lock:
            return self._reports.get(path.removeprefix(PATH_PREFIX))

    def reset(self) -> None:
        with self._lock:
            self._reports.clear()
