"""The OpenAPI schema as the service runs: request examples the served models answer,
API keys on prediction only when keys are configured, and every error status with the
body the service answers it with.

A fixed example cannot be inside every model's domain (the hull of its
training runs), so each prediction route's example is the training run of the
model serving that mode that lies nearest to the Earth (in the models' encoded
units), rounded to 6 significant digits. A mode without a model shows the Earth
itself. The request body of each prediction route lists as required the fields its
model needs: the star-only fields (stellar log g, metallicity, host mass) for a model on
the v1 inputs, in a copy of ``PlanetParams`` named for the route (``PlanetParamsScalar``,
...), and the shared ``PlanetParams`` otherwise. The schema follows the loaded models:
it is rebuilt when the models change (``/admin/reload``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
from fastapi import FastAPI

from exocube.serve.schemas import (
    EARTH,
    MODEL_ONLY_FIELDS,
    MessageResponse,
    ValidationErrorResponse,
)
from exocube.surrogate import MODEL_MODES, LoadedModel, check_request, encode_rows

#: The route answering each mode.
ROUTES: dict[str, str] = {mode: f"/predict/{mode}" for mode in MODEL_MODES}


def nearest_to_earth(model: LoadedModel) -> dict[str, float]:
    """The parameters of ``model``'s training run nearest to the Earth, 6 digits."""
    spec = model.task.spec
    table = spec.params
    earth = encode_rows(model.task, [check_request(EARTH, table.names)]).numpy()[0]
    k = int(np.argmin(np.linalg.norm(model.train_encoded - earth, axis=1)))
    request = model.training_request(spec.split.train[k])
    # a star field the model needs but its store does not hold takes the Sun's value
    request.update({n: EARTH[n] for n in model.required_fields if n not in request})
    return {n: float(f"{v:.6g}") for n, v in request.items()}


def example_for(model: LoadedModel | None) -> dict[str, Any]:
    """The named request example of a route served by ``model`` (None: no model)."""
    if model is None:
        return {"earth": {"summary": "The Earth and the Sun", "value": dict(EARTH),
                          "description": "No model serves this route yet; once one is "
                          "loaded, the example is a planet it answers."}}
    return {"near_earth": {
        "summary": f"The training planet of model {model.info.id} nearest to the Earth",
        "description": "A request inside the served model's training domain (the Earth "
        "itself may lie outside it).", "value": nearest_to_earth(model)}}


def _ref(name: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}


def document_errors(schema: dict[str, Any]) -> None:
    """Give every operation the 413 of the body-size limit (it applies to any request), and
    every error response the body this service answers with: a 422 is
    ``ValidationErrorResponse`` (the app's handler, not FastAPI's shape), any other error
    ``MessageResponse``."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name, model in (("MessageResponse", MessageResponse),
                        ("ValidationErrorResponse", ValidationErrorResponse)):
        if name not in components:
            defs = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(defs.pop("$defs", {}))
            components[name] = defs
    for methods in schema["paths"].values():
        for op in methods.values():
            responses = op.setdefault("responses", {})
            responses.setdefault("413", {"description": "The request body is larger than "
                                         "serve.max_body_bytes."})
            for code, response in responses.items():
                if code == "422":
                    response["content"] = _ref("ValidationErrorResponse")
                elif code[0] in "45" and "content" not in response:
                    response["content"] = _ref("MessageResponse")
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)


def require_model_fields(schema: dict[str, Any], path: str, model: LoadedModel) -> None:
    """Point ``path``'s request body at a copy of its schema that also requires the
    star-only fields ``model`` reads (nothing changes for a model that reads none)."""
    needed = [n for n in MODEL_ONLY_FIELDS if n in model.required_fields]
    if not needed:
        return
    body = schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]
    components = schema["components"]["schemas"]
    base = body["schema"]["$ref"].rsplit("/", 1)[1]
    name = base + path.rsplit("/", 1)[1].capitalize()
    copied = copy.deepcopy(components[base])
    copied["required"] = [*copied.get("required", []), *needed]
    copied["title"] = f"{copied.get('title', base)} (model {model.info.id})"
    copied["description"] = (f"{copied.get('description', '')} The model serving {path} "
                             f"(id {model.info.id}) also needs {', '.join(needed)}.").strip()
    for n in needed:  # the field is a number here: no null
        copied["properties"][n].pop("default", None)
        copied["properties"][n].pop("anyOf", None)
        copied["properties"][n].update(components[base]["properties"][n]["anyOf"][0])
    components[name] = copied
    body["schema"] = {"$ref": f"#/components/schemas/{name}"}


def for_service(schema: dict[str, Any], models: dict[str, LoadedModel], keyed: bool
                ) -> dict[str, Any]:
    """A copy of ``schema`` with :func:`document_errors`, whose prediction routes carry
    :func:`example_for` examples and the fields their models require
    (:func:`require_model_fields`) and, when the service has no API keys (``keyed``
    false), need no key."""
    out = copy.deepcopy(schema)
    document_errors(out)
    for mode, path in ROUTES.items():
        op = out["paths"].get(path, {}).get("post")
        if op is None:
            continue
        op["requestBody"]["content"]["application/json"]["examples"] = example_for(
            models.get(mode))
        if mode in models:
            require_model_fields(out, path, models[mode])
        if not keyed:
            op.pop("security", None)
            for code in ("401", "403"):
                op["responses"].pop(code, None)
    return out


def install_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` describe the service as it runs: the examples of the models
    currently loaded, and API keys on prediction only when keys are configured."""
    base: Callable[[], dict[str, Any]] = app.openapi
    built: dict[tuple[object, ...], dict[str, Any]] = {}

    def openapi() -> dict[str, Any]:
        state = app.state.service
        models = dict(state.surrogate.models) if state.surrogate is not None else {}
        keyed = bool(state.api_keys)
        key = (keyed, *sorted((mode, m.info.id) for mode, m in models.items()))
        if key not in built:
            built.clear()
            built[key] = for_service(base(), models, keyed)
        return built[key]

    app.openapi = openapi  # type: ignore[method-assign]
