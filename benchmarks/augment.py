"""Cost of the training augmentations relative to one training step.

Builds a random batch at the default grid (20 x 32 x 64, all seven fields),
times the augmentation (longitude roll + hemispheric mirror + field noise)
and one optimiser step of the U-Net on the same batch (forward, physics
losses, backward, AdamW), and prints the ratio. Target: under 5 %.

    .venv/bin/python benchmarks/augment.py [--batch 4] [--repeats 5]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from timing import median_time, training_step

from exocube.grid import DEFAULT_GRID, FIELDS_2D, FIELDS_3D, Grid
from exocube.ml.spec import (
    DataSpec,
    GridWindow,
    ParamTable,
    Selection,
    Split,
    Stats,
    current_scales,
)
from exocube.ml.task import SurrogateTask
from exocube.ml.transforms import Augmentation
from exocube.params import MODEL_INPUT_NAMES_V1, MODEL_INPUT_SPECS_V1


def fake_spec(grid: Grid) -> DataSpec:
    """A data spec for ``grid`` with unit statistics (timing only)."""
    nlev = len(grid.plev)
    stats = {v: Stats((0.0,) * nlev, (1.0,) * nlev) for v in FIELDS_3D}
    stats["ta"] = Stats((250.0,) * nlev, (30.0,) * nlev)
    stats["zg"] = Stats(tuple(np.linspace(0, 4e4, nlev)), (1e3,) * nlev)
    stats["hus"] = Stats((1e-3,) * nlev, (1e-3,) * nlev)
    stats.update({"ps": Stats((1e5,), (1e4,)), "ts": Stats((280.0,), (30.0,))})
    scales = current_scales(MODEL_INPUT_NAMES_V1)
    mid = (tuple(0.5 * (s.low + s.high) for s in scales),)
    return DataSpec(
        store="bench", version="bench", store_schema_version="bench",
        grid=GridWindow(grid, (0, grid.nlat), (0, grid.nlon)), selection=Selection(),
        variables_3d=FIELDS_3D, variables_2d=FIELDS_2D, stats=stats, n_time=1, window=1,
        split=Split(("r0",), (), ()),
        params=ParamTable(scales, ("r0",), mid, (False,), (9.8,), (287.0,)))


def random_batch(b: int, shape: tuple[int, int, int]) -> dict[str, torch.Tensor]:
    specs = [MODEL_INPUT_SPECS_V1[n] for n in MODEL_INPUT_NAMES_V1]
    mid = torch.tensor([[0.5 * (s.low + s.high) for s in specs]] * b)
    m3 = torch.ones(b, len(FIELDS_3D), *shape, dtype=torch.bool)
    m3[:, :, 0] = False
    return {"x3": torch.randn(b, len(FIELDS_3D), *shape), "m3": m3,
            "x2": torch.randn(b, len(FIELDS_2D), *shape[1:]),
            "m2": torch.ones(b, len(FIELDS_2D), *shape[1:], dtype=torch.bool),
            "params": mid, "tidally_locked": torch.arange(b) % 2 == 0,
            "gravity": torch.full((b,), 9.8), "r_gas": torch.full((b,), 287.0),
            "run_index": torch.zeros(b, dtype=torch.long)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--base-features", type=int, default=16)
    args = ap.parse_args()
    torch.manual_seed(0)
    shape = DEFAULT_GRID.shape
    model = SurrogateTask(depth=args.depth, base_features=args.base_features,
                          data_spec=fake_spec(DEFAULT_GRID))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    batch = random_batch(args.batch, shape)
    aug = Augmentation(roll=True, mirror=True, noise_std=0.05, va_channel=FIELDS_3D.index("va"),
                       va_offset=torch.zeros(shape[0]))

    step = training_step(model, opt, batch)

    t_aug = median_time(lambda: aug(batch), args.repeats)
    t_step = median_time(step, args.repeats)
    print(f"grid {shape} batch {args.batch}, U-Net depth {args.depth} width "
          f"{args.base_features}, torch threads {torch.get_num_threads()}")
    print(f"augmentation (roll + mirror + noise): {1e3 * t_aug:8.2f} ms per batch")
    print(f"training step (baseline)            : {1e3 * t_step:8.2f} ms per batch")
    print(f"augmentation / training step        : {100 * t_aug / t_step:8.2f} %  (target < 5 %)")


if __name__ == "__main__":
    main()
