"""Stacked ensemble members: one batched pass gives each member's own answer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from exocube.errors import ModelUnavailableError
from exocube.ml import StackedMembers
from exocube.ml.datamodule import CubeDataModule
from exocube.ml.scalar import denormalise_scalars
from exocube.ml.spec import DataSpec
from exocube.ml.task import SurrogateTask


@pytest.fixture(scope="module")
def v2_spec(tiny_store: str, store_db: str) -> DataSpec:
    return CubeDataModule(tiny_store, inputs="v2", database_url=store_db).spec


def _members(spec: DataSpec, n: int = 3, **kw: object) -> list[SurrogateTask]:
    """``n`` differently initialised tasks, their zero-initialised FiLM layers perturbed so
    every part of every member differs."""
    tasks = []
    for seed in range(n):
        torch.manual_seed(seed)
        task = SurrogateTask(depth=2, base_features=4, data_spec=spec, **kw).eval()
        with torch.no_grad():
            for p in task.parameters():
                p.add_(0.05 * torch.randn_like(p))
        tasks.append(task)
    return tasks


def _rows(spec: DataSpec, n: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    values = torch.tensor(np.asarray(spec.params.values[:n]), dtype=torch.float32)
    return values, torch.tensor(np.asarray(spec.params.tidally_locked[:n]))


@pytest.mark.parametrize("constraints", ["hard", "soft"])
def test_stacked_members_give_each_members_prediction(v2_spec: DataSpec,
                                                      constraints: str) -> None:
    tasks = _members(v2_spec, constraints=constraints)
    params, locked = _rows(v2_spec)
    stacked = StackedMembers(tasks).predict_physical(params, locked)
    singles = [t.predict_physical(params, locked) for t in tasks]
    assert set(stacked) == set(singles[0]) and {"ta", "hus", "zg", "ts", "ps"} <= set(stacked)
    for name, stack in stacked.items():
        assert stack.shape == (3, *singles[0][name].shape), name
        for k, single in enumerate(singles):
            np.testing.assert_allclose(stack[k].numpy(), single[name].numpy(), rtol=2e-5,
                                       atol=1e-5 * float(single[name].nan_to_num().abs().max()),
                                       equal_nan=True, err_msg=f"{name}, member {k}")
        # the members differ, so a stack that repeated one member would fail above
        assert not torch.allclose(stack[0].nan_to_num(), stack[1].nan_to_num()), name
    below = torch.isnan(stacked["ta"])
    assert below.any() and not below.all()  # the below-ground mask applies per member


def test_stacked_physical_takes_gravity_and_gas_constant(v2_spec: DataSpec) -> None:
    tasks = _members(v2_spec, constraints="hard")
    params, locked = _rows(v2_spec)
    g = torch.tensor([9.0, 12.0, 5.0, 20.0], dtype=torch.float64)
    r = torch.tensor([287.0, 290.0, 300.0, 190.0], dtype=torch.float64)
    with torch.no_grad():
        f3, f2, zs = StackedMembers(tasks).physical(params, locked, g, r)
        for k, task in enumerate(tasks):
            s3, s2, ss = task.physical(params, locked, g, r)
            zg = task.ch["zg"]
            np.testing.assert_allclose(f3[k].numpy(), s3.numpy(), rtol=2e-5,
                                       atol=1e-5 * float(s3[:, zg].abs().max()))
            np.testing.assert_allclose(f2[k].numpy(), s2.numpy(), rtol=2e-5, atol=1e-3)
            np.testing.assert_allclose(zs[k].numpy(), ss.numpy(), rtol=1e-5, atol=1e-6)


def test_stacked_scalar_heads(v2_spec: DataSpec) -> None:
    tasks = _members(v2_spec)
    params, locked = _rows(v2_spec)
    enc = tasks[0].encode(params, locked).float()
    stacked = StackedMembers(tasks).scalars(enc)
    with torch.no_grad():
        for k, task in enumerate(tasks):
            assert task.scalar_model is not None
            single = denormalise_scalars(task.scalar_model(enc))
            np.testing.assert_allclose(stacked[k].numpy(), single.numpy(), rtol=1e-5)


@pytest.mark.parametrize(("change", "named"), [
    ({"base_features": 8}, "base_features"),
    ({"constraints": "soft"}, "constraints"),
    ({"substellar_lon_deg": 90.0}, "substellar_lon_deg"),
    ({"scalar_head": False}, "scalar_head"),
])
def test_members_of_another_architecture_are_refused(v2_spec: DataSpec,
                                                     change: dict[str, object],
                                                     named: str) -> None:
    first = SurrogateTask(depth=2, base_features=4, data_spec=v2_spec, constraints="hard")
    kw: dict[str, object] = {"depth": 2, "base_features": 4, "constraints": "hard", **change}
    other = SurrogateTask(data_spec=v2_spec, **kw)  # type: ignore[arg-type]
    with pytest.raises(ModelUnavailableError, match=f"member 1 has {named}="):
        StackedMembers([first, other], "mixed")


def test_members_of_another_data_spec_are_refused(v2_spec: DataSpec, tiny_store: str,
                                                  store_db: str) -> None:
    v1_spec = CubeDataModule(tiny_store, inputs="v1", database_url=store_db).spec
    first = SurrogateTask(depth=2, base_features=4, data_spec=v2_spec)
    other = SurrogateTask(depth=2, base_features=4, data_spec=v1_spec)
    with pytest.raises(ModelUnavailableError, match="another data spec"):
        StackedMembers([first, other], "mixed")
