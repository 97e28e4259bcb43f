"""``exocube models``: list the catalogue's models, promote one for a mode, unpromote,
group trained models into a deep ensemble, export one as a folder and import one."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from exocube.config import get_settings

app = typer.Typer(help="Trained models in the catalogue: list, promote, unpromote, ensemble, "
                  "export, import. "
                  "A promoted "
                  "model answers its modes in `exocube serve` and `exocube predict` until "
                  "unpromoted; without a promotion the newest model answers.",
                  no_args_is_help=True)
console = Console()
UrlOpt = Annotated[str | None, typer.Option(help="Database URL (default: settings).")]
ModesOpt = Annotated[list[str] | None, typer.Option(
    "--mode", help="scalar, datacube or joint (repeat; default: every mode).")]


@app.command("list")
def list_models(url: UrlOpt = None) -> None:
    """Every catalogue model, newest first, with its metrics and promotions."""
    from exocube.surrogate import catalogue_rows, promotions, unusable_reason

    target = url or get_settings().database_url
    rows = catalogue_rows(target)
    promoted = promotions(target)
    lines = [("id", "name", "created (UTC)", "dataset", "promoted for", "metrics",
              "checkpoint")]
    for r in rows:
        metrics = ", ".join(f"{k}={v:.4g}" for k, v in sorted((r.metrics or {}).items())
                            if isinstance(v, int | float))
        modes = ",".join(m for m, mid in sorted(promoted.items()) if mid == r.id)
        lines.append((str(r.id), r.name, f"{r.created_at:%Y-%m-%d %H:%M}" if r.created_at
                      else "", r.dataset_version or "", modes or "-", metrics or "-",
                      "missing: " + r.checkpoint_uri if unusable_reason(r) else r.checkpoint_uri))
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]) - 1)]
    for line in lines:
        cells = [c.ljust(w) for c, w in zip(line, widths, strict=False)] + [line[-1]]
        console.print("  ".join(cells), highlight=False, soft_wrap=True, markup=False)
    default = [m for m in ("scalar", "datacube", "joint") if m not in promoted]
    if default:
        console.print(f"modes without a promotion ({', '.join(default)}) are answered by the "
                      "newest model that can answer them", highlight=False, soft_wrap=True)


@app.command()
def promote(
    model_id: Annotated[int, typer.Argument(help="The catalogue id of the model.")],
    mode: ModesOpt = None,
    url: UrlOpt = None,
) -> None:
    """Make a model answer its modes (or --mode ones) until unpromoted."""
    from exocube.surrogate import promote as promote_model

    modes = promote_model(url or get_settings().database_url, model_id, mode or None)
    console.print(f"model {model_id} promoted for {', '.join(modes)}; a running server "
                  "switches after POST /admin/reload", highlight=False)


@app.command()
def unpromote(mode: ModesOpt = None, url: UrlOpt = None) -> None:
    """Remove the promotions (of --mode ones): the newest model answers again."""
    from exocube.surrogate import unpromote as unpromote_models

    removed = unpromote_models(url or get_settings().database_url, mode or None)
    if not removed:
        console.print("no promotion to remove", highlight=False)
    for m, mid in sorted(removed.items()):
        console.print(f"mode {m}: model {mid} is no longer promoted", highlight=False)


@app.command()
def ensemble(
    model_ids: Annotated[list[int], typer.Argument(
        help="The catalogue ids of the members: at least 2 models trained with `exocube "
        "train fit --seed_everything K` for several K, or one trained with a std head "
        "(--model.predict_std true), to calibrate it with --calibrate.")],
    name: Annotated[str, typer.Option(help="The ensemble's catalogue name.")] = "ensemble",
    manifest: Annotated[Path | None, typer.Option(
        help="Where to write its manifest (default: <home>/ensembles/NAME.json).")] = None,
    calibrate: Annotated[bool, typer.Option(
        help="Scale each variable's spread so its spread-skill ratio is 1 on the members' "
        "validation runs.")] = False,
    url: UrlOpt = None,
) -> None:
    """Record trained models as one deep ensemble (its predictions are the members' mean,
    with their standard deviation as <var>_std), or one std-head network with its
    calibration."""
    from exocube.surrogate import make_ensemble

    model_id = make_ensemble(url or get_settings().database_url, model_ids, name, manifest,
                             calibrate)
    console.print(f"ensemble {model_id} ({name}) of models {', '.join(map(str, model_ids))} "
                  "recorded; it answers when promoted (`exocube models promote "
                  f"{model_id}`) or chosen (--model {model_id})", highlight=False,
                  soft_wrap=True)


@app.command()
def export(
    model_id: Annotated[int, typer.Argument(help="The catalogue id of the model.")],
    out: Annotated[Path, typer.Option(help="The new folder to write.")],
    note: Annotated[str, typer.Option(
        help="Free text kept in its provenance.json (e.g. the training command).")] = "",
    url: UrlOpt = None,
) -> None:
    """Write a catalogue model (a network or an ensemble) as a self-contained folder:
    its networks' weights, its manifest and its provenance (docs/surrogate.md)."""
    from exocube.surrogate import export_catalogue_model

    entry = export_catalogue_model(url or get_settings().database_url, model_id, out, note)
    console.print(f"model {model_id} exported to {out} (load {entry.name}); record it "
                  f"elsewhere with `exocube models import {out}`", highlight=False,
                  soft_wrap=True)


@app.command("import")
def import_(
    folder: Annotated[Path, typer.Argument(help="An exported model's folder.")],
    name: Annotated[str | None, typer.Option(
        help="Its catalogue name (default: the exported name).")] = None,
    url: UrlOpt = None,
) -> None:
    """Record an exported model in the catalogue, after checking its files' SHA-256 and
    that its networks load."""
    from exocube.surrogate import import_model

    model_id = import_model(url or get_settings().database_url, folder, name)
    console.print(f"{folder} recorded as model {model_id}; it answers when newest, promoted "
                  f"(`exocube models promote {model_id}`) or chosen (--model {model_id})",
                  highlight=False, soft_wrap=True)
