"""Count the AWS API calls of the AWS path (submitter and trigger handler) for R = 10, 1000, 10,000.

Everything runs in this process under moto (no AWS account, no fits): for each R a fresh mocked
account gets what the path needs (a versioned bucket, a Batch compute environment, queue and the fit
and compile job definitions, and the four CloudFormation stack outputs the submitter reads, served by the bench because moto's
CloudFormation needs a package the dev requirements lack).
Then

1. the submitter runs its AWS path, ``runtime.submit.main([... --backend aws --no-wait])`` on the
   bundled Poisson example with PyStan: it simulates the R datasets locally (fixed_param), publishes
   the specs, the input packs (one per chunk) and the run record, lists existing results and uploads
   one manifest, and returns;
2. the trigger Lambda's ``runtime.trigger.handler`` gets the S3 event of that manifest upload (key
   and versionId) and submits the compile job and the array job(s).

Every botocore API call is counted by operation (``BaseClient._make_api_call`` is wrapped), separately
for the submitter and the handler; the bench's own set-up calls are not counted. A second pass per R
(``--prefill``, default 0.5) is a resubmission of the same ensemble with that fraction of results
already in the bucket, which shows the listing pages growing with the number of results.

    .venv/bin/python bench/aws_calls.py [--replicates 10 1000 10000] [--prefill 0.5]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import botocore.client

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from moto import mock_aws  # noqa: E402

from runtime import pipeline, submit, trigger  # noqa: E402
from runtime.engines.choice import get_engine  # noqa: E402
from runtime.ensemble.prepare import MAX_CHUNK_BLOCKS, chunk_sizes  # noqa: E402
from runtime.store.keys import INPUT_BLOCK_SIZE, MANIFESTS, manifest_key, result_key  # noqa: E402
from tests.runtime.helpers.batch_runner import (  # noqa: E402
    CREDENTIALS,
    create_fake_batch,
    create_versioned_bucket,
    stack_outputs,
)
from tests.runtime.helpers.poisson_example import example_arguments  # noqa: E402

EXAMPLE = ROOT / "examples" / "poisson"
MODEL = EXAMPLE / "fit_data.stan"
GENERATOR = EXAMPLE / "generative_ensemble.stan"
STACK = "StanFleet"
BUCKET = "stanfleet-bench-bucket"
REGION = "us-east-1"
LIST_PAGE = 1000
"""Keys per ListObjectsV2 page (S3's maximum and default)."""


class CallCounter:
    """Counts botocore API calls by operation name into the phase that is current (None: not counted)."""

    def __init__(self) -> None:
        self.phase: str | None = None
        self.counts: dict[str, Counter[str]] = {}
        self.canned: dict[str, dict[str, Any]] = {}
        """Responses served by the bench instead of moto, by operation name (still counted)."""
        self._original = botocore.client.BaseClient._make_api_call

    def __enter__(self) -> CallCounter:
        counter = self
        original = self._original

        def counting(client: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
            if counter.phase is not None:
                counter.counts.setdefault(counter.phase, Counter())[operation_name] += 1
            if operation_name in counter.canned:
                return json.loads(json.dumps(counter.canned[operation_name]))
            return original(client, operation_name, api_params)

        botocore.client.BaseClient._make_api_call = counting
        return self

    def __exit__(self, *exc: object) -> None:
        botocore.client.BaseClient._make_api_call = self._original

    @contextlib.contextmanager
    def counting(self, phase: str) -> Iterator[Counter[str]]:
        """Count the calls made inside the block under ``phase``."""
        self.counts[phase] = Counter()
        self.phase = phase
        try:
            yield self.counts[phase]
        finally:
            self.phase = None


@dataclass
class Row:
    """One bench row: a scenario at one R."""

    scenario: str
    replicates: int
    existing_results: int
    submitter: Counter[str] = field(default_factory=Counter)
    handler: Counter[str] = field(default_factory=Counter)
    submit_seconds: float = 0.0
    handler_seconds: float = 0.0
    outcome: str = ""


def fake_credentials() -> None:
    """Moto needs credentials and a region; never real ones."""
    os.environ.update({**CREDENTIALS, "AWS_SECURITY_TOKEN": "testing", "AWS_DEFAULT_REGION": REGION})
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        os.environ.pop(name, None)


def deploy_mock_stack(counter: CallCounter) -> None:
    """What the stack would hold: bucket, Batch queue and job definitions, and the CloudFormation outputs.

    Moto's CloudFormation needs ``openapi-spec-validator`` (moto's cloudformation extra), which the
    dev requirements do not install, so DescribeStacks is answered by the bench with the four outputs
    (it is still counted as one API call). Also sets the trigger Lambda's environment.
    """
    create_versioned_bucket(BUCKET, region=REGION)
    batch = create_fake_batch(STACK, bucket=BUCKET, region=REGION)
    outputs = stack_outputs(BUCKET, batch)
    counter.canned["DescribeStacks"] = {
        "Stacks": [
            {
                "StackName": STACK,
                "StackStatus": "CREATE_COMPLETE",
                "Outputs": [{"OutputKey": key, "OutputValue": value} for key, value in outputs.items()],
            }
        ]
    }
    os.environ.update(batch.trigger_environment())
    trigger.s3_client.cache_clear()
    trigger.batch_client.cache_clear()


def submit_argv(replicates: int, per_child: int) -> list[str]:
    return [
        *example_arguments(str(MODEL), str(GENERATOR), str(EXAMPLE / "data.json")),
        "--replicates",
        str(replicates),
        "--engine",
        "pystan",
        "--backend",
        "aws",
        "--stack",
        STACK,
        "--region",
        REGION,
        "--replicates-per-child",
        str(per_child),
        "--no-wait",
        "--no-progress",
    ]


def run_submitter(counter: CallCounter, row: Row, per_child: int) -> str:
    """Run the submitter's AWS path in-process; return the ensemble id it uploaded a manifest for."""
    output = io.StringIO()
    started = time.perf_counter()
    with (
        counter.counting(f"submit-{row.scenario}-{row.replicates}") as calls,
        contextlib.redirect_stdout(output),
        contextlib.redirect_stderr(output),
    ):
        code = submit.main(submit_argv(row.replicates, per_child))
    row.submit_seconds = time.perf_counter() - started
    row.submitter = calls
    if code != 0:
        raise SystemExit(f"the submitter failed (exit {code}):\n{output.getvalue()}")
    manifests = boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=MANIFESTS)["Contents"]
    return str(manifests[0]["Key"]).removeprefix(MANIFESTS).removesuffix(".json")


def run_handler(counter: CallCounter, row: Row, ensemble_id: str) -> None:
    """Call the trigger handler on the S3 event of the latest manifest upload."""
    key = manifest_key(ensemble_id)
    version = boto3.client("s3").head_object(Bucket=BUCKET, Key=key)["VersionId"]
    event = {"Records": [{"s3": {"bucket": {"name": BUCKET}, "object": {"key": key, "versionId": version}}}]}
    started = time.perf_counter()
    with counter.counting(f"handler-{row.scenario}-{row.replicates}") as calls:
        outcome = trigger.handler(event, None)["outcomes"][0]
    row.handler_seconds = time.perf_counter() - started
    row.handler = calls
    if outcome["status"] != "submitted":
        raise SystemExit(f"the handler did not submit: {outcome}")
    row.outcome = f"{len(outcome['job_ids'])} jobs"


def prefill_results(ensemble_id: str, count: int) -> None:
    """Write placeholder results for replicates 0..count-1 (only their keys are read here)."""
    s3 = boto3.client("s3")
    for replicate in range(count):
        s3.put_object(Bucket=BUCKET, Key=result_key(ensemble_id, replicate), Body=b"{}")


def measure(replicates: int, per_child: int, prefill: float, counter: CallCounter) -> list[Row]:
    """A first submission of R replicates, then (with prefill) a resubmission with some results present."""
    rows = []
    with mock_aws(config={"batch": {"use_docker": False}}):
        deploy_mock_stack(counter)
        first = Row("first", replicates, 0)
        ensemble_id = run_submitter(counter, first, per_child)
        run_handler(counter, first, ensemble_id)
        rows.append(first)
        existing = math.floor(replicates * prefill)
        if 0 < existing < replicates:
            prefill_results(ensemble_id, existing)
            again = Row("resubmit", replicates, existing)
            run_submitter(counter, again, per_child)
            run_handler(counter, again, ensemble_id)
            rows.append(again)
    trigger.s3_client.cache_clear()
    trigger.batch_client.cache_clear()
    return rows


def describe(calls: Counter[str]) -> str:
    return ", ".join(f"{op} {n}" for op, n in sorted(calls.items())) + f" (total {sum(calls.values())})"


def expected_growth(replicates: int, existing: int, per_child: int) -> dict[str, int]:
    """What the code says the R-dependent counts should be, to check the measured table against."""
    missing = replicates - existing
    pages = max(1, math.ceil(existing / LIST_PAGE))
    children = math.ceil(missing / per_child)
    resubmission = existing > 0
    # a first submission simulates every block, publishing one pack per chunk of 1, 2, 4, ... blocks
    packs = 0 if resubmission else len(list(chunk_sizes(math.ceil(replicates / INPUT_BLOCK_SIZE))))
    return {
        # results (plan_ensemble), input packs (EnsembleInputs), and on a resubmission the input packs
        # again to read the first missing replicate's inputs (EnsembleInputs.first_inputs)
        "submitter ListObjectsV2": pages + 1 + resubmission,
        "submitter HeadObject": 2,  # is the dataset spec there? the ensemble spec?
        # first: the two specs, the input packs, the run record, the manifest; resubmission: run record,
        # manifest
        "submitter PutObject": 2 if resubmission else 4 + packs,
        # the first missing replicate's inputs from the store: the pack header, then its block's bytes
        "submitter GetObject": 2 if resubmission else 0,
        # the ensemble's claims (is an earlier submission still running?), the results, and the
        # model's compile marker (is its build published? then no compile job)
        "handler ListObjectsV2": 2 + pages,
        "handler SubmitJob": 1 + math.ceil(children / trigger.MAX_ARRAY_SIZE),
    }


def print_report(rows: list[Row], per_child: int, warm_seconds: float) -> None:
    print(
        f"AWS API calls of the AWS path, bundled Poisson example, {per_child} replicates per array child, "
        f"moto {moto_version()}"
    )
    print(f"(compile cache warm-up before the table: {warm_seconds:.1f} s, not counted)\n")
    header = (
        f"{'scenario':<9} {'R':>6} {'results':>7}  {'submit calls':>12} {'handler calls':>13}  "
        f"{'submit s':>8} {'handler s':>9}  jobs"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row.scenario:<9} {row.replicates:>6} {row.existing_results:>7}  "
            f"{sum(row.submitter.values()):>12} {sum(row.handler.values()):>13}  "
            f"{row.submit_seconds:>8.1f} {row.handler_seconds:>9.2f}  {row.outcome}"
        )
    print("\nBy operation:")
    for row in rows:
        print(f"  {row.scenario} R={row.replicates} (results present: {row.existing_results})")
        print(f"    submitter: {describe(row.submitter)}")
        print(f"    handler:   {describe(row.handler)}")

    operations = sorted({op for row in rows for op in (*row.submitter, *row.handler)})
    print("\nPer-operation table (submitter / handler):")
    labels = [f"{row.scenario[:5]} R={row.replicates}" for row in rows]
    width = max(14, *(len(label) for label in labels))
    print(f"  {'operation':<34}" + "".join(f"{label:>{width + 2}}" for label in labels))
    for side in ("submitter", "handler"):
        for op in operations:
            values = [getattr(row, side)[op] for row in rows]
            if any(values):
                print(f"  {side + ' ' + op:<34}" + "".join(f"{v:>{width + 2}}" for v in values))

    print("\nCheck against the code's expected R-dependent counts:")
    mismatches = 0
    for row in rows:
        for name, expected in expected_growth(row.replicates, row.existing_results, per_child).items():
            side, op = name.split(" ")
            measured = getattr(row, side)[op]
            ok = measured == expected
            mismatches += not ok
            if not ok:
                print(
                    f"  MISMATCH {row.scenario} R={row.replicates}: {name} measured {measured}, expected {expected}"
                )
    if not mismatches:
        print("  every row matches")

    print(
        "\nWhat grows with R, and why:\n"
        f"  ListObjectsV2         one page per {LIST_PAGE} existing results, at least one, in the submitter\n"
        "                        (plan_ensemble) and again in the handler (missing_replicates).\n"
        "  handler GetObject     one per earlier submission of the same ensemble (its claim), to see whether\n"
        "                        its jobs still run: grows with resubmissions, not with R.\n"
        f"  handler SubmitJob     1 compile job (none once the model's build is published) + ceil(children /\n"
        f"                        {trigger.MAX_ARRAY_SIZE:,}) array jobs, children = ceil(missing / {per_child}); 2 up to\n"
        f"                        {trigger.MAX_ARRAY_SIZE * per_child:,} missing replicates.\n"
        "  submitter PutObject   on a first submission, one input pack per chunk of new input blocks (1, 2,\n"
        f"                        4, ... up to {MAX_CHUNK_BLOCKS} blocks of {INPUT_BLOCK_SIZE} replicates).\n"
        "  Everything else is constant in R. Submitter: DescribeStacks 1, DescribeJobDefinitions 1, HeadObject 2\n"
        "  (dataset spec, ensemble spec), one listing of the input packs; PutObject 4 + packs on a first\n"
        "  submission (the two specs, the packs, run record, manifest) and 2 on a resubmission\n"
        "  (run record, manifest), which also lists the packs again and makes 2 ranged GETs for the first\n"
        "  missing replicate's inputs. Handler: GetObject 2 (manifest, spec) + 1 per earlier submission's\n"
        "  claim + 1 for the ensemble's lease once an earlier submission released it,\n"
        "  ListObjectsV2 2 (the claims; the compile marker, which no run here writes, so every row\n"
        "  submits a compile job), DescribeJobs 1 per 100 earlier jobs (none on a first submission),\n"
        "  PutObject 4 (the ensemble's lease taken and released, conditional claim, claim rewrite with job\n"
        "  ids), 5 on a resubmission (the lease's first conditional write finds the released lease, a second\n"
        "  takes it over). Results are uploaded by the workers, not counted here (no fits run)."
    )


