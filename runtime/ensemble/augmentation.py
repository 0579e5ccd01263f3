"""Posterior SBC's data: the observed data with one posterior predictive draw appended.

``--predictive y_rep=y`` names a generated quantity of the model (``y_rep``) that simulates the data
variable ``y``. A replicate fits the observed data augmented with one draw of ``y_rep``: the draw is
appended to ``y`` along its first dimension, every data variable sized by the same size variable in its
first dimension gets its observed rows again (``y_rep[n]`` was simulated at the observed ``x[n]``), and
the size variable is increased to match. Where the declarations do not say how (a parameter sized by the
data's size, a size expression, a variable sized by it in another dimension), the plan is refused in one
line naming the variable, and ``--augment package.module:function`` says it instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from runtime.ensemble.generators import function_source, load_function
from runtime.errors import StanFleetError
from runtime.model.dimensions import SizedDeclarations, uses_size
from runtime.model.stan_info import Declaration, ModelInfo

_PAIR = re.compile(r"^\s*([A-Za-z_]\w*)\s*=\s*([A-Za-z_]\w*)\s*$")
_INT_SCALAR = Declaration(type="int", ndims=0)
_HOOK_HINT = "pass --augment package.module:function to build the data to fit"


def parse_predictive(value: Mapping[str, str] | Sequence[str] | str) -> dict[str, str]:
    """``--predictive`` pairs as ``{generated quantity: data variable}``, from a mapping or ``QUANTITY=DATA`` strings."""
    if isinstance(value, Mapping):
        pairs = [(str(quantity), str(data)) for quantity, data in value.items()]
    else:
        texts = [value] if isinstance(value, str) else list(value)
        pairs = []
        for text in texts:
            match = _PAIR.match(str(text))
            if match is None:
                raise StanFleetError(f"--predictive must be QUANTITY=DATA (e.g. y_rep=y), got {text!r}")
            pairs.append((match.group(1), match.group(2)))
    if not pairs:
        raise StanFleetError("--posterior needs at least one --predictive QUANTITY=DATA (e.g. y_rep=y)")
    predictive: dict[str, str] = {}
    for quantity, data in pairs:
        if quantity in predictive or data in predictive.values():
            raise StanFleetError(f"--predictive names {quantity if quantity in predictive else data!r} twice")
        predictive[quantity] = data
    return predictive


def check_predictive(predictive: Mapping[str, str], model: ModelInfo, model_name: str) -> None:
    """Each pair names a generated quantity and a data variable of the model, with as many dimensions."""
    for quantity, data in predictive.items():
        where = f"--predictive {quantity}={data}"
        if quantity not in model.generated_quantities:
            raise StanFleetError(f"{where}: {quantity!r} is not a generated quantity of {model_name}")
        if data not in model.inputs:
            raise StanFleetError(f"{where}: {data!r} is not a data variable of {model_name}")
        simulated, observed = model.generated_quantities[quantity], model.inputs[data]
        if simulated.ndims != observed.ndims:
            raise StanFleetError(
                f"{where}: {quantity!r} has {simulated.ndims} dimension(s) and {data!r} has {observed.ndims}"
            )
        if observed.ndims == 0:
            raise StanFleetError(f"{where}: {data!r} is a scalar, so no observations can be appended to it")


class Augmentation(Protocol):
    """Builds the data one replicate fits from the observed data and one draw's simulated data."""

    @property
    def replaced(self) -> frozenset[str] | None:
        """The data variables each replicate brings (the rest come from the observed data); None: all."""
        ...

    @property
    def identity(self) -> dict[str, str]:
        """What identifies the augmentation in the dataset id (a hook's target and source)."""
        ...

    def augment(self, observed: Mapping[str, Any], simulated: Mapping[str, np.ndarray]) -> dict[str, Any]:
        """The data to fit; ``simulated`` maps each ``--predictive`` data variable to the draw's values."""
        ...


