from pathlib import Path

import pytest

from runtime.model.files import cache_root, materialize_stan_program


def test_same_code_maps_to_the_same_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STANFLEET_CACHE_DIR", str(tmp_path))
    assert cache_root() == tmp_path
    first = materialize_stan_program("parameters { real a; }", "my model")
    assert first.read_text() == "parameters { real a; }"
    assert first.name == "my_model.stan"
    mtime = first.stat().st_mtime_ns
    assert materialize_stan_program("parameters { real a; }", "my model") == first
    assert first.stat().st_mtime_ns == mtime  # not rewritten: compile caches keyed on files keep hitting
    assert materialize_stan_program("parameters { real b; }", "my model") != first
