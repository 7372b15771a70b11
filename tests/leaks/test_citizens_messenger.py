"""The messenger (qorgau/leaks/messenger.py) against real local servers: an SMTP receiver and an HTTP SMS gateway
started in the test; the demo sink's files; failures that name the channel, never the address."""

from __future__ import annotations

import json
import os
import socketserver
import stat
import threading
from collections.abc import Iterator
from email import message_from_bytes
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from qorgau.core.platform import Platform
from qorgau.core.settings import Settings
from qorgau.leaks.citizens import LeakCitizens
from qorgau.leaks.messenger import (
    CompositeMessenger,
    HttpSmsMessenger,
    MessengerUnavailable,
    SinkMessenger,
    SmtpMessenger,
    build_messenger,
)
from qorgau.leaks.models import LeakVerification


class _SmtpHandler(socketserver.StreamRequestHandler):
    """A minimal SMTP receiver (RFC 5321 subset: EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT; AUTH PLAIN)."""

    def reply(self, line: str) -> None:
        self.wfile.write((line + "\r\n").encode())

    def handle(self) -> None:
        server: Any = self.server
        self.reply("220 test-smtp ready")
        envelope: dict[str, Any] = {"rcpt": []}
        while True:
            raw = self.rfile.readline()
            if not raw:
                return
            command = raw.decode().rstrip("\r\n")
            verb = command.split(" ", 1)[0].upper()
            if verb == "EHLO":
                self.wfile.write(b"250-test-smtp\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\n")
            elif verb == "HELO":
                self.reply("250 test-smtp")
            elif verb == "AUTH":
                server.auth.append(command)
                self.reply("235 2.7.0 Authentication successful")
            elif verb == "MAIL":
                envelope = {"from": command[10:], "rcpt": []}
                self.reply("250 OK")
            elif verb == "RCPT":
                envelope["rcpt"].append(command[8:])
                self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 End data with <CR><LF>.<CR><LF>")
                lines = []
                while True:
                    line = self.rfile.readline()
                    if line in (b".\r\n", b".\n", b""):
                        break
                    lines.append(line[1:] if line.startswith(b"..") else line)
                envelope["data"] = b"".join(lines)
                server.messages.append(envelope)
                self.reply("250 OK: queued")
            elif verb in ("RSET", "NOOP"):
                self.reply("250 OK")
            elif verb == "QUIT":
                self.reply("221 Bye")
                return
            else:
                self.reply("502 Command not implemented")


class _Smtp(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _SmtpHandler)
        self.messages: list[dict[str, Any]] = []
        self.auth: list[str] = []


@pytest.fixture
def smtp_server() -> Iterator[_Smtp]:
    server = _Smtp()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


class _Gateway(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        server: Any = self.server
        length = int(self.headers.get("content-length", "0"))
        server.requests.append({"auth": self.headers.get("authorization"), "type": self.headers.get("content-type"),
                                "body": json.loads(self.rfile.read(length)), "path": self.path})
        self.send_response(server.status)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"id": "msg-1"}')

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def sms_gateway() -> Iterator[Any]:
    server: Any = HTTPServer(("127.0.0.1", 0), _Gateway)
    server.requests, server.status = [], 202
    server.url = f"http://127.0.0.1:{server.server_address[1]}/v1/sms"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_smtp_messenger_delivers_to_a_real_smtp_server(smtp_server: _Smtp) -> None:
    port = smtp_server.server_address[1]
    messenger = SmtpMessenger("127.0.0.1", port, sender="register@qorgau.kz", starttls=False,
                              username="qorgau", password="s3cret")
    messenger.send_email("aigerim@example.kz", "qorgau: subject", "Сәлем! Body with a link https://x/y")
    [envelope] = smtp_server.messages
    assert envelope["rcpt"] == ["<aigerim@example.kz>"] and envelope["from"].startswith("<register@qorgau.kz>")
    message = message_from_bytes(envelope["data"], policy=default_policy)
    assert message["Subject"] == "qorgau: subject" and "Сәлем!" in message.get_content()
    assert smtp_server.auth and smtp_server.auth[0].startswith("AUTH PLAIN")
    assert "s3cret" not in repr(messenger)


