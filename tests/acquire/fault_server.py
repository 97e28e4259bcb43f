"""A real HTTP/1.1 server on 127.0.0.1 serving recorded archive responses, with
faults injected on request, and byte counters per path.

Resources are registered by path; ``faults[path]`` is a list of fault dicts
consumed one per request (an empty list means "behave"). Fault kinds:

* ``reset``        send headers and ``after`` body bytes, then reset the connection
* ``truncate``     announce the full Content-Length, send ``after`` bytes, close
* ``status``       answer ``code`` (with ``retry_after`` seconds if given)
* ``ignore_range`` answer 200 with the full body even to a Range request
* ``bad_range``    answer 206 with a Content-Range that starts at 0
* ``slow``         send headers, then stall ``seconds`` before the body
* ``redirect``     answer 302 to ``location``
* ``new_version``  replace the body (and ETag) before answering
* ``splice``       replace the body (and ETag) but still answer a Range request with
                   206 from the old offset, ignoring ``If-Range`` (a server that
                   does not implement it); ``shift`` moves the Content-Range start,
                   ``last_modified`` replaces the Last-Modified date

``catch_all``, when set, answers every GET/HEAD for an unregistered path (so a
name that a client resolves to some other path is still served), and
:data:`HOSTILE_NAMES` with :func:`hostile_index`, :func:`hostile_listing` and
:func:`hostile_manifest` build 1000 Genomes index files, HTML autoindex pages
and JSON manifests whose names try to leave the client's destination.

Given an :class:`ssl.SSLContext`, the server speaks HTTPS (the handshake runs
in the connection's thread).
"""

from __future__ import annotations

import hashlib
import json
import socket
import ssl
import struct
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

HOSTILE_NAMES = (
    "../../PWNED.txt",
    "%2e%2e/%2e%2e/PWNED.txt",
    "a/../../../PWNED.nc",
    "/etc/PWNED.nc",
    "..%2f..%2fPWNED.nc",
    "..\\..\\PWNED.nc",
    "%252e%252e/%252e%252e/PWNED.nc",
    "_quarantine/../../PWNED.nc",
)


def hostile_index(names: tuple[str, ...], data: bytes, md5sum: str) -> bytes:
    """A 1000 Genomes ``current.tree`` listing ``names`` (below ``vol1/ftp/``)."""
    lines = [f"vol1/ftp/{n}\tfile\t{len(data)}\t2015-06-01 00:00:00\t{md5sum}" for n in names]
    return ("\n".join(lines) + "\n").encode()


def hostile_listing(names: tuple[str, ...]) -> bytes:
    """An HTML autoindex page linking ``names`` as hrefs, exactly as written."""
    links = "".join(f'<a href="{n}">{n}</a>' for n in names)
    return f"<html><body>{links}</body></html>".encode()


def hostile_manifest(names: tuple[str, ...], data: bytes) -> bytes:
    """A JSON manifest listing ``names`` with ``data``'s size and sha256."""
    sha = hashlib.sha256(data).hexdigest()
    return json.dumps([{"name": n, "size": len(data), "sha256": sha} for n in names]).encode()


@dataclass
class Resource:
    body: bytes | None = None
    path: Path | None = None
    content_type: str = "application/octet-stream"
    etag: str | None = None
    last_modified: str = field(default_factory=lambda: formatdate(1700000000, usegmt=True))
    throttle: tuple[int, float] | None = None
    chunked: bool = False  # Transfer-Encoding: chunked, no Content-Length

    def data(self) -> bytes:
        return self.body if self.body is not None else self.path.read_bytes()

    def size(self) -> int:
        return len(self.body) if self.body is not None else self.path.stat().st_size

    def tag(self) -> str:
        return self.etag or '"' + hashlib.md5(self.data()).hexdigest()[:16] + '"'


class FaultServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.tls = tls
        self.resources: dict[str, Resource] = {}
        self.faults: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.bytes_sent: dict[str, int] = defaultdict(int)
        self.requests: list[dict[str, Any]] = []
        self.handlers: dict[str, Any] = {}
        self.lock = threading.Lock()
        self.paused = threading.Event()
        self.generation = 0
        self.catch_all: Resource | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.server_address[1]}"

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = super().get_request()
        if self.tls:
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def add(self, path: str, body: bytes | Path, **kw: Any) -> Resource:
        res = Resource(body=body, **kw) if isinstance(body, bytes) else Resource(path=body, **kw)
        self.resources[path] = res
        return res

    def reset_state(self) -> None:
        self.resources.clear()
        self.faults.clear()
        self.bytes_sent.clear()
        self.requests.clear()
        self.handlers.clear()
        self.paused.clear()
        self.catch_all = None

    def abandon_connections(self) -> None:
        """Body writes already under way stop without writing another byte."""
        with self.lock:
            self.generation += 1

    def count(self, path: str) -> int:
        return sum(1 for r in self.requests if r["path"] == path)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FaultServer

    def log_message(self, *args: Any) -> None:
        pass

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length)
        path = urlsplit(self.path).path
        self._log(path)
        handler = self.server.handlers.get(path)
        if handler is None:
            return self._status(404)
        code, ctype, out = handler(parse_qs(body.decode()))
        self._plain(code, ctype, out)

    def _log(self, path: str) -> None:
        with self.server.lock:
            self.server.requests.append({"method": self.command, "path": path,
                                         "query": urlsplit(self.path).query,
                                         "headers": dict(self.headers)})

    def _status(self, code: int, extra: dict[str, str] | None = None) -> None:
        self.send_response(code)
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _plain(self, code: int, ctype: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _serve(self, head: bool) -> None:
        path = urlsplit(self.path).path
        self._log(path)
        handler = self.server.handlers.get(path)
        if handler is not None:
            code, ctype, out = handler(parse_qs(urlsplit(self.path).query))
            return self._plain(code, ctype, b"" if head else out)
        with self.server.lock:
            queue = self.server.faults.get(path) or []
            fault = queue.pop(0) if queue else {}
        res = self.server.resources.get(path) or self.server.catch_all
        kind = fault.get("kind")
        if kind in ("new_version", "splice"):
            res.body, res.etag = fault["body"], fault["etag"]
            res.last_modified = fault.get("last_modified", res.last_modified)
            kind = None if kind == "new_version" else kind
        if kind == "status":
            extra = {"Retry-After": str(fault["retry_after"])} if "retry_after" in fault else {}
            return self._status(fault["code"], extra)
        if kind == "redirect":
            return self._status(302, {"Location": fault["location"]})
        if res is None:
            return self._status(404)
        self._send_resource(path, res, fault, head)

    def _range(self, res: Resource, fault: dict[str, Any]) -> int | None:
        rng = self.headers.get("Range")
        if not rng or fault.get("kind") == "ignore_range":
            return None
        if_range = self.headers.get("If-Range")
        if fault.get("kind") == "splice":
            if_range = None  # If-Range not implemented: the new version from the old offset
        if if_range and if_range not in (res.tag(), res.last_modified):
            return None
        start = int(rng.removeprefix("bytes=").split("-")[0])
        return start

    def _send_resource(self, path: str, res: Resource, fault: dict[str, Any], head: bool) -> None:
        data = res.data()
        start = self._range(res, fault)
        if start is not None and start >= len(data):
            return self._status(416, {"Content-Range": f"bytes */{len(data)}"})
        body = data[start:] if start is not None else data
        self.send_response(206 if start is not None else 200)
        if start is not None:
            first = 0 if fault.get("kind") == "bad_range" else start + fault.get("shift", 0)
            self.send_header("Content-Range", f"bytes {first}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Type", res.content_type)
        if res.chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", res.tag())
        self.send_header("Last-Modified", res.last_modified)
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if head:
            return
        kind = fault.get("kind")
        if kind == "slow":
            time.sleep(fault["seconds"])
        limit = fault.get("after", len(body)) if kind in ("reset", "truncate") else len(body)
        complete = self._write(path, body[:limit], res.throttle, res.chunked)
        if res.chunked and complete and limit == len(body):
            self.wfile.write(b"0\r\n\r\n")
        if kind == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.close_connection = True
        elif kind == "truncate":
            self.close_connection = True

    def _write(
        self, path: str, body: bytes, throttle: tuple[int, float] | None, chunked: bool = False
    ) -> bool:
        """Send ``body`` (in chunked framing if asked); False if cut short."""
        step, pause = throttle or (1 << 20, 0.0)
        view = memoryview(body)
        generation = self.server.generation
        for i in range(0, len(body), step):
            piece = view[i:i + step]
            while self.server.paused.is_set():
                time.sleep(0.005)
            if generation != self.server.generation:
                self.close_connection = True
                return False
            try:
                if chunked:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                else:
                    self.wfile.write(piece)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
                return False
            with self.server.lock:
                self.server.bytes_sent[path] += len(piece)
            if pause:
                time.sleep(pause)
        return True
