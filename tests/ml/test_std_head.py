"""A network with a std head: its loss, its one-pass uncertainty and its Gaussian scores."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from exocube.ml import losses
from exocube.ml.datamodule import CubeDataModule
from exocube.ml.scalar import SCALAR_NAMES
from exocube.ml.spec import DataSpec
from exocube.ml.task import SurrogateTask
from exocube.ml.uncertainty import (
    COVERAGE_LEVELS,
    crps_gaussian,
    gaussian_coverage,
    gaussian_crps,
    gaussian_energy_score,
    gaussian_spread_skill,
)

LAT = np.linspace(-75.0, 75.0, 6)


@pytest.fixture(scope="module")
def v2_spec(tiny_store: str, store_db: str) -> DataSpec:
    return CubeDataModule(tiny_store, inputs="v2", database_url=store_db).spec


def _task(spec: DataSpec, **kw: object) -> SurrogateTask:
    torch.manual_seed(0)
    task = SurrogateTask(depth=2, base_features=4, data_spec=spec, constraints="hard",
                         predict_std=True, **kw)
    with torch.no_grad():  # FiLM layers start at zero: perturb so every part matters
        for p in task.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return task.eval()


def _rows(spec: DataSpec, n: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    values = torch.tensor(np.asarray(spec.params.values[:n]), dtype=torch.float32)
    return values, torch.tensor(np.asarray(spec.params.tidally_locked[:n]))


def test_gaussian_nll_is_the_weighted_mean_over_valid_points() -> None:
    mean = torch.zeros(1, 2, 3, 4, 5)
    target = torch.full_like(mean, 2.0)
    log_std = torch.full_like(mean, math.log(0.5))
    valid = torch.ones_like(mean, dtype=torch.bool)
    valid[:, 1, 0] = False
    target[:, 1, 0] = 1e9  # a masked point must not count, whatever it holds
    nll = losses.gaussian_nll(mean, log_std, target, valid, torch.linspace(-60, 60, 4))
    expected = 0.5 * (2.0 / 0.5) ** 2 + math.log(0.5)
    np.testing.assert_allclose(nll.numpy(), [expected, expected], rtol=1e-6)


def test_std_head_adds_std_outputs_in_one_pass(v2_spec: DataSpec) -> None:
    task = _task(v2_spec)
    params, locked = _rows(v2_spec)
    out = task.predict_physical(params, locked)
    for v in [*task.v3, *task.v2, *SCALAR_NAMES]:
        std = out[f"{v}_std"]
        assert std.shape == out[v].shape, v
        finite = torch.isfinite(out[v])
        # NaN exactly where the mean is NaN (below the surface), positive elsewhere
        assert torch.equal(torch.isfinite(std), finite) and (std[finite] > 0).all(), v
    # the means are those of the same network without asking for the std
    with torch.no_grad():
        f3, _, _ = task.physical(params, locked)
    np.testing.assert_allclose(out["ta"].nan_to_num().numpy(),
                               torch.where(torch.isnan(out["ta"]), 0.0,
                                           f3[:, task.ch["ta"]]).numpy(), rtol=1e-6)
    # the std is exp(log-std channel) times the normaliser's std, per level
    with torch.no_grad():
        _, log_std = task.split_std(*task.heads(params, locked))
    assert log_std is not None
    expect = torch.exp(log_std[0][:, task.ch["ta"]]) * task.normaliser.std3[task.ch["ta"]]
    got = out["ta_std"]
    ok = torch.isfinite(got)
    np.testing.assert_allclose(got[ok].numpy(), expect[ok].numpy(), rtol=1e-5)


def test_spread_loss_does_not_train_the_mean(v2_spec: DataSpec, tiny_store: str,
                                             store_db: str) -> None:
    task = _task(v2_spec).train()
    dm = CubeDataModule(tiny_store, inputs="v2", database_url=store_db, batch_size=2)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    terms, _, _ = task._terms(batch)
    assert "spread" in terms and torch.isfinite(terms["spread"])
    assert "spread" not in task.term_names  # not under the learned weighting
    terms["spread"].backward()
    c3 = len(task.v3)
    w = task.unet.head_3d.weight.grad
    assert w is not None
    assert torch.count_nonzero(w[:c3]) == 0  # the mean channels get no gradient
    assert torch.count_nonzero(w[c3:]) > 0  # the log-std channels do
    task.zero_grad()
    total = task._total(task._terms(batch)[0])
    assert torch.isfinite(total)


def test_gaussian_scores_of_a_calibrated_predictive() -> None:
    rng = np.random.default_rng(1)
    shape = (300, 6, 8)
    mean = rng.normal(size=shape)
    std = np.exp(rng.normal(scale=0.3, size=shape))
    truth = mean + std * rng.normal(size=shape)
    mask = np.ones(shape, bool)
    ss = gaussian_spread_skill(mean, std, truth, mask, LAT)
    assert ss["spread_skill"] == pytest.approx(1.0, abs=0.02)
    cov = gaussian_coverage(mean, std, truth, mask, LAT)
    np.testing.assert_allclose(cov, COVERAGE_LEVELS, atol=0.01)
    # twice too narrow: spread-skill 0.5, and the 90 % interval covers P(|z| < 0.82)
    assert gaussian_spread_skill(mean, std / 2, truth, mask, LAT)["spread_skill"] == (
        pytest.approx(0.5, abs=0.01))
    narrow = gaussian_coverage(mean, std / 2, truth, mask, LAT, [0.9])[0]
    assert narrow == pytest.approx(math.erf(1.6449 / 2 / math.sqrt(2)), abs=0.01)
    # CRPS: the closed form averaged with the normalised cos-latitude weights
    w = np.cos(np.deg2rad(LAT)) / np.cos(np.deg2rad(LAT)).mean()
    by_hand = (crps_gaussian(mean, std, truth) * w[:, None]).mean()
    assert gaussian_crps(mean, std, truth, mask, LAT) == pytest.approx(by_hand, rel=1e-9)


def test_gaussian_energy_score_matches_sampled_members() -> None:
    """The many-point closed form against the energy score of many draws."""
    rng = np.random.default_rng(2)
    shape = (20, 3, 40, 64)
    mean = rng.normal(size=shape)
    std = np.exp(rng.normal(scale=0.3, size=shape))
    truth = mean + 1.5 * std * rng.normal(size=shape)
    mask = np.ones(shape, bool)
    lat = np.linspace(-80, 80, 40)
    draws = mean + std * rng.normal(size=(32, *shape))
    w = (np.cos(np.deg2rad(lat)) / np.cos(np.deg2rad(lat)).mean()).reshape(1, 1, -1, 1)

    def rms(a: np.ndarray) -> np.ndarray:  # per-sample lat-weighted RMS
        return np.sqrt((w * a**2).sum((1, 2, 3)) / np.broadcast_to(w, a.shape).sum((1, 2, 3)))

    skill = np.mean([rms(d - truth) for d in draws], axis=0)
    pairs = [rms(draws[i] - draws[j]) for i in range(32) for j in range(i + 1, 32)]
    fair = float((skill - 0.5 * np.mean(pairs, axis=0)).mean())
    closed = gaussian_energy_score(mean, std, truth, mask, lat)
    assert closed == pytest.approx(fair, rel=0.01)
    # and it is not the mean's RMSE (what a point forecast would score)
    assert closed < 0.9 * float(rms(mean - truth).mean())
