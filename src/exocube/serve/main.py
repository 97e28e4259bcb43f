"""Assemble the FastAPI application: lifespan model loading, routers, error mapping.

Domain errors are mapped to HTTP once, here: an invalid or refused parameter
set (:class:`~exocube.errors.ParameterError`) is a 422 naming the field, the
value and the bound; a mode without a model
(:class:`~exocube.errors.ModelUnavailableError`) is a 503 with the reason.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from exocube import __version__
from exocube.config import Settings, get_settings
from exocube.errors import ModelUnavailableError, ParameterError
from exocube.params import SPECS
from exocube.serve.api.main import api_router
from exocube.serve.limits import BodySizeLimit
from exocube.serve.schemas import LEGACY_ALIASES
from exocube.serve.state import ServiceState
from exocube.surrogate import ModelChoice

log = logging.getLogger(__name__)
_CANONICAL = {alias: name for name, alias in LEGACY_ALIASES.items()}
_BOUND_WORDS = {"ge": ">=", "le": "<=", "gt": ">", "lt": "<"}


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
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(ParameterError, _parameter_error)
    app.add_exception_handler(ModelUnavailableError, _unavailable)
    return app


def _describe(err: dict[str, Any]) -> dict[str, Any]:
    """One validation problem as field, value, bound and a sentence naming all three."""
    loc = [str(p) for p in err.get("loc", ())]
    field = loc[-1] if loc and loc[0] == "body" and len(loc) > 1 else ".".join(loc)
    field = _CANONICAL.get(field, field)
    value = err.get("input")
    ctx = err.get("ctx") or {}
    bound = next((f"{_BOUND_WORDS[k]} {ctx[k]}" for k in _BOUND_WORDS if k in ctx), None)
    spec = SPECS.get(field)
    if spec is not None:
        bound = f"in [{spec.low:g}, {spec.high:g}] {spec.units}" if bound or value is not None \
            else f"required, in [{spec.low:g}, {spec.high:g}] {spec.units}"
    msg = f"{field}={value!r}: {err.get('msg', 'invalid')}"
    if bound:
        msg += f" (valid: {bound})"
    return {"field": field, "value": value, "bound": bound, "msg": msg, "loc": loc,
            "type": err.get("type")}


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    detail = [_describe(e) for e in exc.errors()]
    return JSONResponse(jsonable_encoder({"detail": detail}),
                        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


async def _parameter_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ParameterError)
    detail = [{"field": exc.field, "value": exc.value, "bound": exc.valid, "msg": str(exc),
               "loc": ["body", exc.field], "type": "parameter_error"}]
    return JSONResponse(jsonable_encoder({"detail": detail}),
                        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_503_SERVICE_UNAVAILABLE)
