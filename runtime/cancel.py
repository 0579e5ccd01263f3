"""Stop an ensemble's AWS Batch jobs: ``python -m runtime.cancel ENSEMBLE_ID``.

For ensembles launched with ``--backend aws`` (often with ``--no-wait``): terminates the jobs the
trigger submitted for the ensemble that have not ended (:mod:`runtime.aws.cancellation`). Results already
written stay in the bucket; resubmitting the same command fits the rest.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from runtime.aws.cancellation import cancel_ensemble
from runtime.aws.stack import DEFAULT_STACK
from runtime.errors import exit_status


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m runtime.cancel``."""
    parser = argparse.ArgumentParser(prog="python -m runtime.cancel", description=__doc__.splitlines()[0])
    parser.add_argument("ensemble_id", help="the id the submitter printed")
    parser.add_argument("--stack", default=DEFAULT_STACK, help="deployed stack name (default: %(default)s)")
    parser.add_argument("--region", help="AWS region of the stack (default: the AWS configuration's)")
    args = parser.parse_args(argv)

    def cancel() -> int:
        print(cancel_ensemble(args.ensemble_id, stack=args.stack, region=args.region))
        return 0

    return exit_status(cancel)


if __name__ == "__main__":
    sys.exit(main())
