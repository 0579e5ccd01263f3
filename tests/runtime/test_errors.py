import pytest

from runtime.errors import StanFleetError, exit_status


def test_a_stanfleet_error_is_one_line_on_stderr_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    def failing() -> int:
        raise StanFleetError("--replicates must be a positive integer, got 0")

    assert exit_status(failing) == 1
    assert capsys.readouterr().err == "error: --replicates must be a positive integer, got 0\n"


def test_success_passes_the_status_through_and_other_errors_raise() -> None:
    assert exit_status(lambda: 3) == 3

    def broken() -> int:
        raise ValueError("a bug, not bad input")

    with pytest.raises(ValueError, match="a bug"):
        exit_status(broken)
