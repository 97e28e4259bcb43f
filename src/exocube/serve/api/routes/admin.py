"""Administration: the loaded models with their files, and reloading them (API key)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from exocube.serve.api.deps import AdminKeyDep, StateDep
from exocube.serve.api.routes.models import loaded_models
from exocube.serve.schemas import ModelAdmin, ModelsAdminResponse, ReadyResponse

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[AdminKeyDep])
_KEY_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No API key."},
    403: {"description": "Key not accepted, or no keys configured."}}


@router.post("/reload", response_model=ReadyResponse, responses=_KEY_ERRORS)
async def reload_models(state: StateDep) -> ReadyResponse:
    """Load the models again by the server's choice (promotions are read again: the
    promoted model of each mode, else the newest, unless the server was started with
    --model or --select) and clear the response cache."""
    await state.load()
    return ReadyResponse(ready=state.ready, modes=state.status())


@router.get("/models", response_model=ModelsAdminResponse, responses=_KEY_ERRORS)
async def list_models_admin(state: StateDep) -> ModelsAdminResponse:
    """The loaded models with their checkpoint files and cube stores."""
    models = [m for m in loaded_models(state, admin=True) if isinstance(m, ModelAdmin)]
    return ModelsAdminResponse(models=models, modes=state.status())
