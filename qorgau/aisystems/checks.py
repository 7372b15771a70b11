"""Input checks the register and governance services share: free text is bounded and holds no personal data."""

from __future__ import annotations

from typing import Any

from ..core import audit
from ..core.errors import InvalidInput


def no_personal_data(value: str, field: str) -> None:
    """Refuse identifiers, phone numbers and e-mail addresses in text the register stores or publishes."""
    try:
        audit.assert_no_personal_data({field: value})
    except InvalidInput:
        raise InvalidInput("must not contain personal data (identifiers, phone numbers, e-mail addresses)",
                           field=field) from None


def text(value: Any, field: str, limit: int, *, required: bool = False) -> str | None:
    """Stripped text of at most ``limit`` characters without personal data; ``None`` when empty."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise InvalidInput("is required", field=field)
        return None
    if not isinstance(value, str):
        raise InvalidInput("must be text", field=field)
    value = value.strip()
    if len(value) > limit:
        raise InvalidInput(f"must be at most {limit} characters", field=field)
    no_personal_data(value, field)
    return value
