"""The machine's live processes as /proc shows them (Linux): to check that a test leaves none behind."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple


class ProcessEntry(NamedTuple):
    """One live process: its id, its parent's and its process group's."""

    pid: int
    parent: int
    group: int


def live_processes() -> list[ProcessEntry]:
    """Every process that has not exited (zombies, which have, are left out)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):  # exited meanwhile
            continue
        if fields[0] != "Z":
            found.append(ProcessEntry(int(stat.parent.name), int(fields[1]), int(fields[2])))
    return found


def processes_in_group(group: int) -> list[int]:
    """Live members of a process group."""
    return [entry.pid for entry in live_processes() if entry.group == group]


def descendants(pid: int) -> set[int]:
    """The live children of a process, their children, and so on."""
    entries = live_processes()
    found: set[int] = set()
    parents = {pid}
    while parents:
        parents = {entry.pid for entry in entries if entry.parent in parents} - found
        found |= parents
    return found


def still_alive(pids: set[int]) -> set[int]:
    """Those of ``pids`` that have not exited."""
    return pids & {entry.pid for entry in live_processes()}
