"""The --augment hook of transposed.stan: append the draw to y and repeat Xt's columns."""

import numpy as np


def append_columns(observed, simulated):
    """The observed data with the draw of y appended and the covariate columns repeated."""
    return {
        "N": 2 * int(observed["N"]),
        "Xt": np.concatenate([observed["Xt"], observed["Xt"]], axis=1),
        "y": np.concatenate([observed["y"], simulated["y"]]),
    }
