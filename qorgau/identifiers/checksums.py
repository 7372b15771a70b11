"""Check-digit arithmetic: the Kazakh mod-11 scheme (IIN and BIN), Luhn (cards), ISO 7064 mod-97 (IBAN).

The functions here take *already validated* ASCII digit strings; the parsers check the shape
first and give the user a reason, and the ``is_valid_*`` fast paths inline the same arithmetic.

Two properties of the IIN/BIN weights that the code relies on or reports:

1. Both weight sets sum to 66 ≡ 0 (mod 11), so Σ (dᵢ + 48)·wᵢ ≡ Σ dᵢ·wᵢ: the hot paths in
   ``is_valid_iin``/``is_valid_bin`` sum raw ASCII byte values without subtracting 48, and drop
   the terms whose weight is 11 ≡ 0.
2. Position 11 has primary weight 11 ≡ 0, so on the primary path (about 91 % of numbers) the
   11th digit is not covered by the checksum at all: changing it leaves the number valid. About
   8.7 % of single-digit typos in a valid IIN or BIN therefore still validate (measured in
   tests/identifiers); a checksum-valid 12-digit number is weaker evidence than it looks.
"""

from __future__ import annotations

KZ_PRIMARY_WEIGHTS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)
KZ_SECONDARY_WEIGHTS = (3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2)


def kz_check_digit(first11: str) -> int | None:
    """Check digit of a 12-digit IIN or BIN from its first 11 digits, or None if none exists.

    LEGAL.md § Identifiers: c = Σ dᵢ·i mod 11; if c = 10, recompute with the secondary weights;
    if it is still 10 no 12th digit can make the number valid, so such prefixes are never issued.

    The module docstring explains two properties of these weights that matter elsewhere.
    """
    digits = [ord(ch) - 48 for ch in first11]
    c = sum(d * w for d, w in zip(digits, KZ_PRIMARY_WEIGHTS, strict=True)) % 11
    if c == 10:
        c = sum(d * w for d, w in zip(digits, KZ_SECONDARY_WEIGHTS, strict=True)) % 11
        if c == 10:
            return None
    return c


# Luhn doubles every second digit from the right and adds the digits of the product; for a
# single digit d that is 2d or 2d - 9, which is again one digit, so a byte translation does it.
_LUHN_DOUBLED = bytes.maketrans(b"0123456789", b"0246813579")


def luhn_matches(b: bytes) -> bool:
    """True if the ASCII digits in ``b`` pass the Luhn check (ISO/IEC 7812-1).

    Slicing and ``translate`` run in C, so the cost is a few bytecodes regardless of length.
    """
    return (sum(b[-1::-2]) + sum(b[-2::-2].translate(_LUHN_DOUBLED)) - 48 * len(b)) % 10 == 0


def luhn_digit_for(payload: str) -> int:
    """The Luhn digit that makes ``payload + digit`` pass (payload: ASCII digits)."""
    b = (payload + "0").encode("ascii")
    total = sum(b[-1::-2]) + sum(b[-2::-2].translate(_LUHN_DOUBLED)) - 48 * len(b)
    return (10 - total % 10) % 10


def _iban_numeric(text: str) -> int:
    """ISO 13616 letter expansion: A → 10 … Z → 35, digits unchanged."""
    return int("".join(str(int(ch, 36)) for ch in text))


def iban_check_digits(country_code: str, bban: str) -> str:
    """The two check digits ISO 7064 mod-97-10 prescribes for ``country_code`` + ``bban``."""
    return f"{98 - _iban_numeric(bban + country_code + '00') % 97:02d}"
