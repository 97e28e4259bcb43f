"""``exocube train`` (LightningCLI pass-through) and ``exocube evaluate``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True,
                "help_option_names": []}


def train(ctx: typer.Context) -> None:
    """Train the surrogate: `exocube train fit --config cfg.yaml` (LightningCLI; try --help)."""
    from exocube.ml import train_main as main

    sys.argv = ["exocube train", *ctx.args]
    main(None)


def evaluate(
    checkpoint: Annotated[Path, typer.Argument(exists=True, dir_okay=False,
                                               help="Model checkpoint (.ckpt) or ensemble "
                                               "manifest (.json).")],
    store: Annotated[str, typer.Option("--store", help="Cube store URL (path or s3://...).")],
    version: Annotated[str | None, typer.Option(help="Store version (default: latest).")] = None,
    out: Annotated[Path, typer.Option(help="Directory for the JSON and report.")] = Path(
        "evaluation"),
    levels: Annotated[str, typer.Option(
        help="Pressure levels [Pa] for the maps, comma-separated.")] = "85000,50000,25000",
    baselines: Annotated[bool, typer.Option(help="Also fit and score the baselines.")] = True,
    split: Annotated[str, typer.Option(help="Which split of the checkpoint to score.")] = "test",
) -> None:
    """Score a checkpoint on its held-out runs against the baselines; write JSON and a report."""
    from exocube.ml import evaluate_checkpoint

    result = evaluate_checkpoint(
        str(checkpoint), store, version=version, out_dir=out,
        map_levels=[float(x) for x in levels.split(",") if x.strip()],
        with_baselines=baselines, split=split)
    print(f"wrote {result.json_path} and {result.report_path}")
    for name, m in result.summary.items():
        print(f"{name:>12}: lat-weighted RMSE ta = {m['rmse_ta']:.3f} K")
