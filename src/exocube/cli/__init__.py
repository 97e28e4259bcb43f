"""The ``exocube`` command line: one Typer app wiring the stages.

Each stage's commands live in their own module in this package and are
registered below. Errors from the exception hierarchy are printed without a
traceback and exit with status 1; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import logging
import sys

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape

from exocube import __version__
from exocube.cli import acquire, db, ifu_campaign
from exocube.cli import demo as demo_cmd
from exocube.cli import generate as generate_cmd
from exocube.cli import ifu as ifu_cmd
from exocube.cli import ingest as ingest_cmd
from exocube.cli import models as models_cmd
from exocube.cli import serve as serve_cmd
from exocube.cli import simulate as simulate_cmd
from exocube.cli import suggest as suggest_cmd
from exocube.cli import train as train_cmd
from exocube.errors import ExocubeError

app = typer.Typer(
    name="exocube",
    help="Exoplanet climate simulations and telescope datacubes: acquire, generate, ingest, "
    "train, serve, infer.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
err_console = Console(stderr=True)
_state = {"debug": False}


def _version(value: bool) -> None:
    if value:
        print(f"exocube {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="More log output (-vv)."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for exocube errors."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """exocube command line."""
    _state["debug"] = debug
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(
        level=level, format="%(message)s", handlers=[RichHandler(console=err_console)], force=True
    )


app.add_typer(db.app, name="db")
ifu_cmd.app.add_typer(ifu_campaign.app, name="campaign")
ifu_cmd.app.command()(ifu_campaign.worker)
app.add_typer(ifu_cmd.app, name="ifu")
app.add_typer(models_cmd.app, name="models")
app.add_typer(simulate_cmd.app, name="simulate")
app.command()(ingest_cmd.ingest)
app.command()(ingest_cmd.validate)
app.command(context_settings=train_cmd.PASS_THROUGH)(train_cmd.train)
app.command()(train_cmd.evaluate)
app.command()(acquire.acquire)
app.command()(generate_cmd.generate)
app.command()(demo_cmd.demo)
app.command()(serve_cmd.serve)
app.command()(serve_cmd.predict)
app.command("suggest-runs")(suggest_cmd.suggest_runs)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``exocube`` console script."""
    try:
        app(args=argv, prog_name="exocube", standalone_mode=True)
    except ExocubeError as exc:
        if _state["debug"]:
            raise
        # The message is text, not markup: '[params]' or '[nii]' must print as written.
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False,
                          markup=True)
        sys.exit(1)
