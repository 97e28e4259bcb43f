"""Loader throughput against the training-step rate and raw zarr decoding.

Three figures on the same store and the same runs, in samples per second:

1. raw zarr decode: each run's seven field arrays read with ``zarr`` directly
   (no xarray, no normalisation) -- the floor set by storage and codecs;
2. the datamodule: ``RunWindowDataset`` samples read lazily from the store
   (xarray selection, window mean, masks, normalisation), and from memory
   after ``preload``;
3. the model: training steps (forward, data + physics losses, backward,
   AdamW) of the U-Net on batches from the loader.

Target: the lazy loader delivers samples at least 3x faster than the model
consumes them, so training is never waiting on data.

    .venv/bin/python benchmarks/datamodule.py --store STORE [--samples 64]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import zarr
from timing import training_step

from exocube.ml.datamodule import CubeDataModule
from exocube.ml.task import SurrogateTask


def raw_decode_rate(store: str, version: str, runs: list[str], fields: list[str]) -> float:
    """Samples/s reading the runs' arrays straight from the zarr run groups (local stores)."""
    manifest = json.loads((Path(store) / "versions" / version / "manifest.json").read_text())
    keys = {r["run_id"]: r["key"] for r in manifest["runs"]}
    t0 = time.perf_counter()
    for run in runs:
        for v in fields:
            np.asarray(zarr.open_array(str(Path(store) / "runs" / keys[run] / v), mode="r")[...])
    return len(runs) / (time.perf_counter() - t0)


def loader_rate(dm: CubeDataModule, n: int) -> float:
    ds = dm.datasets["train"]
    t0 = time.perf_counter()
    for i in range(n):
        ds[i % len(ds)]
    return n / (time.perf_counter() - t0)


def step_rate(dm: CubeDataModule, depth: int, width: int, steps: int) -> float:
    model = SurrogateTask(depth=depth, base_features=width, data_spec=dm.spec)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    batches = iter(dm.train_dataloader())
    batch = next(batches)
    n = batch["x3"].shape[0]

    step = training_step(model, opt, batch)

    step()  # warm-up
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", required=True, help="a local store path")
    ap.add_argument("--database-url", default=None)
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--base-features", type=int, default=8)
    args = ap.parse_args()
    lazy = CubeDataModule(args.store, database_url=args.database_url, preload=False,
                          batch_size=args.batch_size)
    lazy.setup("fit")
    runs = lazy.datasets["train"].runs[:args.samples]
    fields = list(lazy.spec.variables)
    raw = raw_decode_rate(args.store, lazy.spec.version, runs, fields)
    lazy_rate = loader_rate(lazy, args.samples)
    eager = CubeDataModule(args.store, database_url=args.database_url, preload=True,
                           batch_size=args.batch_size)
    t0 = time.perf_counter()
    eager.setup("fit")
    preload_s = time.perf_counter() - t0
    eager_rate = loader_rate(eager, args.samples)
    model_rate = step_rate(lazy, args.depth, args.base_features, args.steps)
    print(f"store {args.store}: grid {tuple(lazy.spec['shape'])}, {len(fields)} fields, "
          f"{len(lazy.datasets['train'])} training samples, torch threads "
          f"{torch.get_num_threads()}")
    print(f"raw zarr decode (baseline)       : {raw:9.1f} samples/s")
    print(f"datamodule, lazy from the store  : {lazy_rate:9.1f} samples/s "
          f"({lazy_rate / raw:.2f} x raw decode)")
    print(f"datamodule, preloaded            : {eager_rate:9.1f} samples/s "
          f"(preload took {preload_s:.1f} s)")
    print(f"training steps (depth {args.depth}, width {args.base_features}, batch "
          f"{args.batch_size}): {model_rate:9.1f} samples/s")
    print(f"lazy loader / training step rate : {lazy_rate / model_rate:9.1f} x (target >= 3 x)")


if __name__ == "__main__":
    main()
