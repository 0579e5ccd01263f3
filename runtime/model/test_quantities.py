"""Which of a model's quantities are SBC test quantities: ``--test-quantities NAME[,NAME...]|all``.

Any transformed parameter or generated quantity can be one: every scalar element is ranked like a
parameter, its true value being the quantity evaluated at the true parameters on the simulated data
(Modrák et al. 2023: the choice of test quantity decides which bugs SBC can see).
"""

from __future__ import annotations

from runtime.errors import StanFleetError
from runtime.model.stan_info import ModelInfo

ALL = "all"
"""Every transformed parameter and generated quantity of the model."""


def resolve_test_quantities(requested: str | None, info: ModelInfo, model_name: str) -> tuple[str, ...]:
    """The test quantities ``requested`` names, in declaration order for ``all``, else as given.

    Raises StanFleetError naming the first name that is not a transformed parameter or generated
    quantity of the model.
    """
    if requested is None:
        return ()
    candidates = {**info.transformed_parameters, **info.generated_quantities}
    if requested.strip() == ALL:
        if not candidates:
            raise StanFleetError(
                f"--test-quantities all: {model_name} declares no transformed parameters or generated quantities"
            )
        return tuple(candidates)
    names = [name.strip() for name in requested.split(",")]
    if not all(names):
        raise StanFleetError(f"--test-quantities has an empty name in {requested!r}")
    for name in names:
        if name in info.parameters:
            raise StanFleetError(
                f"--test-quantities: {name!r} is a parameter of {model_name}, and parameters are always ranked"
            )
        if name not in candidates:
            declared = ", ".join(candidates) or "none"
            raise StanFleetError(
                f"--test-quantities: {model_name} has no transformed parameter or generated quantity "
                f"{name!r} (it declares: {declared})"
            )
    return tuple(dict.fromkeys(names))
