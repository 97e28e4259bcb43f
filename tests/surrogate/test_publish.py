"""Exported models: a catalogue model as a self-contained folder, moved, imported into
another catalogue, predicting exactly as before; tampering and overwriting refused; the
shipped pre-trained surrogate is such a folder, trained on the demo's ensemble."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_model import TinyModel, TinyStdHead

from exocube.catalog import upgrade
from exocube.cli import main as exocube_main
from exocube.cli.demo import DEMO_RUNS, DEMO_SEED
from exocube.data import PRETRAINED_SURROGATE
from exocube.errors import ModelUnavailableError, ParameterError
from exocube.gcm import sample_runs
from exocube.grid import DEFAULT_GRID
from exocube.ml import read_manifest
from exocube.ml.ensemble import sha256_of
from exocube.ml.export import load_exported, model_entry, read_provenance
from exocube.surrogate import (
    ModelChoice,
    Surrogate,
    catalogue_rows,
    export_catalogue_model,
    import_model,
)


def _predict(db: str, model_id: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    s = Surrogate.from_catalogue(db, choice=ModelChoice("model", str(model_id)))
    model = s.models["datacube"]
    p = s.predict(model.training_request(model.task.spec.split.train[0]), "datacube")
    return p.fields, p.fields_std


def _fresh_catalogue(tmp_path: Path) -> str:
    db = f"sqlite:///{tmp_path / 'other.sqlite'}"
    upgrade(db)
    return db


def test_exported_std_head_moves_and_predicts_as_before(tiny_std_head: TinyStdHead,
                                                        tmp_path: Path) -> None:
    src = tiny_std_head
    entry = export_catalogue_model(src.database_url, src.calibrated_id, tmp_path / "out",
                                   note="trained by the tiny fixture")
    assert entry.name == "manifest.json"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "manifest.json", "member-0.ckpt", "metrics.csv", "provenance.json"]
    doc = json.loads(entry.read_text())
    assert doc["members"][0]["checkpoint"] == "member-0.ckpt"  # relative: the folder moves
    assert doc["std_scale"] == read_manifest(src.manifest).std_scale
    moved = tmp_path / "elsewhere" / "model"
    moved.parent.mkdir()
    shutil.move(tmp_path / "out", moved)
    prov = read_provenance(moved)
    assert prov["note"] == "trained by the tiny fixture"
    assert prov["model"]["catalogue_id"] == src.calibrated_id
    assert [m["catalogue_id"] for m in prov["members"]] == [src.model_id]
    assert prov["members"][0]["config"]["predict_std"] is True  # the member's training
    # the weights alone: no optimiser or loop state
    slim = torch.load(moved / "member-0.ckpt", weights_only=False)
    assert "optimizer_states" not in slim and {"state_dict", "hyper_parameters"} <= set(slim)
    other = _fresh_catalogue(tmp_path)
    new_id = import_model(other, moved)
    assert import_model(other, moved) == new_id  # once
    assert [r.id for r in catalogue_rows(other)] == [new_id]
    fields, std = _predict(other, new_id)
    want, want_std = _predict(src.database_url, src.calibrated_id)
    for name in want:
        np.testing.assert_array_equal(fields[name], want[name])
        np.testing.assert_array_equal(std[name], want_std[name])


def test_plain_network_round_trips_through_the_cli(tiny_model: TinyModel, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]
                                                   ) -> None:
    out = tmp_path / "plain"
    for argv in (["models", "export", "1", "--out", str(out), "--url",
                  tiny_model.database_url],
                 ["models", "import", str(out), "--name", "copied", "--url",
                  other := _fresh_catalogue(tmp_path)]):
        with pytest.raises(SystemExit) as info:
            exocube_main(argv)
        assert info.value.code in (0, None), capsys.readouterr().err
    assert "recorded as model 1" in capsys.readouterr().out
    (row,) = catalogue_rows(other)
    assert row.name == "copied" and row.checkpoint_uri == str(out / "model.ckpt")
    assert row.config["imported_from"] == str(out)
    fields, _ = _predict(other, 1)
    want, _ = _predict(tiny_model.database_url, 1)
    np.testing.assert_array_equal(fields["ta"], want["ta"])


def test_tampered_or_existing_folders_are_refused(tiny_model: TinyModel, tmp_path: Path
                                                  ) -> None:
    out = tmp_path / "m"
    export_catalogue_model(tiny_model.database_url, 1, out)
    with pytest.raises(ParameterError, match="does not exist yet"):
        export_catalogue_model(tiny_model.database_url, 1, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temporary left
    with open(out / "model.ckpt", "ab") as f:
        f.write(b"\0")
    other = _fresh_catalogue(tmp_path)
    with pytest.raises(ModelUnavailableError, match="SHA-256"):
        import_model(other, out)
    assert catalogue_rows(other) == []
    with pytest.raises(ModelUnavailableError, match="not an exported exocube model"):
        import_model(other, tmp_path)
    with pytest.raises(ModelUnavailableError, match="no catalogue model has id 99"):
        export_catalogue_model(tiny_model.database_url, 99, tmp_path / "n")


def test_shipped_surrogate_is_the_demo_ensembles() -> None:
    """The shipped model loads (its files match their hashes), has a calibrated std head,
    and was trained on the demo's default ensemble: its split names exactly those runs,
    on the generator's default grid."""
    (task,) = load_exported(PRETRAINED_SURROGATE)
    assert task.predict_std
    scale = read_manifest(model_entry(PRETRAINED_SURROGATE)).std_scale
    assert {"ta", "ts"} <= set(scale)
    spec = task.spec
    split = spec.split
    runs = {s.run_id for s in sample_runs(DEMO_RUNS, DEMO_SEED)}
    assert set(split.train) | set(split.val) | set(split.test) == runs
    assert not set(split.train) & set(split.test)
    g = DEFAULT_GRID
    assert spec.shape == (len(g.plev), g.nlat, g.nlon)
    np.testing.assert_allclose(spec.grid.coords()["plev"], g.plev, rtol=1e-6)
    prov = read_provenance(PRETRAINED_SURROGATE)
    assert "exocube train fit" in prov["note"]


