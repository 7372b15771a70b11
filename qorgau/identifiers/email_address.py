"""E-mail addresses, normalized to one canonical spelling per mailbox.

Canonical form: surrounding whitespace stripped, the *whole* address lowercased, the domain in
its ASCII (IDNA, ``xn--``) form.

Lowercasing the local part is a deliberate choice. RFC 5321 lets a server treat ``Aigerim`` and
``aigerim`` as different mailboxes, but no real provider does (mail.ru, Gmail, Yandex, the
Exchange servers behind ``gov.kz`` all fold case). qorgau needs one key per data subject:
a rights request (L-PD-RIGHTS), a consent (L-PD-CONSENT) and a leaked row (L-PD-LEAK-REGISTER)
written with different capitals must meet. The cost, merging two mailboxes on a server that
distinguishes case, is accepted. Provider-specific folding (Gmail dots, ``+tags``) is *not*
applied: it would be wrong for every other provider.

The syntax accepted is RFC 5322's dot-atom, plus non-ASCII letters and digits in the local part
(RFC 6531); quoted local parts, comments and IP-literal domains are refused. The domain must be
a host name with at least two labels. IDNA uses Python's built-in ``idna`` codec (IDNA 2003);
it agrees with IDNA 2008 on Cyrillic and Kazakh domains (``мвд.қаз`` → ``xn--b1aew.xn--80ao21a``)
and differs only on a few characters such as ``ß``.
"""

from __future__ import annotations

import re

from .errors import IdentifierError, require_str

# RFC 5322 atext: what may appear in an unquoted local part besides dots.
_ATEXT = frozenset("abcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+-/=?^_`{|}~")
# A host-name label after IDNA: letters, digits and inner hyphens, 1-63 characters.
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_TLD = re.compile(r"[a-z]{2,63}|xn--[a-z0-9-]{1,59}")


def normalize_email(s: str) -> str:
    """The canonical form of an e-mail address, or :class:`IdentifierError` naming the faulty part."""
    text = require_str("EMAIL", s).strip()
    if "@" not in text:
        raise IdentifierError("EMAIL", "has no @")
    local, _, domain = text.rpartition("@")
    local = _normalize_local(local.lower())
    domain = _normalize_domain(domain)
    address = f"{local}@{domain}"
    if len(address.encode()) > 254:
        raise IdentifierError("EMAIL", "is longer than 254 bytes")
    return address


def mask_email(address: str) -> str:
    """``aigerim@gov.kz`` → ``a***@gov.kz``: first character of the mailbox, the whole domain.

    The domain stays readable because it is what an operator needs to act on (which provider,
    which organisation); for a personal domain it does identify its owner, so treat the mask as
    pseudonymous, not anonymous.
    """
    local, at, domain = address.rpartition("@")
    if not at or not local:
        return "***"
    return f"{local[0]}***@{domain}"


def _normalize_local(local: str) -> str:
    if not local:
        raise IdentifierError("EMAIL", "has nothing before the @")
    if local.startswith('"'):
        raise IdentifierError("EMAIL", "has a quoted local part, which is not supported")
    if len(local.encode()) > 64:
        raise IdentifierError("EMAIL", "has a local part longer than 64 bytes")
    if local.startswith(".") or local.endswith(".") or ".." in local:
        raise IdentifierError("EMAIL", "has a misplaced dot before the @ (leading, trailing or doubled)")
    for position, ch in enumerate(local, start=1):
        if ch != "." and ch not in _ATEXT and not (ord(ch) > 127 and ch.isalnum()):
            raise IdentifierError("EMAIL", f"has a character not allowed in an address at position {position}")
    return local


def _normalize_domain(domain: str) -> str:
    if not domain:
        raise IdentifierError("EMAIL", "has nothing after the @")
    if domain.startswith("["):
        raise IdentifierError("EMAIL", "has an IP-literal domain, which is not supported")
    domain = domain.lower().removesuffix(".")  # a trailing dot (fully qualified) names the same host
    ascii_domain = _idna(domain)
    labels = ascii_domain.split(".")
    if len(labels) < 2:
        raise IdentifierError("EMAIL", "has a domain without a dot (a top-level domain is required)")
    if len(ascii_domain) > 253:
        raise IdentifierError("EMAIL", "has a domain longer than 253 characters")
    for index, label in enumerate(labels, start=1):
        if not _LABEL.fullmatch(label):
            raise IdentifierError(
                "EMAIL", f"has an invalid domain label (label {index}: letters, digits, inner hyphens, 1-63 characters)"
            )
    if not _TLD.fullmatch(labels[-1]):
        raise IdentifierError("EMAIL", "has a top-level domain that is not a name")
    return ascii_domain


def _idna(domain: str) -> str:
    if domain.isascii():
        return domain
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        pass
    # Raised outside the except block: the codec's message quotes the offending label.
    raise IdentifierError("EMAIL", "has a domain that cannot be converted to IDNA")
