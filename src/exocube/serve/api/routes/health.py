"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from exocube.serve.api.deps import StateDep
from exocube.serve.schemas import HealthResponse, ReadyResponse

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthResponse)
async def health() -> HealthResponse:
    """Liveness: the process answers HTTP."""
    return HealthResponse(status="ok")


@router.get("/ready", response_model=ReadyResponse,
            responses={503: {"model": ReadyResponse, "description": "No model answers yet."}})
async def ready(state: StateDep) -> JSONResponse:
    """Readiness: models are loaded and answered a probe prediction (503 until then).
    Each mode says whether it is available, and why not."""
    body = ReadyResponse(ready=state.ready, modes=state.status())
    return JSONResponse(body.model_dump(), status_code=200 if body.ready else 503)