def moto_version() -> str:
    from importlib.metadata import version

    return version("moto")


def warm_compile_cache() -> float:
    """Build the model and the generator once so the first row's wall time is not a C++ build."""
    started = time.perf_counter()
    engine = get_engine("pystan")
    engine.compile(MODEL)
    engine.compile(GENERATOR)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog="Runs offline under moto; no AWS account or credentials are used.",
    )
    parser.add_argument(
        "--replicates",
        type=int,
        nargs="+",
        default=[10, 1000, 10_000],
        metavar="R",
        help="ensemble sizes to measure (default: %(default)s)",
    )
    parser.add_argument(
        "--replicates-per-child",
        type=int,
        default=pipeline.DEFAULT_REPLICATES_PER_CHILD,
        help="the submitter's --replicates-per-child (default: %(default)s)",
    )
    parser.add_argument(
        "--prefill",
        type=float,
        default=0.5,
        help="also resubmit each ensemble with this fraction of results already present, to show the "
        "listing pages growing; 0 skips the resubmission (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    if not 0 <= args.prefill < 1:
        parser.error("--prefill must be in [0, 1)")
    fake_credentials()
    total_started = time.perf_counter()
    warm_seconds = warm_compile_cache()
    rows: list[Row] = []
    with CallCounter() as counter:
        for replicates in args.replicates:
            rows.extend(measure(replicates, args.replicates_per_child, args.prefill, counter))
    print_report(rows, args.replicates_per_child, warm_seconds)
    print(f"\nbench wall time: {time.perf_counter() - total_started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
