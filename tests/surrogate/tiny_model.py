"""A tiny trained surrogate recorded in its own catalogue, made once per test session.

The store comes from the surrogate tests' helpers (real NetCDF run files, real
ingest and validation); the model is trained for 2 epochs through
``exocube train fit`` and recorded by the training CLI's catalogue callback.
Both test folders (tests/surrogate, tests/serve) call :func:`build_tiny_model`;
the second call finds the finished files under the session's base temp dir.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import xarray as xr

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ml"))

from ml_store import TINY_GRID, make_store, write_run_files

from exocube.catalog import upgrade
from exocube.cli import main as exocube_main
from exocube.config import get_settings
from exocube.data import PSCOMPPARS_SNAPSHOT
from exocube.ml import record_model
from exocube.params import MODEL_INPUT_NAMES_V1
from exocube.planet import derive
from exocube.surrogate import catalogue_rows, make_ensemble

CONF = Path(__file__).resolve().parents[1] / "conf" / "surrogate_tiny.yaml"
CATALOGUE_CSV = PSCOMPPARS_SNAPSHOT

__all__ = ["CATALOGUE_CSV", "TINY_GRID", "TinyEnsemble", "TinyModel", "TinyStdHead",
           "build_tiny_ensemble", "build_tiny_model", "build_tiny_std_head",
           "build_tiny_v2_catalogue"]


@dataclass(frozen=True)
class TinyModel:
    database_url: str
    checkpoint: str
    store: str


def make_consistent(path: str) -> str:
    """Give a run file the locking flag and rotation period of exocube.planet (the
    helpers use their own locking rule), so requests derived the same way fall on the
    training runs."""
    with xr.open_dataset(path) as ds:
        ds = ds.load()
    planet = derive({n: float(ds.attrs[n]) for n in MODEL_INPUT_NAMES_V1})
    ds.attrs.update({n: float(v) for n, v in planet.params.items()})
    ds.attrs["tidally_locked"] = int(planet.tidally_locked)
    tmp = path + ".tmp"
    ds.to_netcdf(tmp, engine="netcdf4")
    os.replace(tmp, path)
    return path


@dataclass(frozen=True)
class TinyEnsemble:
    """The tiny model and two more seeds of it, recorded in a catalogue of their own
    (``database_url``), grouped by ``exocube models ensemble`` into the row
    ``ensemble_id``."""

    database_url: str
    ensemble_id: int
    member_ids: tuple[int, ...]
    manifest: str
    store: str


def _fit(store: str, db: str, root: Path, *extra: str, models_db: str | None = None) -> None:
    """``exocube train fit`` on ``store`` (catalogued in ``db``), recording the model in
    ``models_db`` (default: ``db``)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EXOCUBE_DATABASE_URL", models_db or db)
        get_settings.cache_clear()
        try:
            with pytest.raises(SystemExit) as exit_info:
                exocube_main(["train", "fit", "--config", str(CONF), "--data.zarr_root", store,
                              "--data.database_url", db,
                              "--trainer.default_root_dir", str(root), *extra])
            assert exit_info.value.code in (0, None)
        finally:
            get_settings.cache_clear()


def build_tiny_v2_catalogue(tmp_path_factory: pytest.TempPathFactory, tiny: TinyModel
                            ) -> str:
    """A copy of the tiny catalogue holding also a model on the climate drivers (inputs
    v2, hard constraints) trained on the tiny store, its newest row (once per session,
    cached on disk); returns the catalogue's URL."""
    root = tmp_path_factory.getbasetemp() / "tiny-v2"
    db_file = root / "catalog.sqlite"
    db = f"sqlite:///{db_file}"
    if (root / "done").is_file():
        return db
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(tiny.database_url.removeprefix("sqlite:///"), db_file)
    _fit(tiny.store, db, root / "fit", "--data.inputs", "v2", "--model.constraints", "hard")
    (root / "done").touch()
    return db


@dataclass(frozen=True)
class TinyStdHead:
    """The tiny model trained with a std head (``model_id``) and its calibrated one-member
    manifest (``calibrated_id``), in a catalogue of their own."""

    database_url: str
    model_id: int
    calibrated_id: int
    manifest: str
    store: str


