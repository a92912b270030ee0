"""The single place where pipeline errors and signals become exit codes (no tracebacks).

0 pass; 1 unexpected error; 2 invalid input or configuration (Invoke's own parse errors too,
see ``invoke_exit``); 3 gate blocked or refused; 4 no trustworthy scan result; 130 SIGINT;
143 SIGTERM. A command's own outcome (a verdict) comes back as an ``ExitCode``: ``finish``.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from invoke.exceptions import Exit

from pipeline import github
from pipeline.cli.invocation import echo
from pipeline.errors import ExitCode, PipelineError, Terminated


def on_sigterm(signum: int, frame: object) -> None:
    """SIGTERM unwinds like Ctrl-C (every ``finally`` and cleanup runs), then exits 143."""
    raise Terminated


@contextmanager
def exit_codes() -> Iterator[None]:
    """Run a command: its errors become ``error:`` lines on stderr and their exit code."""
    github.start_untrusted_output(echo)  # under Actions: no command from untrusted text
    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    except PipelineError as err:
        for line in err.lines():
            print(f"error: {line}", file=sys.stderr, flush=True)
        raise Exit(code=int(err.exit_code)) from None
    except KeyboardInterrupt as exc:  # SIGINT 130, SIGTERM 143 (documented in the README)
        term = isinstance(exc, Terminated)
        code = ExitCode.TERMINATED if term else ExitCode.INTERRUPTED
        raise Exit(f"error: interrupted by {'SIGTERM' if term else 'SIGINT'}", code=code) from None
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise Exit(code=int(ExitCode.UNEXPECTED)) from None
    finally:
        signal.signal(signal.SIGTERM, previous)


def finish(code: ExitCode) -> None:
    """A command's outcome: exit with its code unless it is 0."""
    if code != ExitCode.OK:
        raise Exit(code=int(code))
