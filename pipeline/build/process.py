"""Running Packer: one ``packer build`` per image, every line to the image's log file, stage
changes and errors to the console; ``packer version`` checked for the production template.
"""

from __future__ import annotations

import re
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from pipeline.errors import ToolError
from pipeline.packer import (
    BuildSpec,
    build_argv,
    build_env,
    check_packer_version,
    is_error_line,
    stage_of,
    ui_lines,
)

Out = Callable[[str], None]
# runner(argv, env, on_line) -> exit code; on_line receives each output line (stdout+stderr).
Runner = Callable[[Sequence[str], Mapping[str, str], Out], int]

PACKER_INSTALL_HINT = (
    "install Packer: `sudo apt-get install packer` (Debian's 1.6.6 builds only the local "
    "template, --local) or a current release from https://developer.hashicorp.com/packer/install "
    "(the production template needs Packer >= 1.10 and runs `packer init packer/` first)"
)
TAIL_LINES = 25


class LiveProcesses:
    """The processes one build runs, so a lost heartbeat can stop them all (``interrupt``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._procs: set[subprocess.Popen[str]] = set()
        self.interrupted = False

    def add(self, proc: subprocess.Popen[str]) -> None:
        with self._lock:
            self._procs.add(proc)
            if self.interrupted:  # started after the interrupt: stop it too
                proc.send_signal(signal.SIGINT)

    def remove(self, proc: subprocess.Popen[str]) -> None:
        with self._lock:
            self._procs.discard(proc)

    def interrupt(self) -> None:
        """SIGINT to each: Packer then cancels its build and deletes what it created."""
        with self._lock:
            self.interrupted = True
            for proc in self._procs:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGINT)


def run_process(
    argv: Sequence[str],
    env: Mapping[str, str],
    on_line: Out,
    *,
    timeout: float | None = None,
    live: LiveProcesses | None = None,
) -> int:
    """Run ``argv`` with ``env``, stream stdout+stderr lines to ``on_line``, return the exit code.

    With ``timeout`` (seconds) the process is killed when it runs longer (exit code then < 0).
    ``live`` holds the process while it runs. Raises ToolError with the install hint when the
    program does not exist.
    """
    try:
        proc = subprocess.Popen(
            list(argv),
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            bufsize=1,
        )
    except FileNotFoundError:
        raise ToolError(f"{argv[0]}: not found on PATH; {PACKER_INSTALL_HINT}") from None
    timer = threading.Timer(timeout, proc.kill) if timeout else None
    if timer:
        timer.start()
    if live is not None:
        live.add(proc)
    try:
        with proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                on_line(line.rstrip("\n"))
            code = proc.wait()
    finally:
        if timer:
            timer.cancel()
        if live is not None:
            live.remove(proc)
    if code < 0 and timeout:
        on_line(f"killed after the {timeout:.0f}s timeout")
    return code


def utcnow() -> datetime:
    return datetime.now(UTC)


def locked(out: Out) -> Out:
    lock = threading.Lock()

    def say(text: str) -> None:
        with lock:
            out(text)

    return say


@dataclass(frozen=True, slots=True)
class Outcome:
    spec: BuildSpec
    returncode: int
    tail: tuple[str, ...]
    seconds: float


def run_packer(
    spec: BuildSpec, runner: Runner, environ: Mapping[str, str], say: Out, packer: str
) -> Outcome:
    """Run one ``packer build``: every line to the image's log file, stage changes and Packer's
    errors to the console (``[al2023-x86_64] creating AMI``)."""
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    argv = build_argv(spec, packer=packer)
    stage: list[str] = []
    spec.log_path.parent.mkdir(parents=True, exist_ok=True)
    say(f"[{spec.name}] packer log: {spec.log_path}")
    with spec.log_path.open("w", encoding="utf-8") as log:
        log.write(f"# {' '.join(argv)}\n")

        def on_line(raw: str) -> None:
            texts = ui_lines(raw)
            for text in texts:
                log.write(text + "\n")
                tail.append(text)
                now = stage_of(text)
                if now is not None and (not stage or stage[-1] != now):
                    stage.append(now)
                    say(f"[{spec.name}] {now}")
                elif is_error_line(raw):
                    say(f"[{spec.name}] {text}")
            if not texts and raw.strip():
                log.write(raw + "\n")  # artifact and other machine-readable records
            log.flush()

        started = time.monotonic()
        code = runner(argv, build_env(spec, environ), on_line)
    return Outcome(spec, code, tuple(tail), time.monotonic() - started)


def last_error(tail: Sequence[str]) -> str:
    errors = [t for t in tail if re.search(r"errored|[Ee]rror", t)]
    return (errors or list(tail) or ["(no output)"])[-1].strip()


def check_version(spec: BuildSpec, runner: Runner, environ: Mapping[str, str], packer: str) -> None:
    """``packer version`` must be >= 1.10 for the production template (ConfigError, exit 2)."""
    lines: list[str] = []
    code = runner([packer, "version"], build_env(spec, environ), lines.append)
    if code != 0:
        raise ToolError(f"`{packer} version` exited {code}; {PACKER_INSTALL_HINT}")
    check_packer_version("\n".join(lines), packer=packer)
