"""The datamodule over a real ingested store: splits, normalisation, masks, workers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from exocube.cubes import open_store
from exocube.errors import ConfigError, StoreError
from exocube.ml.datamodule import CubeDataModule, split_runs


def test_split_is_seeded_disjoint_and_excludes_quarantined() -> None:
    ids = [f"r{i:03d}" for i in range(50)]
    a = split_runs(ids, {"r007"}, 0.1, 0.2, seed=1)
    assert a == split_runs(list(reversed(ids)), {"r007"}, 0.1, 0.2, seed=1)
    assert a != split_runs(ids, {"r007"}, 0.1, 0.2, seed=2)
    sets = [set(a[k]) for k in ("train", "val", "test")]
    assert set().union(*sets) == set(ids) - {"r007"}
    assert sum(len(s) for s in sets) == 49
    assert (len(sets[2]), len(sets[1])) == (10, 5)
    with pytest.raises(StoreError, match="none for training"):
        split_runs(ids[:2], set(), 0.5, 0.49, seed=0)
    with pytest.raises(ConfigError):
        split_runs(ids, set(), 0.6, 0.6, seed=0)


def test_quarantined_run_is_in_no_split(tiny_store: str, store_db: str) -> None:
    dm = CubeDataModule(tiny_store, database_url=store_db)
    assert dm.quarantined() == {"run-0003"}
    assert "run-0003" not in set().union(*dm.spec.split.as_dict().values())


def test_samples_are_normalised_window_means_with_masks(tiny_store: str, store_db: str) -> None:
    dm = CubeDataModule(tiny_store, database_url=store_db, window=2, preload=False)
    dm.setup("fit")
    ds = dm.datasets["train"]
    run = ds.runs[1]
    sample = ds[1]  # one window per run with window=2 and 2 time steps
    raw = open_store(tiny_store)["ta"].sel(run=run).values  # (time, plev, lat, lon)
    truth = raw.mean(axis=0)
    valid = np.isfinite(raw).all(axis=0)
    c = dm.spec.variables_3d.index("ta")
    np.testing.assert_array_equal(sample["m3"][c].numpy(), valid)
    st = dm.spec.stats["ta"]
    mean = np.nan_to_num(np.asarray(st.mean, float)).reshape(-1, 1, 1)
    std = np.asarray(st.std, float).reshape(-1, 1, 1)
    std = np.where(np.isfinite(std), std, 1.0)
    back = sample["x3"][c].numpy() * std + mean
    np.testing.assert_allclose(back[valid], truth[valid], rtol=1e-5)
    assert (sample["x3"][c].numpy()[~valid] == 0).all() and (~valid).any()
    assert abs(float(sample["x3"][c][valid].mean())) < 3  # standardised, not raw Kelvin


def test_window_one_gives_one_sample_per_time_step(tiny_store: str, store_db: str) -> None:
    dm = CubeDataModule(tiny_store, database_url=store_db, window=1)
    dm.setup("fit")
    assert len(dm.datasets["train"]) == 2 * len(dm.spec.split.train)
    with pytest.raises(ConfigError, match="window=3"):
        CubeDataModule(tiny_store, database_url=store_db, window=3).spec  # noqa: B018


@pytest.mark.slow  # spawning two workers that import torch takes tens of seconds on 2 cores
def test_preload_and_workers_give_the_same_batches(tiny_store: str, store_db: str) -> None:
    kw = {"database_url": store_db, "batch_size": 3}
    lazy = CubeDataModule(tiny_store, preload=False, num_workers=2, **kw)
    eager = CubeDataModule(tiny_store, preload=True, num_workers=0, **kw)
    for dm in (lazy, eager):
        dm.setup("fit")
    assert lazy.datasets["val"].arrays is None and eager.datasets["val"].arrays is not None
    for a, b in zip(lazy.val_dataloader(), eager.val_dataloader(), strict=True):
        for key in a:
            torch.testing.assert_close(a[key], b[key])


def test_level_subset_and_crop(tiny_store: str, store_db: str) -> None:
    plev = open_store(tiny_store)["plev"].values
    dm = CubeDataModule(tiny_store, database_url=store_db, levels=[plev[1], plev[3]],
                        lat_range=(-60.0, 60.0))
    dm.setup("fit")
    sample = dm.datasets["train"][0]
    assert sample["x3"].shape == (5, 2, 6, 16)
    assert not dm.spec.full_sphere
    assert len(dm.spec.stats["ta"].mean) == 2
    with pytest.raises(ConfigError, match="not in the store"):
        CubeDataModule(tiny_store, database_url=store_db, levels=[12345.0]).spec  # noqa: B018
    with pytest.raises(ConfigError, match="unknown variables"):
        CubeDataModule(tiny_store, variables=["ta", "temperature"])


def test_augmentation_applies_only_while_training(tiny_store: str, store_db: str) -> None:
    dm = CubeDataModule(tiny_store, database_url=store_db, batch_size=4)
    dm.setup("fit")
    batch = next(iter(dm.val_dataloader()))
    out = dm.on_after_batch_transfer(batch, 0)  # no trainer attached: unchanged
    assert out is batch
