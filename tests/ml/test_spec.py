"""The data spec: round trips, the unversioned dictionary of older checkpoints, grid
windows, and parameter encoding by the spec's own names and scales."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from exocube.errors import ConfigError
from exocube.grid import Grid
from exocube.ml import LEGACY_PARAM_NAMES, SPEC_VERSION, DataSpec, GridWindow, ParamScale
from exocube.ml.datamodule import CubeDataModule
from exocube.ml.task import SurrogateTask

LEGACY = Path(__file__).resolve().parents[1] / "fixtures" / "legacy-296232c" / "store_spec.json"


@pytest.fixture(scope="module")
def legacy() -> dict:
    return json.loads(LEGACY.read_text())


def test_datamodule_spec_round_trips(tiny_store: str, store_db: str) -> None:
    spec = CubeDataModule(tiny_store, database_url=store_db).spec
    d = spec.to_dict()
    assert d["spec_version"] == SPEC_VERSION
    back = DataSpec.from_dict(json.loads(json.dumps(d)))
    assert json.dumps(back.to_dict()) == json.dumps(d)  # (NaN statistics differ from NaN)
    assert back.grid == spec.grid and back.params == spec.params and back.split == spec.split


def test_unversioned_spec_reads_as_it_was_written(legacy: dict) -> None:
    spec = DataSpec.from_dict(legacy)
    assert spec.params.names == LEGACY_PARAM_NAMES == tuple(legacy["params"]["names"])
    for axis in ("plev", "lat", "lon"):
        np.testing.assert_array_equal(getattr(spec, axis), legacy[axis])
    assert list(spec.shape) == legacy["shape"] and spec.full_sphere is legacy["full_sphere"]
    assert spec.split.as_dict() == legacy["split"] and spec.split.seed == legacy["seed"]
    np.testing.assert_array_equal(spec.stats["ta"].mean, legacy["stats"]["ta"]["mean"])
    assert spec.stats["ps"].std == (legacy["stats"]["ps"]["std"],)
    assert {r: spec.store_row(r) for r in spec.params.runs} == legacy["store_run_index"]
    np.testing.assert_array_equal(spec.params.values_of(spec.params.runs),
                                  legacy["params"]["values"])
    assert json.dumps(DataSpec.from_dict(spec.to_dict()).to_dict()) == json.dumps(
        spec.to_dict())


def test_unknown_spec_version_is_refused(legacy: dict) -> None:
    d = DataSpec.from_dict(legacy).to_dict()
    d["spec_version"] = SPEC_VERSION + 1
    with pytest.raises(ConfigError, match="spec version"):
        DataSpec.from_dict(d)


def test_grid_window_of_a_box() -> None:
    grid = Grid.with_levels(nlat=8, nlon=16, nlev=3)
    gw = GridWindow.from_coords(grid.plev, grid.lat[2:6], grid.lon[4:12])
    assert gw.grid == grid and gw.lat_window == (2, 6) and gw.lon_window == (4, 12)
    np.testing.assert_array_equal(gw.lat, grid.lat[2:6])
    assert gw.shape == (3, 4, 8) and GridWindow.from_dict(gw.as_dict()) == gw
    assert not gw.matches(GridWindow.from_coords(grid.plev, grid.lat[1:5], grid.lon[4:12]))
    with pytest.raises(ConfigError, match="regular"):
        GridWindow.from_coords(grid.plev, [-80.0, -60.0, -10.0], grid.lon)


def test_parameters_are_encoded_by_the_spec_scales() -> None:
    scales = (ParamScale("a", 0.0, 2.0), ParamScale("b", 1.0, 100.0, log_scale=True))
    from exocube.ml.spec import encode_with

    enc = encode_with(scales, torch.tensor([[0.0, 1.0], [2.0, 100.0], [1.0, 10.0]],
                                           dtype=torch.float64), torch.tensor([0, 1, 0]))
    torch.testing.assert_close(enc, torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0],
                                                  [0.0, 0.0, -1.0]], dtype=torch.float64))


def test_model_input_follows_its_spec_names(legacy: dict) -> None:
    """A model trained with fewer parameters takes and encodes exactly those."""
    spec = DataSpec.from_dict(legacy)
    keep = ("insolation_earth", "surface_pressure_bar", "radius_earth")
    cols = [spec.params.index(n) for n in keep]
    table = replace(spec.params, scales=tuple(spec.params.scales[i] for i in cols),
                    values=tuple(tuple(row[i] for i in cols) for row in spec.params.values))
    torch.manual_seed(0)
    task = SurrogateTask(depth=1, base_features=4, data_spec=replace(spec, params=table))
    assert task.spec.params.names == keep
    assert task.unet is not None and task.encode(
        torch.ones(2, 3, dtype=torch.float64), torch.zeros(2, dtype=torch.bool)).shape == (2, 4)
    values = table.values_of(spec.split.train[:2])
    out = task.predict(values, table.locked_of(spec.split.train[:2]))
    assert out["ta"].shape == (2, *spec.shape)
    with pytest.raises(ValueError, match="params must be"):
        task(torch.ones(1, len(LEGACY_PARAM_NAMES)), torch.zeros(1, dtype=torch.bool))
    reloaded = SurrogateTask(depth=1, base_features=4, data_spec=task.hparams.data_spec)
    assert reloaded.spec.params == task.spec.params
