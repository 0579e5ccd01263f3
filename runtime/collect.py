"""``python -m runtime.collect``: see :mod:`runtime.report.stored`."""

from runtime.executors.lifetime import exit_quickly
from runtime.report.stored import main

if __name__ == "__main__":
    exit_quickly(main())
