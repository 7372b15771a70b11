"""How the leak register reaches a citizen: one-time codes by SMS, verification links and notices by e-mail.

:class:`Messenger` is the plug point (two methods). Three implementations ship:

* :class:`SinkMessenger` — **the embedded default, a demo sink: nothing is sent.** Each message becomes a file
  under ``<data_dir>/outbox/sms/`` (``*.txt``) or ``<data_dir>/outbox/mail/`` (``*.eml``), mode 0600, so a
  developer (or a test) reads the code "like a phone would". The portal says so on every page that sends.
* :class:`SmtpMessenger` — real e-mail through an SMTP server (``smtplib``; STARTTLS and login from settings).
* :class:`HttpSmsMessenger` — real SMS through an HTTP gateway: ``POST <leaks_sms_url>`` with
  ``Authorization: Bearer <leaks_sms_token>`` and the JSON body ``{"to": "+77011234567", "text": "…",
  "sender": "<leaks_sms_sender>"}``; any 2xx answer means accepted (docs/leaks-citizens.md § Messenger).

Settings (``QORGAU_LEAKS_MESSENGER=sink|smtp``, ``QORGAU_LEAKS_SMTP_*``, ``QORGAU_LEAKS_SMS_*``) pick them:
``sink`` sends nothing; ``smtp`` sends e-mail by SMTP, and SMS by the HTTP gateway when ``leaks_sms_url`` is
set (otherwise SMS still go to the sink, and the portal keeps saying so).

An address (a phone number, an e-mail) is personal data: it is never logged, never in an exception message
(:class:`MessengerUnavailable` names the channel only), and the sink's files are readable by the owner only.
"""

from __future__ import annotations

import logging
import os
import secrets
import smtplib
import ssl
from dataclasses import dataclass
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import httpx

from ..core.errors import QorgauError
from ..core.platform import shared

if TYPE_CHECKING:
    from ..core.platform import Platform
    from ..core.settings import Settings

__all__ = ["CompositeMessenger", "HttpSmsMessenger", "Messenger", "MessengerUnavailable", "SinkMessenger",
           "SmtpMessenger", "messenger_for"]

log = logging.getLogger("qorgau.leaks.messenger")


class MessengerUnavailable(QorgauError):
    """A message could not be handed to its channel (HTTP 503); the message names the channel, not the address."""

    code = "messenger_unavailable"
    status = 503


@runtime_checkable
class Messenger(Protocol):
    """Sends one SMS or one e-mail, or raises :class:`MessengerUnavailable`. ``sms_is_sink`` /
    ``email_is_sink`` say whether that channel is the demo sink (the UI then says "nothing is sent")."""

    sms_is_sink: bool
    email_is_sink: bool

    def send_sms(self, to_e164: str, text: str) -> None: ...

    def send_email(self, to: str, subject: str, text: str) -> None: ...


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


class SinkMessenger:
    """Demo sink: nothing is sent. Writes each message under ``outbox/{sms,mail}/`` (0600 files, 0700 dirs)."""

    sms_is_sink = True
    email_is_sink = True

    def __init__(self, directory: str | os.PathLike[str], *, sender: str = "qorgau@localhost") -> None:
        self.directory = Path(directory)
        self.sender = sender

    def __repr__(self) -> str:
        return f"SinkMessenger({str(self.directory)!r})"

    def _folder(self, name: str) -> Path:
        folder = self.directory / name
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        return folder

    @staticmethod
    def _name(suffix: str) -> str:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        return f"{stamp}-{secrets.token_hex(4)}{suffix}"

    def send_sms(self, to_e164: str, text: str) -> None:
        body = f"To: {to_e164}\nDate: {formatdate(usegmt=True)}\n\n{text}\n"
        _write_private(self._folder("sms") / self._name(".txt"), body.encode("utf-8"))

    def send_email(self, to: str, subject: str, text: str) -> None:
        message = _email(self.sender, to, subject, text)
        _write_private(self._folder("mail") / self._name(".eml"), bytes(message))


def _email(sender: str, to: str, subject: str, text: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain="qorgau.local")
    message.set_content(text)
    return message


