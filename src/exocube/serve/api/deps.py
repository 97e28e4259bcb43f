"""Dependencies shared by the routes: the service state and the API-key checks."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader

from exocube.serve.state import ServiceState

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False,
                              description="Required for prediction when the service has API "
                              "keys configured, and always for admin endpoints.")


async def get_state(request: Request) -> ServiceState:
    return request.app.state.service


StateDep = Annotated[ServiceState, Depends(get_state)]


def _check(key: str | None, keys: list[str]) -> None:
    if not key:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED,
                            detail="missing API key: send it in the X-API-Key header",
                            headers={"WWW-Authenticate": "APIKey"})
    if not any(secrets.compare_digest(key.encode(), k.encode()) for k in keys):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="API key not accepted")


async def require_key_if_configured(state: StateDep,
                              key: Annotated[str | None, Depends(api_key_header)]) -> None:
    """Prediction needs a key only when the service has keys configured."""
    if state.api_keys:
        _check(key, state.api_keys)


async def require_admin_key(state: StateDep,
                      key: Annotated[str | None, Depends(api_key_header)]) -> None:
    """Admin endpoints always need a key; with none configured they are closed."""
    if not state.api_keys:
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            detail="admin endpoints are closed: no API keys are configured "
                            "(set the api_keys setting, EXOCUBE_API_KEYS)")
    _check(key, state.api_keys)


PredictKeyDep = Depends(require_key_if_configured)
AdminKeyDep = Depends(require_admin_key)