def test_smtp_failure_names_the_channel_never_the_address(caplog: pytest.LogCaptureFixture) -> None:
    messenger = SmtpMessenger("127.0.0.1", 1, starttls=False, timeout=2)  # nothing listens on port 1
    with pytest.raises(MessengerUnavailable) as exc:
        messenger.send_email("aigerim@example.kz", "s", "t")
    assert exc.value.status == 503 and "aigerim" not in str(exc.value) and "aigerim" not in caplog.text


def test_http_sms_gateway_gets_the_documented_json_with_the_bearer_token(sms_gateway: Any) -> None:
    messenger = HttpSmsMessenger(sms_gateway.url, "gw-token", sender="qorgau")
    messenger.send_sms("+77011234567", "qorgau: your code is 123456.")
    [request] = sms_gateway.requests
    assert request["auth"] == "Bearer gw-token" and request["type"] == "application/json"
    assert request["body"] == {"to": "+77011234567", "text": "qorgau: your code is 123456.", "sender": "qorgau"}
    assert request["path"] == "/v1/sms"
    sms_gateway.status = 500
    with pytest.raises(MessengerUnavailable) as exc:
        messenger.send_sms("+77011234567", "x")
    assert "7011234567" not in str(exc.value)


def test_the_sink_writes_private_files(tmp_path: Path) -> None:
    sink = SinkMessenger(tmp_path / "outbox")
    sink.send_sms("+77011234567", "code 123456")
    sink.send_email("a@example.kz", "Subject", "Body")
    [sms] = (tmp_path / "outbox" / "sms").iterdir()
    [mail] = (tmp_path / "outbox" / "mail").iterdir()
    assert mail.suffix == ".eml" and sms.suffix == ".txt"
    for path in (sms, mail):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "outbox" / "sms").st_mode) == 0o700
    assert message_from_bytes(mail.read_bytes(), policy=default_policy)["To"] == "a@example.kz"
    assert sink.sms_is_sink and sink.email_is_sink


def test_settings_choose_the_messenger(tmp_path: Path, sms_gateway: Any) -> None:
    sink = build_messenger(Settings(data_dir=tmp_path))
    assert isinstance(sink, SinkMessenger)
    real = build_messenger(Settings(data_dir=tmp_path, leaks_messenger="smtp", leaks_smtp_host="127.0.0.1",
                                    leaks_sms_url=sms_gateway.url, leaks_sms_token="t"))
    assert isinstance(real, CompositeMessenger) and not real.sms_is_sink and not real.email_is_sink
    assert "very-secret" not in repr(Settings(data_dir=tmp_path, leaks_sms_token="very-secret",
                                              leaks_smtp_password="very-secret"))
    with pytest.raises(MessengerUnavailable):
        build_messenger(Settings(data_dir=tmp_path, leaks_messenger="smtp"))


def test_codes_go_through_the_configured_gateway_and_a_failed_send_voids_the_code(
        platform: Platform, tenant_a, sms_gateway: Any) -> None:
    user = tenant_a.users["citizen"][0]
    service = LeakCitizens(platform, messenger=HttpSmsMessenger(sms_gateway.url, "gw"))
    started = service.start_phone(user, "+77011234567", lang="kk")
    assert not started.sink
    [request] = sms_gateway.requests
    code = request["body"]["text"].split("кодыңыз ")[1][:6]
    assert request["body"]["to"] == "+77011234567" and code.isdigit()
    assert service.confirm_phone(user, started.selector, code).kind == "phone"
    sms_gateway.status = 503
    with pytest.raises(MessengerUnavailable):
        service.start_phone(user, "+77017654321")
    with platform.db.reader() as s:
        statuses = sorted(s.scalars(select(LeakVerification.status)))
    assert statuses == ["expired", "verified"]  # nobody received the second code: it cannot be used
