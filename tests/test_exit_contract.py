"""The exit-code contract across commands: every user-facing task has bad-input cases, the
README documents every code, and interrupts map to 130 (SIGINT) and 143 (SIGTERM)."""

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
from invoke import Exit

import tasks
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
    with pytest.raises(Exit) as exited, tasks._exit_codes():
        raise raised
    assert exited.value.code == code
    assert exited.value.message == line or (
        line is None and "error: --flag x: bad" in capsys.readouterr().err
    )


def test_sigterm_is_restored_after_a_command() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with tasks._exit_codes():
        assert signal.getsignal(signal.SIGTERM) is tasks._on_sigterm
    assert signal.getsignal(signal.SIGTERM) is before


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
