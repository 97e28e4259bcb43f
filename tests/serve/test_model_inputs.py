"""The request schema follows the served model: the star-only fields (stellar log g,
metallicity, host mass) are required by a model on the v1 inputs and optional for a model
on the climate drivers (inputs v2), in the answers and in the served OpenAPI schema."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from serve_helpers import settings_for
from tiny_model import TinyModel, build_tiny_v2_catalogue

from exocube.serve import create_app
from exocube.serve.openapi import nearest_to_earth
from exocube.serve.schemas import MODEL_ONLY_FIELDS
from exocube.surrogate import ModelChoice

ROUTES = ("/predict/scalar", "/predict/datacube", "/predict/joint")


@pytest.fixture(scope="module")
def v2_client(tiny_model: TinyModel, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[TestClient]:
    db = build_tiny_v2_catalogue(tmp_path_factory, tiny_model)
    app = create_app(settings_for(tmp_path_factory.mktemp("v2")), database_url=db,
                     choice=ModelChoice("newest"))
    with TestClient(app) as c:
        yield c


def _body_schema(spec: dict[str, Any], path: str) -> dict[str, Any]:
    ref = spec["paths"][path]["post"]["requestBody"]["content"]["application/json"][
        "schema"]["$ref"]
    return spec["components"]["schemas"][ref.rsplit("/", 1)[1]]


def test_v2_model_answers_without_the_star_only_fields(v2_client: TestClient) -> None:
    model = v2_client.app.state.service.surrogate.models["datacube"]
    assert not set(MODEL_ONLY_FIELDS) & set(model.required_fields)
    body = nearest_to_earth(model)
    assert not set(MODEL_ONLY_FIELDS) & set(body)  # the example leaves them out too
    for path in ROUTES:
        r = v2_client.post(path, json=body)
        assert r.status_code == 200, r.text
    full = {**body, "stellar_logg_cgs": 4.6, "stellar_metallicity_dex": 0.2,
            "host_mass_msun": 0.5}
    lean = v2_client.post("/predict/scalar", json=body).json()["scalars"]
    assert v2_client.post("/predict/scalar", json=full).json()["scalars"] == lean
    # accepted, but still checked against its bounds
    r = v2_client.post("/predict/scalar", json={**body, "host_mass_msun": 50.0})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "host_mass_msun"


def test_v2_routes_schema_leaves_the_star_fields_optional(v2_client: TestClient) -> None:
    spec = v2_client.get("/openapi.json").json()
    for path in ROUTES:
        schema = _body_schema(spec, path)
        assert not set(MODEL_ONLY_FIELDS) & set(schema["required"]), path
        assert set(MODEL_ONLY_FIELDS) <= set(schema["properties"])
    assert not [n for n in spec["components"]["schemas"] if n.startswith("PlanetParams") and
                n != "PlanetParams"]


def test_v1_model_refuses_a_request_without_a_star_field(client: TestClient) -> None:
    model = client.app.state.service.surrogate.models["scalar"]
    assert set(MODEL_ONLY_FIELDS) <= set(model.required_fields)
    body = nearest_to_earth(model)
    assert client.post("/predict/scalar", json=body).status_code == 200
    for field in MODEL_ONLY_FIELDS:
        lean = {k: v for k, v in body.items() if k != field}
        for sent in (lean, {**lean, field: None}):  # null means absent
            r = client.post("/predict/scalar", json=sent)
            assert r.status_code == 422, r.text
            (entry,) = r.json()["detail"]
            assert entry["field"] == field and entry["type"] == "parameter_error"
            assert field in entry["msg"]


def test_v1_routes_schema_requires_the_star_fields(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for path in ROUTES:
        schema = _body_schema(spec, path)
        assert set(MODEL_ONLY_FIELDS) <= set(schema["required"]), path
        for field in MODEL_ONLY_FIELDS:
            prop = schema["properties"][field]
            assert prop["type"] == "number" and "default" not in prop and "anyOf" not in prop
    shared = spec["components"]["schemas"]["PlanetParams"]
    assert not set(MODEL_ONLY_FIELDS) & set(shared["required"])
