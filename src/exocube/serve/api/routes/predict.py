"""``POST /predict/{scalar,datacube,joint}`` with content negotiation."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import Response

from exocube.serve.api.deps import PredictKeyDep, StateDep
from exocube.serve.encoding import MEDIA_TYPES, NETCDF, NPY, RAW, encode, negotiate
from exocube.serve.schemas import DatacubeResponse, PlanetParams, ScalarResponse
from exocube.serve.state import ServiceState

router = APIRouter(prefix="/predict", tags=["predict"], dependencies=[PredictKeyDep])

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "API keys are configured and none was sent."},
    403: {"description": "The API key is not accepted."},
    406: {"description": "None of the Accept media types is offered."},
    413: {"description": "Request body too large."},
    422: {"description": "A parameter is invalid or the request lies too far outside the "
          "training data; `detail` names the field, the value and the bound."},
    503: {"description": "No model answers this mode (the detail says why)."},
}
_BINARY = {NETCDF: {"schema": {"type": "string", "format": "binary"}},
           NPY: {"schema": {"type": "string", "format": "binary"}},
           RAW: {"schema": {"type": "string", "format": "binary"}}}


def _responses(model: type) -> dict[int | str, dict[str, Any]]:
    return {200: {"model": model, "content": _BINARY,
                  "description": "The prediction; NumPy formats describe the array in "
                  "X-Array-Shape, X-Array-Dtype, X-Array-Dims and X-Array-Variables."},
            **_ERRORS}


VariablesQuery = Annotated[str | None, Query(
    description="Comma-separated variables for NetCDF/NumPy answers (default: the 3-D "
    "fields; for NumPy only fields of one kind, 3-D or 2-D).", max_length=200)]


async def _predict(state: ServiceState, mode: str, body: PlanetParams, accept: str | None,
                   variables: str | None) -> Response:
    media = negotiate(accept)
    if media is None:
        raise HTTPException(status.HTTP_406_NOT_ACCEPTABLE,
                            detail=f"cannot answer with {accept!r}; ask for one of "
                            f"{', '.join(MEDIA_TYPES)}")
    names = tuple(v.strip() for v in variables.split(",") if v.strip()) if variables else None
    params = body.parameters()
    model_id = state.surrogate.models[mode].info.id if (
        state.surrogate is not None and mode in state.surrogate.models) else None
    key = (mode, model_id, tuple(sorted(params.items())), body.allow_extrapolation)
    prediction = state.cache.get(key)
    if prediction is None:
        prediction = await state.batcher.submit(mode, params, body.allow_extrapolation)
        state.cache.put(key, prediction)
    out = encode(prediction, media, names)
    return Response(out.body, media_type=out.media_type, headers=out.headers)


@router.post("/scalar", response_model=ScalarResponse, responses=_responses(ScalarResponse))
async def predict_scalar(body: PlanetParams, request: Request, state: StateDep,
                         variables: VariablesQuery = None) -> Response:
    """Scalar diagnostics: global mean surface temperature [K], day-night contrast [K],
    habitable surface fraction."""
    return await _predict(state, "scalar", body, request.headers.get("accept"), variables)


@router.post("/datacube", response_model=DatacubeResponse,
             responses=_responses(DatacubeResponse))
async def predict_datacube(body: PlanetParams, request: Request, state: StateDep,
                           variables: VariablesQuery = None) -> Response:
    """The 3-D fields (ta, ua, va, hus, zg on plev x lat x lon) and surface fields (ps, ts)."""
    return await _predict(state, "datacube", body, request.headers.get("accept"), variables)


@router.post("/joint", response_model=DatacubeResponse, responses=_responses(DatacubeResponse))
async def predict_joint(body: PlanetParams, request: Request, state: StateDep,
                        variables: VariablesQuery = None) -> Response:
    """Fields and scalar diagnostics from one model call."""
    return await _predict(state, "joint", body, request.headers.get("accept"), variables)
