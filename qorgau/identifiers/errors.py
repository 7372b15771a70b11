"""The contract every identifier parser shares: the kinds it knows and the error it raises.

Other modules (discovery, vault, consent) depend on these names, so they are stated once here.
"""

from __future__ import annotations

from typing import Literal

Kind = Literal[
    "KZ_IIN",
    "KZ_BIN",
    "PHONE",
    "EMAIL",
    "IBAN",
    "CARD",
    "KZ_PASSPORT",
    "KZ_ID_CARD",
]
"""The identifier kinds this module validates. The ``KZ_`` prefix marks formats defined by
Kazakhstan; phones, e-mails, IBANs and cards are international formats with KZ-specific details."""

KINDS: tuple[Kind, ...] = (
    "KZ_IIN",
    "KZ_BIN",
    "PHONE",
    "EMAIL",
    "IBAN",
    "CARD",
    "KZ_PASSPORT",
    "KZ_ID_CARD",
)


class IdentifierError(ValueError):
    """A value is not a valid identifier of the given kind.

    ``reason`` says what is wrong ("check digit should be 8", "must be 12 digits, got 11") so a
    user can fix a typo, but it never repeats the value: exceptions end up in logs and error
    trackers, and an IIN or card number there is a personal-data leak (STYLE.md: exceptions name
    the field, not the value). A reason may name positions, a single expected digit, or a part
    that cannot belong to anyone (a birth date that does not exist).

    Parsers raise it outside any ``except`` block so that a third-party exception whose message
    contains the value (schwifty's does) is never attached as ``__context__``.
    """

    kind: Kind
    reason: str

    def __init__(self, kind: Kind, reason: str) -> None:
        super().__init__(f"{kind}: {reason}")
        self.kind = kind
        self.reason = reason

    def __reduce__(self) -> tuple[type[IdentifierError], tuple[Kind, str]]:
        # Scanning may run in worker processes; keep the exception picklable with its fields.
        return (type(self), (self.kind, self.reason))


def require_str(kind: Kind, value: object) -> str:
    """Refuse non-strings with a TypeError that names only the type.

    Identifiers are strings: an ``int`` has already lost the leading zero of every IIN of
    someone born in 2000-2009 (``061211600012``), so accepting one would validate a different
    number than the one written down.
    """
    if not isinstance(value, str):
        raise TypeError(f"{kind} must be given as str, got {type(value).__name__}")
    return value
