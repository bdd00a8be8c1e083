"""Running a ``sluice`` command inside the test process (click's ``CliRunner``), as a subprocess would
see it: a clean ``SLUICE_*`` environment, stdin from a string, stdout and stderr apart, the exit code.

A command runs its coroutine with ``asyncio.run``, which cannot run inside the test's own event loop, so
the command runs in a thread of its own while the test waits; off the main thread a command handles no
signals (``sluice.cli.running.handle_stop_signals``), so what SIGTERM or SIGINT does is tested with real
processes (``start_cli``). Commands that set up process-wide logging (``consume``) get the root logger
back as it was afterwards, and an unexpected exception ends up on stderr as a traceback, exit code 1, as
the interpreter would print it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import threading
import traceback

from click.testing import CliRunner, Result

from sluice.cli import main

COMMAND_SECONDS = 60.0


@dataclasses.dataclass(frozen=True)
class CliResult:
    """What a run of the command left: shaped like ``subprocess.CompletedProcess`` for the tests."""

    returncode: int
    stdout: str
    stderr: str


def command_environment(dsn: str | None, settings: dict[str, str]) -> dict[str, str | None]:
    """The changes to ``os.environ`` for one run: every ``SLUICE_*`` variable unset, then ``dsn`` and
    ``settings`` set (None unsets a variable in ``CliRunner``)."""
    environment: dict[str, str | None] = {key: None for key in os.environ if key.startswith("SLUICE_")}
    if dsn is not None:
        environment["SLUICE_DSN"] = dsn
    environment.update(settings)
    return environment


def invoke_cli(*arguments: str, dsn: str | None = None, stdin: str | None = None, **settings: str) -> CliResult:
    """Run ``sluice ARGUMENTS`` to completion in this process (in a thread: see the module's docstring)."""
    outcome: list[Result] = []
    failure: list[BaseException] = []

    def invoke() -> None:
        try:
            outcome.append(_invoke_keeping_process_state(list(arguments), stdin, command_environment(dsn, settings)))
        except BaseException as error:  # handed to the test's thread, raised there
            failure.append(error)

    thread = threading.Thread(target=invoke, name=f"sluice {' '.join(arguments[:2])}", daemon=True)
    thread.start()
    thread.join(COMMAND_SECONDS)
    if thread.is_alive():
        raise AssertionError(f"sluice {' '.join(arguments)} did not finish within {COMMAND_SECONDS:.0f} s")
    if failure:
        raise failure[0]
    [result] = outcome
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(result.exception))
    return CliResult(returncode=result.exit_code, stdout=result.stdout, stderr=stderr)


def _invoke_keeping_process_state(
    arguments: list[str], stdin: str | None, environment: dict[str, str | None]
) -> Result:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    import_path = list(sys.path)
    try:
        return CliRunner().invoke(main, arguments, input=stdin, env=environment, prog_name="sluice")
    finally:
        for handler in list(root.handlers):
            if handler not in handlers:
                root.removeHandler(handler)
        for handler in handlers:
            if handler not in root.handlers:
                root.addHandler(handler)
        root.setLevel(level)
        sys.path[:] = import_path
