"""Endpoint URLs that looked fine to the check but are not what botocore receives: urlsplit
drops newlines and tabs and reports no user name for ``http://:secret@host``."""

from __future__ import annotations

import pytest

from pipeline import endpoints
from pipeline.errors import ConfigError


@pytest.mark.parametrize(
    "url",
    [
        "http://:secret@127.0.0.1:4566",
        "http://@127.0.0.1:4566",
        "http://127.0.0.\n1:4566",
        "http://127.0.0.1:45\t66",
        "http://127.0.0.1:4566\n",
        " http://127.0.0.1:4566",
        "http://127.0.0.1:4566\x00",
        " ",
    ],
)
def test_endpoint_urls_with_hidden_parts_are_refused(url: str) -> None:
    with pytest.raises(ConfigError, match="AWS_ENDPOINT_URL"):
        endpoints.check_endpoint_url(url)


def test_a_blank_endpoint_variable_is_checked_not_skipped() -> None:
    assert endpoints.endpoint_urls({"AWS_ENDPOINT_URL": " ", "AWS_ENDPOINT_URL_EC2": ""}) == {
        "AWS_ENDPOINT_URL": " "
    }


def test_a_refused_endpoint_never_prints_its_password() -> None:
    with pytest.raises(ConfigError) as caught:
        endpoints.check_endpoint_url("http://admin:hunter2@127.0.0.1:4566")
    assert "hunter2" not in str(caught.value) and "//***@127.0.0.1:4566" in str(caught.value)
