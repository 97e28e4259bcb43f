"""``exocube suggest-runs``: the next runs to simulate, where a deep ensemble is least sure."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from exocube.cli.serve import ModelOpt, SelectOpt

console = Console(highlight=False, soft_wrap=True)


def suggest_runs(
    n: Annotated[int, typer.Option("--n", help="How many runs to suggest (K).")] = 8,
    candidates: Annotated[int, typer.Option(
        "--candidates", help="Latin-hypercube candidates to score (M >= K).")] = 512,
    out: Annotated[Path, typer.Option(
        "--out", help="Design CSV to write (scores beside it, in <stem>.scores.csv).")] = Path(
        "suggested_runs.csv"),
    seed: Annotated[int, typer.Option(help="Seed of the candidates' hypercube.")] = 0,
    mode: Annotated[str, typer.Option(help="Outputs whose spread counts: datacube or "
                                           "scalar.")] = "datacube",
    prefix: Annotated[str, typer.Option(help="Run id prefix.")] = "al",
    model: ModelOpt = None,
    select: SelectOpt = None,
) -> None:
    """Pick the K candidate planets where the ensemble's members disagree most, spread out
    over the domain (greedy local penalisation; docs/surrogate.md), and write them as a
    design CSV for `exocube generate --from-csv` or `exocube simulate --design`."""
    from exocube.surrogate import ModelChoice, Surrogate, write_design
    from exocube.surrogate import suggest_runs as pick

    surrogate = Surrogate.from_catalogue(choice=ModelChoice.parse(model, select))
    console.print(surrogate.model_for(mode).info.describe())
    with console.status(f"scoring {candidates} candidates"):
        chosen = pick(surrogate, n, n_candidates=candidates, seed=seed, mode=mode,
                      prefix=prefix)
    meta = {"model": surrogate.model_for(mode).info.id, "mode": mode, "candidates": candidates,
            "seed": seed, "criterion": "ensemble spread, greedy local penalisation"}
    design, scores = write_design(chosen, out, meta)
    for s in chosen:
        console.print(f"{s.run_id}: uncertainty {s.uncertainty:.3f}, penalised "
                      f"{s.score:.3f}, hull distance {s.hull_distance:.3f}")
    console.print(f"wrote {design} and {scores}")
