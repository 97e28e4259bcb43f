"""Assemble the FastAPI application: lifespan model loading, routers, error mapping.

Domain errors are mapped to HTTP once, here: an invalid or refused parameter
set (:class:`~exocube.errors.ParameterError`) is a 422 naming the field, the
value and the bound; a mode without a model
(:class:`~exocube.errors.ModelUnavailableError`) is a 503 with the reason.
Error bodies are written by :func:`exocube.serve.jsonbody.dumps`: whatever a
client sent, the echoed value is JSON-compliant (NaN and Infinity as text).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response

from exocube import __version__
from exocube.config import Settings, get_settings
from exocube.errors import ModelUnavailableError, ParameterError
from exocube.params import SPECS, from_legacy_name
from exocube.serve.api.main import api_router
from exocube.serve.jsonbody import DuplicateKeyError, NumberText, dumps, json_safe
from exocube.serve.limits import BodySizeLimit
from exocube.serve.openapi import install_openapi
from exocube.serve.state import ServiceState
from exocube.surrogate import ModelChoice

log = logging.getLogger(__name__)
_BOUND_WORDS = {"ge": ">=", "le": "<=", "gt": ">", "lt": "<"}
_QUERY = ("variables",)  # ParameterError fields that are query parameters, not body fields
_NOT_FINITE = ("Input should be a finite number: JSON has no NaN or Infinity, and a number "
               "beyond +-1.8e308 does not fit a double")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Load the models before serving; stop the micro-batcher afterwards."""
    state: ServiceState = app.state.service
    await state.load()
    await state.batcher.start()
    log.info("serving; ready=%s", state.ready)
    try:
        yield
    finally:
        await state.batcher.stop()


def create_app(settings: Settings | None = None, database_url: str | None = None,
               choice: ModelChoice | None = None) -> FastAPI:
    """The service over the catalogue ``database_url`` (default: the settings' one),
    answering with the models ``choice`` gives (default: promoted, else newest)."""
    settings = settings or get_settings()
    app = FastAPI(
        title="exocube prediction service",
        version=__version__,
        description="Climate predictions for a planet and its star from the trained "
        "surrogates in the exocube catalogue. Answers carry the model version, the dataset "
        "version and an out-of-domain flag.",
        lifespan=lifespan,
    )
    app.state.service = ServiceState(settings=settings,
                                     database_url=database_url or str(settings.database_url),
                                     choice=choice or ModelChoice())
    app.add_middleware(BodySizeLimit, max_bytes=settings.serve.max_body_bytes)
    app.include_router(api_router)
    install_openapi(app)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(ParameterError, _parameter_error)
    app.add_exception_handler(DuplicateKeyError, _duplicate_key)
    app.add_exception_handler(ModelUnavailableError, _unavailable)
    return app


def _describe(err: dict[str, Any], body: Any) -> list[dict[str, Any]]:
    """One validation problem as field, value, bound and a sentence naming all three."""
    loc = [json_safe(str(p)) for p in err.get("loc", ())]
    kind = err.get("type")
    if kind == "json_invalid":
        return [_json_invalid(err, body)]
    if kind == "alias_conflict":
        return [_alias_conflict(names, err.get("input")) for names in err["ctx"]["conflicts"]]
    field = loc[-1] if len(loc) > 1 and loc[0] in ("body", "query") else ".".join(loc)
    field = from_legacy_name(field)
    value = None if kind == "missing" else err.get("input")
    ctx = err.get("ctx") or {}
    bound = next((f"{_BOUND_WORDS[k]} {ctx[k]}" for k in _BOUND_WORDS if k in ctx), None)
    spec = SPECS.get(field)
    if spec is not None:
        bound = f"in [{spec.low:g}, {spec.high:g}] {spec.units}" if bound or value is not None \
            else f"required, in [{spec.low:g}, {spec.high:g}] {spec.units}"
    if isinstance(value, NumberText) and kind == "float_type":
        kind = "finite_number"
    return [_entry(field, value, bound, _problem(err, kind, loc, value), loc, kind)]


def _problem(err: dict[str, Any], kind: str | None, loc: list[str], value: Any) -> str:
    """What is wrong, in words: pydantic's, or ours where it would mislead."""
    if kind == "finite_number":
        return _NOT_FINITE
    if loc == ["body"] and kind == "missing":
        return "the body is missing: send the parameters as a JSON object"
    if loc == ["body"] and isinstance(value, bytes):
        return "the body must be a JSON object sent with Content-Type: application/json"
    return str(err.get("msg", "invalid"))


def _entry(field: str, value: Any, bound: str | None, text: str, loc: list[str],
           kind: str | None) -> dict[str, Any]:
    """A detail entry; ``value`` is made JSON-compliant and shown in the message."""
    safe = json_safe(value)
    plain = isinstance(value, NumberText) or (type(value) is int and isinstance(safe, str))
    shown = safe if plain else _shown(safe)
    msg = f"{field}={shown}: {text}"
    if bound:
        msg += f" (valid: {bound})"
    return {"field": field, "value": safe, "bound": bound, "msg": msg, "loc": loc,
            "type": kind}


def _shown(safe: Any) -> str:
    text = json.dumps(safe, allow_nan=False)
    return text if len(text) <= 120 else text[:120] + "..."


def _json_invalid(err: dict[str, Any], body: Any) -> dict[str, Any]:
    """Malformed JSON: the position, the reason and the text around it."""
    pos = err["loc"][-1] if len(err.get("loc", ())) > 1 else 0
    around = body[max(0, pos - 20):pos + 20] if isinstance(body, str) and isinstance(
        pos, int) else None
    reason = (err.get("ctx") or {}).get("error", "JSON decode error")
    return _entry("body", around, "a JSON object", f"the body is not valid JSON: {reason} "
                  f"at character {pos}", ["body"], "json_invalid")


def _alias_conflict(names: list[str], data: Any) -> dict[str, Any]:
    name, alias = names
    value = {n: data[n] for n in names} if isinstance(data, dict) else None
    return _entry(name, value, f"one of {name} or {alias}, not both",
                  f"{name} and {alias} are the same parameter ({alias} is the earlier "
                  "system's name); send it once", ["body", name], "alias_conflict")


def _json_response(doc: dict[str, Any], code: int) -> Response:
    return Response(dumps(doc), status_code=code, media_type="application/json")


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    detail = [d for e in exc.errors() for d in _describe(e, exc.body)]
    return _json_response({"detail": detail}, status.HTTP_422_UNPROCESSABLE_CONTENT)


async def _duplicate_key(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DuplicateKeyError)
    field = from_legacy_name(exc.key)
    entry = _entry(field, exc.values, "each key once in a JSON object",
                   f"key {exc.key!r} is given {len(exc.values)} times; send it once",
                   ["body", json_safe(exc.key)], "duplicate_key")
    return _json_response({"detail": [entry]}, status.HTTP_422_UNPROCESSABLE_CONTENT)


async def _parameter_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ParameterError)
    where = "query" if exc.field in _QUERY else "body"
    detail = [{"field": exc.field, "value": json_safe(exc.value), "bound": exc.valid,
               "msg": str(exc), "loc": [where, exc.field], "type": "parameter_error"}]
    return _json_response({"detail": detail}, status.HTTP_422_UNPROCESSABLE_CONTENT)


async def _unavailable(request: Request, exc: Exception) -> Response:
    return _json_response({"detail": str(exc)}, status.HTTP_503_SERVICE_UNAVAILABLE)
