"""Request validation over HTTP: bodies sent as raw bytes (NaN, Infinity, huge numbers,
bytes that are not UTF-8), strict JSON types, aliases, ``variables``, and the OpenAPI
schema's examples and documented statuses."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from serve_helpers import API_KEY, settings_for, training_params
from tiny_model import TinyModel

from exocube.catalog import upgrade
from exocube.serve import create_app

JSON_HEADERS = {"Content-Type": "application/json"}


def strict_json(text: str) -> Any:
    """Parse ``text`` as RFC 8259 JSON: NaN, Infinity and -Infinity are refused."""

    def refuse(token: str) -> None:
        raise ValueError(f"non-JSON number {token} in the answer")

    return json.loads(text, parse_constant=refuse)


def raw_body(app: FastAPI, field: str, token: str) -> bytes:
    """A training run's parameters as JSON text with ``field`` set to the raw ``token``."""
    p = {k: v for k, v in training_params(app).items() if k != field}
    return (json.dumps(p)[:-1] + f', "{field}": {token}}}').encode()


def post_raw(client: TestClient, body: bytes, path: str = "/predict/scalar",
             headers: dict[str, str] | None = None) -> Any:
    return client.post(path, content=body, headers=JSON_HEADERS if headers is None else headers)


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e309", "-1e309",
                                   "1.5e99999"])
@pytest.mark.parametrize("field", ["radius_earth", "pco2_bar"])
def test_non_finite_numbers_are_a_422_naming_field_and_value(
        client: TestClient, app: FastAPI, field: str, token: str) -> None:
    r = post_raw(client, raw_body(app, field, token), "/predict/datacube")
    assert r.status_code == 422, r.text
    (d,) = strict_json(r.text)["detail"]
    assert d["field"] == field and d["value"] == token and d["type"] == "finite_number"
    assert d["loc"] == ["body", field]
    assert d["msg"].startswith(f"{field}={token}: Input should be a finite number")
    assert d["bound"].startswith("in [")


def test_non_finite_number_under_an_alias_names_the_parameter(client: TestClient,
                                                              app: FastAPI) -> None:
    p = training_params(app)
    del p["orbital_period_days"]
    r = post_raw(client, (json.dumps(p)[:-1] + ', "orbital_period": NaN}').encode())
    (d,) = strict_json(r.text)["detail"]
    assert r.status_code == 422 and (d["field"], d["value"]) == ("orbital_period_days", "NaN")


HOSTILE: list[tuple[str, bytes, dict[str, str] | None]] = [
    ("nan inside an object", b'{"radius_earth": {"a": [NaN, Infinity, -1e400]}}', None),
    ("nan as an unknown field", b'{"padding": NaN, "radius_earth": 1.0}', None),
    ("nan as the whole body", b"NaN", None),
    ("nan as the boolean", b'{"allow_extrapolation": -Infinity}', None),
    ("integer of 5000 digits", b'{"radius_earth": ' + b"7" * 5000 + b"}", None),
    ("integer of 4000 digits", b'{"radius_earth": -' + b"7" * 4000 + b"}", None),
    ("float of 4000 digits", b'{"radius_earth": ' + b"9" * 4000 + b".5}", None),
    ("many nans", b'{"radius_earth": [' + b",".join([b"NaN"] * 2000) + b"]}", None),
    ("nested 2000 deep", b"[" * 2000 + b"]" * 2000, None),
    ("nested 200 deep", b'{"radius_earth": ' + b"[" * 200 + b"NaN" + b"]" * 200 + b"}", None),
    ("long key", b'{"' + b"k" * 20000 + b'": NaN}', None),
    ("not utf-8", b'{"radius_earth": "\xff\xfe"}', None),
    ("not utf-8, text/plain", b'\xff{"radius_earth": NaN}', {"Content-Type": "text/plain"}),
    ("not utf-8, no content type", b"\xc3\x28 NaN", {}),
    ("malformed json", b'{"radius_earth": 1.0,', None),
    ("empty body", b"", None),
]


@pytest.mark.parametrize(("body", "headers"), [(b, h) for _, b, h in HOSTILE],
                         ids=[name for name, _, _ in HOSTILE])