def build_tiny_std_head(tmp_path_factory: pytest.TempPathFactory, tiny: TinyModel
                        ) -> TinyStdHead:
    """``exocube train fit --model.predict_std true`` on the tiny store, then its
    calibrated one-member manifest (``make_ensemble(..., calibrate=True)``, as ``exocube
    models ensemble ID --calibrate`` makes it; once per session, cached on disk)."""
    root = tmp_path_factory.getbasetemp() / "tiny-std-head"
    done = root / "done.json"
    if done.is_file():
        return TinyStdHead(**json.loads(done.read_text()))
    root.mkdir(parents=True, exist_ok=True)
    db = f"sqlite:///{root / 'catalog.sqlite'}"
    upgrade(db)
    _fit(tiny.store, tiny.database_url, root / "fit", "--data.inputs", "v2",
         "--model.constraints", "hard", "--model.predict_std", "true",
         "--trainer.max_epochs", "4", models_db=db)
    (model_id,) = [int(r.id) for r in catalogue_rows(db)]
    manifest = root / "calibrated.json"
    calibrated_id = make_ensemble(db, [model_id], "std-head-cal", manifest, calibrate=True,
                                  store_database_url=tiny.database_url)
    out = TinyStdHead(db, model_id, calibrated_id, str(manifest), tiny.store)
    tmp = done.with_suffix(".tmp")
    tmp.write_text(json.dumps(out.__dict__))
    os.replace(tmp, done)
    return out


def build_tiny_ensemble(tmp_path_factory: pytest.TempPathFactory, tiny: TinyModel
                        ) -> TinyEnsemble:
    """Seeds 1 and 2 of the tiny model trained through ``exocube train fit`` and the three
    grouped through ``exocube models ensemble`` (once per session, cached on disk)."""
    root = tmp_path_factory.getbasetemp() / "tiny-ensemble"
    done = root / "done.json"
    if done.is_file():
        d = json.loads(done.read_text())
        return TinyEnsemble(**{**d, "member_ids": tuple(d["member_ids"])})
    root.mkdir(parents=True, exist_ok=True)
    db = f"sqlite:///{root / 'catalog.sqlite'}"
    upgrade(db)
    tiny_row = next(r for r in catalogue_rows(tiny.database_url)
                    if r.checkpoint_uri == str(Path(tiny.checkpoint).resolve()))
    record_model(tiny_row.name, tiny_row.mode, tiny_row.checkpoint_uri,
                 tiny_row.dataset_version, tiny_row.metrics, tiny_row.config, db)
    for seed in (1, 2):
        _fit(tiny.store, tiny.database_url, root / f"fit{seed}", "--seed_everything",
             str(seed), models_db=db)
    ids = tuple(int(r.id) for r in sorted(catalogue_rows(db), key=lambda r: r.id))
    assert len(ids) == 3
    manifest = root / "ensemble.json"
    with pytest.raises(SystemExit) as exit_info:
        exocube_main(["models", "ensemble", *map(str, ids), "--name", "tiny-ensemble",
                      "--manifest", str(manifest), "--url", db])
    assert exit_info.value.code in (0, None)
    ensemble_id = max(int(r.id) for r in catalogue_rows(db))
    out = TinyEnsemble(db, ensemble_id, ids, str(manifest), tiny.store)
    tmp = done.with_suffix(".tmp")
    tmp.write_text(json.dumps({**out.__dict__, "member_ids": list(ids)}))
    os.replace(tmp, done)
    return out


def build_tiny_model(tmp_path_factory: pytest.TempPathFactory, dask_client: object
                     ) -> TinyModel:
    """Store + trained model + catalogue row, built once per session (cached on disk)."""
    keep = os.environ.get("EXOCUBE_TEST_TINY_MODEL_DIR")  # reuse across runs while developing
    root = Path(keep) if keep else tmp_path_factory.getbasetemp() / "tiny-surrogate"
    done = root / "done.json"
    if done.is_file():
        return TinyModel(**json.loads(done.read_text()))
    root.mkdir(parents=True, exist_ok=True)
    db = f"sqlite:///{root / 'catalog.sqlite'}"
    upgrade(db)
    files = [make_consistent(f) for f in write_run_files(root / "gcm", 12)]
    store = make_store(str(root / "cube.zarr"), files, dask_client, db)
    _fit(store, db, root / "fit")
    (ckpt,) = sorted((root / "fit").rglob("best-*.ckpt"))
    model = TinyModel(database_url=db, checkpoint=str(ckpt), store=store)
    tmp = done.with_suffix(".tmp")
    tmp.write_text(json.dumps(model.__dict__))
    os.replace(tmp, done)
    return model
