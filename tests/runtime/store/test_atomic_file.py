import os
import stat
from pathlib import Path

import pytest

from runtime.store import atomic_file
from runtime.store.atomic_file import write_atomically


def test_writes_with_umask_permissions_and_no_leftovers(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "summary.json"
    write_atomically(target, b"{}")
    assert target.read_bytes() == b"{}"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
    assert os.listdir(target.parent) == ["summary.json"]


def test_a_failed_write_leaves_the_previous_file_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "summary.json"
    target.write_text('{"previous": true}')

    def crash(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(atomic_file.os, "fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        write_atomically(target, b'{"new": true}')
    assert target.read_text() == '{"previous": true}'
    assert os.listdir(tmp_path) == ["summary.json"]
