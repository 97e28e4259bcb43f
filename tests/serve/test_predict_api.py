"""Prediction over HTTP in process: content types, validation, domain, cache, limits."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import xarray as xr
from fastapi import FastAPI
from fastapi.testclient import TestClient
from serve_helpers import training_params

from exocube.ml.scalar import SCALAR_NAMES
from exocube.serve.encoding import negotiate

V3 = ("ta", "ua", "va", "hus", "zg")


def from_json_field(doc: dict, name: str) -> np.ndarray:
    return np.array(doc["fields"][name], dtype=np.float64).astype(np.float32)


def test_every_content_type_gives_the_same_array(client: TestClient, app: FastAPI) -> None:
    body = training_params(app)
    r_json = client.post("/predict/datacube", json=body)
    assert r_json.status_code == 200, r_json.text
    doc = r_json.json()
    ta_json = from_json_field(doc, "ta")
    assert np.isnan(ta_json).any()  # null below ground came back as NaN
    np.testing.assert_array_equal(from_json_field(doc, "temperature_field"), ta_json)
    assert doc["dims"]["ta"] == ["plev", "lat", "lon"]
    assert len(doc["coords"]["plev"]) == ta_json.shape[0]

    r_npy = client.post("/predict/datacube", json=body, headers={"Accept": "application/x-npy"})
    assert r_npy.headers["content-type"] == "application/x-npy"
    cube = np.load(io.BytesIO(r_npy.content), allow_pickle=False)
    assert r_npy.headers["X-Array-Shape"] == ",".join(map(str, cube.shape))
    assert r_npy.headers["X-Array-Variables"] == ",".join(V3)
    np.testing.assert_array_equal(cube[0], ta_json)

    r_raw = client.post("/predict/datacube", json=body,
                        headers={"Accept": "application/octet-stream"})
    shape = tuple(int(x) for x in r_raw.headers["X-Array-Shape"].split(","))
    raw = np.frombuffer(r_raw.content, dtype=r_raw.headers["X-Array-Dtype"]).reshape(shape)
    np.testing.assert_array_equal(raw, cube)

    r_nc = client.post("/predict/datacube", json=body, headers={"Accept": "application/x-netcdf"})
    assert r_nc.headers["content-type"] == "application/x-netcdf"
    with xr.open_dataset(r_nc.content) as ds:
        np.testing.assert_array_equal(ds["ta"].values, ta_json)
        np.testing.assert_array_equal(ds["plev"].values, np.array(doc["coords"]["plev"]))
        assert ds.attrs["model_id"] == doc["model"]["id"]
    for r in (r_json, r_npy, r_raw, r_nc):
        assert r.headers["X-Dataset-Version"] == doc["dataset_version"]
        assert r.headers["X-Out-Of-Domain"] == "false"


def test_surface_fields_and_scalars_in_binary(client: TestClient, app: FastAPI) -> None:
    body = training_params(app, 1)
    joint = client.post("/predict/joint", json=body).json()
    r = client.post("/predict/joint?variables=ps,ts", json=body,
                    headers={"Accept": "application/x-npy"})
    arr = np.load(io.BytesIO(r.content))
    assert r.headers["X-Array-Dims"] == "variable,lat,lon"
    np.testing.assert_array_equal(arr[1], from_json_field(joint, "ts"))
    assert json.loads(r.headers["X-Scalars"]) == joint["scalars"]
    s = client.post("/predict/scalar", json=body, headers={"Accept": "application/x-npy"})
    # The scalar mode runs the scalar head alone: same numbers up to float32 rounding.
    np.testing.assert_allclose(np.load(io.BytesIO(s.content)),
                               [joint["scalars"][n] for n in SCALAR_NAMES], rtol=1e-5, atol=1e-5)
    assert s.headers["X-Array-Variables"] == ",".join(SCALAR_NAMES)
    bad = client.post("/predict/joint?variables=ta,ts", json=body,
                      headers={"Accept": "application/x-npy"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "variables"


def test_scalar_json_carries_versions(client: TestClient, app: FastAPI) -> None:
    r = client.post("/predict/scalar", json=training_params(app))
    doc = r.json()
    assert r.status_code == 200
    assert set(doc["scalars"]) == set(SCALAR_NAMES) and "fields" not in doc
    model = app.state.service.surrogate.models["scalar"].info
    assert doc["model"] == {"id": model.id, "name": model.name, "selected_by": "newest"}
    assert doc["dataset_version"] == model.dataset_version
    assert doc["out_of_domain"] is False and doc["hull_distance"] < 1e-3
    assert doc["units"]["global_mean_ts"] == "K"


def test_legacy_field_names_are_accepted(client: TestClient, app: FastAPI) -> None:
    p = training_params(app)
    legacy = {"radius_earth": p["radius_earth"], "mass_earth": p["mass_earth"],
              "orbital_period": p["orbital_period_days"], "insolation": p["insolation_earth"],
              "stellar_teff": p["stellar_teff_k"], "stellar_logg": p["stellar_logg_cgs"],
              "stellar_metallicity": p["stellar_metallicity_dex"],
              "host_mass": p["host_mass_msun"],
              **{k: p[k] for k in ("surface_pressure_bar", "pco2_bar", "rotation_period_days")}}
    a = client.post("/predict/scalar", json=legacy).json()
    b = client.post("/predict/scalar", json=p).json()
    assert a["scalars"] == b["scalars"] and a["params"] == b["params"]


def test_422_names_field_value_and_bound(client: TestClient, app: FastAPI) -> None:
    r = client.post("/predict/datacube", json={**training_params(app), "radius_earth": 9.0})
    assert r.status_code == 422
    (d,) = r.json()["detail"]
    assert d["field"] == "radius_earth" and d["value"] == 9.0
    assert d["bound"] == "in [0.25, 3] R_earth"  # the validity bounds
    assert "radius_earth=9.0" in d["msg"]
    legacy = {k: v for k, v in training_params(app).items() if k != "stellar_teff_k"}
    r = client.post("/predict/scalar", json={**legacy, "stellar_teff": 100.0})
    assert r.json()["detail"][0]["field"] == "stellar_teff_k"
    missing = client.post("/predict/scalar", json={"radius_earth": 1.0})
    fields = {d["field"] for d in missing.json()["detail"]}
    assert "mass_earth" in fields and missing.status_code == 422


def test_far_requests_refused_unless_extrapolation(client: TestClient, app: FastAPI) -> None:
    far = {**training_params(app), "radius_earth": 2.5, "insolation_earth": 3.0,
           "stellar_teff_k": 7000.0, "mass_earth": 0.1}
    r = client.post("/predict/scalar", json=far)
    assert r.status_code == 422
    d = r.json()["detail"][0]
    assert "allow_extrapolation" in d["msg"] and d["field"] in far
    ok = client.post("/predict/scalar", json={**far, "allow_extrapolation": True})
    assert ok.status_code == 200 and ok.json()["out_of_domain"] is True
    assert ok.headers["X-Out-Of-Domain"] == "true"


def test_identical_requests_come_from_the_cache(client: TestClient, app: FastAPI) -> None:
    cache = app.state.service.cache
    body = training_params(app, 2)
    first = client.post("/predict/datacube", json=body)
    hits = cache.hits
    calls = app.state.service.batcher.stats.requests
    second = client.post("/predict/datacube", json=body, headers={"Accept": "application/x-npy"})
    assert cache.hits == hits + 1 and app.state.service.batcher.stats.requests == calls
    np.testing.assert_array_equal(np.load(io.BytesIO(second.content))[0],
                                  from_json_field(first.json(), "ta"))


def test_unacceptable_media_type_and_body_limit(client: TestClient, app: FastAPI) -> None:
    r = client.post("/predict/scalar", json=training_params(app), headers={"Accept": "text/csv"})
    assert r.status_code == 406 and "application/x-npy" in r.json()["detail"]
    huge = {**training_params(app), "padding": "x" * 100_000}
    r = client.post("/predict/scalar", json=huge)
    assert r.status_code == 413 and "exceeds the limit" in r.json()["detail"]
    chunks = iter([b'{"radius_earth": 1.0, "pad": "', b"x" * 70_000, b'"}'])
    r = client.post("/predict/scalar", content=chunks,
                    headers={"Content-Type": "application/json"})  # streamed, no length
    assert r.status_code == 413
    chunks = iter([b'{"radius_earth": ', b"9.0}"])  # streamed and small: parsed as usual
    r = client.post("/predict/scalar", content=chunks,
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "radius_earth"


def test_health_ready_models_docs(client: TestClient, app: FastAPI) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200 and ready.json()["ready"] is True
    modes = ready.json()["modes"]
    assert modes["joint"]["answering"] is True
    assert modes["spectral"]["available"] is False
    assert "no spectral surrogate" in modes["spectral"]["reason"]
    models = client.get("/models").json()
    (m,) = models["models"]
    assert sorted(m["serves"]) == ["datacube", "joint", "scalar"]
    assert m["dataset_version"] and "val/loss" in m["metrics"]
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    props = schema["components"]["schemas"]["PlanetParams"]["properties"]
    assert props["radius_earth"]["maximum"] == 3.0 and props["radius_earth"]["units"] == "R_earth"


@pytest.mark.parametrize(("accept", "media"), [
    (None, "application/json"), ("*/*", "application/json"),
    ("application/x-npy;q=0.5, application/x-netcdf", "application/x-netcdf"),
    ("text/html, application/octet-stream;q=0.1", "application/octet-stream"),
    ("text/html", None), ("application/x-npy;q=0", None)])
def test_negotiation(accept: str | None, media: str | None) -> None:
    assert negotiate(accept) == media
