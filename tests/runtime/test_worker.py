from runtime.worker import format_replicates, parse_replicates


def test_ranges_compress_and_round_trip() -> None:
    replicates = [0, 1, 2, 3, 7, 9, 10, 11, 20]
    text = format_replicates(replicates)
    assert text == "0-3,7,9-11,20"
    assert parse_replicates(text) == replicates


def test_empty_and_single() -> None:
    assert format_replicates([]) == ""
    assert parse_replicates("5") == [5]
