"""An ensemble over HTTP: every format carries the std fields; single models carry none."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import xarray as xr
from fastapi import FastAPI
from fastapi.testclient import TestClient
from serve_helpers import settings_for, training_params
from tiny_model import TinyEnsemble, TinyModel, build_tiny_std_head

from exocube.ml import STD_HEAD
from exocube.serve import create_app
from exocube.surrogate import ModelChoice, Prediction, Surrogate


def _expected(tiny_ensemble: TinyEnsemble, body: dict[str, float], mode: str) -> Prediction:
    s = Surrogate.from_catalogue(tiny_ensemble.database_url,
                                 choice=ModelChoice("model", str(tiny_ensemble.ensemble_id)))
    return s.predict(body, mode)


def test_json_carries_std_fields_and_keeps_every_key(ensemble_client: TestClient,
                                                     client: TestClient, app: FastAPI,
                                                     tiny_ensemble: TinyEnsemble) -> None:
    body = training_params(app)
    doc = ensemble_client.post("/predict/joint", json=body).json()
    single = client.post("/predict/joint", json=body).json()
    assert set(single) <= set(doc)  # every key of a single model's answer is kept
    assert set(doc) - set(single) == {"fields_std", "scalars_std", "uncertainty"}
    assert doc["uncertainty"]["n_members"] == 3
    assert doc["uncertainty"]["members"] == list(tiny_ensemble.member_ids)
    assert set(doc["fields_std"]) == set(doc["fields"]) - {"temperature_field"}
    assert set(doc["scalars_std"]) == set(doc["scalars"])
    expected = _expected(tiny_ensemble, body, "joint")
    ta_std = np.array(doc["fields_std"]["ta"], dtype=np.float64).astype(np.float32)
    np.testing.assert_array_equal(ta_std, expected.fields_std["ta"])
    np.testing.assert_array_equal(
        np.array(doc["fields"]["ta"], dtype=np.float64).astype(np.float32),
        expected.fields["ta"])
    assert doc["scalars_std"] == expected.scalars_std
    # a single model's answer has no std keys (not zeros)
    assert not {"fields_std", "scalars_std", "uncertainty"} & set(single)


def test_binary_formats_and_headers_carry_std(ensemble_client: TestClient, client: TestClient,
                                              app: FastAPI,
                                              tiny_ensemble: TinyEnsemble) -> None:
    body = training_params(app, 1)
    expected = _expected(tiny_ensemble, body, "joint")
    nc = ensemble_client.post("/predict/joint", json=body,
                              headers={"Accept": "application/x-netcdf"})
    assert nc.status_code == 200, nc.text
    with xr.open_dataset(nc.content) as ds:
        np.testing.assert_array_equal(ds["ta_std"].values, expected.fields_std["ta"])
        assert ds["ts_std"].attrs["units"] == "K"
        assert ds.attrs["ensemble_members"] == 3
    npy = ensemble_client.post("/predict/joint?variables=ta,ta_std", json=body,
                               headers={"Accept": "application/x-npy"})
    cube = np.load(io.BytesIO(npy.content), allow_pickle=False)
    assert npy.headers["X-Array-Variables"] == "ta,ta_std"
    np.testing.assert_array_equal(cube[1], expected.fields_std["ta"])
    assert npy.headers["X-Ensemble-Members"] == "3"
    assert json.loads(npy.headers["X-Scalars-Std"]) == expected.scalars_std
    scalar = ensemble_client.post("/predict/scalar?variables=global_mean_ts_std", json=body,
                                  headers={"Accept": "application/x-npy"})
    assert scalar.status_code == 200, scalar.text
    # a single model has no std to ask for: a 422 naming the variable
    bad = client.post("/predict/joint?variables=ta_std", json=body,
                      headers={"Accept": "application/x-npy"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "variables"
    assert "X-Ensemble-Members" not in client.post("/predict/joint", json=body).headers


def test_openapi_describes_the_std_fields(ensemble_client: TestClient) -> None:
    schemas = ensemble_client.get("/openapi.json").json()["components"]["schemas"]
    assert "fields_std" in schemas["DatacubeResponse"]["properties"]
    assert "scalars_std" in schemas["ScalarResponse"]["properties"]
    assert "fields_std" not in schemas["DatacubeResponse"].get("required", [])


def test_a_std_head_network_answers_with_its_std_in_one_pass(
        tiny_model: TinyModel, tmp_path_factory: pytest.TempPathFactory) -> None:
    tiny = build_tiny_std_head(tmp_path_factory, tiny_model)
    choice = ModelChoice("model", str(tiny.calibrated_id))
    app = create_app(settings_for(tmp_path_factory.mktemp("std")),
                     database_url=tiny.database_url, choice=choice)
    s = Surrogate.from_catalogue(tiny.database_url, choice=choice)
    model = s.models["joint"]
    body = model.training_request(model.task.spec.split.train[0])
    expected = s.predict(body, "joint")
    with TestClient(app) as c:
        r = c.post("/predict/joint", json=body)
        assert r.status_code == 200, r.text
        doc = r.json()
        assert doc["uncertainty"]["method"] == STD_HEAD and doc["uncertainty"]["n_members"] == 1
        assert r.headers["X-Uncertainty-Method"] == STD_HEAD
        ta_std = np.array(doc["fields_std"]["ta"], dtype=np.float64).astype(np.float32)
        np.testing.assert_array_equal(ta_std, expected.fields_std["ta"])
        assert doc["scalars_std"] == expected.scalars_std
        npy = c.post("/predict/datacube?variables=ts_std", json=body,
                     headers={"Accept": "application/x-npy"})
        assert npy.status_code == 200, npy.text
