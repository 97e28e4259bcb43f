"""API keys on prediction and admin, and readiness before and after a model exists."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from serve_helpers import API_KEY, settings_for, training_params
from tiny_model import TinyModel

from exocube.catalog import upgrade
from exocube.ml.record import record_model
from exocube.serve import create_app


@pytest.fixture(scope="module")
def keyed(tiny_model: TinyModel, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[TestClient]:
    settings = settings_for(tmp_path_factory.mktemp("keyed"), api_keys=[API_KEY, "other-key"])
    with TestClient(create_app(settings, database_url=tiny_model.database_url)) as c:
        yield c


def test_prediction_needs_a_key_when_keys_are_set(keyed: TestClient) -> None:
    body = training_params(keyed.app)
    r = keyed.post("/predict/scalar", json=body)
    assert r.status_code == 401 and r.json()["detail"] == (
        "missing API key: send it in the X-API-Key header")
    r = keyed.post("/predict/datacube", json=body, headers={"X-API-Key": "wrong"})
    assert r.status_code == 403 and r.json()["detail"] == "API key not accepted"
    r = keyed.post("/predict/scalar", json=body, headers={"X-API-Key": "other-key"})
    assert r.status_code == 200
    assert keyed.get("/health").status_code == 200  # liveness needs no key


def test_admin_reload_needs_a_key(keyed: TestClient) -> None:
    assert keyed.post("/admin/reload").status_code == 401
    assert keyed.post("/admin/reload", headers={"X-API-Key": "nope"}).status_code == 403
    r = keyed.post("/admin/reload", headers={"X-API-Key": API_KEY})
    assert r.status_code == 200 and r.json()["ready"] is True


def test_admin_is_closed_without_configured_keys(client: TestClient) -> None:
    r = client.post("/admin/reload", headers={"X-API-Key": API_KEY})
    assert r.status_code == 403 and "no API keys are configured" in r.json()["detail"]


def test_ready_is_false_until_a_model_is_loaded(tiny_model: TinyModel, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'empty.sqlite'}"
    upgrade(db)
    app = create_app(settings_for(tmp_path, api_keys=[API_KEY]), database_url=db)
    with TestClient(app) as c:
        r = c.get("/ready")
        assert r.status_code == 503 and r.json()["ready"] is False
        assert "no trained models" in r.json()["modes"]["datacube"]["reason"]
        assert c.get("/models").json()["models"] == []
        body = {"radius_earth": 1.0, "mass_earth": 1.0, "orbital_period_days": 365.0,
                "insolation_earth": 1.0, "stellar_teff_k": 5700.0, "stellar_logg_cgs": 4.4,
                "stellar_metallicity_dex": 0.0, "host_mass_msun": 1.0}
        r = c.post("/predict/scalar", json=body, headers={"X-API-Key": API_KEY})
        assert r.status_code == 503 and "no trained models" in r.json()["detail"]
        record_model("tiny", "datacube", tiny_model.checkpoint, None, {"val/loss": 1.0}, {},
                     database_url=db)
        assert c.get("/ready").json()["ready"] is False  # not until reloaded
        r = c.post("/admin/reload", headers={"X-API-Key": API_KEY})
        assert r.status_code == 200 and r.json()["ready"] is True
        assert c.get("/ready").status_code == 200
        public = c.get("/models").json()["models"][0]
        assert "checkpoint" not in public and "store" not in public
        admin = c.get("/admin/models", headers={"X-API-Key": API_KEY}).json()["models"][0]
        assert admin["checkpoint"] == tiny_model.checkpoint


def test_ready_is_false_before_the_lifespan_runs(tiny_model: TinyModel, tmp_path: Path) -> None:
    app = create_app(settings_for(tmp_path), database_url=tiny_model.database_url)
    c = TestClient(app)  # no context manager: the lifespan has not loaded anything
    r = c.get("/ready")
    assert r.status_code == 503
    assert r.json()["modes"]["scalar"]["reason"] == "models are not loaded yet"
