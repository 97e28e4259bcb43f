"""The loaded models: versions, datasets, metrics."""

from __future__ import annotations

from fastapi import APIRouter

from exocube.serve.api.deps import StateDep
from exocube.serve.schemas import ModelPublic, ModelsResponse

router = APIRouter(prefix="/models", tags=["models"])


@router.get("", response_model=ModelsResponse)
async def list_models(state: StateDep) -> ModelsResponse:
    """The models serving each mode, with their dataset versions and metrics."""
    models: dict[int, ModelPublic] = {}
    if state.surrogate is not None:
        for mode, loaded in state.surrogate.models.items():
            info = loaded.info
            if info.id not in models:
                models[info.id] = ModelPublic(**info.as_dict(), serves=[])
            models[info.id].serves.append(mode)
    return ModelsResponse(models=list(models.values()), modes=state.status())
