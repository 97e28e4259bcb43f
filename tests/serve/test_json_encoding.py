"""The orjson datacube encoding decodes to exactly what the json.dumps encoding gave."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from serve_helpers import training_params

from exocube.grid import CF_META
from exocube.serve.encoding import to_json
from exocube.surrogate import Prediction
from exocube.surrogate.prediction import FIELD_DIMS_2D, FIELD_DIMS_3D, SCALAR_META


def json_dumps_encoding(p: Prediction) -> bytes:
    """The encoder before issue 11 (json.dumps of nested lists), kept as the reference."""
    doc = p.metadata()
    doc["scalars"] = p.scalars
    units = {n: SCALAR_META[n] for n in p.scalars}
    if not p.fields:
        doc["units"] = units
        return json.dumps(doc).encode()
    units.update({n: CF_META[n][1] for n in p.fields})
    doc["units"] = units
    doc["coords"] = {k: v.tolist() for k, v in p.coords.items()}
    doc["dims"] = {n: list(FIELD_DIMS_3D if a.ndim == 3 else FIELD_DIMS_2D)
                   for n, a in p.fields.items()}
    if "ta" in p.fields:
        doc["dims"]["temperature_field"] = doc["dims"]["ta"]

    def arr(a: np.ndarray) -> str:
        return json.dumps(a.tolist()).replace("NaN", "null")

    head = json.dumps(doc)[:-1]
    parts = [f'"{n}": {arr(a)}' for n, a in p.fields.items()]
    if "ta" in p.fields:
        parts.append(f'"temperature_field": {arr(p.fields["ta"])}')
    return (head + ', "fields": {' + ", ".join(parts) + "}}").encode()


@pytest.mark.parametrize("mode", ["datacube", "joint", "scalar"])
def test_fast_json_decodes_to_the_same_document(client: TestClient, app: FastAPI,
                                                mode: str) -> None:
    surrogate = app.state.service.surrogate
    p = surrogate.predict(training_params(app, 2), mode)
    new, old = to_json(p), json_dumps_encoding(p)
    assert json.loads(new) == json.loads(old)  # same keys, same numbers (null == null)
    assert list(json.loads(new)) == list(json.loads(old))  # in the same order
    if mode == "scalar":
        return
    assert b"NaN" not in new and b"null" in new  # below-ground cells
    doc = json.loads(new)
    for name, a in p.fields.items():
        back = np.array(doc["fields"][name], dtype=np.float64)
        np.testing.assert_array_equal(back.astype(np.float32), a)
        np.testing.assert_array_equal(back, a.astype(np.float64))  # the same float64 digits
    assert len(new) < len(old)  # compact separators
    r = client.post(f"/predict/{mode}", json=training_params(app, 2))
    assert r.json() == doc  # what the service sends


def test_non_finite_values_and_float32_extremes_round_trip(client: TestClient,
                                                           app: FastAPI) -> None:
    from dataclasses import replace

    p = app.state.service.surrogate.predict(training_params(app), "datacube")
    ta = p.fields["ta"].copy()
    ta.flat[:5] = [np.nan, np.float32(1e-45), np.float32(3.4028235e38), -0.0, 0.1]
    q = replace(p, fields={**p.fields, "ta": ta})
    doc = json.loads(to_json(q))
    assert doc == json.loads(json_dumps_encoding(q))
    assert doc["fields"]["ta"][0][0][:5] == [None, 1.401298464324817e-45,
                                             3.4028234663852886e+38, -0.0, 0.10000000149011612]
