import pytest

from runtime.executors.progress import progress_reporter


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


def test_status_detail_is_shown(capsys: pytest.CaptureFixture[str]) -> None:
    with progress_reporter(4, enabled=True) as update:
        update(0, "0 succeeded, 0 failed, 2 running, 1 queued")
        update(2, "2 succeeded, 0 failed, 1 running, 0 queued")
    err = capsys.readouterr().err
    assert "2 running, 1 queued" in err
    assert "2 succeeded" in err
