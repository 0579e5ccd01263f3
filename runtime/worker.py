"""``python -m runtime.worker``: see :mod:`runtime.fitting.session`."""

from runtime.executors.lifetime import exit_quickly
from runtime.fitting.session import main

if __name__ == "__main__":
    exit_quickly(main())