class _Planted:
    """Unpickling this object would create ``path``: what a hostile checkpoint could do."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[()]]:
        return self.path.touch, ()


def test_hostile_exported_folders_run_no_code_and_stay_inside(tiny_model: TinyModel,
                                                              tiny_std_head: TinyStdHead,
                                                              tmp_path: Path) -> None:
    """A published folder is untrusted: a checkpoint whose unpickling would run code is
    refused without running it (its hash in the provenance made to match), and a
    manifest naming a file outside its folder is refused."""
    out = tmp_path / "m"
    export_catalogue_model(tiny_model.database_url, 1, out)
    ckpt = torch.load(out / "model.ckpt", weights_only=True)
    marker = tmp_path / "code-ran"
    torch.save({**ckpt, "hyper_parameters": {**ckpt["hyper_parameters"],
                                             "planted": _Planted(marker)}},
               out / "model.ckpt")
    prov = json.loads((out / "provenance.json").read_text())
    prov["files"]["model.ckpt"] = sha256_of(out / "model.ckpt")
    (out / "provenance.json").write_text(json.dumps(prov))
    other = _fresh_catalogue(tmp_path)
    with pytest.raises(ModelUnavailableError, match="not a loadable exocube surrogate"):
        import_model(other, out)
    assert not marker.exists() and catalogue_rows(other) == []

    std = tmp_path / "s"
    export_catalogue_model(tiny_std_head.database_url, tiny_std_head.calibrated_id, std)
    shutil.copyfile(std / "member-0.ckpt", tmp_path / "outside.ckpt")
    doc = json.loads((std / "manifest.json").read_text())
    doc["members"][0]["checkpoint"] = "../outside.ckpt"
    (std / "manifest.json").write_text(json.dumps(doc))
    with pytest.raises(ModelUnavailableError, match="outside the exported folder"):
        import_model(other, std)
    assert catalogue_rows(other) == []
