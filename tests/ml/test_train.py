"""Training through the CLI, checkpoint round trips, catalogue rows, bad input."""

from __future__ import annotations

import json
import logging
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
import torch
from ml_store import TINY_GRID

from conftest import fit_cli
from exocube.catalog import engine_for
from exocube.cubes import open_store
from exocube.errors import StoreError
from exocube.ml.datamodule import CubeDataModule
from exocube.ml.hull import ExtrapolationWarning
from exocube.ml.task import SurrogateTask
from exocube.params import MODEL_INPUT_NAMES_V1, MODEL_INPUT_SPECS_V1


def test_fit_fast_dev_run_through_the_cli(tiny_store: str, store_db: str, tmp_path: Path) -> None:
    fit_cli(tiny_store, store_db, tmp_path, "--trainer.fast_dev_run", "1", "--model.depth", "2",
         "--model.base_features", "4", "--trainer.precision", "bf16-mixed",
         "--trainer.devices", "1", "--trainer.strategy", "auto")
    assert not list(tmp_path.rglob("best-*.ckpt"))  # fast_dev_run keeps no best model


def test_fit_saves_checkpoint_split_and_metrics(trained: Path) -> None:
    ckpts = sorted(trained.rglob("best-*.ckpt"))
    assert len(ckpts) == 1
    model = SurrogateTask.load_from_checkpoint(ckpts[0])
    split = model.spec.split.as_dict()
    assert "run-0003" not in set().union(*split.values())  # quarantined
    assert len(split["train"]) + len(split["val"]) + len(split["test"]) == 11
    metrics = (next(trained.rglob("metrics.csv"))).read_text().splitlines()[0]
    for term in ("train/data", "train/hydrostatic", "train/humidity", "train/mass_continuity",
                 "train/scalar", "val/loss", "weight/hydrostatic", "lr-AdamW"):
        assert term in metrics


def test_checkpoint_reload_predicts_identically(trained: Path, tiny_store: str) -> None:
    ckpt = sorted(trained.rglob("best-*.ckpt"))[0]
    a = SurrogateTask.load_from_checkpoint(ckpt)
    b = SurrogateTask.load_from_checkpoint(ckpt)
    runs = a.spec.split.train[:3]
    params, locked = a.spec.params.values_of(runs), a.spec.params.locked_of(runs)
    pa, pb = a.predict(params, locked), b.predict(params, locked)
    assert set(pa) >= {"ta", "ua", "va", "hus", "zg", "ps", "ts", "global_mean_ts"}
    for k in pa:
        np.testing.assert_array_equal(pa[k], pb[k])
    assert pa["ta"].shape == (3, *TINY_GRID.shape)
    assert np.isnan(pa["ta"][:, 0]).any()  # the 2 bar level is below the predicted ground


def test_fit_records_model_with_dataset_version(tiny_store: str, store_db: str, tmp_path: Path,
                                                catalog_url: str) -> None:
    fit_cli(tiny_store, store_db, tmp_path, "--trainer.max_epochs", "1")
    with engine_for(catalog_url).connect() as conn:
        rows = conn.execute(sa.text("select checkpoint_uri, dataset_version, metrics, mode "
                                    "from models")).all()
    assert len(rows) == 1
    uri, version, metrics, mode = rows[0]
    assert version == open_store(tiny_store).attrs["version_id"] and mode == "datacube"
    assert Path(uri).is_file()
    metrics = metrics if isinstance(metrics, dict) else json.loads(metrics)
    assert np.isfinite(metrics["val/loss"]) and "best_val/loss" in metrics


def test_out_of_range_params_warn_with_hull_distance(trained: Path) -> None:
    model = SurrogateTask.load_from_checkpoint(sorted(trained.rglob("best-*.ckpt"))[0])
    run = model.spec.split.train[0]
    inside = model.spec.params.values_of([run])[0]
    locked = model.spec.params.locked_of([run])[0]
    with pytest.warns(ExtrapolationWarning) as record:
        far = inside.copy()
        names, specs = MODEL_INPUT_NAMES_V1, MODEL_INPUT_SPECS_V1
        far[names.index("insolation_earth")] = specs["insolation_earth"].high
        far[names.index("radius_earth")] = specs["radius_earth"].low
        dist = model.check_extrapolation(np.stack([inside, far]), np.array([locked, locked]))
    assert dist[0] < 1e-6 < dist[1]
    assert len(record) == 1 and "distance" in str(record[0].message)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error", ExtrapolationWarning)
        model.predict(inside[None], np.array([locked]))  # a training point: no warning


def test_store_missing_a_variable_is_refused(tiny_store: str, store_db: str,
                                             tmp_path: Path) -> None:
    """A store whose version lacks ``hus`` (its metadata and array removed) is refused
    when the config asks for ``hus``, and accepted when it does not."""
    broken = tmp_path / "no_hus.zarr"
    shutil.copytree(tiny_store, broken)
    version = next((broken / "versions").iterdir())
    shutil.rmtree(version / "hus")
    meta = json.loads((version / "zarr.json").read_text())
    del meta["consolidated_metadata"]["metadata"]["hus"]
    (version / "zarr.json").write_text(json.dumps(meta))
    with pytest.raises(StoreError, match=r"lacks \['hus'\]"):
        CubeDataModule(str(broken), database_url=store_db).spec  # noqa: B018
    dm = CubeDataModule(str(broken), variables=["ta", "ua", "va", "zg", "ps", "ts"],
                        database_url=store_db)
    assert list(dm.spec.variables_3d) == ["ta", "ua", "va", "zg"]


def test_forward_rejects_wrong_parameter_count(trained: Path) -> None:
    model = SurrogateTask.load_from_checkpoint(sorted(trained.rglob("best-*.ckpt"))[0])
    with pytest.raises(ValueError, match="params must be"):
        model(torch.zeros(1, 8), torch.zeros(1, dtype=torch.bool))


LIGHTNING_BANNERS = ("Tip:", "litmodels", "litlogger", "GPU available", "TPU available",
                     "HPU available", "Seed set to", "`Trainer.fit` stopped", "| Name",
                     "Trainable params", "The `srun` command is available",
                     "isinstance(treespec, LeafSpec)")


def is_emoji(char: str) -> bool:
    code = ord(char)
    return code >= 0x1F000 or 0x2600 <= code <= 0x27BF or code == 0xFE0F


def test_training_output_has_no_lightning_banners_or_emoji(
        tiny_store: str, store_db: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Through ``exocube train fit``; the demo's own output is checked in tests/test_cli.py."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit_cli(tiny_store, store_db, tmp_path, "--trainer.max_epochs", "1")
    shown = "\n".join(str(w.message) for w in caught)
    assert [b for b in LIGHTNING_BANNERS if b in shown] == [], shown
    out, err = capfd.readouterr()
    text = out + err
    assert [b for b in LIGHTNING_BANNERS if b in text] == [], text[-3000:]
    assert [c for c in text if is_emoji(c)] == []
    logging.getLogger("lightning.pytorch.trainer").warning("a real warning")
    assert "a real warning" in "".join(capfd.readouterr())
