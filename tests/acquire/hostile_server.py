"""A hostile HTTP server for outside tests of acquisition (not the project's fault server).

Each route is a function ``(request, hits) -> bytes | callable`` that returns the raw
response (status line, headers and body, written as given, so headers can be
duplicated, malformed or lie about the body), or a callable that is given the
socket's file and writes what it wants at its own pace (slow bodies). ``default``
answers every other path; ``hits`` counts the requests of that path;
``requests`` keeps every request's headers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Route = Callable[["Request", int], Any]


class Request:
    """What a route sees of a request."""

    def __init__(self, method: str, path: str, headers: dict[str, str]) -> None:
        self.method = method
        self.path = path
        self.headers = headers


def raw(status: str, headers: list[tuple[str, str]], body: bytes = b"",
        length: bool = True) -> bytes:
    """A response as bytes; ``Content-Length`` added unless ``length`` is false or given."""
    lines = [f"HTTP/1.1 {status}"]
    lines += [f"{k}: {v}" for k, v in headers]
    if length and not any(k.lower() == "content-length" for k, _ in headers):
        lines.append(f"Content-Length: {len(body)}")
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class _Handler(BaseHTTPRequestHandler):
    server: HostileServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        path = self.path.split("?", 1)[0]
        srv = self.server
        with srv.lock:
            srv.hits[path] = srv.hits.get(path, 0) + 1
            n = srv.hits[path]
            srv.requests.append((self.command, self.path, dict(self.headers)))
        route = srv.routes.get(path, srv.default)
        if route is None:
            self.wfile.write(raw("404 Not Found", [], b"no such path"))
            return
        out = route(Request(self.command, self.path, dict(self.headers)), n)
        try:
            if callable(out):
                out(self.wfile)
            else:
                self.wfile.write(out if self.command != "HEAD" else out.split(b"\r\n\r\n")[0]
                                 + b"\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True

    do_GET = do_HEAD = do_POST = _serve


class HostileServer(ThreadingHTTPServer):
    """A threaded server on 127.0.0.1 answering ``routes``."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes: dict[str, Route] = {}
        self.default: Route | None = None  # answers every path without a route
        self.hits: dict[str, int] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> HostileServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()
