"""Stan's error messages (from Stan, httpstan or CmdStan) trimmed to the line a user needs."""

from __future__ import annotations

import re

_STAN_EXCEPTION = "Exception: "
_STAN_LOCATION_OR_QUOTE = re.compile(r" \(in '|`|\"\)")
_STAN_LINE = re.compile(r"', line (\d+),")
_STAN_MODEL_PREFIX = re.compile(r"^\w+_namespace::\w+: ")
_HTTPSTAN_WRAPPED = re.compile(r"""\w+Error\((["'])(.*?)\1\)`?, traceback: """, re.DOTALL)
_INIT_FAILED = re.compile(r"Initialization between \([^)]*\) failed after \d+ attempts")
_INIT_REJECTED = re.compile(
    r"Rejecting initial value:\s*(.*?)\s*(?:Stan can't start|Rejecting initial|Initialization|$)"
)


def trim_stan_message(text: str, program_code: str | None = None) -> str:
    """Return the useful line of an error text from Stan, httpstan or CmdStan.

    httpstan's ``RuntimeError("...")``-and-traceback wrapping is taken off first. Then the line is the
    last ``Exception: ...`` clause without the generated model's name and the source location (the
    program is usually a temporary copy); else, for a failed initialization, Stan's summary with the
    reason the initial values were rejected; else the first line mentioning an error; else the first
    line. Given the program's code, the statement at the location is appended, e.g.
    ``(line 7: real<lower=0> lambda;)``, which names the variable a constraint error is about.
    """
    wrapped = _HTTPSTAN_WRAPPED.search(text)
    if wrapped:
        text = wrapped.group(2).replace("\\n", "\n").replace("\\'", "'").replace('\\"', '"')
    start = text.rfind(_STAN_EXCEPTION)
    if start >= 0:
        return _exception_clause(text[start + len(_STAN_EXCEPTION) :].split("\n", 1)[0], program_code)
    initialization = _INIT_FAILED.search(text)
    if initialization:
        rejected = _INIT_REJECTED.search(" ".join(text.split()))
        return initialization.group(0) + (f": {rejected.group(1)}" if rejected else "")
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return "(no message)"
    return next((line for line in lines if "error" in line.lower()), lines[0])


def _exception_clause(full_clause: str, program_code: str | None) -> str:
    clause = _STAN_LOCATION_OR_QUOTE.split(full_clause, maxsplit=1)[0].strip()
    clause = _STAN_MODEL_PREFIX.sub("", clause)
    location = _STAN_LINE.search(full_clause)
    if location and program_code:
        lines = program_code.splitlines()
        number = int(location.group(1))
        if 1 <= number <= len(lines):
            clause += f" (line {number}: {lines[number - 1].strip()})"
    return clause
