import dataclasses

from runtime.settings import SamplerSettings
from runtime.spec import EnsembleSpec, GeneratorSource, fit_seed, generator_seed


def make_spec(**changes: object) -> EnsembleSpec:
    spec = EnsembleSpec(
        model_name="m",
        model_code="parameters { real mu; }",
        generator=GeneratorSource(kind="stan", code="generated quantities { real mu = 1; }"),
        base_data={"N": 3},
        seed=1,
        settings=SamplerSettings(),
        engine="pystan",
    )
    return dataclasses.replace(spec, **changes)


def test_id_is_a_stable_content_hash() -> None:
    assert make_spec().ensemble_id == make_spec().ensemble_id
    assert len(make_spec().ensemble_id) == 20


def test_id_changes_with_every_input_but_the_model_name() -> None:
    base = make_spec().ensemble_id
    assert make_spec(model_name="other").ensemble_id == base
    changed = [
        make_spec(model_code="parameters { real nu; }"),
        make_spec(generator=GeneratorSource(kind="python", code="x", target="m:f")),
        make_spec(base_data={"N": 4}),
        make_spec(seed=2),
        make_spec(settings=SamplerSettings(adapt_delta=0.9)),
        make_spec(engine="cmdstanpy"),
    ]
    assert len({spec.ensemble_id for spec in changed} | {base}) == len(changed) + 1


def test_json_round_trip() -> None:
    spec = make_spec(settings=SamplerSettings(thin="auto"))
    assert EnsembleSpec.from_json(spec.to_json()) == spec


def test_seeds_are_deterministic_distinct_and_in_range() -> None:
    seeds = [fit_seed("abc", r) for r in range(1000)]
    assert seeds == [fit_seed("abc", r) for r in range(1000)]
    assert len(set(seeds)) == 1000
    assert all(0 <= s < 2**31 for s in seeds)
    assert fit_seed("abc", 0) != generator_seed("abc", 0)
    assert fit_seed("abc", 0) != fit_seed("abd", 0)
