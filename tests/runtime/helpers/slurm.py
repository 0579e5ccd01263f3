"""A real one-node Slurm cluster on this machine, for tests that run Slurm jobs (Debian's ``slurm-wlm``).

:func:`one_node_slurm` writes, in a fresh temporary directory, a ``slurm.conf`` for one node (this
machine, under its short hostname) and one default partition, then starts a private ``munged`` (its own
key and socket there, so a system munge is neither needed nor disturbed), ``slurmctld`` and ``slurmd``,
each in the foreground, as a child in its own process group. It waits until a trivial job runs and
yields a :class:`LocalSlurm`. On the way out it cancels every job, waits until the queue is empty and
the jobs' processes are gone (``slurmstepd`` and what it runs are no descendants of ours: ``slurmd``
double-forks them), stops the daemons and removes the directory.

Every process of the cluster carries ``SLURM_CONF`` = :attr:`LocalSlurm.conf` in its environment (the
daemons get it from us, ``slurmstepd`` from ``slurmd``, a job's processes from ``slurmstepd``): that is
how :func:`processes_of` finds them.

:func:`slurm_available` says whether Slurm can run here (root, and the programs installed);
:func:`require_slurm` skips a test where it cannot, or fails it with ``STANFLEET_REQUIRE_SLURM=1`` (CI
sets it).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REQUIRE_SLURM = os.environ.get("STANFLEET_REQUIRE_SLURM") == "1"
PROGRAMS = ("munged", "slurmctld", "slurmd", "sinfo", "srun", "sbatch", "squeue", "scancel")
_SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
"""The daemons live in /usr/sbin, which a non-login PATH may lack."""
PARTITION = "debug"
PROJECT = Path(__file__).resolve().parents[3]
STOP_SECONDS = 15.0
"""How long a daemon, or a cancelled job's processes, get to end on their own before being killed."""
DRAIN_SECONDS = 30.0
"""How long cancelled jobs get to leave the queue (KillWait below, plus Slurm's bookkeeping)."""

SLURM_CONF = """\
# One node on localhost for StanFleet's tests: no cgroups (this may run in a container), no accounting.
ClusterName=stanfleet
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={controller_port}
SlurmdPort={node_port}
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket={directory}/munge.socket
StateSaveLocation={directory}/state
SlurmdSpoolDir={directory}/spool
SlurmctldPidFile={directory}/slurmctld.pid
SlurmdPidFile={directory}/slurmd.pid
SlurmctldLogFile={directory}/log/slurmctld.log
SlurmdLogFile={directory}/log/slurmd.log
# pgid, not linuxproc: a job's processes whose parent died (a Dask nanny, once the job's shell is gone)
# stay in the job's process group, so cancelling kills them; linuxproc loses them.
ProctrackType=proctrack/pgid
TaskPlugin=task/none
# Cores, not whole nodes: two 1-core jobs run at once.
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
# Debian's default (/usr/bin/mail) is absent; slurmctld logs an error for it at every start.
MailProg=/bin/true
ReturnToService=2
# The node is what this file says (fewer CPUs or less memory than the machine's is no reason to drain it).
SlurmdParameters=config_overrides
SlurmdTimeout=30
MessageTimeout=10
# Seconds between SIGTERM and SIGKILL when a job is cancelled.
KillWait=5
NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory} State=UNKNOWN
PartitionName={partition} Nodes={node} Default=YES MaxTime=INFINITE State=UP
"""
"""slurm.conf's template: every file, socket and port the cluster uses is its own."""


