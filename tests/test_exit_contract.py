"""The exit-code contract across commands: every user-facing task has bad-input cases, the
README documents every code, interrupts map to 130 (SIGINT) and 143 (SIGTERM), and Invoke's own
parse and config errors exit 2 (``pipeline.cli.invoke_exit``)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from invoke import Exit, ParseError, Program

import tasks
from pipeline.cli import exits, invoke_exit
from pipeline.errors import ConfigError, ExitCode, Terminated

ROOT = Path(__file__).resolve().parents[1]
CASES = sorted((ROOT / "tests/cases/bad_input").glob("*.yaml"))
DEVELOPER_TASKS = {"lint", "test", "ci"}  # run the tools; no user input to get wrong
INVOKE = str(Path(sys.executable).parent / "invoke")


def test_every_user_facing_command_has_bad_input_cases() -> None:
    names = set(tasks.ns.task_names) - DEVELOPER_TASKS
    covered = {yaml.safe_load(p.read_text())["argv"][0] for p in CASES}
    assert names - covered == set(), "commands without a case in tests/cases/bad_input/"


def test_readme_documents_every_exit_code() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("## Exit codes") :]
    documented = {int(code) for code in re.findall(r"^\| (\d+) \|", table, re.MULTILINE)}
    assert {int(code) for code in ExitCode} <= documented


@pytest.mark.parametrize(
    ("raised", "code", "line"),
    [
        (KeyboardInterrupt(), 130, "error: interrupted by SIGINT"),
        (Terminated(), 143, "error: interrupted by SIGTERM"),
        (ConfigError("--flag x: bad"), 2, None),
    ],
    ids=["SIGINT", "SIGTERM", "config-error"],
)
def test_exit_codes_maps_interrupts_and_errors(
    raised: BaseException, code: int, line: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(Exit) as exited, exits.exit_codes():
        raise raised
    assert exited.value.code == code
    assert exited.value.message == line or (
        line is None and "error: --flag x: bad" in capsys.readouterr().err
    )


def test_sigterm_is_restored_after_a_command() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with exits.exit_codes():
        assert signal.getsignal(signal.SIGTERM) is exits.on_sigterm
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_commands_outcome_is_its_exit_code() -> None:
    exits.finish(ExitCode.OK)
    with pytest.raises(Exit) as exited:
        exits.finish(ExitCode.GATE_BLOCKED)
    assert (exited.value.code, exited.value.message) == (3, None)


@pytest.mark.parametrize(
    ("argv", "env", "fragment"),
    [
        (["hardening-coverage", "--bogus"], {}, "No idea what '--bogus' is"),
        (["validate", "--ami"], {}, "needed value and was not given one"),
        (["nosuch"], {}, "No idea what 'nosuch' is"),
        (["--help", "nosuch"], {}, "No idea what 'nosuch' is"),
        (["hardening-coverage", "--platform", "al\x002023"], {}, "--platform: contains a NUL"),
        (["policy.validate", "--policy", "a", "--policy", "b\x00"], {}, "--policy: contains a NUL"),
        (["hardening-coverage"], {"INVOKE_PIPELINE_LEVEL": "abc"}, "invalid literal for int()"),
        (["-f", "{tmp}/cfg.yaml", "hardening-coverage"], {}, "-f, INVOKE_* variables): while"),
    ],
    ids=[
        "unknown-flag",
        "missing-value",
        "unknown-task",
        "help-of-unknown-task",
        "nul-byte",
        "nul-byte-in-a-repeated-flag",
        "bad-invoke-variable",
        "runtime-config-not-yaml",
    ],
)
def test_invokes_own_input_errors_exit_2_in_one_error_line(
    argv: list[str],
    env: dict[str, str],
    fragment: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "cfg.yaml").write_text("pipeline: [\n", encoding="utf-8")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(ROOT)  # Invoke finds tasks.py from the working folder
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
        Program(binary_names=["invoke", "inv"]).run(["invoke", *argv], exit=True)
    out = capsys.readouterr()
    assert exited.value.code == 2, out
    assert out.err.startswith("error: ") and out.err.count("\n") == 1, out
    assert fragment in out.err and "Traceback" not in out.err + out.out


def test_invoke_parse_errors_become_exit_2_once_installed() -> None:
    invoke_exit.install()
    invoke_exit.install()  # tasks.py may be imported twice: the steps are wrapped once
    assert Program.parse_tasks is invoke_exit.parse_errors_exit_2(Program.parse_tasks)

    def step(program: Program) -> None:
        raise ParseError("No idea what '--x\nerror: forged' is!")

    with pytest.raises(Exit) as exited:
        invoke_exit.parse_errors_exit_2(step)(Program())
    assert exited.value.code == 2
    assert exited.value.message == "error: No idea what '--x\\nerror: forged' is!"


def test_invoke_config_errors_become_exit_2() -> None:
    def step(config: object) -> None:
        raise ValueError("Can't cleanly merge")

    with pytest.raises(Exit) as exited:
        invoke_exit.config_errors_exit_2(step)(object())
    assert exited.value.code == 2
    assert exited.value.message == (
        "error: invoke configuration (-f, INVOKE_* variables): Can't cleanly merge"
    )


def test_sigterm_to_a_waiting_command_exits_143_in_one_line(tmp_path: Path) -> None:
    # A command that blocks: `verify` waiting for an endpoint that accepts but never answers.
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        server.settimeout(60)
        endpoint = f"http://127.0.0.1:{server.getsockname()[1]}"
        proc = subprocess.Popen(
            [INVOKE, "verify", "--ami", "ami-0123456789abcdef0"],
            cwd=ROOT,
            env={**os.environ, "AWS_ENDPOINT_URL": endpoint},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        held = []
        try:
            # The reachability check connects and leaves; the first AWS request then waits.
            while True:
                conn, _ = server.accept()
                held.append(conn)
                conn.settimeout(10)
                try:
                    if conn.recv(4096):  # an HTTP request: the command is inside its call
                        break
                except TimeoutError:
                    continue
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
        finally:
            for conn in held:
                conn.close()
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 143, out + err
    assert err.strip() == "error: interrupted by SIGTERM" and "Traceback" not in out + err


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("abc", "not a port"),
        ("nan", "not a finite number"),
        ("-inf", "not a finite number"),
        ("1e999", "not a finite number"),
        ("80.5", "not a whole number"),
        ("65536", "must be between 0 and 65535"),
        ("-1", "must be between 0 and 65535"),
        (True, "not a port"),
        (None, "not a port"),
    ],
)
def test_ports_are_range_checked(value: object, message: str) -> None:
    from pipeline import settings

    with pytest.raises(ConfigError, match=message):
        settings.as_port(value)


@pytest.mark.parametrize(
    ("value", "port"), [("0", 0), ("8080", 8080), (" 443 ", 443), (65535, 65535)]
)
def test_valid_ports(value: object, port: int) -> None:
    from pipeline import settings

    assert settings.as_port(value) == port


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:4566",
        "https://localhost",
        "http://[::1]:8080/",
        "https://ec2.eu-west-1.amazonaws.com",
    ],
)
def test_endpoint_urls_accepted(url: str) -> None:
    from pipeline import endpoints

    assert endpoints.check_endpoint_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "localhost:4566",
        "ftp://h",
        "http://",
        "http://h:0",
        "http://h:x",
        "http://u@h",
        "http://h/p",
    ],
)
def test_endpoint_urls_refused(url: str) -> None:
    from pipeline import endpoints

    with pytest.raises(ConfigError, match="AWS_ENDPOINT_URL"):
        endpoints.check_endpoint_url(url)
