"""Checksum-valid IINs and BINs for demo and test data.

About one serial in eleven has no check digit (L-ID checksum: c = 10 twice), so a generator needs
the next serial that has one. Such numbers are *valid*, not *fictional*: use them only in data that
is clearly marked as demo or test data.
"""

from __future__ import annotations

from .iin import iin_check_digit


def synthetic_kz_number(prefix: str, serial: int) -> str:
    """``prefix`` + the first serial at or after ``serial`` that has a check digit, + that digit.

    ``prefix`` fixes the leading digits (IIN: ``YYMMDD`` + century digit; BIN: ``YYMM`` + type +
    attribute); the serial fills the rest of the 11 digits and wraps around within its width.
    """
    width = 11 - len(prefix)
    if not prefix.isdigit() or width < 1:
        raise ValueError("prefix must be 1-10 digits")
    for bump in range(100):
        body = prefix + f"{(serial + bump) % 10**width:0{width}d}"
        check = iin_check_digit(body)
        if check is not None:
            return body + str(check)
    raise ValueError("no serial with a check digit near this one")  # unreachable for width >= 2
