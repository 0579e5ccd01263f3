"""Build sharing through the store, with a recording engine standing in for CmdStan (no CmdStan here)."""

from dataclasses import dataclass, field
from pathlib import Path

from runtime.engines.base import SharedBuild
from runtime.fitting.shared_builds import compile_shared
from runtime.store.local import LocalDirectoryStore


@dataclass
class RecordingEngine:
    """Builds by writing ``built by <machine>`` to its executable path, if it is not there yet."""

    machine: str
    build_path: Path
    name: str = "recording"
    builds: list[str] = field(default_factory=list)

    def shared_build(self, stan_file: Path) -> SharedBuild:
        return SharedBuild(key="models/test/abc/model", path=self.build_path)

    def compile(self, stan_file: Path) -> str:
        if not self.build_path.is_file():
            self.build_path.parent.mkdir(parents=True, exist_ok=True)
            self.build_path.write_text(f"built by {self.machine}")
            self.builds.append(self.machine)
        return self.build_path.read_text()


def test_compile_job_publishes_and_workers_reuse_its_build(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path / "store")
    program = tmp_path / "model.stan"
    compiler = RecordingEngine("compile-job", tmp_path / "a" / "model")
    worker = RecordingEngine("worker", tmp_path / "b" / "model")

    assert compile_shared(compiler, program, store, publish=True) == "built by compile-job"
    assert store.get("models/test/abc/model") == b"built by compile-job"
    assert compile_shared(worker, program, store, publish=False) == "built by compile-job"
    assert worker.builds == []  # fetched, not rebuilt
    assert worker.build_path.stat().st_mode & 0o111  # executable


def test_without_a_published_build_a_worker_compiles_itself_and_publishes_nothing(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path / "store")
    worker = RecordingEngine("worker", tmp_path / "b" / "model")
    assert compile_shared(worker, tmp_path / "model.stan", store, publish=False) == "built by worker"
    assert worker.builds == ["worker"]
    assert list(store.list_keys("models/")) == []
