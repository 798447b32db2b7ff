import pytest

from gan_lab.stress.harden import hardened_name


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("", "hardened"),
        ("hp", "hp-hardened"),
        ("hp-hardened", "hp-hardened-2"),
        ("hp-hardened-2", "hp-hardened-3"),
        ("unhardened", "unhardened-hardened"),
        ("hardened-x", "hardened-x-hardened"),
        ("cnn-hardened-2024", "cnn-hardened-2024-hardened"),  # a year, not a count
        ("hp-hardened-1", "hp-hardened-1-hardened"),
    ],
)
def test_each_hardening_of_a_hardened_detector_counts_up_instead_of_repeating_the_suffix(name, expected):
    assert hardened_name(name) == expected