@dataclass
class SmtpMessenger:
    """Real e-mail by SMTP (``smtplib``). ``starttls`` upgrades the connection before logging in."""

    host: str
    port: int = 587
    sender: str = "qorgau@localhost"
    starttls: bool = True
    username: str | None = None
    password: str | None = None
    timeout: float = 15.0

    sms_is_sink = False
    email_is_sink = False

    def __repr__(self) -> str:
        return f"SmtpMessenger(host={self.host!r}, port={self.port}, starttls={self.starttls})"

    def send_sms(self, to_e164: str, text: str) -> None:
        raise MessengerUnavailable("SMTP cannot send SMS; configure an SMS gateway", field="sms")

    def send_email(self, to: str, subject: str, text: str) -> None:
        message = _email(self.sender, to, subject, text)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                smtp.ehlo()
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                    smtp.ehlo()
                if self.username:
                    smtp.login(self.username, self.password or "")
                smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            log.warning("e-mail not sent: %s", type(exc).__name__)  # never the address or the text
            raise MessengerUnavailable("the e-mail could not be sent; try again later", field="email") from None


@dataclass
class HttpSmsMessenger:
    """Real SMS through an HTTP gateway: ``POST url`` with a bearer token and ``{"to", "text", "sender"}``."""

    url: str
    token: str | None = None
    sender: str = "qorgau"
    timeout: float = 10.0

    sms_is_sink = False
    email_is_sink = False

    def __repr__(self) -> str:
        return f"HttpSmsMessenger(url={self.url!r})"

    def send_sms(self, to_e164: str, text: str) -> None:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            response = httpx.post(self.url, json={"to": to_e164, "text": text, "sender": self.sender},
                                  headers=headers, timeout=self.timeout)
        except httpx.HTTPError as exc:
            log.warning("SMS not sent: %s", type(exc).__name__)
            raise MessengerUnavailable("the SMS could not be sent; try again later", field="phone") from None
        if not 200 <= response.status_code < 300:
            log.warning("SMS gateway answered %d", response.status_code)
            raise MessengerUnavailable("the SMS could not be sent; try again later", field="phone")

    def send_email(self, to: str, subject: str, text: str) -> None:
        raise MessengerUnavailable("an SMS gateway cannot send e-mail; configure SMTP", field="email")


class CompositeMessenger:
    """SMS through one messenger, e-mail through another."""

    def __init__(self, sms: Messenger, email: Messenger) -> None:
        self.sms, self.email = sms, email
        self.sms_is_sink = sms.sms_is_sink
        self.email_is_sink = email.email_is_sink

    def __repr__(self) -> str:
        return f"CompositeMessenger(sms={self.sms!r}, email={self.email!r})"

    def send_sms(self, to_e164: str, text: str) -> None:
        self.sms.send_sms(to_e164, text)

    def send_email(self, to: str, subject: str, text: str) -> None:
        self.email.send_email(to, subject, text)


def build_messenger(settings: Settings) -> Messenger:
    """The messenger the settings describe (see the module docstring)."""
    sink = SinkMessenger(Path(settings.data_dir) / "outbox", sender=settings.leaks_mail_from)
    sms: Messenger = sink
    if settings.leaks_sms_url:
        token = settings.leaks_sms_token.get_secret_value() if settings.leaks_sms_token else None
        sms = HttpSmsMessenger(settings.leaks_sms_url, token, settings.leaks_sms_sender)
    if settings.leaks_messenger == "sink":
        email: Messenger = sink
    else:
        if not settings.leaks_smtp_host:
            raise MessengerUnavailable("leaks_messenger is smtp but leaks_smtp_host is not set",
                                       field="leaks_smtp_host")
        password = settings.leaks_smtp_password.get_secret_value() if settings.leaks_smtp_password else None
        email = SmtpMessenger(settings.leaks_smtp_host, settings.leaks_smtp_port, settings.leaks_mail_from,
                              settings.leaks_smtp_starttls, settings.leaks_smtp_username, password)
    if sms is email:
        return sms
    return CompositeMessenger(sms, email)


def messenger_for(platform: Platform) -> Messenger:
    """The platform's one messenger (built from settings on first use)."""
    return shared(platform, "_leak_messenger", lambda p: build_messenger(p.settings))