@dataclass(frozen=True)
class LocalSlurm:
    """A running one-node cluster: where it lives and what its clients (sbatch, squeue, ...) need."""

    node: str
    partition: str
    cpus: int
    directory: Path
    conf: Path
    environment: Mapping[str, str]
    """What to add to a client's environment: ``SLURM_CONF``."""

    def run(self, *command: str, timeout: float = 30.0) -> str:
        """Run a Slurm client command (``sbatch ...``, ``squeue ...``) against this cluster; its output.

        The command gets this cluster's environment and none of the caller's other ``SLURM_*`` variables
        (inside a real Slurm job, they would name that job to this cluster).
        """
        result = subprocess.run(
            command,
            env=client_environment(self.environment),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} exited {result.returncode}: {result.stderr.strip()}")
        return result.stdout

    def job_ids(self) -> list[str]:
        """The jobs in the queue (pending, running or completing)."""
        return self.run("squeue", "--noheader", "--format=%i").split()

    def dask_workers(self, log_directory: Path, walltime: str = "00:10:00") -> dict[str, Any]:
        """``dask_jobqueue.SLURMCluster`` keywords for 1-core workers on this cluster, in this environment.

        The job starts in the project's folder (``python -m`` puts it on ``sys.path``, so the workers import
        the tests' modules too), with this interpreter; the scheduler listens on loopback.
        """
        return {
            "queue": self.partition,
            "cores": 1,
            "processes": 1,
            "memory": "1GB",
            "walltime": walltime,
            "python": sys.executable,
            "job_script_prologue": [f"cd {PROJECT}"],
            "log_directory": str(log_directory),
            "interface": "lo",
            "scheduler_options": {"host": "127.0.0.1", "dashboard_address": ":0"},
        }

    def wait_for_empty_queue(self, timeout: float = 30.0) -> None:
        """Poll squeue until no job is left (scancel returns before the jobs are gone)."""
        deadline = time.monotonic() + timeout
        while jobs := self.job_ids():
            assert time.monotonic() < deadline, f"jobs {jobs} still queued after {timeout} s"
            time.sleep(0.2)


