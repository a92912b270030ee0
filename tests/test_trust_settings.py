"""Issue 20 #2: an earlier CI step may set ``INVOKE_*`` variables ($GITHUB_ENV) or write
``~/.invoke.yaml``; Invoke would merge them over invoke.yaml. A setting that decides what is
trusted (``pipeline.cli.invocation.TRUST_SETTINGS``) is refused there: exit 2, one line naming
the variable or file; the same setting in a ``-f`` file named on the command line is taken."""

from __future__ import annotations

from pathlib import Path

import pytest
from invoke.program import Program

from pipeline.cli.invocation import refused_sources
from pipeline.errors import ConfigError
from pipeline.settings import evidence_settings

ROOT = Path(__file__).resolve().parents[1]

LOWERING = {
    "INVOKE_PIPELINE_RELEASE_CHANNELS_STABLE_MIN_LEVEL": "1",
    "INVOKE_PIPELINE_RELEASE_CHANNELS_CANDIDATE_MIN_LEVEL": "1",
    "INVOKE_PIPELINE_LEVEL": "1",
    "INVOKE_PIPELINE_RELEASE_MAX_AGE_DAYS": "36500",
    "INVOKE_PIPELINE_POLICY_DIR": "/tmp/lenient-policies",
    "INVOKE_PIPELINE_RELEASE_PARAMETER_PREFIX": "/elsewhere",
}


def _invoke(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    monkeypatch.chdir(ROOT)
    capsys.readouterr()
    try:
        Program(binary_names=["invoke", "inv"]).run(["invoke", *argv], exit=True)
    except SystemExit as exited:
        code = exited.code
        return (code if isinstance(code, int) else 1), capsys.readouterr().err
    return 0, capsys.readouterr().err


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No user config file but the test's own."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("INVOKE_RUNTIME_CONFIG", raising=False)
    return tmp_path


@pytest.mark.parametrize("variable", sorted(LOWERING))
def test_a_trust_setting_from_the_environment_is_refused(
    variable: str,
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(variable, LOWERING[variable])
    code, err = _invoke(["policy.validate"], monkeypatch, capsys)
    assert code == 2, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {variable}: sets pipeline."), err
    assert "decides what is trusted" in lines[0]


def test_every_refused_variable_has_its_line(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for variable, value in LOWERING.items():
        monkeypatch.setenv(variable, value)
    code, err = _invoke(["policy.validate"], monkeypatch, capsys)
    assert code == 2
    named = sorted(line.split(":")[1].strip() for line in err.splitlines())
    assert named == sorted(LOWERING), err


def test_a_harmless_setting_from_the_environment_is_taken(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("INVOKE_PIPELINE_OUT", str(home / "out"))
    code, err = _invoke(["policy.validate"], monkeypatch, capsys)
    assert code == 0, err


def test_a_user_config_file_written_by_an_earlier_step_is_refused(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (home / ".invoke.yaml").write_text(
        "pipeline:\n  release:\n    channels:\n      stable: {min_level: 1}\n", encoding="utf-8"
    )
    code, err = _invoke(["policy.validate"], monkeypatch, capsys)
    assert code == 2
    assert err == (
        f"error: {home / '.invoke.yaml'}: sets pipeline.release.channels.stable.min_level, "
        "which decides what is trusted: set it in invoke.yaml or with the flag, not the "
        "environment\n"
    )


def test_a_runtime_file_from_the_environment_is_refused_but_taken_with_f(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = home / "cfg.yaml"
    cfg.write_text("pipeline:\n  level: 2\n", encoding="utf-8")
    code, err = _invoke(["-f", str(cfg), "policy.validate"], monkeypatch, capsys)
    assert code == 0, err
    monkeypatch.setenv("INVOKE_RUNTIME_CONFIG", str(cfg))
    code, err = _invoke(["policy.validate"], monkeypatch, capsys)
    assert code == 2
    assert err.startswith(f"error: INVOKE_RUNTIME_CONFIG={cfg}: sets pipeline.level, "), err


def test_a_plain_mapping_has_no_layers_to_refuse() -> None:
    assert refused_sources({"pipeline": {"level": 1}}, {"INVOKE_RUNTIME_CONFIG": "x"}) == []


@pytest.mark.parametrize("variable", ["CIS_SIGNING_KEY", "CIS_EVIDENCE_BUCKET"])
@pytest.mark.parametrize(
    "argv",
    [
        ["verify", "--ami", "ami-0123456789abcdef0"],
        ["promote", "--ami", "ami-0123456789abcdef0"],
        ["revoke", "--ami", "ami-0123456789abcdef0", "--reason", "CVE-2026-0001"],
    ],
    ids=["verify", "promote", "revoke"],
)
def test_the_signing_key_or_bucket_from_the_environment_is_refused_where_it_decides_trust(
    variable: str,
    argv: list[str],
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An earlier step's ``CIS_SIGNING_KEY=alias/theirs`` (or a bucket holding only last month's
    PASS) would choose what verifies: refused before any AWS call."""
    monkeypatch.setenv(variable, "alias/theirs" if variable == "CIS_SIGNING_KEY" else "their-b")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing may be called
    code, err = _invoke(argv, monkeypatch, capsys)
    assert code == 2, err
    assert err.startswith(f"error: {variable}: sets "), err
    assert err.count("\n") == 1


def test_evidence_settings_refuse_the_environment_only_when_trusting() -> None:
    environ = {"CIS_SIGNING_KEY": "alias/theirs", "CIS_EVIDENCE_BUCKET": "their-bucket"}
    assert evidence_settings({}, environ).signing_key == "alias/theirs"  # setup, validate
    with pytest.raises(ConfigError) as caught:
        evidence_settings({}, environ, trusting=True)
    assert [line.split(":")[0] for line in caught.value.problems] == [
        "CIS_EVIDENCE_BUCKET",
        "CIS_SIGNING_KEY",
    ]
    pinned = {"signing_key": "alias/ours", "evidence_bucket": "our-bucket"}
    assert evidence_settings(pinned, environ, trusting=True).signing_key == "alias/ours"
    flagged = evidence_settings(
        {}, {"CIS_EVIDENCE_BUCKET": "their-bucket"}, evidence_bucket="our-bucket", trusting=True
    )
    assert flagged.bucket == "our-bucket"
