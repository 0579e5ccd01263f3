"""ArviZ 0.23, imported without the FutureWarning it prints about its coming 1.0 refactor."""

import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)
    import arviz

__all__ = ["arviz"]
