"""Multi-fidelity training: held-out ExoPlaSim runs, four predictors side by side.

The complete runs of an ExoPlaSim ensemble (``--ensemble``: the ``RUN.nc`` files that
``exocube simulate exoplasim`` writes) are ingested into one store on the shipped
surrogate's grid (32 x 64, 20 levels from 2 bar to 1 hPa) and split into ``--folds``
folds by run. For each fold the held-out runs are scored with ``exocube evaluate``'s
per-run latitude-weighted RMSE (mean over held-out runs) of ``ts`` and ``ta`` for:

- ``multi-fidelity``: the shipped surrogate (pre-trained on 350 generator runs,
  ``exocube.data.PRETRAINED_SURROGATE``) fine-tuned on the fold's ExoPlaSim training runs
  (``--model.init_from``, same architecture, ``--epochs`` epochs);
- ``exoplasim-only``: the same architecture trained from scratch on those runs only;
- ``pca_gp``: PCA + Gaussian process fitted to those runs only;
- ``climatology``: the mean of those runs.

Every fold's validation run (for checkpoint selection) is one of its training-side runs,
left out of training. Each finished fold is kept in ``OUT/folds.json``, so a re-run
continues where it stopped; the table is the mean over folds (and every fold's row).

    .venv/bin/python benchmarks/multifidelity.py --ensemble ensembles/exoplasim32/out \\
        --out mf-bench [--folds 4] [--epochs 40] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

import numpy as np
from bench_catalog import private_catalogue

from exocube.cubes import ingest
from exocube.data import PRETRAINED_SURROGATE
from exocube.grid import DEFAULT_GRID
from exocube.ml import evaluate_checkpoint, train_main
from exocube.surrogate import catalogue_rows

ARMS = ("multi-fidelity", "exoplasim-only")
BASELINES = ("pca_gp", "climatology")
VARIABLES = ("ts", "ta")


def folds_of(run_ids: list[str], k: int, seed: int) -> list[dict[str, list[str]]]:
    """``k`` splits: each fold's test runs, one validation run and the rest for training."""
    order = list(np.random.default_rng(seed).permutation(sorted(run_ids)))
    out = []
    for i in range(k):
        test = order[i::k]
        rest = [r for r in order if r not in test]
        out.append({"train": rest[1:], "val": rest[:1], "test": test})
    return out


def train(store: str, split: dict, root: Path, db: str, epochs: int,
          init_from: str | None) -> str:
    """Train the shipped surrogate's architecture on ``split``; its best checkpoint."""
    known = [r for r in catalogue_rows(db) if r.checkpoint_uri.startswith(str(root))]
    if known:
        return known[-1].checkpoint_uri
    extra = ["--model.init_from", init_from] if init_from else []
    argv, sys.argv = sys.argv, ["multifidelity.py"]  # LightningCLI reads sys.argv
    try:
        train_main(["fit", "--config", "configs/surrogate_cpu_small.yaml",
                    "--data.zarr_root", store, "--data.database_url", db,
                    "--data.split", json.dumps(split), "--model.predict_std", "true",
                    "--trainer.max_epochs", str(epochs), "--trainer.max_time",
                    "00:00:30:00", "--trainer.default_root_dir", str(root), *extra])
    finally:
        sys.argv = argv
    (row,) = [r for r in catalogue_rows(db) if r.checkpoint_uri.startswith(str(root))]
    return row.checkpoint_uri


def score(ckpt: str, store: str, folder: Path, db: str, baselines: bool) -> dict[str, float]:
    ev = evaluate_checkpoint(ckpt, store, out_dir=folder, database_url=db,
                             with_baselines=baselines)
    fm = ev.metrics["field_metrics"]
    return {f"{m}/{v}": fm[m][v]["rmse_per_run_mean"] for m in ("unet", *BASELINES)
            for v in VARIABLES if m in fm}


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ensemble", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    files = sorted(str(p) for p in args.ensemble.glob("*.nc"))
    if len(files) < 2 * args.folds:
        raise SystemExit(f"{args.ensemble} holds {len(files)} complete runs; "
                         f"{args.folds} folds need at least {2 * args.folds}")
    out = args.out.resolve()
    db = private_catalogue(out)
    store = str(out / "cube.zarr")
    if not Path(store).exists():
        ingest(files, store, grid=DEFAULT_GRID, database_url=db)
    runs = [Path(f).stem for f in files]
    kept_path = out / "folds.json"
    kept = json.loads(kept_path.read_text()) if kept_path.is_file() else {}
    pretrained = str(PRETRAINED_SURROGATE / "member-0.ckpt")
    for i, split in enumerate(folds_of(runs, args.folds, args.seed)):
        key = f"fold{i}"
        if key in kept:
            continue
        row: dict[str, float] = {}
        for arm, init in zip(ARMS, (pretrained, None), strict=True):
            ckpt = train(store, split, out / key / arm, db, args.epochs, init)
            got = score(ckpt, store, out / key / arm / "evaluation", db,
                        baselines=arm == ARMS[0])
            row.update({f"{arm}/{v}": got[f"unet/{v}"] for v in VARIABLES})
            row.update({k: v for k, v in got.items() if not k.startswith("unet/")})
        kept[key] = {"test": split["test"], **row}
        tmp = kept_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(kept, indent=1))
        tmp.replace(kept_path)
    print(f"{len(runs)} ExoPlaSim runs, {args.folds} folds; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    names = (*ARMS, *BASELINES)
    print(f"{'fold':<8}" + "".join(f"{n + ' ' + v:>22}" for n in names for v in VARIABLES))
    for key, r in kept.items():
        print(f"{key:<8}" + "".join(f"{r[n + '/' + v]:>22.2f}" for n in names
                                    for v in VARIABLES))
    print(f"{'mean':<8}" + "".join(
        f"{np.mean([r[n + '/' + v] for r in kept.values()]):>22.2f}" for n in names
        for v in VARIABLES))
    print("per-run lat-weighted RMSE on the held-out ExoPlaSim runs (K), mean over runs")


if __name__ == "__main__":
    main()
