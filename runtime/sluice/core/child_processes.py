"""Child processes that do not outlive their parent: Linux's parent-death signal, set between fork and exec.

Servers started for tests, benchmarks and the local platform (PostgreSQL, the control plane, workers) must
not be left running when the process that started them is killed without a chance to stop them.
"""

from __future__ import annotations

import ctypes
import os
import pwd
import signal
import sys
from collections.abc import Callable

PARENT_DEATH_SIGNAL_OPTION = 1
"""Linux ``prctl`` option: deliver a signal to this process when the thread that started it exits."""


def parent_death_hook(
    signal_number: signal.Signals = signal.SIGKILL, *, run_as: str | None = None
) -> Callable[[], None] | None:
    """A ``preexec_fn`` that asks Linux to send ``signal_number`` to the child when its parent dies.

    ``run_as`` switches the child to that user first, inside the hook: the kernel clears the parent-death
    signal when a process's credentials change, so ``Popen(user=...)`` (which switches after ``preexec_fn``
    runs) would undo it. Use the hook instead of ``user=``. Everything is looked up here, in the parent, so
    the child makes only system calls between fork and exec. None when there is nothing to do.
    """
    account = pwd.getpwnam(run_as) if run_as is not None else None
    process_control = None
    if sys.platform.startswith("linux"):
        try:
            process_control = ctypes.CDLL(None, use_errno=True).prctl
        except (OSError, AttributeError):
            process_control = None
    if account is None and process_control is None:
        return None
    death_signal = int(signal_number)

    def prepare_child() -> None:
        if account is not None:
            os.setgroups([])
            os.setgid(account.pw_gid)
            os.setuid(account.pw_uid)
        if process_control is not None:
            process_control(PARENT_DEATH_SIGNAL_OPTION, death_signal, 0, 0, 0)

    return prepare_child
