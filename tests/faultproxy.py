"""A fault-injecting HTTP proxy for tests: sits between lakeml and an S3 (or REST catalog) server.

Each request is read from the client, then, with probability ``rate``, hit by one fault:

* ``reset``       -- the connection is closed before the request is forwarded (nothing happened);
* ``drop_after``  -- the request is forwarded and executed, but the response is thrown away and the
                     connection closed (the outcome is unknown to the client: the classic lost ack);
* ``500`` / ``503`` -- an S3-style ``InternalError`` / ``SlowDown`` answer, without forwarding;
* ``delay``       -- the response is held back ``delay`` seconds (a slow network or server).

``down = True`` makes every request fail with a reset (storage unreachable). ``match`` limits faults
to requests for which ``match(method, path)`` is true; others pass untouched. ``counts`` records
what was injected. Threads only, one per client connection; upstream gets one connection per request.

Usage::

    with FaultProxy("127.0.0.1", moto_port, rate=0.1, seed=1) as proxy:
        props["s3.endpoint"] = proxy.endpoint
"""

from __future__ import annotations

import random
import socket
import socketserver
import threading
import time
from collections import Counter
from typing import Callable

FAULTS = ("reset", "drop_after", "500", "503", "delay")
_ERRORS = {
    "500": (b"500 Internal Server Error", b"InternalError", b"We encountered an internal error. Please try again."),
    "503": (b"503 Slow Down", b"SlowDown", b"Please reduce your request rate."),
}


class _Closed(Exception):
    pass


def _read_until(sock: socket.socket, buf: bytearray, marker: bytes) -> int:
    while True:
        i = buf.find(marker)
        if i >= 0:
            return i
        chunk = sock.recv(65536)
        if not chunk:
            raise _Closed()
        buf += chunk


def _read_exact(sock: socket.socket, buf: bytearray, n: int) -> bytes:
    while len(buf) < n:
        chunk = sock.recv(max(65536, n - len(buf)))
        if not chunk:
            raise _Closed()
        buf += chunk
    out = bytes(buf[:n])
    del buf[:n]
    return out


def _headers(head: bytes) -> tuple[bytes, dict[bytes, bytes], list[bytes]]:
    lines = head.split(b"\r\n")
    hdrs: dict[bytes, bytes] = {}
    for line in lines[1:]:
        if b":" in line:
            k, v = line.split(b":", 1)
            hdrs[k.strip().lower()] = v.strip()
    return lines[0], hdrs, lines


def _read_body(sock: socket.socket, buf: bytearray, hdrs: dict[bytes, bytes]) -> bytes:
    if b"chunked" in hdrs.get(b"transfer-encoding", b"").lower():
        out = bytearray()
        while True:
            i = _read_until(sock, buf, b"\r\n")
            size_line = bytes(buf[: i + 2])
            del buf[: i + 2]
            out += size_line
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while True:  # trailers, up to an empty line
                    j = _read_until(sock, buf, b"\r\n")
                    line = bytes(buf[: j + 2])
                    del buf[: j + 2]
                    out += line
                    if line == b"\r\n":
                        return bytes(out)
            out += _read_exact(sock, buf, size + 2)
    n = int(hdrs.get(b"content-length", b"0") or 0)
    return _read_exact(sock, buf, n) if n else b""


class FaultProxy:
    """See the module docstring."""

    def __init__(self, upstream_host: str, upstream_port: int, *, rate: float = 0.1, seed: int | None = None,
                 faults: tuple[str, ...] = FAULTS, delay: float = 0.3,
                 match: Callable[[str, str], bool] | None = None):
        self.upstream = (upstream_host, upstream_port)
        self.rate = rate
        self.faults = faults
        self.delay = delay
        self.match = match
        self.down = False
        self.counts: Counter = Counter()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                proxy._serve(self.request)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="faultproxy", daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "FaultProxy":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _pick(self, method: str, path: str) -> str | None:
        if self.down:
            return "reset"
        if self.match is not None and not self.match(method, path):
            return None
        with self._lock:
            if self._rng.random() >= self.rate:
                return None
            return self._rng.choice(self.faults)

    def _serve(self, client: socket.socket) -> None:
        buf = bytearray()
        try:
            while True:
                i = _read_until(client, buf, b"\r\n\r\n")
                head = bytes(buf[:i])
                del buf[: i + 4]
                first, hdrs, lines = _headers(head)
                method, path = first.split(b" ")[0].decode(), first.split(b" ")[1].decode()
                if b"100-continue" in hdrs.get(b"expect", b"").lower():
                    client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                    lines = [ln for ln in lines if not ln.lower().startswith(b"expect:")]
                body = _read_body(client, buf, hdrs)
                fault = self._pick(method, path)
                with self._lock:
                    self.counts["requests"] += 1
                    if fault:
                        self.counts[fault] += 1
                if fault == "reset":
                    return
                if fault in _ERRORS:
                    status, code, msg = _ERRORS[fault]
                    xml = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>' + code + b"</Code><Message>"
                           + msg + b"</Message></Error>")
                    client.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Type: application/xml\r\n"
                                   b"Content-Length: " + str(len(xml)).encode() + b"\r\n\r\n" + xml)
                    continue
                request = b"\r\n".join(ln for ln in lines if not ln.lower().startswith(b"connection:"))
                response, closes = self._forward(request + b"\r\nConnection: close\r\n\r\n" + body, method)
                if fault == "drop_after":
                    return
                if fault == "delay":
                    time.sleep(self.delay)
                client.sendall(response)
                if closes:
                    return
        except (_Closed, ConnectionError, OSError):
            return
        finally:
            try:
                client.close()
            except OSError:
                pass

    def _forward(self, request: bytes, method: str) -> tuple[bytes, bool]:
        """Send one request upstream; returns (raw response, must the client connection close after it)."""
        with socket.create_connection(self.upstream, timeout=60) as up:
            up.sendall(request)
            data = bytearray()
            while True:
                chunk = up.recv(65536)
                if not chunk:
                    break
                data += chunk
        i = data.find(b"\r\n\r\n")
        if i < 0:
            raise _Closed()
        _, hdrs, _ = _headers(bytes(data[:i]))
        framed = (method == "HEAD" or b"content-length" in hdrs
                  or b"chunked" in hdrs.get(b"transfer-encoding", b"").lower())
        closes = not framed or hdrs.get(b"connection", b"").lower() == b"close"
        return bytes(data), closes
