"""The size expressions of a Stan program's data and parameter declarations.

``stanc --info`` gives each variable's number of dimensions, not what sizes them. stanc's canonical
form (one declaration per statement, comments stripped, no line breaks inside a statement) does, so the
data and parameters blocks are read from it: ``array[N, 2] real w`` is sized ``("N", "2")``,
``matrix<lower=0>[N, K] X`` is sized ``("N", "K")``.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from runtime.errors import StanFleetError
from runtime.model.stan_info import find_stanc

_CANONICAL = (
    "--auto-format",
    "--canonicalize",
    "deprecations,includes,parentheses,braces,strip-comments",
    "--max-line-length",
    "100000",
)
_BLOCK_START = re.compile(r"^(data|parameters) \{$")
_IDENTIFIER = re.compile(r"[A-Za-z_]\w*")
_CLOSING = {"[": "]", "(": ")", "<": ">"}


@dataclass(frozen=True)
class SizedDeclarations:
    """Each data variable's and parameter's size expressions, outermost dimension first.

    A declaration StanFleet cannot read (a tuple, say) is sized None; :meth:`mentions` still finds a size
    variable in its text.
    """

    data: dict[str, tuple[str, ...] | None]
    parameters: dict[str, tuple[str, ...] | None]
    text: dict[str, str]

    def mentions(self, name: str, size_variable: str) -> bool:
        """Whether ``size_variable`` appears anywhere in the declaration of ``name``."""
        return size_variable in _IDENTIFIER.findall(self.text[name])


def uses_size(dims: tuple[str, ...], size_variable: str) -> bool:
    """Whether ``size_variable`` appears in any of the size expressions ``dims``."""
    return any(size_variable in _IDENTIFIER.findall(dim) for dim in dims)


def read_sized_declarations(stan_file: Path) -> SizedDeclarations:
    """The data and parameters blocks' declarations of ``stan_file`` with their size expressions."""
    content = stan_file.read_bytes()
    return _sized(stan_file.resolve(), hashlib.sha256(content).hexdigest())


@lru_cache(maxsize=16)
def _sized(stan_file: Path, content_sha256: str) -> SizedDeclarations:
    # content_sha256 only keys the cache: an edited file is read again.
    completed = subprocess.run(
        [str(find_stanc()), *_CANONICAL, str(stan_file)], capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        message = " ".join((completed.stderr or completed.stdout).split())
        raise StanFleetError(f"{stan_file.name} does not compile: {message}")
    blocks = _block_statements(completed.stdout)
    text: dict[str, str] = {}
    sized: dict[str, dict[str, tuple[str, ...] | None]] = {"data": {}, "parameters": {}}
    for block, statements in blocks.items():
        for statement in statements:
            name, dims = parse_declaration(statement)
            sized[block][name] = dims
            text[name] = statement
    return SizedDeclarations(data=sized["data"], parameters=sized["parameters"], text=text)


def _block_statements(canonical: str) -> dict[str, list[str]]:
    blocks: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in canonical.splitlines():
        start = _BLOCK_START.match(line)
        if start:
            current = blocks.setdefault(start.group(1), [])
        elif line == "}":
            current = None
        elif current is not None and line.strip():
            current.append(line.strip().removesuffix(";"))
    return blocks


def parse_declaration(statement: str) -> tuple[str, tuple[str, ...] | None]:
    """The variable's name and size expressions, from one declaration without its ``;``.

    ``array[N] vector<lower=0>[K] z`` gives ``("z", ("N", "K"))``; a declaration of another shape (a
    tuple) gives its last word and None.
    """
    rest = statement.strip()
    dims: list[str] = []
    if rest.startswith("array["):
        inner, rest = _enclosed(rest[len("array") :])
        dims += _split_top_level(inner)
    type_name = _IDENTIFIER.match(rest)
    if type_name is None or type_name.group() == "tuple":
        return statement.split()[-1], None
    rest = rest[type_name.end() :].lstrip()
    if rest.startswith("<"):
        _, rest = _enclosed(rest)
    if rest.startswith("["):
        inner, rest = _enclosed(rest)
        dims += _split_top_level(inner)
    return rest.split()[0], tuple(dims)


def _enclosed(text: str) -> tuple[str, str]:
    """``text`` opens with a bracket: its content up to the matching close, and what follows."""
    stack: list[str] = []
    for position, char in enumerate(text):
        if char in _CLOSING and (char != "<" or not stack):  # a nested "<" compares
            stack.append(_CLOSING[char])
        elif stack and char == stack[-1]:
            stack.pop()
            if not stack:
                return text[1:position], text[position + 1 :].lstrip()
    raise StanFleetError(f"cannot read the declaration {text!r}")


def _split_top_level(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for position, char in enumerate(text):
        if char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:position].strip())
            start = position + 1
    parts.append(text[start:].strip())
    return parts
