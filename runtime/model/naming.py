"""Stan-style names of scalar elements: ``beta[1]``, ``Sigma[2,1]`` (1-based, comma-separated)."""

from __future__ import annotations

import itertools
import math

import numpy as np


def scalar_names(name: str, shape: tuple[int, ...]) -> list[str]:
    """Names of every scalar element of a Stan variable, in NumPy (row-major) order.

    Parameters
    ----------
    name : str
        The variable's Stan name.
    shape : tuple of int
        Its dimensions, without sample axes; ``()`` for a scalar.

    Returns
    -------
    list of str
        ``[name]`` for a scalar; otherwise ``name[i,j,...]`` with 1-based indices, listed in the
        order of ``np.ravel`` (C order), so element ``k`` names ``values.reshape(-1)[k]``.

    Examples
    --------
    >>> scalar_names("Sigma", (2, 2))
    ['Sigma[1,1]', 'Sigma[1,2]', 'Sigma[2,1]', 'Sigma[2,2]']
    """
    if not shape:
        return [name]
    if any(n < 0 for n in shape):
        raise ValueError(f"negative dimension in shape {shape} of {name!r}")
    return [
        f"{name}[{','.join(str(i + 1) for i in index)}]"
        for index in itertools.product(*(range(n) for n in shape))
    ]


def flatten_variable(name: str, values: np.ndarray, sample_ndim: int) -> dict[str, np.ndarray]:
    """Split an array into per-scalar arrays keyed by their Stan-style names.

    Parameters
    ----------
    name : str
        The variable's Stan name.
    values : numpy.ndarray
        Shaped ``(*sample_shape, *dims)``: e.g. ``(chains, draws, *dims)`` for posterior draws
        (``sample_ndim=2``) or ``dims`` for a true value (``sample_ndim=0``).
    sample_ndim : int
        How many leading axes index samples rather than elements.

    Returns
    -------
    dict of str to numpy.ndarray
        One array of shape ``sample_shape`` per element (0-d when ``sample_ndim == 0``), in the
        order of :func:`scalar_names`.
    """
    values = np.asarray(values)
    if not 0 <= sample_ndim <= values.ndim:
        raise ValueError(f"{name!r} has {values.ndim} axes, cannot take {sample_ndim} as sample axes")
    sample_shape = values.shape[:sample_ndim]
    dims = values.shape[sample_ndim:]
    flat = values.reshape((*sample_shape, math.prod(dims)))
    return {element: flat[..., k] for k, element in enumerate(scalar_names(name, dims))}
