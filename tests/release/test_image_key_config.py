"""Issue 19: where the image keys are configured. Build takes the recorded key and refuses the
default EBS key when release accounts are configured; ``setup --image-keys`` records its keys
in invoke.yaml without disturbing the rest; ``pipeline.release.accounts`` is checked."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipeline.build.variables import image_key_vars
from pipeline.errors import ConfigError
from pipeline.key_setup import record_in_yaml
from tests.release.conftest import release

ROOT = Path(__file__).resolve().parents[2]
KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
A = "111122223333"


@pytest.mark.parametrize(
    ("given", "accounts", "keys", "want"),
    [
        ({}, (), {}, {}),
        ({}, (), {"us-east-1": KEY}, {"kms_key_id": KEY}),
        ({}, (A,), {"us-east-1": KEY}, {"kms_key_id": KEY}),
        ({"kms_key_id": "alias/mine"}, (A,), {"us-east-1": KEY}, {"kms_key_id": "alias/mine"}),
        ({}, (A,), {}, "empty (the default EBS key)"),
        ({}, (A,), {"eu-west-1": KEY}, "empty (the default EBS key)"),
        ({"kms_key_id": "alias/aws/ebs"}, (A,), {}, "alias/aws/ebs: pipeline.release.accounts"),
    ],
    ids=["nothing", "recorded", "recorded-shared", "flag-wins", "default-refused",
         "other-region-only", "aws-ebs-refused"],
)  # fmt: skip
def test_build_key(
    given: dict[str, str], accounts: tuple[str, ...], keys: dict[str, str], want: object
) -> None:
    def run() -> dict[str, str]:
        return image_key_vars(given, accounts=accounts, kms_keys=keys, region="us-east-1")

    if isinstance(want, str):
        with pytest.raises(ConfigError, match="kms_key_id") as caught:
            run()
        assert want in str(caught.value) and "invoke setup --image-keys" in str(caught.value)
    else:
        assert run() == want


def test_setup_records_its_keys_in_the_shipped_invoke_yaml() -> None:
    text = (ROOT / "invoke.yaml").read_text(encoding="utf-8")
    keys = {"us-east-1": KEY, "eu-west-1": KEY.replace("us-east-1", "eu-west-1")}
    changed = record_in_yaml(text, keys)
    assert changed is not None
    before, after = yaml.safe_load(text), yaml.safe_load(changed)
    assert after["pipeline"]["release"].pop("kms_keys") == keys
    before["pipeline"]["release"].pop("kms_keys")
    assert after == before  # nothing else changed
    assert changed.count("\n#") == text.count("\n#")  # top-level comments kept
    # Again, with one more region: merged, still one kms_keys.
    more = record_in_yaml(changed, {"us-west-2": KEY.replace("us-east-1", "us-west-2")})
    assert more is not None and more.count("kms_keys:") == 1
    assert len(yaml.safe_load(more)["pipeline"]["release"]["kms_keys"]) == 3


def test_no_kms_keys_line_means_no_rewrite() -> None:
    assert record_in_yaml("pipeline:\n  level: 2\n", {"us-east-1": KEY}) is None


@pytest.mark.parametrize(
    ("accounts", "needle"),
    [(["12345"], "not a 12-digit"), ("111122223333", "expected a list")],
)
def test_release_accounts_are_checked(accounts: object, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        release(accounts=accounts)


def test_release_accounts_default_the_promote_accounts() -> None:
    assert release(accounts=[A, 444455556666]).accounts == (A, "444455556666")
