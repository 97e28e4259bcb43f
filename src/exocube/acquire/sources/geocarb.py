"""Paleoclimate CO2 reconstruction table (domain: geochemistry).

A GEOCARB-style table of atmospheric CO2 through the Phanerozoic, as published
by NOAA NCEI Paleoclimatology: a text file whose ``#`` lines are the NOAA
template's metadata and whose data lines are whitespace-separated columns with
a header row. The URL and the age/CO2 column names are settings. Validation
checks that both columns exist and are numeric, ages lie within the age of the
Earth (flagged beyond the Phanerozoic, 0 to 570 Myr), and CO2 is positive
(flagged outside 100 to 10000 ppm).
"""

from __future__ import annotations

from pathlib import Path

from exocube.acquire.options import AcquireOptions
from exocube.acquire.plan import PlanContext, PlannedFile
from exocube.acquire.quality import QualityReport
from exocube.acquire.quality.table import INF, Column, TableSchema, validate_table

NAME = "geocarb"
DOMAIN = "geochemistry"
DESCRIPTION = "Phanerozoic CO2 reconstruction (GEOCARB-style table, NOAA NCEI Paleo)"
MAX_REQUESTS_PER_SECOND: float | None = None  # the settings' limits only


def base_url(opts: AcquireOptions) -> str:
    return opts.geocarb.url


def schema(opts: AcquireOptions) -> TableSchema:
    o = opts.geocarb
    return TableSchema(
        columns=(Column(o.age_column, required=True, physical=(0, 4600), typical=(0, 570)),
                 Column(o.co2_column, required=True, physical=(0, INF),
                        typical=(100, 10000))),
        key=o.age_column, min_rows=5, sep="whitespace",
    )


async def plan(ctx: PlanContext) -> list[PlannedFile]:
    url = ctx.opts.geocarb.url
    files = [PlannedFile(source=NAME, domain=DOMAIN,
                         relpath=f"{NAME}/{url.rstrip('/').rsplit('/', 1)[-1]}", url=url,
                         media_type="text/plain", kind="table",
                         meta={"age_column": ctx.opts.geocarb.age_column,
                               "co2_column": ctx.opts.geocarb.co2_column})]
    await ctx.fill_sizes(files)
    return files


def validate(path: Path, item: PlannedFile) -> QualityReport:
    from exocube.acquire.options import GeocarbOptions

    opts = AcquireOptions(geocarb=GeocarbOptions(
        url=item.url, age_column=item.meta["age_column"], co2_column=item.meta["co2_column"]))
    return validate_table(path, schema(opts))
