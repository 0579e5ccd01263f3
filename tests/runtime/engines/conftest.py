from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh $STANFLEET_CACHE_DIR for the module, where the CmdStanPy engine compiles."""
    root = tmp_path_factory.mktemp("stanfleet_cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STANFLEET_CACHE_DIR", str(root))
        yield root
