"""The loaded models: versions, datasets, metrics, and how each was chosen.

The public listing carries no server file paths (checkpoint, cube store); the
admin listing (``GET /admin/models``, API key required) adds them.
"""

from __future__ import annotations

from fastapi import APIRouter

from exocube.serve.api.deps import StateDep
from exocube.serve.schemas import ModelAdmin, ModelPublic, ModelsResponse
from exocube.serve.state import ServiceState

router = APIRouter(prefix="/models", tags=["models"])


def loaded_models(state: ServiceState, admin: bool) -> list[ModelPublic]:
    """One entry per loaded model, with the modes it serves and how it was chosen."""
    cls = ModelAdmin if admin else ModelPublic
    models: dict[int, ModelPublic] = {}
    if state.surrogate is not None:
        for mode, loaded in state.surrogate.models.items():
            info = loaded.info
            if info.id not in models:
                fields = info.as_dict() if admin else info.public_dict()
                fields.pop("selected_by")
                models[info.id] = cls(**fields, serves=[], selected_by={})
            models[info.id].serves.append(mode)
            models[info.id].selected_by[mode] = info.selected_by
    return list(models.values())


@router.get("", response_model=ModelsResponse)
async def list_models(state: StateDep) -> ModelsResponse:
    """The models serving each mode, with their dataset versions, metrics and how each was
    chosen; no file paths."""
    return ModelsResponse(models=loaded_models(state, admin=False), modes=state.status())
