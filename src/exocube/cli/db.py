"""``exocube db``: catalogue database commands."""

from __future__ import annotations

import typer

from exocube import catalog
from exocube.config import get_settings

app = typer.Typer(help="Catalogue database: migrations and status.", no_args_is_help=True)


@app.command()
def upgrade(
    revision: str = typer.Argument("head", help="Migration revision to upgrade to."),
    url: str | None = typer.Option(None, help="Database URL (default: settings)."),
) -> None:
    """Create or migrate the catalogue schema."""
    target = url or get_settings().database_url
    catalog.upgrade(target, revision)
    print(f"catalogue at revision {catalog.current_revision(target)}")


@app.command()
def current(url: str | None = typer.Option(None, help="Database URL (default: settings).")) -> None:
    """Print the catalogue's migration revision."""
    target = url or get_settings().database_url
    print(catalog.current_revision(target) or "empty (run: exocube db upgrade)")
