"""A real uvicorn server on 127.0.0.1, queried over HTTP with httpx; schemathesis run."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from serve_helpers import LiveServer, training_params

from exocube.surrogate import Surrogate


def test_live_round_trip(live_server: LiveServer) -> None:
    body = training_params(live_server.app)
    with httpx.Client(base_url=live_server.url, timeout=30) as http:
        assert http.get("/health").json() == {"status": "ok"}
        assert http.get("/ready").json()["ready"] is True
        doc = http.post("/predict/joint", json=body).json()
        r = http.post("/predict/joint", json=body, headers={"Accept": "application/x-npy"})
        cube = np.load(io.BytesIO(r.content))
        ta = np.array(doc["fields"]["ta"], dtype=np.float64).astype(np.float32)
        np.testing.assert_array_equal(cube[0], ta)
        nc = http.post("/predict/joint", json=body, headers={"Accept": "application/x-netcdf"})
        import xarray as xr

        with xr.open_dataset(nc.content) as ds:
            np.testing.assert_array_equal(ds["ta"].values, ta)
            assert float(ds["global_mean_ts"]) == pytest.approx(doc["scalars"]["global_mean_ts"])
        assert http.get("/docs").status_code == 200


def test_concurrent_requests_share_model_calls(live_server: LiveServer) -> None:
    """Concurrent distinct requests are answered in batches, each with its own answer."""
    app = live_server.app
    base = training_params(app)
    bodies = [{**base, "pco2_bar": base["pco2_bar"] * (1.0 + 1e-3 * i)} for i in range(24)]
    stats = app.state.service.batcher.stats
    before = (stats.calls, stats.requests)

    def post(b: dict) -> dict:
        with httpx.Client(base_url=live_server.url, timeout=60) as http:
            r = http.post("/predict/scalar", json=b)
            assert r.status_code == 200, r.text
            return r.json()

    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(post, bodies))
    calls, requests = stats.calls - before[0], stats.requests - before[1]
    assert requests == len(bodies) and calls < requests  # some requests shared a call
    reference = Surrogate.from_catalogue(app.state.service.database_url)
    for b, a in zip(bodies, answers, strict=True):
        assert a["params"]["pco2_bar"] == pytest.approx(b["pco2_bar"])
        direct = reference.predict(b, "scalar").scalars
        for k, v in direct.items():
            assert a["scalars"][k] == pytest.approx(v, rel=1e-5, abs=1e-4)


def test_no_server_errors_for_schema_generated_requests(live_server: LiveServer) -> None:
    """Schemathesis: up to 30 generated requests per operation of the app's own OpenAPI
    schema, sent to the live server; none may answer 5xx."""
    api = schemathesis.openapi.from_url(f"{live_server.url}/openapi.json")
    operations = [result.ok() for result in api.get_all_operations()]
    assert {op.path for op in operations} >= {"/predict/scalar", "/predict/datacube",
                                              "/predict/joint", "/ready", "/admin/reload"}
    seen: dict[str, set[int]] = {}
    for op in operations:
        fuzz(op, live_server.url, seen)
    assert seen["POST /predict/scalar"] & {200, 422}
    assert all(code < 500 for codes in seen.values() for code in codes), seen


def fuzz(op, base_url: str, seen: dict[str, set[int]]) -> None:
    """Send up to 30 schema-generated requests for one operation; fail on any 5xx."""

    @given(case=op.as_strategy())
    @settings(max_examples=30, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case) -> None:
        response = case.call(base_url=base_url, timeout=60)
        seen.setdefault(f"{op.method.upper()} {op.path}", set()).add(response.status_code)
        case.validate_response(response, checks=[not_a_server_error])

    run()
