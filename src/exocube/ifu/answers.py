"""Recorded archive answers: plan ``exocube ifu fetch`` online once, then offline.

Two ``httpx`` transports carry the planning requests of
:func:`exocube.acquire.run.plan_sources`. :class:`RecordingTransport` sends each
request over the network and saves every 2xx answer as ``<digest>.json`` in a
folder, with ``index.json`` giving per digest the method, URL, request (the
form fields, JSON values decoded), the UTC time, the HTTP status and the sha256
of the saved body. :class:`ReplayTransport` answers from such a folder and never
opens a connection: a request with no recorded answer, an answer whose sha256
does not match the index, or an unreadable index is a
:class:`~exocube.errors.TransferError` (:class:`~exocube.errors.ChecksumError`
for a mismatch) naming the request and the folder.

The digest is the sha256 of the method, the full URL and the body, so an
answer is replayed only for exactly the request that got it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx

from exocube.errors import ChecksumError, TransferError

log = logging.getLogger(__name__)

INDEX = "index.json"
_DIGEST = re.compile(r"[0-9a-f]{64}")


def request_digest(method: str, url: str, body: bytes) -> str:
    """The key of a request's answer: sha256 of method, URL and body."""
    h = hashlib.sha256()
    for part in (method.upper().encode(), str(url).encode(), body):
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()


def describe_request(request: httpx.Request) -> dict[str, Any]:
    """Method, URL and the form fields of ``request`` (JSON values decoded)."""
    body = request.content.decode("utf-8", "replace")
    fields: dict[str, Any] = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        try:
            fields[key] = json.loads(value)
        except ValueError:
            fields[key] = value
    return {"method": request.method, "url": str(request.url),
            "request": fields if fields or not body else body}


def _label(request: httpx.Request) -> str:
    """A short human name of a request: its MAST service and params if it has them."""
    fields = describe_request(request)["request"]
    inner = fields.get("request") if isinstance(fields, dict) else None
    if isinstance(inner, dict) and "service" in inner:
        return f"{inner['service']} {json.dumps(inner.get('params', {}), sort_keys=True)}"
    return f"{request.method} {request.url}"


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class RecordingTransport(httpx.AsyncBaseTransport):
    """Sends requests through ``inner`` and records each 2xx answer in ``folder``;
    a body past ``max_bytes`` raises :class:`TransferError` (not recorded)."""

    def __init__(self, folder: Path, max_bytes: int,
                 inner: httpx.AsyncBaseTransport | None = None) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.inner = inner or httpx.AsyncHTTPTransport()
        index_path = self.folder / INDEX
        self.index: dict[str, Any] = (load_index(self.folder) if index_path.exists() else {})

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        resp = await self.inner.handle_async_request(request)
        raw = bytearray()
        try:
            async for chunk in resp.stream:  # type: ignore[union-attr]
                raw += chunk
                if len(raw) > self.max_bytes:
                    raise TransferError(f"{request.method} {request.url}: answer larger than "
                                        f"{self.max_bytes} bytes (acquire.plan_max_bytes); "
                                        "not recorded")
        finally:
            await resp.aclose()
        headers = [(k, v) for k, v in resp.headers.multi_items()
                   if k.lower() not in ("content-encoding", "content-length",
                                        "transfer-encoding")]
        decoded = httpx.Response(resp.status_code, headers=resp.headers, content=bytes(raw),
                                 request=request).content
        if 200 <= resp.status_code < 300:
            self._save(request, body, resp.status_code, decoded)
        return httpx.Response(resp.status_code, headers=headers, content=decoded,
                              request=request)

    def _save(self, request: httpx.Request, body: bytes, status: int, content: bytes) -> None:
        digest = request_digest(request.method, str(request.url), body)
        _write_atomic(self.folder / f"{digest}.json", content)
        self.index[digest] = {**describe_request(request),
                              "time": datetime.now(UTC).isoformat(timespec="seconds"),
                              "status": status, "sha256": hashlib.sha256(content).hexdigest(),
                              "bytes": len(content)}
        _write_atomic(self.folder / INDEX,
                      json.dumps(self.index, indent=1, sort_keys=True).encode())
        log.info("recorded %s as %s", _label(request), digest)

    async def aclose(self) -> None:
        await self.inner.aclose()


def load_index(folder: Path) -> dict[str, Any]:
    """The index of a folder of recorded answers, checked for its layout."""
    path = Path(folder) / INDEX
    try:
        index = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise TransferError(f"{folder}: no {INDEX}; it is not a folder of recorded answers "
                            "(make one with --record DIR)") from exc
    except (OSError, ValueError) as exc:
        raise TransferError(f"{path}: unreadable index of recorded answers ({exc}); record "
                            "them again with --record DIR") from exc
    if not isinstance(index, dict):
        raise TransferError(f"{path}: not a JSON object; record the answers again with "
                            "--record DIR")
    bad = [k for k, v in index.items() if not _entry_ok(k, v)]
    if bad:
        raise TransferError(f"{path}: malformed entries {bad[:3]}; record the answers again "
                            "with --record DIR")
    return index


def _entry_ok(digest: str, entry: Any) -> bool:
    return (bool(_DIGEST.fullmatch(digest)) and isinstance(entry, dict)
            and bool(_DIGEST.fullmatch(str(entry.get("sha256", ""))))
            and type(entry.get("status", 200)) is int and 200 <= entry.get("status", 200) < 300)


class ReplayTransport(httpx.AsyncBaseTransport):
    """Answers requests from a folder written by :class:`RecordingTransport`; no network."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.index = load_index(self.folder)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        digest = request_digest(request.method, str(request.url), body)
        entry = self.index.get(digest)
        if entry is None:
            raise TransferError(f"no recorded answer for {_label(request)} (request {digest[:12]}"
                                f", {request.method} {request.url}) in {self.folder}; record "
                                f"it with --record {self.folder} while online")
        path = self.folder / f"{digest}.json"
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise TransferError(f"recorded answer {path} for {_label(request)} is listed in "
                                f"{INDEX} but unreadable ({exc}); record it again") from exc
        got = hashlib.sha256(content).hexdigest()
        if got != entry["sha256"]:
            raise ChecksumError(f"recorded answer {path} for {_label(request)} has sha256 "
                                f"{got}, its index says {entry['sha256']}: the file was "
                                "changed; refused. Record the answers again with --record")
        return httpx.Response(entry.get("status", 200), content=content, request=request,
                              headers={"Content-Type": "application/json"})
