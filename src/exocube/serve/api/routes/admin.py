"""Administration: reload the models from the catalogue (always needs an API key)."""

from __future__ import annotations

from fastapi import APIRouter

from exocube.serve.api.deps import AdminKeyDep, StateDep
from exocube.serve.schemas import ReadyResponse

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[AdminKeyDep])


@router.post("/reload", response_model=ReadyResponse,
             responses={401: {"description": "No API key."},
                        403: {"description": "Key not accepted, or no keys configured."}})
async def reload_models(state: StateDep) -> ReadyResponse:
    """Load the newest catalogue models for every mode and clear the response cache."""
    await state.load()
    return ReadyResponse(ready=state.ready, modes=state.status())