@dataclass(frozen=True)
class DeclaredAugmentation:
    """Appends along first dimensions, as the model's declarations say.

    ``sizes`` maps each size variable to the ``--predictive`` data variables it sizes; ``repeated``
    lists the other data variables whose first dimension it is (their observed rows are repeated).
    """

    sizes: dict[str, tuple[str, ...]]
    repeated: dict[str, tuple[str, ...]]

    @property
    def identity(self) -> dict[str, str]:
        """Nothing beyond the model's code and the ``--predictive`` pairs, which identify the draws already."""
        return {}

    @property
    def replaced(self) -> frozenset[str]:
        """The size variables and every variable appended to."""
        names = set(self.sizes)
        for size in self.sizes:
            names.update(self.sizes[size], self.repeated[size])
        return frozenset(names)

    def augment(self, observed: Mapping[str, Any], simulated: Mapping[str, np.ndarray]) -> dict[str, Any]:
        """Append each draw to its data variable, repeat the rows of the variables sized alike, grow the sizes."""
        data: dict[str, Any] = {}
        for size, predicted in self.sizes.items():
            added = len(simulated[predicted[0]])
            data[size] = int(observed[size]) + added
            for name in predicted:
                data[name] = np.concatenate([np.asarray(observed[name]), np.asarray(simulated[name])])
            for name in self.repeated[size]:  # each draw is shaped as its data (PosteriorGenerator checks)
                rows = np.asarray(observed[name])
                data[name] = np.concatenate([rows, rows])
        return data


def plan_augmentation(
    predictive: Mapping[str, str], model: ModelInfo, declarations: SizedDeclarations, model_name: str
) -> DeclaredAugmentation:
    """Read from the declarations how to append each ``--predictive`` draw; one-line refusal where they do not say."""
    sizes: dict[str, list[str]] = {}
    for data in predictive.values():
        dims = declarations.data.get(data)
        size = dims[0] if dims else None
        if size is None or size not in model.inputs or model.inputs[size] != _INT_SCALAR:
            sized_by = "an undeclared size" if size is None else repr(size)
            raise StanFleetError(
                f"cannot append observations to {data!r}: its first dimension is {sized_by}, not an int "
                f"data variable of {model_name}; {_HOOK_HINT}"
            )
        sizes.setdefault(size, []).append(data)
    repeated: dict[str, tuple[str, ...]] = {}
    for size, predicted in sizes.items():
        rows = []
        for name, dims in declarations.data.items():
            if name == size or name in predicted:
                if name in predicted and dims is not None and uses_size(dims[1:], size):
                    raise StanFleetError(
                        f"cannot append observations to {name!r}: {size!r} sizes more than its first "
                        f"dimension ({declarations.text[name]}); {_HOOK_HINT}"
                    )
                continue
            if dims is None:
                if declarations.mentions(name, size):
                    raise StanFleetError(
                        f"cannot tell how {name!r} ({declarations.text[name]}) grows with {size!r}; {_HOOK_HINT}"
                    )
            elif dims and dims[0] == size and not uses_size(dims[1:], size):
                rows.append(name)
            elif uses_size(dims, size):
                raise StanFleetError(
                    f"cannot append observations to {name!r}: it is sized by {size!r} beyond its first "
                    f"dimension ({declarations.text[name]}); {_HOOK_HINT}"
                )
        for name, dims in declarations.parameters.items():
            if uses_size(dims, size) if dims is not None else declarations.mentions(name, size):
                raise StanFleetError(
                    f"parameter {name!r} is sized by {size!r} ({declarations.text[name]}), so appending "
                    f"observations would add parameters; {_HOOK_HINT}"
                )
        repeated[size] = tuple(rows)
    return DeclaredAugmentation(
        sizes={size: tuple(predicted) for size, predicted in sizes.items()}, repeated=repeated
    )


class HookAugmentation:
    """``--augment package.module:function``, called as ``function(observed, simulated) -> data``."""

    def __init__(self, target: str) -> None:
        self._function: Callable[..., Any] = load_function(
            target, flag="--augment", what="augment", expected="package.module:function"
        )
        self._target = target
        self._identity = {"augment": target, "augment_code": function_source(self._function)}

    @property
    def replaced(self) -> None:
        """None: the hook returns every data variable."""
        return None

    @property
    def identity(self) -> dict[str, str]:
        """The hook's target and its module's source."""
        return self._identity

    def augment(self, observed: Mapping[str, Any], simulated: Mapping[str, np.ndarray]) -> dict[str, Any]:
        """Call the hook with copies of the observed and simulated data; it must return a dict of data."""
        output = self._function(
            {name: np.array(value) for name, value in observed.items()},
            {name: np.array(value) for name, value in simulated.items()},
        )
        if not isinstance(output, Mapping):
            raise StanFleetError(
                f"--augment {self._target} must return a dict of data, got {type(output).__name__}"
            )
        return dict(output)


def open_augmentation(
    augment: str | None,
    predictive: Mapping[str, str],
    model: ModelInfo,
    declarations: Callable[[], SizedDeclarations],
    model_name: str,
) -> Augmentation:
    """The ``--augment`` hook when given, else the plan read from the model's declarations."""
    if augment is not None:
        return HookAugmentation(augment)
    return plan_augmentation(predictive, model, declarations(), model_name)
