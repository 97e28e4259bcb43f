"""``POST /predict/{scalar,datacube,joint}`` with content negotiation.

The request flow: negotiate the media type, answer from the cache or queue a job
in the micro-batcher (a full queue is a 503 with ``Retry-After``), wait for the
answer while watching the connection of a field request (a client that leaves
withdraws its job, so nobody's work is computed), check the watch again, then
encode the answer in a worker thread (datacubes) or on the loop (scalars, a few hundred
bytes), so a large encoding never stalls the other requests.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import Response

from exocube.errors import ParameterError, ServiceBusyError
from exocube.serve.api.deps import PredictKeyDep, StateDep
from exocube.serve.encoding import MEDIA_TYPES, NETCDF, NPY, RAW, Encoded, encode, negotiate
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
from exocube.surrogate import Prediction

log = logging.getLogger(__name__)


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
          "says why), or the queue of waiting requests is full (retry after Retry-After "
          "seconds).",
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


#: The status logged for an answer nobody receives (the client closed the connection).
CLIENT_GONE = 499



async def _predict(state: ServiceState, mode: str, body: PlanetParams, request: Request,
                   variables: str | None) -> Response:
    accept = request.headers.get("accept")
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
    # Watch the connection of field requests (100 ms of model time, megabytes to encode);
    # a scalar answer costs less than the watch (under a millisecond, a few hundred bytes).
    gone = asyncio.ensure_future(_disconnection(request)) if mode != "scalar" else None
    try:
        prediction = state.cache.get(key)
        if prediction is None:
            prediction = await _computed(state, mode, params, body.allow_extrapolation, gone)
            if prediction is None:
                return Response(status_code=CLIENT_GONE)
            state.cache.put(key, prediction)
        if gone is not None and await _has_left(gone):
            state.batcher.stats.discarded += 1
            return Response(status_code=CLIENT_GONE)
        out = await _encoded(prediction, media, names)
    finally:
        if gone is not None:
            gone.cancel()
    return Response(out.body, media_type=out.media_type, headers=out.headers)


async def _computed(state: ServiceState, mode: str, params: dict[str, float], allow: bool,
                    gone: asyncio.Future[None] | None) -> Prediction | None:
    """The batcher's answer, or None when the client left first (its job is withdrawn)."""
    try:
        job = state.batcher.enqueue(mode, params, allow)
    except ServiceBusyError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=str(exc),
                            headers={"Retry-After": str(exc.retry_after_s)}) from exc
    try:
        waits = (job.future,) if gone is None else (job.future, gone)
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not job.future.done():
            job.future.cancel()  # the client left (or the request was cancelled)
    if job.future.cancelled():
        log.debug("client left before its %s prediction; job withdrawn", mode)
        return None
    return job.future.result()


async def _has_left(gone: asyncio.Future[None]) -> bool:
    await asyncio.sleep(0)  # let a disconnection that arrived meanwhile be seen
    return gone.done()


async def _disconnection(request: Request) -> None:
    """Returns when the client closes the connection (the body has been read already).

    One such watcher per request replaces ``request.is_disconnected()``, which costs
    about 1 ms per call (an anyio cancel scope): more than a scalar prediction."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _encoded(p: Prediction, media: str, names: tuple[str, ...] | None) -> Encoded:
    """Encode off the event loop when the answer carries fields (megabytes of JSON)."""
    if not p.fields:
        return encode(p, media, names)
    return await asyncio.to_thread(encode, p, media, names)


@router.post("/scalar", response_model=ScalarResponse, responses=_responses(ScalarResponse))
async def predict_scalar(body: PlanetParams, request: Request, state: StateDep,
                         variables: VariablesQuery = None) -> Response:
    """Scalar diagnostics: global mean surface temperature [K], day-night contrast [K],
    habitable surface fraction."""
    return await _predict(state, "scalar", body, request, variables)


@router.post("/datacube", response_model=DatacubeResponse,
             responses=_responses(DatacubeResponse))
async def predict_datacube(body: PlanetParams, request: Request, state: StateDep,
                           variables: VariablesQuery = None) -> Response:
    """The 3-D fields (ta, ua, va, hus, zg on plev x lat x lon) and surface fields (ps, ts)."""
    return await _predict(state, "datacube", body, request, variables)


@router.post("/joint", response_model=DatacubeResponse, responses=_responses(DatacubeResponse))
async def predict_joint(body: PlanetParams, request: Request, state: StateDep,
                        variables: VariablesQuery = None) -> Response:
    """Fields and scalar diagnostics from one model call."""
    return await _predict(state, "joint", body, request, variables)
