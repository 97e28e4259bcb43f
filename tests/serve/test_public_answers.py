"""What strangers see: no server file paths in any public answer; which model answered
(and how it was chosen) in every answer; promotions picked up by /admin/reload."""

from __future__ import annotations

import shutil
from pathlib import Path

from fastapi.testclient import TestClient
from serve_helpers import API_KEY, settings_for, training_params
from tiny_model import TinyModel

from exocube.catalog import upgrade
from exocube.ml.record import record_model
from exocube.serve import create_app
from exocube.surrogate import ModelChoice
from exocube.surrogate.promotion import promote


def everything_public(c: TestClient) -> list[bytes]:
    """Bodies and headers of every public endpoint, in every content type."""
    body = training_params(c.app)
    out = []
    for r in (c.get("/models"), c.get("/ready"), c.get("/openapi.json"),
              c.post("/predict/joint", json=body),
              c.post("/predict/joint", json=body, headers={"Accept": "application/x-netcdf"}),
              c.post("/predict/datacube", json=body, headers={"Accept": "application/x-npy"}),
              c.post("/predict/scalar", json=body)):
        assert r.status_code == 200, r.text
        out += [r.content, repr(dict(r.headers)).encode()]
    return out


def test_no_server_paths_in_public_answers(tiny_model: TinyModel, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'cat.sqlite'}"
    upgrade(db)
    record_model("kept", "datacube", tiny_model.checkpoint, "v1", {"val/loss": 0.2}, {},
                 database_url=db)
    record_model("moved", "datacube", str(tmp_path / "moved" / "best.ckpt"), "v2", {}, {},
                 database_url=db)  # newest, its file gone: the reason must not show the path
    app = create_app(settings_for(tmp_path, api_keys=[API_KEY]), database_url=db)
    with TestClient(app) as c:
        c.headers["X-API-Key"] = API_KEY
        secrets = [tiny_model.checkpoint, tiny_model.store, str(tmp_path)]
        for blob in everything_public(c):
            for s in secrets:
                assert s.encode() not in blob, s
        ready = c.get("/ready").json()
        assert ready["modes"]["datacube"]["selected_by"] == "newest"
        admin = c.get("/admin/models").json()
        assert admin["models"][0]["checkpoint"] == tiny_model.checkpoint
        assert admin["models"][0]["store"] == tiny_model.store
        assert c.get("/admin/models", headers={"X-API-Key": "wrong"}).status_code == 403
    only_moved = f"sqlite:///{tmp_path / 'moved.sqlite'}"
    upgrade(only_moved)
    record_model("moved", "datacube", str(tmp_path / "moved" / "best.ckpt"), "v2", {}, {},
                 database_url=only_moved)
    with TestClient(create_app(settings_for(tmp_path), database_url=only_moved)) as c:
        r = c.get("/ready")
        assert r.status_code == 503
        reason = r.json()["modes"]["datacube"]["reason"]
        assert "(moved): its checkpoint file is missing" in reason and str(tmp_path) not in reason
        assert str(tmp_path).encode() not in c.post(
            "/predict/datacube", json={}).content  # 422 for the empty body, no path either


def test_the_answer_names_the_chosen_model(tiny_model: TinyModel, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'cat.sqlite'}"
    upgrade(db)
    ckpt = tmp_path / "copy.ckpt"
    shutil.copy(tiny_model.checkpoint, ckpt)
    good = record_model("good", "datacube", str(ckpt), "v1", {"val/loss": 0.1}, {},
                        database_url=db)
    quick = record_model("quick", "datacube", str(ckpt), "v2", {"val/loss": 0.9}, {},
                         database_url=db)
    settings = settings_for(tmp_path, api_keys=[API_KEY])
    with TestClient(create_app(settings, database_url=db)) as c:
        c.headers["X-API-Key"] = API_KEY
        body = training_params(c.app)
        r = c.post("/predict/scalar", json=body)
        assert r.json()["model"] == {"id": quick, "name": "quick", "selected_by": "newest"}
        assert (r.headers["X-Model-Id"], r.headers["X-Model-Selected-By"]) == (
            str(quick), "newest")
        promote(db, good)
        assert c.post("/predict/scalar", json=body).json()["model"]["id"] == quick  # loaded
        assert c.post("/admin/reload").json()["modes"]["scalar"]["selected_by"] == "promoted"
        r = c.post("/predict/datacube", json=body, headers={"Accept": "application/x-npy"})
        assert (r.headers["X-Model-Id"], r.headers["X-Model-Selected-By"]) == (
            str(good), "promoted")
        listing = c.get("/models").json()["models"]
        assert [(m["id"], m["selected_by"]["joint"]) for m in listing] == [(good, "promoted")]
    chosen = create_app(settings, database_url=db, choice=ModelChoice.parse(model=str(quick)))
    with TestClient(chosen) as c:
        r = c.post("/predict/joint", json=body, headers={"X-API-Key": API_KEY})
        assert r.json()["model"] == {"id": quick, "name": "quick",
                                     "selected_by": f"chosen: --model {quick}"}
