import pytest

from runtime.engines.settings import SamplerSettings
from runtime.errors import StanFleetError


def test_defaults_are_the_usual_ones() -> None:
    settings = SamplerSettings()
    settings.validate()
    assert (settings.chains, settings.warmup, settings.samples) == (4, 1000, 1000)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"chains": 0}, "--chains must be a positive integer, got 0"),
        ({"samples": -5}, "--samples must be a positive integer, got -5"),
        ({"warmup": -1}, "--warmup must be a non-negative integer, got -1"),
        ({"adapt_delta": 1.0}, "--adapt-delta must lie strictly between 0 and 1, got 1.0"),
        ({"max_treedepth": 0}, "--max-treedepth must be a positive integer, got 0"),
        ({"thin": 0}, "--thin must be a positive integer or 'auto', got 0"),
        ({"thin": "sometimes"}, "--thin must be a positive integer or 'auto', got 'sometimes'"),
    ],
)
def test_validate_names_the_bad_setting(changes: dict[str, object], message: str) -> None:
    with pytest.raises(StanFleetError, match=message.replace("(", r"\(")):
        SamplerSettings(**changes).validate()  # type: ignore[arg-type]


def test_round_trip() -> None:
    settings = SamplerSettings(thin="auto", adapt_delta=0.95)
    assert SamplerSettings.from_dict(settings.to_dict()) == settings
