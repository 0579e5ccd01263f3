import pytest

from runtime.progress import progress_reporter


def test_progress_bar_counts_up(capsys: pytest.CaptureFixture[str]) -> None:
    with progress_reporter(4, enabled=True) as update:
        update(1)
        update(3)
        update(2)  # a stale count never moves the bar back
        update(4)
    assert "4/4" in capsys.readouterr().err


def test_disabled_bar_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    with progress_reporter(2, enabled=False) as update:
        update(2)
    assert capsys.readouterr().err == ""


def test_a_broken_bar_never_fails_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    import tqdm

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("no terminal")

    monkeypatch.setattr(tqdm, "tqdm", broken)
    with progress_reporter(2, enabled=True) as update:
        update(1)
