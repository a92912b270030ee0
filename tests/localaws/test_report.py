"""GetCisScanReport: the CSV (or PDF) is downloadable over HTTP from the URL it returns."""

from __future__ import annotations

import csv
import io
import urllib.error
import urllib.request
from typing import Any

import pytest

from pipeline.catalog import Platform
from pipeline.localaws import cis_report

World = Any


def download(url: str) -> tuple[str, bytes]:
    with urllib.request.urlopen(url) as response:  # a plain HTTP client: no AWS signature
        return response.headers["Content-Type"], response.read()


def test_csv_report_holds_every_result_row(world: World) -> None:
    hardened = world.launch(
        ami=world.hardened(Platform.AMAZON_LINUX_2, 2), tags={"cis-scan": "run-1", "n": "1"}
    )[0]
    stock = world.launch(tags={"cis-scan": "run-1", "n": "2"})[0]
    scan_arn = world.scan()
    report = world.c.inspector.get_cis_scan_report(scanArn=scan_arn, reportFormat="CSV")
    assert report["status"] == "SUCCEEDED"
    assert report["url"].startswith(world.aws.endpoint + "/")
    content_type, body = download(report["url"])
    assert content_type.startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8"))))
    assert tuple(rows[0]) == cis_report.CSV_COLUMNS
    from_api = {
        (r["targetResourceId"], r["checkId"], r["status"], r["findingArn"])
        for instance in (hardened, stock)
        for r in world.details(scan_arn, instance)
    }
    assert {
        (r["targetResourceId"], r["checkId"], r["status"], r["findingArn"]) for r in rows
    } == from_api
    assert len(rows) == len(from_api) == 240 + 243


def test_pdf_is_the_default_format(world: World) -> None:
    world.launch()
    report = world.c.inspector.get_cis_scan_report(scanArn=world.scan())
    content_type, body = download(report["url"])
    assert content_type == "application/pdf"
    assert body.startswith(b"%PDF-1.4") and body.rstrip().endswith(b"%%EOF")


def test_in_progress_and_other_accounts(world: World) -> None:
    world.launch()
    scan_arn = world.scan(finish=False)
    in_progress = world.c.inspector.get_cis_scan_report(scanArn=scan_arn, reportFormat="CSV")
    assert in_progress["status"] == "IN_PROGRESS" and "url" not in in_progress
    world.aws.advance(10)
    other = world.c.inspector.get_cis_scan_report(
        scanArn=scan_arn, reportFormat="CSV", targetAccounts=["111122223333"]
    )
    _, body = download(other["url"])
    assert body.decode().splitlines() == [",".join(cis_report.CSV_COLUMNS)]


def test_unknown_report_path_is_404(world: World) -> None:
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(world.aws.endpoint + cis_report.PATH_PREFIX + "nope.csv")
    assert caught.value.code == 404