def client_environment(environment: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without its ``SLURM_*`` variables, plus ``environment``."""
    inherited = {name: value for name, value in os.environ.items() if not name.startswith("SLURM_")}
    return inherited | dict(environment)


def slurm_missing() -> str | None:
    """Why Slurm cannot run here, or None where it can."""
    if os.geteuid() != 0:
        return "Slurm's daemons need root (slurmd starts jobs as their users)"
    absent = [program for program in PROGRAMS if shutil.which(program, path=_SEARCH_PATH) is None]
    if absent:
        return f"Slurm is not installed: {', '.join(absent)} missing (apt-get install slurm-wlm munge)"
    return None


def slurm_available() -> bool:
    """Whether :func:`one_node_slurm` can run here: as root, with Slurm and munge installed."""
    return slurm_missing() is None


def require_slurm() -> None:
    """Skip the calling test where Slurm cannot run; with ``STANFLEET_REQUIRE_SLURM=1``, fail it."""
    reason = slurm_missing()
    if reason is None:
        return
    message = f"{reason}; .ci/run installs it, and STANFLEET_REQUIRE_SLURM=1 makes this a failure"
    if REQUIRE_SLURM:
        pytest.fail(message)
    pytest.skip(message)


@contextlib.contextmanager
def one_node_slurm(timeout: float = 60.0) -> Iterator[LocalSlurm]:
    """A one-node Slurm cluster, running until the block ends; nothing of it is left afterwards.

    Starting fails after ``timeout`` seconds with the daemons' log tails. Leaving raises when jobs
    outlived their cancellation (after killing them), unless the block itself raised.
    """
    cluster = _configure(Path(tempfile.mkdtemp(prefix="stanfleet-slurm-")))
    daemons: dict[str, subprocess.Popen[bytes]] = {}
    problem: str | None = None
    try:
        _start(cluster, daemons, deadline=time.monotonic() + timeout)
        yield cluster
    finally:
        try:
            if "slurmctld" in daemons:
                problem = _drain(cluster, daemons)
        finally:
            _stop(daemons)
            _kill(processes_of(cluster))  # whatever slurmd launched while it was stopping
            shutil.rmtree(cluster.directory, ignore_errors=True)
    if problem:
        raise RuntimeError(problem)


def _configure(directory: Path) -> LocalSlurm:
    """Write slurm.conf and a munge key in ``directory``, and make the directories the daemons need."""
    directory.chmod(0o755)  # jobs of any user reach munged's socket in it (munged warns otherwise)
    for name in ("state", "spool", "log"):
        (directory / name).mkdir()
    key = directory / "munge.key"
    key.touch(mode=0o600)
    key.write_bytes(os.urandom(128))  # what mungekey makes: 1024 random bits, readable by root only
    node = socket.gethostname().split(".")[0]  # hostname -s
    cpus = len(os.sched_getaffinity(0))
    conf = directory / "slurm.conf"
    conf.write_text(
        SLURM_CONF.format(
            node=node,
            cpus=cpus,
            memory=_half_the_memory(),
            partition=PARTITION,
            directory=directory,
            controller_port=_free_port(),
            node_port=_free_port(),
        )
    )
    return LocalSlurm(
        node=node,
        partition=PARTITION,
        cpus=cpus,
        directory=directory,
        conf=conf,
        environment={"SLURM_CONF": str(conf)},
    )


def _half_the_memory() -> int:
    """Half the machine's memory in MiB: what the node offers jobs, safely below what slurmd finds."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**21


def _free_port() -> int:
    """A TCP port free right now, so that clusters started side by side do not collide."""
    with socket.socket() as probe:
        probe.bind(("", 0))
        return int(probe.getsockname()[1])


def _start(cluster: LocalSlurm, daemons: dict[str, subprocess.Popen[bytes]], deadline: float) -> None:
    """Start munged, slurmctld and slurmd into ``daemons``; return once the node runs a trivial job."""
    directory = cluster.directory
    daemons["munged"] = _launch(
        cluster,
        "munged",
        "--foreground",
        "--force",  # its permission checks warn instead of refusing (a TMPDIR set up oddly)
        f"--socket={directory}/munge.socket",
        f"--key-file={directory}/munge.key",
        f"--pid-file={directory}/munged.pid",
        f"--seed-file={directory}/munged.seed",
    )
    _wait(cluster, daemons, deadline, "munged's socket", lambda: (directory / "munge.socket").exists())
    daemons["slurmctld"] = _launch(cluster, "slurmctld", "-D", "-f", str(cluster.conf))
    daemons["slurmd"] = _launch(cluster, "slurmd", "-D", "-f", str(cluster.conf), "-N", cluster.node)
    _wait(cluster, daemons, deadline, f"node {cluster.node} idle", lambda: _idle(cluster))
    try:  # authentication, slurmd and slurmstepd all work
        cluster.run("srun", "--quiet", "--time=1", "true", timeout=max(deadline - time.monotonic(), 1))
    except (RuntimeError, subprocess.TimeoutExpired) as error:
        raise _not_started(cluster, f"srun true failed: {error}") from None


def _launch(cluster: LocalSlurm, program: str, *arguments: str) -> subprocess.Popen[bytes]:
    """Start a daemon in its own process group, its console in ``log/<program>.log`` (munged's only log).

    slurmctld and slurmd copy to the console what they write to the log files slurm.conf names, so
    theirs is thrown away.
    """
    executable = shutil.which(program, path=_SEARCH_PATH)
    if executable is None:
        raise RuntimeError(f"{program} is not installed (apt-get install slurm-wlm munge)")
    console = (cluster.directory / "log" / f"{program}.log").open("ab") if program == "munged" else None
    try:
        return subprocess.Popen(
            [executable, *arguments],
            env=client_environment(cluster.environment),
            stdin=subprocess.DEVNULL,
            stdout=console or subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        if console:
            console.close()


def _idle(cluster: LocalSlurm) -> bool:
    """Whether slurmctld answers and says the node is idle."""
    try:
        state = cluster.run("sinfo", "--noheader", "--nodes", cluster.node, "--format=%T", timeout=10)
    except (RuntimeError, subprocess.TimeoutExpired):
        return False  # slurmctld not listening yet
    return state.strip() == "idle"


def _wait(
    cluster: LocalSlurm,
    daemons: Mapping[str, subprocess.Popen[bytes]],
    deadline: float,
    what: str,
    ready: Callable[[], bool],
) -> None:
    """Poll ``ready`` until it holds; fail at once if a daemon exits, or at ``deadline``."""
    while not ready():
        exited = [
            f"{name} exited {daemon.returncode}"
            for name, daemon in daemons.items()
            if daemon.poll() is not None
        ]
        if exited or time.monotonic() > deadline:
            raise _not_started(cluster, f"{', '.join(exited) or 'timed out'} waiting for {what}")
        time.sleep(0.2)


def _not_started(cluster: LocalSlurm, reason: str, lines: int = 15) -> RuntimeError:
    """The error for a cluster that did not start: ``reason``, then the last lines of each daemon's log."""
    tails = []
    for log in sorted((cluster.directory / "log").glob("*.log")):
        tail = log.read_text(errors="replace").splitlines()[-lines:]
        tails.append(f"\n--- {log.name}, last {len(tail)} lines:\n" + "\n".join(tail))
    return RuntimeError(f"one-node Slurm did not start ({reason}){''.join(tails)}")


def _drain(cluster: LocalSlurm, daemons: Mapping[str, subprocess.Popen[bytes]]) -> str | None:
    """Cancel every job; wait until the queue is empty and their processes are gone.

    Processes still running :data:`STOP_SECONDS` after the queue emptied (one that left the job's
    process group, say) are killed, with a warning. Returns what went wrong, if anything: jobs still
    queued after :data:`DRAIN_SECONDS` (their processes killed too).
    """
    deadline = time.monotonic() + DRAIN_SECONDS
    queued = cluster.job_ids()
    if queued:
        cluster.run("scancel", *queued)
    while (queued := cluster.job_ids()) and time.monotonic() < deadline:
        time.sleep(0.2)
    ours = {daemon.pid for daemon in daemons.values()}
    deadline = time.monotonic() + STOP_SECONDS
    while (left := processes_of(cluster, besides=ours)) and time.monotonic() < deadline:
        time.sleep(0.2)
    _kill(left)
    if queued:
        return f"jobs {', '.join(queued)} were still queued {DRAIN_SECONDS:.0f} s after scancel"
    if left:
        warnings.warn(f"killed what cancelled Slurm jobs left running: {sorted(left.values())}", stacklevel=1)
    return None


def _stop(daemons: dict[str, subprocess.Popen[bytes]]) -> None:
    """Stop the daemons, last started first; kill each one's process group to be sure."""
    for daemon in reversed(daemons.values()):
        if daemon.poll() is None:
            daemon.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                daemon.wait(STOP_SECONDS)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(daemon.pid, signal.SIGKILL)  # slurmctld's slurmscriptd, or a daemon that hung
        daemon.wait()


def processes_of(cluster: LocalSlurm, besides: set[int] | frozenset[int] = frozenset()) -> dict[int, str]:
    """Live processes of the cluster (daemons, slurmstepd, jobs' processes) but ``besides``: pid -> command.

    ``besides`` leaves out those processes and their descendants. A process belongs to the cluster when its environment names the cluster's slurm.conf, or it descends
    from one that does.
    """
    marker = f"SLURM_CONF={cluster.conf}".encode()
    parents: dict[int, int] = {}
    commands: dict[int, str] = {}
    marked: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            state, parent = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:2]
            if state == "Z":
                continue
            parents[pid] = int(parent)
            commands[pid] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                marked.add(pid)
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return {
        pid: command.strip()
        for pid, command in commands.items()
        if pid != os.getpid()
        and _ancestry(pid, parents) & marked
        and not _ancestry(pid, parents) & set(besides)
    }


def _ancestry(pid: int, parents: Mapping[int, int]) -> set[int]:
    """``pid`` and its ancestors."""
    line = set()
    while pid > 1 and pid not in line:
        line.add(pid)
        pid = parents.get(pid, 0)
    return line


def _kill(processes: Mapping[int, str]) -> None:
    """SIGKILL each of ``processes``, gone or not."""
    for pid in processes:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
