"""A checkpoint and a cube store written by exocube at commit 296232c still load and answer
as that code did (tests/fixtures/legacy-296232c, made by its make_fixtures.py).

Predictions are compared to a relative 1e-6 of each array's largest value, a few float32
roundings: on the machine that made the fixtures they are bit-identical, but another CPU's
vector kernels in PyTorch (AVX-512 vs AVX2) round the last bits differently; a changed
encoding or network moves them by orders of magnitude more. Scalar diagnostics (differences
of area means) are compared to 1e-5 relative."""

from __future__ import annotations

import json
import math
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from exocube.catalog import Dataset, session_scope, upgrade
from exocube.cubes import open_store, validate_store
from exocube.ml.datamodule import CubeDataModule
from exocube.ml.evaluate import evaluate_checkpoint
from exocube.ml.record import record_model
from exocube.ml.task import SurrogateTask
from exocube.surrogate import Surrogate

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "legacy-296232c"
CHECKPOINT = FIXTURES / "model.ckpt"


ROUNDING = 1e-6


def assert_same(got: np.ndarray, want: np.ndarray, name: str) -> None:
    """Equal to a few float32 roundings of the array's scale (see the module docstring)."""
    scale = float(np.nanmax(np.abs(want))) if np.isfinite(want).any() else 0.0
    np.testing.assert_allclose(got, want, rtol=ROUNDING, atol=ROUNDING * scale, err_msg=name)


def _json(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture
def store(tmp_path: Path) -> str:
    """A copy of the legacy store, registered in a fresh catalogue (validation records its
    scores there)."""
    copy = tmp_path / "cube.zarr"
    shutil.copytree(FIXTURES / "cube.zarr", copy)
    return str(copy.resolve())


@pytest.fixture
def catalogue(tmp_path: Path, store: str) -> str:
    url = f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    upgrade(url)
    version = str(open_store(store).attrs["version_id"])
    with session_scope(url) as session:
        session.add(Dataset(store_uri=store, version_id=version, parent_version=None,
                            schema_version="legacy", code_version="296232c", n_runs=8))
    return url


def _assert_close_tree(got: Any, want: Any, path: str = "") -> None:
    """Equal structure; numbers equal to 2e-5 relative (NaN/None where the fixture has it).

    The metrics aggregate float32 fields; the shared latitude weights
    (``grid.latitude_weights``, normalised to mean 1, where the scalar diagnostics used raw
    ``cos(lat)`` before) move their rounding by about 3e-6 relative. The predictions
    themselves are compared bit for bit by the other tests of this file."""
    if isinstance(want, dict):
        assert sorted(got) == sorted(want), path
        for k in want:
            _assert_close_tree(got[k], want[k], f"{path}.{k}")
    elif isinstance(want, list):
        assert len(got) == len(want), path
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            _assert_close_tree(g, w, f"{path}[{i}]")
    elif isinstance(want, float) and not isinstance(want, bool):
        assert isinstance(got, float), path
        assert (math.isnan(got) and math.isnan(want)) or got == pytest.approx(
            want, rel=2e-5, abs=1e-12), path
    else:
        assert got == want, path


def test_store_opens_validates_and_yields_the_same_samples(store: str, catalogue: str) -> None:
    ds = open_store(store)
    assert [str(r) for r in ds["run"].values] == [f"run-{i:04d}" for i in range(8)]
    report = validate_store(store, database_url=catalogue).to_json()
    want = _json("validation.json")
    assert report["quarantined"] == want["quarantined"]
    assert "run-0003" in want["quarantined"]  # its heights were doubled
    _assert_close_tree(dict(report, store="cube.zarr"), want)
    dm = CubeDataModule(store, database_url=catalogue, preload=False)
    dm.setup("all")
    samples = np.load(FIXTURES / "samples.npz")
    for split, dataset in dm.datasets.items():
        for key in dataset[0]:
            got = np.stack([dataset[i][key].numpy() for i in range(len(dataset))])
            np.testing.assert_array_equal(got, samples[f"{split}_{key}"], err_msg=key)


def test_checkpoint_predicts_as_before() -> None:
    task = SurrogateTask.load_from_checkpoint(CHECKPOINT, map_location="cpu")
    want = np.load(FIXTURES / "task_predict.npz")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = task.predict(want["input_values"], want["input_locked"])
    assert sorted(got) == sorted(k for k in want if not k.startswith("input_"))
    for key, value in got.items():
        assert_same(value, want[key], key)


def test_catalogue_surrogate_answers_as_before(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'models.sqlite'}"
    record_model("legacy", "datacube", str(CHECKPOINT), None, {}, {}, url)
    surrogate = Surrogate.from_catalogue(url, max_hull_distance=1e9, torch_threads=1)
    want = np.load(FIXTURES / "surrogate_predict.npz")
    for i, request in enumerate(_json("requests.json")):
        pred = surrogate.predict(request, "joint", allow_extrapolation=True)
        assert bool(pred.tidally_locked) == bool(want["tidally_locked"][i])
        assert pred.hull_distance == pytest.approx(float(want["hull_distance"][i]), rel=1e-9)
        for name, field in pred.fields.items():
            assert_same(field, want[f"field_{name}"][i], name)
        for name, value in pred.scalars.items():
            assert value == pytest.approx(float(want[f"scalar_{name}"][i]), rel=1e-5), name
        assert len(pred.fields) + len(pred.scalars) == sum(
            k.startswith(("field_", "scalar_")) for k in want)


def test_evaluation_scores_as_before(tmp_path: Path, store: str, catalogue: str) -> None:
    validate_store(store, database_url=catalogue)
    result = evaluate_checkpoint(str(CHECKPOINT), store, out_dir=tmp_path / "eval",
                                 database_url=catalogue)
    metrics = json.loads(result.json_path.read_text())
    # every key of the old metrics.json scores as before; the one new top-level key (the
    # per-run metrics, issue 14) is beside them
    assert set(metrics) - set(_json("metrics.json")) == {"field_metrics"}
    del metrics["field_metrics"]
    _assert_close_tree(dict(metrics, checkpoint="model.ckpt", store="cube.zarr"),
                       _json("metrics.json"))
