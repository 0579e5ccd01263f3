from runtime.aws.manifest import MAX_REPLICATES_PER_CHILD, TARGET_CHILD_SECONDS, replicates_per_child


def test_children_get_about_three_minutes_of_fits() -> None:
    assert TARGET_CHILD_SECONDS == 180.0
    assert replicates_per_child(0.9) == 200
    assert replicates_per_child(60.0) == 3


def test_slow_fits_get_one_per_child_and_instant_ones_the_limit() -> None:
    assert replicates_per_child(600.0) == 1
    assert replicates_per_child(0.0) == MAX_REPLICATES_PER_CHILD
