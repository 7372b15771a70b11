"""What the HTTP benchmarks share: a qorgau server in its own process and a raw HTTP/1.1 load generator.

The load comes from a second process (``multiprocessing``), over keep-alive connections, as fast as the server
answers; each request's latency is taken from write to the end of its body.
"""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ns = time.perf_counter_ns

SERVER = """
import json, sys, uvicorn
from pathlib import Path
from qorgau.core.platform import Platform
from qorgau.core.settings import Settings
from qorgau.api.app import create_app
settings = Settings(data_dir=Path(sys.argv[1]), database_url=sys.argv[2] or None, sth_interval_seconds=0,
                    **json.loads(sys.argv[4]))
uvicorn.run(create_app(Platform.open(settings)), host="127.0.0.1", port=int(sys.argv[3]), log_level="warning",
            access_log=False, server_header=False)
"""


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(data_dir: Path, url: str | None, port: int, **settings: object) -> subprocess.Popen[bytes]:
    """Start ``qorgau``'s API on ``port`` (``settings`` override :class:`Settings` fields); wait until it listens."""
    import json

    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(data_dir), url or "", str(port), json.dumps(settings)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError("server died: " + (proc.stderr.read() or b"").decode()[-2000:])  # type: ignore[union-attr]
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start")


def request_bytes(method: str, path: str, api_key: str, body: bytes) -> bytes:
    return (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n".encode()
            + b"Authorization: Bearer " + api_key.encode() + b"\r\nContent-Length: " + str(len(body)).encode()
            + b"\r\n\r\n" + body)


async def _load(port: int, requests: Sequence[bytes], connections: int, duration: float, *, cycle: bool,
                ok: Callable[[bytes, bytes], bool]) -> tuple[list[float], int, int]:
    latencies: list[float] = []
    errors = done = 0
    stop_at = time.perf_counter() + duration
    counter = [0]

    async def one_connection() -> None:
        nonlocal errors, done
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.perf_counter() < stop_at and (cycle or counter[0] < len(requests)):
            request = requests[counter[0] % len(requests)]
            counter[0] += 1
            t = ns()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
            body = await reader.readexactly(length)
            latencies.append((ns() - t) / 1000)
            if not ok(head, body):
                errors += 1
            done += 1
        writer.close()

    await asyncio.gather(*(one_connection() for _ in range(connections)))
    return latencies, done, errors


def run_load(port: int, requests: Sequence[bytes], connections: int, duration: float, *, cycle: bool,
             ok: Callable[[bytes, bytes], bool]) -> tuple[list[float], float, int]:
    """Send ``requests`` (round and round when ``cycle``, else each once) for ``duration`` seconds.

    Returns the latencies in µs, the requests/s achieved and how many answers ``ok`` refused."""
    started = time.perf_counter()
    latencies, done, errors = asyncio.run(_load(port, requests, connections, duration, cycle=cycle, ok=ok))
    return latencies, done / (time.perf_counter() - started), errors
