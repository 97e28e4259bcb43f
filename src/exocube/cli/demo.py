"""``exocube demo``: the main job on the embedded default data.

Each stage appends its step here: generate the default ensemble, ingest and
validate it, and evaluate a surrogate against the baselines on its held-out runs,
leaving the report. The surrogate is the shipped pre-trained one
(:data:`exocube.data.PRETRAINED_SURROGATE`, trained on this very ensemble, whose split
it carries), recorded in the catalogue; with ``--epochs N`` a new one is trained for N
epochs instead (a few minutes on 2 CPU cores, on any ``--runs`` or ``--data``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from exocube.cli.generate import progress_bar, summary
from exocube.config import get_settings
from exocube.errors import ConfigError
from exocube.gcm import read_manifest, run_ensemble, sample_runs

#: The default ensemble: the one the shipped surrogate was trained on.
DEMO_RUNS = 500
DEMO_SEED = 0


def demo(
    out: Annotated[Path, typer.Option("--out", help="Directory for all outputs.")] = Path(
        "demo-output"),
    runs: Annotated[int, typer.Option(
        "--runs", min=10, help="Size of the default ensemble (at least 10, so that the "
        "train/validation/test split has a few training runs).")] = DEMO_RUNS,
    epochs: Annotated[int, typer.Option(
        "--epochs", min=0, help="0: evaluate the shipped pre-trained surrogate (it needs "
        "the default --runs and data); N: train a new surrogate for N epochs (at most 4 "
        "minutes) and evaluate it.")] = 0,
    data: Annotated[str, typer.Option(
        "--data", help="'generated' (the built-in generator's default ensemble of --runs "
        "runs) or the folder of a shipped ExoPlaSim ensemble (MANIFEST.json, written by "
        "'exocube simulate ship').")] = "generated",
) -> None:
    """Run the main job on the built-in default ensemble and print where the outputs are."""
    if epochs == 0 and (runs != DEMO_RUNS or data != "generated"):
        raise ConfigError(f"the shipped surrogate was trained on the default {DEMO_RUNS}-run "
                          "generated ensemble; give --epochs N to train one on this data")
    files = _generated(out, runs) if data == "generated" else _shipped(Path(data))
    from exocube.cubes import ingest, validate_store

    store = str((out / "cube.zarr").resolve())
    ingested = ingest(files, store, progress=True)
    print(f"cube store: {store} version {ingested.version_id or '(unchanged)'}, "
          f"{len(ingested.added)} runs added, {len(ingested.unchanged)} already present")
    report = validate_store(store)
    print(f"validation: {len(report.runs)} runs, {len(report.quarantined)} quarantined, "
          f"lowest score {min(r.score for r in report.runs):.3f}")
    from exocube.ml import evaluate_checkpoint

    model = _trained(out, store, epochs) if epochs else _pretrained()
    evaluation = evaluate_checkpoint(model, store, out_dir=out / "evaluation",
                                     map_levels=[85000.0, 25000.0])
    for name, m in evaluation.summary.items():
        print(f"{name:>12}: lat-weighted RMSE ta = {m['rmse_ta']:.3f} K (test runs)")
    u = evaluation.scores.uncertainty
    if u is not None:
        ratios = ", ".join(f"{k} {r['spread_skill']:.2f}" for k, r in u["variables"].items())
        print(f"uncertainty ({u['method']}): spread-skill ratio {ratios} (test runs; 1 is "
              "calibrated)")
    print(f"report: {evaluation.report_path}")
    from exocube.cli.serve import demo_planets

    demo_planets(out / "planets")


def _pretrained() -> str:
    """The shipped surrogate, recorded in the catalogue (once); its file to evaluate."""
    from exocube.data import PRETRAINED_SURROGATE
    from exocube.ml import model_entry, read_provenance
    from exocube.surrogate import import_model

    model_id = import_model(get_settings().database_url, PRETRAINED_SURROGATE)
    prov = read_provenance(PRETRAINED_SURROGATE)
    print(f"surrogate: the shipped pre-trained model, catalogue model {model_id}, exported "
          f"{prov.get('exported_at', '?')} by exocube {prov.get('exocube_version', '?')}; "
          f"how it was trained: the 'note' in {PRETRAINED_SURROGATE / 'provenance.json'}")
    return str(model_entry(PRETRAINED_SURROGATE))


def _trained(out: Path, store: str, epochs: int) -> str:
    """A new small surrogate trained on ``store`` for ``epochs``; its best checkpoint."""
    from exocube.ml import train_main

    train_args = ["fit", "--data.zarr_root", store, "--model.constraints", "hard",
                  "--data.inputs", "v2", "--model.depth", "2",
                  "--model.base_features", "4", "--trainer.max_epochs", str(epochs),
                  "--trainer.max_time", "00:00:04:00", "--trainer.enable_progress_bar",
                  "false", "--trainer.default_root_dir", str(out / "train")]
    argv, sys.argv = sys.argv, ["exocube demo", *train_args]  # LightningCLI reads sys.argv;
    try:  # given as args beside the demo's own argv, it warns that both were given
        cli = train_main(None)
    finally:
        sys.argv = argv
    best = str(cli.trainer.checkpoint_callback.best_model_path)
    print(f"surrogate: {best} (trained here for {epochs} epochs)")
    return best


def _generated(out: Path, runs: int) -> list[str]:
    """The default ensemble of the built-in generator, generated into ``out/runs``."""
    specs = sample_runs(runs, DEMO_SEED)
    with progress_bar(len(specs), "generating the default ensemble") as advance:
        result = run_ensemble(specs, out / "runs", get_settings().database_url,
                              on_progress=advance)
    print(f"ensemble: {summary(result)}")
    return [str(r.path) for r in result.records]


def _shipped(folder: Path) -> list[str]:
    """The complete runs of a shipped ExoPlaSim ensemble (files checked by sha256)."""
    runs = read_manifest(folder)
    done = [r for r in runs if r.file is not None]
    flagged = sum(not r.equilibrated for r in done)
    print(f"ensemble: {folder}, {len(done)} of {len(runs)} ExoPlaSim runs complete "
          f"({flagged} not equilibrated)")
    return [str(folder / r.file) for r in done if r.file is not None]
