"""The submitter's memory and the time to the first finished fit as R grows (local backend).

For each R, runs ``python -m runtime.submit`` on the bundled Poisson example (2 workers, a fresh store)
for ``--seconds``, then interrupts it the way Ctrl-C does (the run is resumable), and prints the
submitter's peak resident memory (VmHWM), the largest worker's, the time from start to the first
result in the store, and how many fits finished. Then checks that an R above the documented maximum
is refused in one line with nothing written.

    .venv/bin/python bench/stream_memory.py [--replicates 1000 100000 1000000] [--seconds 90]
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runtime.store.keys import replicates_of_result_key  # noqa: E402
from tests.runtime.helpers.poisson_example import submit_command  # noqa: E402

POLL_SECONDS = 0.05


@dataclass(frozen=True)
class Run:
    replicates: int
    submitter_peak_mib: float
    worker_peak_mib: float
    first_fit_seconds: float | None
    fits: int
    seconds: float


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident set size so far (VmHWM), in MiB; 0 once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def workers_of(pid: int) -> list[int]:
    """The submitter's worker processes (its direct children running runtime.worker)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            command = stat.read_bytes().split(b"\0")
            parent = int((stat.parent / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
        if parent == pid and b"runtime.worker" in command:
            found.append(int(stat.parent.name))
    return found


def measure(replicates: int, seconds: float, engine: str, tmp: Path) -> Run:
    store = tmp / f"store-{replicates}"
    command = submit_command(
        "--replicates",
        str(replicates),
        "--workers",
        "2",
        "--engine",
        engine,
        "--store",
        str(store),
        "--out",
        str(tmp / f"out-{replicates}"),
        "--no-progress",
    )
    started = time.perf_counter()
    submitter = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    submitter_peak = worker_peak = 0.0
    first_fit: float | None = None
    results = store / "ensembles"
    while time.perf_counter() - started < seconds and submitter.poll() is None:
        submitter_peak = max(submitter_peak, peak_rss_mib(submitter.pid))
        worker_peak = max([worker_peak, *(peak_rss_mib(w) for w in workers_of(submitter.pid))])
        if first_fit is None and stored_fits(results):
            first_fit = time.perf_counter() - started
        time.sleep(POLL_SECONDS)
    elapsed = time.perf_counter() - started
    submitter.send_signal(signal.SIGINT)  # as Ctrl-C: finished results stay, the run resumes later
    submitter.wait()
    fits = stored_fits(results)
    return Run(replicates, submitter_peak, worker_peak, first_fit, fits, elapsed)


def stored_fits(ensembles: Path) -> int:
    """Results stored under ``ensembles`` (batches and single objects alike), each replicate once."""
    return len(
        {
            (path.parent.parent.name, replicate)
            for path in ensembles.glob("*/results/*.json*")
            for replicate in replicates_of_result_key(path.name)
        }
    )


def refusal(replicates: int, tmp: Path) -> tuple[int, str, int]:
    """Exit code, error output and number of files written for a refused R."""
    store = tmp / "store-refused"
    completed = subprocess.run(
        submit_command(
            "--replicates", str(replicates), "--store", str(store), "--out", str(tmp / "out-refused")
        ),
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    written = sum(1 for path in tmp.rglob("*") if "refused" in str(path) and path.is_file())
    return completed.returncode, completed.stderr.strip(), written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, nargs="+", default=[1_000, 100_000, 1_000_000])
    parser.add_argument("--seconds", type=float, default=90.0, help="how long each run goes on")
    parser.add_argument("--engine", default="pystan")
    args = parser.parse_args()
    print(f"R on 2 local workers, {args.engine}, each run interrupted after {args.seconds:.0f} s")
    print(f"{'R':>10} {'submitter peak':>15} {'worker peak':>12} {'first fit':>10} {'fits':>6}")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for replicates in args.replicates:
            run = measure(replicates, args.seconds, args.engine, tmp)
            first = "none" if run.first_fit_seconds is None else f"{run.first_fit_seconds:.1f} s"
            print(
                f"{run.replicates:>10,} {run.submitter_peak_mib:>11.0f} MiB {run.worker_peak_mib:>8.0f} MiB "
                f"{first:>10} {run.fits:>6}",
                flush=True,
            )
        code, error, written = refusal(1_000_000_000, tmp)
        print(f"R = 1,000,000,000: exit {code}, {written} files written, stderr: {error}")


if __name__ == "__main__":
    main()