def test_error_answers_are_strict_json_for_any_body(client: TestClient, body: bytes,
                                                    headers: dict[str, str] | None) -> None:
    """Whatever the body, the answer is a 400 or 422 in strict JSON, and stays small."""
    r = post_raw(client, body, headers=headers)
    assert r.status_code in (400, 422), r.text
    doc = strict_json(r.text)
    assert len(r.content) < 20_000
    if r.status_code == 400:
        assert "not JSON text" in doc["detail"]
    else:
        assert all({"field", "value", "bound", "msg", "loc", "type"} <= set(d)
                   for d in doc["detail"])


def test_hostile_values_are_named(client: TestClient) -> None:
    r = post_raw(client, b'{"radius_earth": ' + b"7" * 5000 + b"}")
    d = next(d for d in r.json()["detail"] if d["field"] == "radius_earth")
    assert d["value"].startswith("7777") and d["value"].endswith("(5000 characters)")
    r = post_raw(client, b'{"radius_earth": "\xff"}')
    assert r.status_code == 400
    assert r.json()["detail"].startswith("the request body is not JSON text: byte 0xff")
    r = post_raw(client, b'{"radius_earth": 1.0,')
    (d,) = r.json()["detail"]
    assert (d["field"], d["type"]) == ("body", "json_invalid")
    assert "not valid JSON" in d["msg"] and "character 21" in d["msg"]
    r = post_raw(client, b"\xff{}", headers={"Content-Type": "text/plain"})
    (d,) = r.json()["detail"]
    assert d["value"] == "\\xff{}" and "Content-Type: application/json" in d["msg"]


@pytest.mark.parametrize(("field", "token", "kind"), [
    ("radius_earth", "true", "float_type"), ("radius_earth", '"1.0"', "float_type"),
    ("mass_earth", "false", "float_type"), ("pco2_bar", '"4e-4"', "float_type"),
    ("allow_extrapolation", '"yes"', "bool_type"), ("allow_extrapolation", "1", "bool_type"),
    ("allow_extrapolation", '"true"', "bool_type"), ("allow_extrapolation", "0.0", "bool_type"),
])
def test_numbers_and_booleans_must_be_json_numbers_and_booleans(
        client: TestClient, app: FastAPI, field: str, token: str, kind: str) -> None:
    r = post_raw(client, raw_body(app, field, token))
    assert r.status_code == 422, r.text
    (d,) = r.json()["detail"]
    assert (d["field"], d["value"], d["type"]) == (field, json.loads(token), kind)


