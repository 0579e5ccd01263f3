"""Read container/Dockerfile and the build context its .dockerignore admits, as the tests need them.

A small reader, not a full Dockerfile parser: instructions with their continuation lines joined,
exec-form arguments, ARG/ENV values and ``${NAME}`` expansion, and Docker's ignore-file matching
(moby's patternmatcher: ``*``, ``?``, ``**``, ``!`` exceptions, a pattern matching a parent excludes
the files below it, the last matching pattern wins).
"""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "container" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

#: Directories never walked when listing the build context (each is checked to be excluded instead).
UNWALKED = (".git", ".venv", "node_modules", "cdk.out", ".mypy_cache", ".ruff_cache", ".pytest_cache")


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction: upper-case keyword, its arguments on one line, its first line."""

    keyword: str
    value: str
    line: int

    def exec_form(self) -> list[str]:
        """The JSON-array (exec form) arguments; ValueError when written in shell form."""
        parsed = json.loads(self.value)
        if not (isinstance(parsed, list) and all(isinstance(item, str) for item in parsed)):
            raise ValueError(f"line {self.line}: {self.keyword} is not in exec form")
        return parsed


def parse_dockerfile(text: str) -> list[Instruction]:
    """Split a Dockerfile into instructions; comments and blank lines (also inside continuations) go."""
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        keyword, _, value = " ".join(pending).partition(" ")
        instructions.append(Instruction(keyword.upper(), value.strip(), start))
        pending = []
    if pending:
        raise ValueError(f"line {start}: the last instruction ends with a line continuation")
    return instructions


def dockerfile() -> list[Instruction]:
    """The instructions of container/Dockerfile."""
    return parse_dockerfile(DOCKERFILE.read_text())


def assignments(instruction: Instruction) -> dict[str, str]:
    """``NAME=value`` pairs of an ARG or ENV instruction (an ARG without default maps to "")."""
    pairs: dict[str, str] = {}
    for word in shlex.split(instruction.value):
        name, _, value = word.partition("=")
        pairs[name] = value
    return pairs


def expand(text: str, variables: dict[str, str]) -> str:
    """Substitute ``${NAME}`` and ``$NAME`` as the Dockerfile does; unknown names are an error."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in variables:
            raise KeyError(f"${name} is not defined at this point of the Dockerfile")
        return variables[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, text)


def variables_before(instructions: list[Instruction], index: int) -> dict[str, str]:
    """ARG and ENV values in force at ``instructions[index]``, later definitions winning."""
    variables: dict[str, str] = {}
    for instruction in instructions[:index]:
        if instruction.keyword in ("ARG", "ENV"):
            for name, raw in assignments(instruction).items():
                variables[name] = expand(raw, variables)
    return variables


def copy_sources(instruction: Instruction) -> tuple[list[str], str]:
    """Sources and destination of a COPY from the build context (flags such as --chown dropped)."""
    words = [word for word in shlex.split(instruction.value) if not word.startswith("--")]
    return words[:-1], words[-1]


# --- .dockerignore ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class IgnorePattern:
    regex: re.Pattern[str]
    exception: bool


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """moby patternmatcher's translation of an ignore pattern into an anchored regular expression."""
    out = "^"
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            if pattern[i + 1 : i + 2] == "*":
                i += 1
                if pattern[i + 1 : i + 2] == "/":  # "**/" is treated as "**"
                    i += 1
                out += ".*" if i + 1 >= len(pattern) else "(.*/)?"
            else:
                out += "[^/]*"
        elif ch == "?":
            out += "[^/]"
        elif ch == "\\" and i + 1 < len(pattern):
            i += 1
            out += re.escape(pattern[i])
        else:
            out += re.escape(ch)
        i += 1
    return re.compile(out + "$")


def ignore_patterns(text: str) -> list[IgnorePattern]:
    """The patterns of a .dockerignore text, in order."""
    patterns: list[IgnorePattern] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exception = line.startswith("!")
        cleaned = os.path.normpath(line.removeprefix("!").strip()).lstrip("/")
        patterns.append(IgnorePattern(_pattern_regex(cleaned), exception))
    return patterns


def is_excluded(path: str, patterns: list[IgnorePattern]) -> bool:
    """Whether ``path`` (relative, ``/``-separated) stays out of the build context."""
    parents = path.split("/")[:-1]
    excluded = False
    for pattern in patterns:
        if pattern.exception != excluded:  # only a pattern that could change the verdict is tried
            continue
        candidates = [path] + ["/".join(parents[: i + 1]) for i in range(len(parents))]
        if any(pattern.regex.match(candidate) for candidate in candidates):
            excluded = not pattern.exception
    return excluded


def _repository_files() -> Iterator[str]:
    for directory, subdirectories, files in os.walk(ROOT):
        relative = Path(directory).relative_to(ROOT)
        if relative == Path("."):
            subdirectories[:] = [d for d in subdirectories if d not in UNWALKED]
        for name in files:
            yield (relative / name).as_posix()


def build_context() -> set[str]:
    """Every repository file the build context holds under the root .dockerignore."""
    patterns = ignore_patterns(DOCKERIGNORE.read_text())
    return {path for path in _repository_files() if not is_excluded(path, patterns)}
