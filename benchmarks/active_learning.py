"""Active learning: held-out error after rounds of suggested runs against as many random ones.

Both arms start from the same small generator ensemble (``--initial`` Latin-hypercube
runs for training, ``--val`` for validation, ``--test`` held-out runs; three seeds) and
the same deep ensemble trained on it (``--members`` small U-Nets; with ``--std-head``
one U-Net with a std head instead, its one-pass std the uncertainty). Each of ``--rounds``
rounds then adds ``--per-round`` training runs to each arm:

- ``suggested``: ``exocube.surrogate.suggest_runs`` on the arm's latest ensemble
  (``--candidates`` hypercube candidates, greedy local penalisation), written as a design
  CSV and read back as ``exocube generate --from-csv`` reads it;
- ``random``: a fresh Latin hypercube of the same size (seed 1000 + round), the baseline.

After each round every arm's ensemble is retrained from scratch on its runs (same seeds,
epochs and split of validation and test runs) and scored on the same held-out runs with
``exocube evaluate``'s per-run latitude-weighted RMSE (mean over test runs) of ``ts`` and
``ta``. The script prints the curve of both arms and their ratio, and keeps every
finished step in ``OUT/steps.json``, so a re-run continues where it stopped.

    .venv/bin/python benchmarks/active_learning.py --out al-bench [--initial 24] [--val 8]
        [--test 32] [--rounds 3] [--per-round 12] [--members 3] [--epochs 12]
        [--std-head] [--nlat 32 --nlon 64 --nlev 20]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from bench_catalog import private_catalogue

from exocube.cubes import ingest
from exocube.gcm import run_ensemble, runs_from, sample_runs
from exocube.grid import Grid
from exocube.ml import evaluate_checkpoint, train_main
from exocube.surrogate import (
    ModelChoice,
    Surrogate,
    catalogue_rows,
    make_ensemble,
    suggest_runs,
    write_design,
)

ARMS = ("suggested", "random")


def generate(specs, folder: Path, db: str, grid: Grid) -> list[str]:
    result = run_ensemble(specs, folder, db, grid=grid)
    return [str(r.path) for r in result.records]


def train_ensemble(store: str, split: dict, folder: Path, db: str, args) -> str:
    """Train ``args.members`` seeds on ``split`` and group them; the manifest path."""
    manifest = folder / "ensemble.json"
    if manifest.is_file():
        return str(manifest)
    ids = []
    head = ["--model.predict_std", "true"] if args.std_head else []
    for seed in range(1 if args.std_head else args.members):
        root = folder / f"member{seed}"
        argv, sys.argv = sys.argv, ["active_learning.py"]  # LightningCLI reads sys.argv
        try:
            train_main(["fit", "--config", "configs/surrogate_cpu_small.yaml",
                        "--data.zarr_root", store, "--data.database_url", db,
                        "--data.split", json.dumps(split), "--model.depth", "2",
                        "--model.base_features", "4", "--trainer.max_epochs",
                        str(args.epochs), "--trainer.max_time", "00:00:20:00",
                        "--seed_everything", str(seed), "--trainer.default_root_dir",
                        str(root), *head])
        finally:
            sys.argv = argv
        (row,) = [r for r in catalogue_rows(db) if r.checkpoint_uri.startswith(str(root))]
        ids.append(int(row.id))
    make_ensemble(db, ids, folder.name + "-" + folder.parent.name, manifest_path=manifest)
    return str(manifest)


def score(manifest: str, store: str, folder: Path, db: str) -> dict[str, float]:
    ev = evaluate_checkpoint(manifest, store, out_dir=folder / "evaluation",
                             database_url=db)
    fm = ev.metrics["field_metrics"]
    return {f"{m}_{v}": fm[m][v]["rmse_per_run_mean"] for m in ("unet", "pca_gp")
            for v in ("ts", "ta") if m in fm}


def ensemble_id(db: str, manifest: str) -> int:
    return max(int(r.id) for r in catalogue_rows(db) if r.checkpoint_uri == manifest)


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--initial", type=int, default=24)
    ap.add_argument("--val", type=int, default=8)
    ap.add_argument("--test", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--per-round", type=int, default=12)
    ap.add_argument("--members", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--candidates", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--std-head", action="store_true",
                    help="one std-head network per arm and round instead of --members")
    ap.add_argument("--nlat", type=int, default=32)
    ap.add_argument("--nlon", type=int, default=64)
    ap.add_argument("--nlev", type=int, default=20)
    args = ap.parse_args()
    grid = Grid.with_levels(args.nlat, args.nlon, args.nlev)
    out = args.out.resolve()
    db = private_catalogue(out)
    steps_path = out / "steps.json"
    steps = json.loads(steps_path.read_text()) if steps_path.is_file() else {}

    def keep(key: str, value: dict) -> None:
        steps[key] = value
        tmp = steps_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(steps, indent=1))
        tmp.replace(steps_path)

    init = sample_runs(args.initial, args.seed)
    val = sample_runs(args.val, args.seed + 1)
    test = sample_runs(args.test, args.seed + 2)
    base_files = generate([*init, *val, *test], out / "runs", db, grid)
    split = {"train": [r.run_id for r in init], "val": [r.run_id for r in val],
             "test": [r.run_id for r in test]}
    stores = {arm: str(out / arm / "cube.zarr") for arm in ARMS}
    for arm in ARMS:
        ingest(base_files, stores[arm], database_url=db)
    first = train_ensemble(stores["suggested"], split, out / "round0", db, args)
    if "round0" not in steps:
        keep("round0", {"n_train": len(split["train"]),
                        **score(first, stores["suggested"], out / "round0", db)})
    latest = {arm: first for arm in ARMS}
    train = {arm: list(split["train"]) for arm in ARMS}
    for r in range(1, args.rounds + 1):
        for arm in ARMS:
            folder = out / arm / f"round{r}"
            folder.mkdir(parents=True, exist_ok=True)
            if arm == "suggested":
                design = folder / "suggested.csv"
                if not design.is_file():
                    surrogate = Surrogate.from_catalogue(
                        db, choice=ModelChoice("model", str(ensemble_id(db, latest[arm]))))
                    chosen = suggest_runs(surrogate, args.per_round, args.candidates,
                                          seed=args.seed + r, prefix=f"al{r}")
                    write_design(chosen, design, {"round": r})
                specs = runs_from(None, 0, design)
            else:
                specs = sample_runs(args.per_round, 1000 + r)
            ingest(generate(specs, out / "runs", db, grid), stores[arm], database_url=db)
            train[arm] += [s.run_id for s in specs]
            latest[arm] = train_ensemble(stores[arm], {**split, "train": train[arm]}, folder,
                                         db, args)
            key = f"{arm}/round{r}"
            if key not in steps:
                keep(key, {"n_train": len(train[arm]),
                           **score(latest[arm], stores[arm], folder, db)})
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'round':>5} {'runs':>5} " + " ".join(f"{a + ' ' + v:>16}" for a in ARMS
                                                  for v in ("ts", "ta")) + "   ta ratio")
    r0 = steps["round0"]
    print(f"{0:>5} {r0['n_train']:>5} " + " ".join(
        f"{r0['unet_' + v]:>16.3f}" for _ in ARMS for v in ("ts", "ta")))
    for r in range(1, args.rounds + 1):
        got = [steps[f"{a}/round{r}"] for a in ARMS]
        print(f"{r:>5} {got[0]['n_train']:>5} " + " ".join(
            f"{g['unet_' + v]:>16.3f}" for g in got for v in ("ts", "ta"))
            + f"   {got[0]['unet_ta'] / got[1]['unet_ta']:.3f}")
    print("per-run lat-weighted RMSE of the ensemble mean on the same held-out runs (K); "
          "ta ratio = suggested / random (below 1: suggested runs help more)")


if __name__ == "__main__":
    main()
