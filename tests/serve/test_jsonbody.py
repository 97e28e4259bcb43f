"""JSON values in error answers: whatever a client sent, the echo is strict JSON."""

from __future__ import annotations

import json
from typing import Any

import pytest

from exocube.serve.jsonbody import NumberText, dumps, json_safe, loads


def strict_json(text: str) -> Any:
    def refuse(token: str) -> None:
        raise ValueError(f"non-JSON number {token}")

    return json.loads(text, parse_constant=refuse)


class Opaque:
    def __str__(self) -> str:
        return "opaque object"


def deep(n: int) -> list:
    out: list = []
    for _ in range(n):
        out = [out]
    return out


@pytest.mark.parametrize(("value", "expected"), [
    (float("nan"), "NaN"), (float("inf"), "Infinity"), (float("-inf"), "-Infinity"),
    (b"\xff\x00ok", "\\xff\x00ok"), (bytearray(b"ab"), "ab"), (2**53, 2**53),
    (-(2**1100), None), (NumberText("1e309"), "1e309"),
    ({1: float("nan"), "k": [float("inf")]}, {"1": "NaN", "k": ["Infinity"]}),
    ((1.5, None, True), [1.5, None, True]), (Opaque(), "opaque object"),
])
def test_json_safe_values(value: Any, expected: Any) -> None:
    safe = json_safe(value)
    if expected is not None:
        assert safe == expected
    json.dumps(safe, allow_nan=False)


def test_json_safe_bounds_size_and_depth() -> None:
    assert json_safe(10**5000) == "an integer of about 5000 digits"
    text = json_safe(-(2**1100))
    assert text.startswith("-1358") and text.endswith(f"({len(str(2**1100)) + 1} characters)")
    assert json_safe("x" * 1000) == "x" * 200 + "... (1000 characters)"
    many = json_safe(list(range(100)))
    assert many[:20] == list(range(20)) and many[20] == "... 80 more items"
    nested = json.dumps(json_safe(deep(5000)), allow_nan=False)
    assert "nested too deeply to show" in nested and len(nested) < 200
    wide = json_safe({f"k{i}": float("nan") for i in range(50)})
    assert len(wide) == 21 and wide["..."] == "30 more items"


def test_dumps_keeps_messages_whole_and_refuses_nothing() -> None:
    msg = "m" * 1000
    doc = {"detail": [{"msg": msg, "value": float("nan"), "loc": ["body", 3]}]}
    assert strict_json(dumps(doc).decode()) == {
        "detail": [{"msg": msg, "value": "NaN", "loc": ["body", 3]}]}



def test_loads_keeps_non_finite_tokens_as_text() -> None:
    doc = loads(b'{"a": [NaN, -Infinity, 1e309, -1.5e999, 2.5, 7], "b": ' + b"9" * 5000 + b"}")
    assert doc["a"] == ["NaN", "-Infinity", "1e309", "-1.5e999", 2.5, 7]
    assert all(isinstance(v, NumberText) for v in doc["a"][:4])
    assert isinstance(doc["b"], NumberText) and len(doc["b"]) == 5000
    assert type(loads(b"NaN")) is str  # a whole-body token is plain text
