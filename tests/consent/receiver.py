"""A real HTTP webhook receiver for the tests, written the way a processor should write one: it checks the
signature, and it deduplicates on the Idempotency-Key so each notification takes effect exactly once."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from qorgau.consent.dispatcher import verify_signature

from conftest import free_port


@dataclass
class Received:
    key: str
    delivery: str
    event: str
    signature_ok: bool
    body: dict[str, Any]
    at: float


@dataclass
class Receiver:
    """``secret``: the signing secret to verify with, or a function of the body giving it (None: accept
    unverified).
    ``statuses``: answers to give in order (then 200). ``hold``: while set, requests wait before answering
    (so a test can kill a dispatcher while its POSTs are in flight)."""

    secret: str | Callable[[dict[str, Any]], str] | None = None
    statuses: list[int] = field(default_factory=list)
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)
    processed: dict[str, int] = field(default_factory=dict)  # key -> times it took effect (must be 1)
    hold: threading.Event = field(default_factory=threading.Event)
    on_request: Callable[[Received], None] | None = None

    def __post_init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/webhooks/qorgau"
        self._lock = threading.Lock()
        self.arrived = threading.Condition(self._lock)
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                body = json.loads(raw or b"{}")
                secret = receiver.secret(body) if callable(receiver.secret) else receiver.secret
                ok = verify_signature(secret, raw, self.headers.get("Qorgau-Signature", "")) if secret else False
                item = Received(self.headers.get("Idempotency-Key", ""), self.headers.get("Qorgau-Delivery", ""),
                                self.headers.get("Qorgau-Event", ""), ok, body, time.monotonic())
                with receiver.arrived:
                    receiver.received.append(item)
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    receiver.arrived.notify_all()
                if receiver.on_request:
                    receiver.on_request(item)
                while receiver.hold.is_set():
                    time.sleep(0.01)
                if receiver.delay:
                    time.sleep(receiver.delay)
                if status == 200 and (ok or receiver.secret is None):
                    with receiver._lock:
                        # receiver-side idempotency: a key already processed is acknowledged, not redone
                        receiver.processed[item.key] = receiver.processed.get(item.key, 0) + (
                            0 if item.key in receiver.processed else 1)
                elif status == 200:
                    status = 401  # a bad signature is refused
                body = b'{"ok": true}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "Receiver":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.hold.clear()
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        with self.arrived:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.arrived.wait(min(left, 0.1))
        return True

    def keys(self) -> set[str]:
        with self._lock:
            return {r.key for r in self.received}