def test_json_integers_and_booleans_are_accepted(client: TestClient, app: FastAPI) -> None:
    """A JSON integer is a number: ``1`` is as good as ``1.0``."""
    body = {**training_params(app), "radius_earth": 1, "allow_extrapolation": True}
    r = client.post("/predict/scalar", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["params"]["radius_earth"] == 1.0


def test_alias_given_with_its_name_is_refused_naming_both(client: TestClient,
                                                          app: FastAPI) -> None:
    p = training_params(app)
    body = {**p, "orbital_period": 5.0, "host_mass": p["host_mass_msun"]}
    r = client.post("/predict/scalar", json=body)
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert [d["field"] for d in detail] == ["orbital_period_days", "host_mass_msun"]
    d = detail[0]
    assert d["type"] == "alias_conflict"
    assert d["value"] == {"orbital_period_days": p["orbital_period_days"],
                          "orbital_period": 5.0}
    assert "orbital_period_days and orbital_period are the same parameter" in d["msg"]
    assert d["bound"] == "one of orbital_period_days or orbital_period, not both"


@pytest.mark.parametrize("query", ["variables=ta,ta", "variables=ta,ua,ta", "variables=ta,,ua",
                                   "variables=", "variables=,", "variables=ta&variables=ua",
                                   "variables=ta-ua", "variables=" + "ta" * 101])
def test_bad_variables_are_refused(client: TestClient, app: FastAPI, query: str) -> None:
    """A repeated name would repeat its array in the answer: refused, like an empty name
    and a repeated parameter, whatever the media type."""
    for accept in ("application/x-npy", "application/x-netcdf", "application/json"):
        r = client.post(f"/predict/datacube?{query}", json=training_params(app),
                        headers={"Accept": accept})
        assert r.status_code == 422, (query, accept, r.status_code)
        (d,) = r.json()["detail"]
        assert d["field"] == "variables" and d["loc"] == ["query", "variables"]
    if "ta,ta" in query:
        assert "repeated: ta" in d["msg"]


def test_variables_with_spaces_are_accepted(client: TestClient, app: FastAPI) -> None:
    r = client.post("/predict/datacube?variables=ta,%20ua%20", json=training_params(app),
                    headers={"Accept": "application/x-npy"})
    assert r.status_code == 200 and r.headers["X-Array-Variables"] == "ta,ua"


def schema_examples(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every request-body example in an OpenAPI document, with its path."""
    found: list[tuple[str, dict[str, Any]]] = []
    for path, methods in schema["paths"].items():
        for op in methods.values():
            for media in op.get("requestBody", {}).get("content", {}).values():
                found += [(path, e["value"]) for e in media.get("examples", {}).values()]
                found += [(path, media["example"])] if "example" in media else []
                ref = media.get("schema", {}).get("$ref", "")
                component = schema["components"]["schemas"].get(ref.rsplit("/", 1)[-1], {})
                found += [(path, e) for e in component.get("examples", [])]
                found += [(path, component["example"])] if "example" in component else []
    return found


def test_every_openapi_example_is_answered(client: TestClient) -> None:
    examples = schema_examples(client.get("/openapi.json").json())
    assert {path for path, _ in examples} == {"/predict/scalar", "/predict/datacube",
                                              "/predict/joint"}
    for path, body in examples:
        r = client.post(path, json=body)
        assert r.status_code == 200, (path, body, r.text)
        assert r.json()["out_of_domain"] is False


def test_without_a_model_the_example_is_the_earth(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'empty.sqlite'}"
    upgrade(db)
    with TestClient(create_app(settings_for(tmp_path), database_url=db)) as c:
        ((path, body), *_) = schema_examples(c.get("/openapi.json").json())
        assert body["orbital_period_days"] == 365.25 and body["stellar_teff_k"] == 5772.0
        assert c.post(path, json=body).status_code == 503


PREDICT_STATUSES = {"200", "400", "401", "403", "406", "413", "422", "503"}


def documented(schema: dict[str, Any]) -> dict[str, set[str]]:
    return {f"{m.upper()} {p}": set(op["responses"]) for p, ms in schema["paths"].items()
            for m, op in ms.items()}


@pytest.fixture(scope="module")
def keyed(tiny_model: TinyModel, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[TestClient]:
    settings = settings_for(tmp_path_factory.mktemp("keyed-doc"), api_keys=[API_KEY])
    with TestClient(create_app(settings, database_url=tiny_model.database_url)) as c:
        yield c


def test_openapi_documents_every_status_with_its_schema(keyed: TestClient,
                                                        client: TestClient) -> None:
    schema = keyed.get("/openapi.json").json()
    codes = documented(schema)
    for mode in ("scalar", "datacube", "joint"):
        assert codes[f"POST /predict/{mode}"] == PREDICT_STATUSES
    assert codes["GET /ready"] == {"200", "503", "413"}  # 413: any request with a body
    assert codes["GET /health"] == {"200", "413"}
    assert {"200", "401", "403", "413"} <= codes["POST /admin/reload"]
    refs = schema["components"]["schemas"]
    for path, methods in schema["paths"].items():
        for method, op in methods.items():
            for code, response in op["responses"].items():
                ref = response["content"]["application/json"]["schema"]["$ref"]
                name = ref.rsplit("/", 1)[-1]
                assert name in refs, (method, path, code)
                if code == "422":
                    assert name == "ValidationErrorResponse"
                elif code != "200" and not (path == "/ready" and code == "503"):
                    assert name == "MessageResponse", (method, path, code)
    op = schema["paths"]["/predict/scalar"]["post"]
    assert op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/ScalarResponse")
    assert "HTTPValidationError" not in refs  # FastAPI's shape is not what the app answers
    assert "Retry-After" in op["responses"]["503"]["headers"]
    assert op["security"] == [{"APIKeyHeader": []}]
    detail = refs["ErrorDetail"]["properties"]
    assert set(detail) == {"field", "value", "bound", "msg", "loc", "type"}
    # Without keys configured, prediction needs none and never answers 401 or 403.
    open_op = client.get("/openapi.json").json()["paths"]["/predict/scalar"]["post"]
    assert "security" not in open_op
    assert set(open_op["responses"]) == PREDICT_STATUSES - {"401", "403"}


def test_documented_statuses_are_the_ones_answered(keyed: TestClient) -> None:
    """Each documented error status of a prediction route, produced for real."""
    body = training_params(keyed.app)
    key = {"X-API-Key": API_KEY}
    seen = {
        post_raw(keyed, b'{"radius_earth": "\xff"}', headers={**JSON_HEADERS, **key}
                 ).status_code,
        keyed.post("/predict/scalar", json=body).status_code,
        keyed.post("/predict/scalar", json=body, headers={"X-API-Key": "x"}).status_code,
        keyed.post("/predict/scalar", json=body, headers={**key, "Accept": "text/csv"}
                   ).status_code,
        post_raw(keyed, b"[" + b" " * 70_000 + b"]", headers={**JSON_HEADERS, **key}
                 ).status_code,
        keyed.post("/predict/scalar", json={**body, "mass_earth": 99}, headers=key
                   ).status_code,
        keyed.post("/predict/scalar", json=body, headers=key).status_code,
    }
    assert seen == {int(c) for c in PREDICT_STATUSES} - {503}  # 503: see the Earth test


def test_a_key_given_twice_is_refused(client: TestClient, app: FastAPI) -> None:
    """Python's parser would keep the last value silently (9.0 here, out of bounds, or a
    valid one hiding a typo); the body is refused naming the key and both values."""
    body = json.dumps(training_params(app))[:-1] + ', "radius_earth": 1.0, "pco2_bar": NaN}'
    r = post_raw(client, body.encode())
    assert r.status_code == 422
    (d,) = strict_json(r.text)["detail"]
    assert (d["field"], d["type"], d["loc"]) == ("radius_earth", "duplicate_key",
                                                 ["body", "radius_earth"])
    assert d["value"] == [training_params(app)["radius_earth"], 1.0]
    r = post_raw(client, b'{"orbital_period": 1.0, "orbital_period": 2.0}')
    assert r.json()["detail"][0]["field"] == "orbital_period_days"


@pytest.mark.parametrize(("extra", "field", "bound"), [
    ({"surface_pressure_bar": 200.0}, "surface_pressure_bar", "in [0.01, 100] bar"),
    ({"surface_pressure_bar": 2.0, "pco2_bar": 2.5}, "pco2_bar",
     "at most surface_pressure_bar = 2 bar"),
    ({"pch4_bar": -0.01}, "pch4_bar", "in [0, 100] bar"),
    ({"pco2_bar": 0.5, "pch4_bar": 0.6}, "pch4_bar",
     "at most surface_pressure_bar - pco2_bar = 0.5 bar"),
])
def test_out_of_bounds_planets_are_a_422_naming_field_value_and_bound(
        client: TestClient, app: FastAPI, extra: dict[str, float], field: str,
        bound: str) -> None:
    body = {**training_params(app), "surface_pressure_bar": 1.0, **extra}
    r = client.post("/predict/scalar", json=body)
    assert r.status_code == 422, r.text
    (d,) = strict_json(r.text)["detail"]
    assert (d["field"], d["value"]) == (field, extra[field])
    assert d["bound"].startswith(bound), d


def test_valid_planets_outside_the_generator_get_a_domain_answer(client: TestClient,
                                                                 app: FastAPI) -> None:
    """3 bar, no CO2, or CH4: inside the validity bounds, so not a 422; the tiny model's
    domain check answers (refusing far requests, as for any planet outside its hull)."""
    for extra in ({"surface_pressure_bar": 3.0}, {"pco2_bar": 0.0}, {"pch4_bar": 0.01}):
        r = client.post("/predict/scalar", json={**training_params(app), **extra})
        assert r.status_code != 422 or r.json()["detail"][0]["bound"].startswith(
            "within the training range"), r.text
        r = client.post("/predict/scalar",
                        json={**training_params(app), **extra, "allow_extrapolation": True})
        assert r.status_code == 200, r.text
