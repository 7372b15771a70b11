"""Built-in recognizers: structured identifiers (this package) and names, addresses, birth dates (NLP).

:func:`default_recognizers` is the registry the scanner starts from. The NLP recognizers (``person``,
``address``, ``birthdate``) are imported inside the function, so code that only wants identifiers never
pays for loading Natasha.
"""

from __future__ import annotations

from ..types import Recognizer
from .scoring import Context, scored_finding
from .structured import (
    CardRecognizer,
    EmailRecognizer,
    IbanRecognizer,
    IdCardRecognizer,
    IpAddressRecognizer,
    KzIinBinRecognizer,
    PassportRecognizer,
    PhoneRecognizer,
    VehiclePlateRecognizer,
    structured_recognizers,
)

#: Types the NLP recognizers produce; ``Scanner.identifiers_only`` leaves them out.
NLP_ENTITY_TYPES = frozenset({"PERSON", "ADDRESS", "DATE_OF_BIRTH"})


def default_recognizers(include_nlp: bool = True) -> list[Recognizer]:
    """A fresh instance of every built-in recognizer; with ``include_nlp=False`` only the structured ones."""
    recognizers: list[Recognizer] = list(structured_recognizers())
    if include_nlp:
        from .address import AddressRecognizer
        from .birthdate import DateOfBirthRecognizer
        from .person import PersonRecognizer

        recognizers += [PersonRecognizer(), AddressRecognizer(), DateOfBirthRecognizer()]
    return recognizers


__all__ = [
    "NLP_ENTITY_TYPES",
    "CardRecognizer",
    "Context",
    "EmailRecognizer",
    "IbanRecognizer",
    "IdCardRecognizer",
    "IpAddressRecognizer",
    "KzIinBinRecognizer",
    "PassportRecognizer",
    "PhoneRecognizer",
    "VehiclePlateRecognizer",
    "default_recognizers",
    "scored_finding",
    "structured_recognizers",
]
