import json

import pytest

from runtime.aws.manifest import (
    MAX_REPLICATES_PER_CHILD,
    TARGET_CHILD_SECONDS,
    Manifest,
    ManifestError,
    parse_manifest,
    replicates_per_child,
)

GOOD = {"ensemble_id": "0123456789abcdef0123", "replicates": 1000, "replicates_per_child": 25, "version": 1}


def test_round_trip() -> None:
    manifest = Manifest(ensemble_id=GOOD["ensemble_id"], replicates=1000, replicates_per_child=25)
    assert parse_manifest(manifest.to_json()) == manifest


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"\xff", "not valid JSON"),
        (b"{", "not valid JSON"),
        (b"[]", "must be a JSON object, got list"),
        (json.dumps({**GOOD, "extra": 1}).encode(), "exactly the fields"),
        (json.dumps({**GOOD, "version": 2}).encode(), "version must be 1, got 2"),
        (
            json.dumps({**GOOD, "ensemble_id": "../../etc"}).encode(),
            "ensemble_id must be 20 lowercase hex digits",
        ),
        (
            json.dumps({**GOOD, "replicates": 0}).encode(),
            r"replicates must be an integer in 1\.\.1000000, got 0",
        ),
        (json.dumps({**GOOD, "replicates": True}).encode(), "replicates must be an integer"),
        (
            json.dumps({**GOOD, "replicates_per_child": 10001}).encode(),
            "replicates_per_child must be an integer",
        ),
    ],
)
def test_malformed_manifests_name_the_problem(payload: bytes, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        parse_manifest(payload)


def test_children_get_about_three_minutes_of_fits() -> None:
    assert TARGET_CHILD_SECONDS == 180.0
    assert replicates_per_child(0.9) == 200
    assert replicates_per_child(60.0) == 3


def test_slow_fits_get_one_per_child_and_instant_ones_the_limit() -> None:
    assert replicates_per_child(600.0) == 1
    assert replicates_per_child(0.0) == MAX_REPLICATES_PER_CHILD
