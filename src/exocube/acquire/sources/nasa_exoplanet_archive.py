"""NASA Exoplanet Archive (domain: astronomy).

The Planetary Systems Composite Parameters table (``pscomppars``, one row per
confirmed planet) through the archive's TAP service, synchronous endpoint,
CSV format: ``<base>/TAP/sync?query=select <columns> from pscomppars&format=csv``.
An explicit column list (by default the 84 columns of the interactive table
download) keeps live answers and stored snapshots comparable; ``select *``
would return the table's longer full column list.

Validation checks the column list, types and ranges. The table holds extreme
but genuine values (a 415 K brown-dwarf host, a 57000 K white dwarf, a
4.02e8-day orbit, a 0.0907-day pulsar planet): they are flagged, not rejected.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

from exocube.acquire.options import AcquireOptions
from exocube.acquire.plan import PlanContext, PlannedFile
from exocube.acquire.quality import QualityReport
from exocube.acquire.quality.table import INF, Column, TableSchema, validate_table

NAME = "nasa_exoplanet_archive"
DOMAIN = "astronomy"
DESCRIPTION = "NASA Exoplanet Archive TAP: pscomppars (composite planet parameters), CSV"
MAX_REQUESTS_PER_SECOND: float | None = None  # the settings' limits only

RANGES: tuple[Column, ...] = (
    Column("pl_orbper", physical=(0, INF), typical=(0.1, 1e6)),
    Column("pl_orbsmax", physical=(0, INF), typical=(1e-3, 1e4)),
    Column("pl_rade", physical=(0, INF), typical=(0.3, 30)),
    Column("pl_bmasse", physical=(0, INF), typical=(0.05, 3e4)),
    Column("pl_orbeccen", physical=(0, 1), typical=(0, 0.95)),
    Column("pl_insol", physical=(0, INF), typical=(1e-3, 3e4)),
    Column("pl_eqt", physical=(0, INF), typical=(50, 3500)),
    Column("st_teff", physical=(0, 1e6), typical=(2300, 50000)),
    Column("st_rad", physical=(0, INF), typical=(0.05, 100)),
    Column("st_mass", physical=(0, INF), typical=(0.08, 10)),
    Column("st_met", physical=(-6, 2), typical=(-1.0, 0.6)),
    Column("st_logg", physical=(-1, 10), typical=(2.0, 5.5)),
    Column("ra", physical=(0, 360)),
    Column("dec", physical=(-90, 90)),
    Column("sy_dist", physical=(0, INF), typical=(1, 1e4)),
    Column("disc_year", kind="int", physical=(1900, 2100), typical=(1988, 2100)),
    Column("sy_snum", kind="int", physical=(1, 10)),
    Column("sy_pnum", kind="int", physical=(1, 20)),
)


def base_url(opts: AcquireOptions) -> str:
    return opts.nasa_exoplanet_archive.base_url


def tap_url(opts: AcquireOptions) -> str:
    """The TAP sync URL for the configured table and columns."""
    o = opts.nasa_exoplanet_archive
    query = f"select {','.join(o.columns)} from {o.table}"
    return f"{o.base_url.rstrip('/')}/TAP/sync?" + urlencode({"query": query, "format": "csv"})


def schema(columns: list[str]) -> TableSchema:
    """Every requested column is required; known columns carry types and ranges."""
    ranged = {c.name: c for c in RANGES}
    cols = tuple(
        Column(name, ranged[name].kind, True, ranged[name].physical, ranged[name].typical)
        if name in ranged else Column(name, kind="str", required=True)
        for name in columns
    )
    return TableSchema(columns=cols, key="pl_name" if "pl_name" in columns else None,
                       min_rows=1)


async def plan(ctx: PlanContext) -> list[PlannedFile]:
    o = ctx.opts.nasa_exoplanet_archive
    return [PlannedFile(
        source=NAME, domain=DOMAIN, relpath=f"{NAME}/{o.table}.csv", url=tap_url(ctx.opts),
        media_type="text/csv", kind="table", meta={"columns": list(o.columns)},
    )]


def validate(path: Path, item: PlannedFile) -> QualityReport:
    return validate_table(path, schema(item.meta["columns"]))
