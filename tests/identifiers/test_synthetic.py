"""Synthetic IINs and BINs for demo and test data are valid numbers with the prefix asked for."""

from __future__ import annotations

import pytest

from qorgau.identifiers import is_valid_bin, is_valid_iin, parse_iin, synthetic_kz_number


def test_every_serial_gives_a_valid_iin_with_the_asked_birth_date() -> None:
    for serial in range(300):
        iin = synthetic_kz_number("9001013", serial)
        assert is_valid_iin(iin) and iin.startswith("9001013")
        assert parse_iin(iin).birth_date.isoformat() == "1990-01-01"


def test_a_bin_prefix_gives_valid_bins() -> None:
    assert all(is_valid_bin(synthetic_kz_number("050140", s)) for s in range(300))


def test_a_serial_without_a_check_digit_moves_to_the_next_one() -> None:
    numbers = {synthetic_kz_number("9001013", s) for s in range(110)}
    assert len(numbers) < 110  # some serials had no check digit and fell onto their successor


@pytest.mark.parametrize("prefix", ["", "12345678901", "79-10"])
def test_a_bad_prefix_is_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        synthetic_kz_number(prefix, 1)
