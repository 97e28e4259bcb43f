"""``POST /predict/{scalar,datacube,joint}`` with content negotiation."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import Response

from exocube.errors import ParameterError
from exocube.serve.api.deps import PredictKeyDep, StateDep
from exocube.serve.encoding import MEDIA_TYPES, NETCDF, NPY, RAW, encode, negotiate
from exocube.serve.jsonbody import JSONBodyRoute
from exocube.serve.schemas import (
    VARIABLES_PATTERN,
    DatacubeResponse,
    MessageResponse,
    PlanetParams,
    ScalarResponse,
    ValidationErrorResponse,
    parse_variables,
)
from exocube.serve.state import ServiceState


async def _variables_once(request: Request) -> None:
    """Refuse a repeated ``variables`` parameter (FastAPI would keep the last one)."""
    given = request.query_params.getlist("variables")
    if len(given) > 1:
        raise ParameterError("variables", "&".join(given), "one variables parameter listing "
                             "the names separated by commas")


router = APIRouter(prefix="/predict", tags=["predict"],
                   dependencies=[PredictKeyDep, Depends(_variables_once)],
                   route_class=JSONBodyRoute)

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": MessageResponse, "description": "The body is not JSON text: its bytes are "
          "not UTF-8 (nor UTF-16 or UTF-32)."},
    401: {"model": MessageResponse,
          "description": "API keys are configured and none was sent in X-API-Key."},
    403: {"model": MessageResponse, "description": "The API key is not accepted."},
    406: {"model": MessageResponse, "description": "None of the Accept media types is offered "
          "(the detail lists them)."},
    413: {"model": MessageResponse, "description": "The request body is larger than "
          "serve.max_body_bytes."},
    422: {"model": ValidationErrorResponse, "description": "The body is not valid JSON, a "
          "parameter is missing, unknown, of the wrong JSON type, not finite or out of bounds, "
          "a parameter is given under both its name and its alias, a key is given twice, "
          "the body is not sent as application/json, `variables` is invalid, or "
          "the request lies too far outside the training data (set allow_extrapolation); "
          "each `detail` entry names the field, the value and the bound."},
    503: {"model": MessageResponse, "description": "No model answers this mode (the detail "
          "says why), or the service is too busy (retry after Retry-After seconds).",
          "headers": {"Retry-After": {"description": "Seconds to wait when the service is "
                                      "busy.", "schema": {"type": "integer"}}}},
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
    "fields; for NumPy only fields of one kind, 3-D or 2-D). Each name at most once; give "
    "the parameter once.", max_length=200,
    json_schema_extra={"pattern": VARIABLES_PATTERN})]


async def _predict(state: ServiceState, mode: str, body: PlanetParams, accept: str | None,
                   variables: str | None) -> Response:
    media = negotiate(accept)
    if media is None:
        raise HTTPException(status.HTTP_406_NOT_ACCEPTABLE,
                            detail=f"cannot answer with {accept!r}; ask for one of "
                            f"{', '.join(MEDIA_TYPES)}")
    names = parse_variables(variables)
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
