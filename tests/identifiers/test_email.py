"""E-mail addresses: one canonical spelling per mailbox, so requests, consents and leaks meet."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qorgau.identifiers import IdentifierError, normalize_email

from .strategies import PROPERTY, quotes_identifier


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("aigerim@gov.kz", "aigerim@gov.kz"),
        ("  Aigerim.Nurlanovna@Gov.KZ ", "aigerim.nurlanovna@gov.kz"),
        ("ivan.petrov@mail.ru", "ivan.petrov@mail.ru"),
        ("press@astana.gov.kz", "press@astana.gov.kz"),
        ("info@akimat.almaty.gov.kz", "info@akimat.almaty.gov.kz"),
        ("User+News@Example.COM", "user+news@example.com"),
        ("o'brien@example.ie", "o'brien@example.ie"),
        ("user@example.kz.", "user@example.kz"),
    ],
)
def test_addresses_are_stripped_and_lowercased_including_the_mailbox(written: str, canonical: str) -> None:
    assert normalize_email(written) == canonical


def test_the_same_mailbox_written_twice_normalizes_to_one_key() -> None:
    assert normalize_email("AIGERIM@MAIL.RU") == normalize_email("aigerim@mail.ru")


def test_provider_specific_folding_is_not_applied() -> None:
    assert normalize_email("a.b+tag@gmail.com") == "a.b+tag@gmail.com"


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("info@мвд.қаз", "info@xn--b1aew.xn--80ao21a"),
        ("Info@Пример.РФ", "info@xn--e1afmkfd.xn--p1ai"),
        ("айгерим@mail.kz", "айгерим@mail.kz"),
    ],
)
def test_international_domains_are_idna_encoded(written: str, canonical: str) -> None:
    assert normalize_email(written) == canonical


@pytest.mark.parametrize(
    ("written", "reason"),
    [
        ("aigerim.gov.kz", "has no @"),
        ("@gov.kz", "nothing before the @"),
        ("aigerim@", "nothing after the @"),
        ("aigerim@localhost", "without a dot"),
        (".aigerim@gov.kz", "misplaced dot"),
        ("aige..rim@gov.kz", "misplaced dot"),
        ("aigerim.@gov.kz", "misplaced dot"),
        ("aigerim nurlan@gov.kz", "position 8"),
        ("a@b@gov.kz", "position 2"),
        ('"aigerim"@gov.kz', "quoted"),
        ("aigerim@[10.0.0.1]", "IP-literal"),
        ("aigerim@-gov.kz", "label 1"),
        ("aigerim@gov..kz", "label 2"),
        ("aigerim@gov_kz.kz", "label 1"),
        ("aigerim@gov.k1", "top-level domain"),
        ("a" * 65 + "@gov.kz", "longer than 64"),
    ],
)
def test_malformed_addresses_say_which_part_is_wrong(written: str, reason: str) -> None:
    with pytest.raises(IdentifierError, match=reason) as caught:
        normalize_email(written)
    assert caught.value.kind == "EMAIL"
    assert written not in str(caught.value)


@PROPERTY
@given(st.from_regex(r"[a-z][a-z0-9._+-]{0,20}[a-z0-9]@[a-z]{1,10}\.(kz|ru|com)", fullmatch=True))
def test_normalizing_is_idempotent(address: str) -> None:
    try:
        once = normalize_email(address)
    except IdentifierError:
        return
    assert normalize_email(once) == once


@PROPERTY
@given(st.from_regex(r"[a-z.]{0,5}[0-9]{6,11}[a-z._-]{0,5}@[a-z0-9.-]{0,12}", fullmatch=True))
def test_error_messages_never_quote_the_mailbox(text: str) -> None:
    # mailboxes named after a phone number or an IIN are common; none may reach a log
    try:
        normalize_email(text)
    except IdentifierError as error:
        local = text.rpartition("@")[0]
        assert not quotes_identifier(str(error), local)
        assert not quotes_identifier(str(error), text)
