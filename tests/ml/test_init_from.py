"""``--model.init_from CKPT``: a fit starts from another checkpoint's network weights
(pre-training, then fine-tuning), keeping its own normalisation; a checkpoint of another
architecture is refused by name."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from ml_store import fit_cli

from exocube.errors import ConfigError
from exocube.ml.task import SurrogateTask


def _network(task: SurrogateTask) -> dict[str, torch.Tensor]:
    return {k: v for k, v in task.state_dict().items()
            if k.startswith(("unet.", "scalar_model."))}


def test_fit_starts_from_the_checkpoints_weights(trained: Path, tiny_store: str,
                                                 store_db: str, tmp_path: Path) -> None:
    source = sorted(trained.rglob("best-*.ckpt"))[0]
    pre = SurrogateTask.load_from_checkpoint(source)
    # a learning rate of ~0: one epoch of fine-tuning leaves the initial weights
    fit_cli(tiny_store, store_db, tmp_path, "--model.init_from", str(source),
            "--model.lr", "1e-20", "--model.weight_decay", "0", "--trainer.max_epochs", "1")
    tuned = SurrogateTask.load_from_checkpoint(sorted(tmp_path.rglob("last.ckpt"))[0])
    assert tuned.hparams["init_from"] == str(source)
    want = _network(pre)
    got = _network(tuned)
    assert set(got) == set(want) and len(want) > 10
    for k, v in want.items():
        torch.testing.assert_close(got[k], v, rtol=0, atol=1e-6, msg=k)
    # without init_from the same fit starts elsewhere
    fresh = SurrogateTask(**{**dict(pre.hparams), "init_from": None})
    assert any(not torch.equal(_network(fresh)[k], v) for k, v in want.items())


def test_another_architecture_is_refused_by_name(trained: Path) -> None:
    source = sorted(trained.rglob("best-*.ckpt"))[0]
    pre = SurrogateTask.load_from_checkpoint(source)
    wider = SurrogateTask(**{**dict(pre.hparams), "init_from": str(source),
                             "base_features": 2 * int(pre.hparams["base_features"])})
    with pytest.raises(ConfigError, match=r"another architecture: unet\..* is \("):
        wider.setup("fit")
    missing = SurrogateTask(**{**dict(pre.hparams), "init_from": str(source) + ".gone"})
    with pytest.raises(ConfigError, match="not a readable surrogate checkpoint"):
        missing.setup("fit")
