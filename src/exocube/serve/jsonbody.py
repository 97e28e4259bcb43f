"""Reading request bodies as JSON, and writing any value back into a JSON error body.

Python's ``json`` module accepts tokens that are not JSON (``NaN``, ``Infinity``,
``-Infinity``) and turns numbers beyond a double (``1e309``) into infinities;
an integer of more than 4300 digits makes it raise. Here every such token is
kept as its text, a :class:`NumberText`, so that validation refuses it with a
422 naming the field and the token as written ("NaN", "1e309"). A body that is
not text in a JSON encoding (UTF-8, -16 or -32) is a 400; JSON nested too
deeply to parse is a 422 like any other malformed JSON; an object naming a key
twice is a 422 (:class:`DuplicateKeyError`) instead of keeping the last value.

:func:`json_safe` turns any value (bytes, huge integers, non-finite floats,
deep or long containers, arbitrary objects) into one that :func:`json.dumps`
writes with ``allow_nan=False``, so that no error answer can fail to encode
or carry a non-JSON number.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from fastapi import HTTPException, Request, Response, status
from fastapi.routing import APIRoute

#: Longest text (characters) of one value echoed in an error answer.
MAX_TEXT = 200
#: Most items of one container, and the deepest nesting, echoed in an error answer.
MAX_ITEMS = 20
MAX_DEPTH = 6
_INT_DIGITS = 4300  # Python's default limit for int <-> str conversion


class NumberText(str):
    """A JSON number token that no finite double (or, for integers, no Python int within
    the conversion limit) holds, kept as written: ``NaN``, ``-Infinity``, ``1e309``."""


class DuplicateKeyError(HTTPException):
    """A JSON object names the same key twice (Python's parser would keep the last value
    silently); a 422 naming the key and its values."""

    def __init__(self, key: str, values: list[Any]) -> None:
        super().__init__(status.HTTP_422_UNPROCESSABLE_CONTENT,
                         detail=f"key {key!r} given {len(values)} times")
        self.key, self.values = key, values


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) < len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKeyError(key, [v for k, v in pairs if k == key])
            seen.add(key)
    return out


def _parse_float(text: str) -> float | NumberText:
    x = float(text)
    return x if math.isfinite(x) else NumberText(text)


def _parse_int(text: str) -> int | NumberText:
    return int(text) if len(text.lstrip("-")) <= _INT_DIGITS else NumberText(text)


def loads(body: bytes) -> Any:
    """Parse a request body; non-finite or oversized numbers become :class:`NumberText`.

    Raises HTTPException 400 when the bytes are not text in a JSON encoding,
    :class:`DuplicateKeyError` for a key given twice in one object, and
    :class:`json.JSONDecodeError` for malformed or too deeply nested JSON.
    """
    try:
        text = json.detect_encoding(body)
        doc = body.decode(text)
    except UnicodeDecodeError as exc:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            detail=f"the request body is not JSON text: byte {body[exc.start]:#04x} at "
            f"position {exc.start} is not valid {exc.encoding}; send the JSON encoded as "
            "UTF-8") from None
    try:
        value = json.loads(doc, parse_float=_parse_float, parse_int=_parse_int,
                           parse_constant=NumberText, object_pairs_hook=_object)
    except RecursionError:
        raise json.JSONDecodeError("JSON nested too deeply to parse", doc, 0) from None
    # A body that is one such token is plain text: validation with from_attributes would
    # look for the fields as attributes of the str subclass.
    return str(value) if isinstance(value, NumberText) else value


class JSONBodyRequest(Request):
    """A request whose ``json()`` is :func:`loads`."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads(await self.body())
        return self._json


class JSONBodyRoute(APIRoute):
    """A route that reads its JSON body with :func:`loads`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            return await handler(JSONBodyRequest(request.scope, request.receive))

        return handle


def json_safe(value: Any, depth: int = 0) -> Any:
    """``value`` as plain JSON data: finite numbers, short strings, small containers.

    Non-finite floats become "NaN", "Infinity", "-Infinity"; integers beyond a double and
    long strings or bytes become (shortened) text; containers keep their first
    :data:`MAX_ITEMS` items down to :data:`MAX_DEPTH` levels; other objects their ``str``.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, NumberText | str):
        return _short(str(value))
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, int):
        return value if value.bit_length() <= 1023 else _short(_int_text(value))
    if isinstance(value, bytes | bytearray | memoryview):
        return _short(bytes(value).decode("utf-8", "backslashreplace"))
    if isinstance(value, Mapping | list | tuple | set | frozenset):
        return _container(value, depth)
    return _short(str(value))


def _container(value: Any, depth: int) -> Any:
    items = list(value.items()) if isinstance(value, Mapping) else list(value)
    if depth >= MAX_DEPTH:
        return f"<{type(value).__name__} of {len(items)} items, nested too deeply to show>"
    shown = items[:MAX_ITEMS]
    if isinstance(value, Mapping):
        out: Any = {_short(str(k)): json_safe(v, depth + 1) for k, v in shown}
        if len(items) > MAX_ITEMS:
            out["..."] = f"{len(items) - MAX_ITEMS} more items"
        return out
    out = [json_safe(v, depth + 1) for v in shown]
    if len(items) > MAX_ITEMS:
        out.append(f"... {len(items) - MAX_ITEMS} more items")
    return out


def _int_text(value: int) -> str:
    if value.bit_length() > 3.3 * _INT_DIGITS:  # str() would raise: describe the size
        return f"an integer of about {int(value.bit_length() * math.log10(2))} digits"
    return str(value)


def _short(text: str) -> str:
    if len(text) <= MAX_TEXT:
        return text
    return f"{text[:MAX_TEXT]}... ({len(text)} characters)"


def dumps(doc: Any) -> bytes:
    """An error body as strict JSON (never NaN or Infinity): its own structure and texts
    are kept whole, every other leaf goes through :func:`json_safe`."""
    return json.dumps(_document(doc), allow_nan=False, separators=(",", ":")).encode()


def _document(doc: Any) -> Any:
    if isinstance(doc, Mapping):
        return {str(k): _document(v) for k, v in doc.items()}
    if isinstance(doc, list | tuple):
        return [_document(v) for v in doc]
    return doc if type(doc) is str else json_safe(doc)
