"""``python -m runtime.compare``: see :mod:`runtime.report.comparison`."""

from runtime.executors.lifetime import exit_quickly
from runtime.report.comparison import main

if __name__ == "__main__":
    exit_quickly(main())
