"""Telling an IIN from a BIN when all you have is 12 digits.

The checksum cannot do it: IINs and BINs share the mod-11 scheme. The layouts can, and without
any ambiguity:

* in an IIN, position 5 is the tens digit of the birth day, so it is 0, 1, 2 or 3;
* in a BIN, position 5 is the entity type, so it is 4, 5 or 6.

No string is a valid IIN and a valid BIN at once, so there is no tie to break. (A sole
proprietor does business under their IIN; :func:`classify_12_digits` still answers ``KZ_IIN``,
which is right: that number identifies a person.)
"""

from __future__ import annotations

from typing import Literal

from .bin import is_valid_bin
from .iin import is_valid_iin


def classify_12_digits(s: str) -> Literal["KZ_IIN", "KZ_BIN"] | None:
    """``"KZ_IIN"`` or ``"KZ_BIN"`` if ``s`` is a valid one of them, else ``None``.

    A valid IIN needs an existing birth date and a century digit 1-6; a valid BIN needs a month
    01-12, type 4-6 and attribute 0-3; both need the check digit. The two sets are disjoint (see
    the module docstring), so the order of the tests below only matters for speed: IINs are
    far more common in the data qorgau scans.
    """
    if is_valid_iin(s):
        return "KZ_IIN"
    if is_valid_bin(s):
        return "KZ_BIN"
    return None
