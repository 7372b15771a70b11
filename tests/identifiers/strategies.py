"""Hypothesis strategies that build valid identifiers the way the law defines them.

They compute check digits with the public helpers and skip the ~0.8 % of prefixes for which no
check digit exists (checksum 10 under both weightings), so every generated value is valid by
construction, not by filtering random strings.
"""

from __future__ import annotations

from datetime import date

from hypothesis import assume, settings
from hypothesis import strategies as st

from qorgau.identifiers import bin_check_digit, iin_check_digit, luhn_check_digit

_CENTURY_DIGIT = {
    (1800, "male"): 1,
    (1800, "female"): 2,
    (1900, "male"): 3,
    (1900, "female"): 4,
    (2000, "male"): 5,
    (2000, "female"): 6,
}


@st.composite
def valid_iins(draw: st.DrawFn) -> str:
    born = draw(st.dates(min_value=date(1800, 1, 1), max_value=date(2099, 12, 31)))
    sex = draw(st.sampled_from(["male", "female"]))
    serial = draw(st.integers(0, 9999))
    century = born.year // 100 * 100
    first11 = f"{born:%y%m%d}{_CENTURY_DIGIT[century, sex]}{serial:04d}"
    check = iin_check_digit(first11)
    assume(check is not None)
    return f"{first11}{check}"


@st.composite
def valid_bins(draw: st.DrawFn) -> str:
    yy = draw(st.integers(0, 99))
    month = draw(st.integers(1, 12))
    entity_type = draw(st.sampled_from("456"))
    attribute = draw(st.sampled_from("0123"))
    serial = draw(st.integers(0, 99999))
    first11 = f"{yy:02d}{month:02d}{entity_type}{attribute}{serial:05d}"
    check = bin_check_digit(first11)
    assume(check is not None)
    return f"{first11}{check}"


# Issuer prefixes of the brands qorgau must recognize, with a length each brand really issues.
CARD_PREFIXES = [
    ("4", 16, "visa"),
    ("4", 13, "visa"),
    ("4", 19, "visa"),
    ("51", 16, "mastercard"),
    ("55", 16, "mastercard"),
    ("2221", 16, "mastercard"),
    ("2720", 16, "mastercard"),
    ("2200", 16, "mir"),
    ("2204", 16, "mir"),
    ("2202", 19, "mir"),
    ("34", 15, "amex"),
    ("37", 15, "amex"),
    ("62", 16, "unionpay"),
    ("62", 19, "unionpay"),
]


@st.composite
def valid_cards(draw: st.DrawFn) -> tuple[str, str]:
    """A Luhn-valid card number and the brand it must be detected as."""
    prefix, length, brand = draw(st.sampled_from(CARD_PREFIXES))
    body = draw(st.text(alphabet="0123456789", min_size=length - len(prefix) - 1, max_size=length - len(prefix) - 1))
    payload = prefix + body
    return payload + str(luhn_check_digit(payload)), brand


def quotes_identifier(message: str, value: str) -> bool:
    """True if an error message repeats an identifier-like input (six or more digits) verbatim.

    Inputs without digits are skipped: ``"spaces"`` legitimately occurs in a reason's wording.
    """
    text = value.strip()
    return sum(ch.isdigit() for ch in text) >= 6 and text in message


def substitutions(value: str, position: int) -> list[str]:
    """Every string that differs from ``value`` in exactly the digit at ``position`` (0-based)."""
    return [value[:position] + d + value[position + 1 :] for d in "0123456789" if d != value[position]]


# Explicit per-test budgets (a profile would change Hypothesis for every other test module):
# no deadline, because a loaded CI machine must not turn a slow example into a failure.
PROPERTY = settings(max_examples=60, deadline=None)
THOROUGH = settings(max_examples=150, deadline=None)
