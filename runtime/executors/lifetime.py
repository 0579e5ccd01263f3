"""Tie processes' lifetimes together, and end a command quickly.

With lifetimes tied, a killed process leaves no orphans behind (a worker is told to stop, with
SIGTERM, and writes what it holds first); a command ends without waiting for the
interpreter's final garbage collections.

Linux's ``PR_SET_PDEATHSIG`` asks the kernel to signal a process when its parent dies; elsewhere these
functions do nothing (the local executor's process groups still clean up after a worker).
"""

from __future__ import annotations

import ctypes
import gc
import os
import signal
import sys
from collections.abc import Mapping
from typing import NoReturn

PARENT_PID_VARIABLE = "STANFLEET_DIE_WITH_PARENT"
"""Set by the local executor to its own pid: the worker it starts dies when that process does."""

_PR_SET_PDEATHSIG = 1


def die_with_parent(signum: int = signal.SIGKILL) -> None:
    """Have the kernel send this process ``signum`` (default SIGKILL) when its parent dies (Linux only)."""
    if sys.platform != "linux":
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")


def forked_children_die_with_this_process() -> None:
    """Every child this process forks from now on (e.g. httpstan's sampler pool) dies with it.

    Children forked and exec'd by ``subprocess`` (CmdStan) do not run Python's fork hooks; they end on
    their own when their fit does, and the local executor kills its worker's whole process group.
    Registering twice registers once.
    """
    global _FORK_HOOK_REGISTERED
    if not _FORK_HOOK_REGISTERED:
        os.register_at_fork(after_in_child=die_with_parent)
        _FORK_HOOK_REGISTERED = True


_FORK_HOOK_REGISTERED = False


def follow_parent(environment: Mapping[str, str]) -> None:
    """Stop with the process named by :data:`PARENT_PID_VARIABLE`, if set; exit now if it is gone.

    The kernel sends SIGTERM when that process dies, so a worker writes the results it holds first.
    """
    parent = environment.get(PARENT_PID_VARIABLE)
    if parent is None:
        return
    die_with_parent(signal.SIGTERM)
    if os.getppid() != int(parent):  # it died before the request took effect
        os._exit(1)


def exit_quickly(status: int) -> NoReturn:
    """End a command as ``sys.exit(status)`` does, after ``gc.freeze()``.

    The interpreter's garbage collections at exit then skip every object alive now: they took 0.6 s of
    the exit once ArviZ, matplotlib and pandas are loaded (0.07 s frozen). The rest of the exit is the
    usual one: threads are joined, process pools shut down, atexit handlers run, streams flushed.
    """
    gc.freeze()
    sys.exit(status)
