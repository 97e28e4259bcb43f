"""Tables (CSV from TAP services, whitespace-delimited paleoclimate tables):
schema, types and value ranges.

Each numeric column has two ranges. Outside the *physical* range a value cannot
be right (a negative period, an eccentricity of 1.5): that is an error. Outside
the *typical* range a value is unusual but may be genuine (a 415 K brown-dwarf
host, a 4.02e8-day orbit): that is a flag, listed with examples, at a small cost.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from exocube.acquire.quality import QualityReport

if TYPE_CHECKING:
    import pandas as pd

INF = math.inf


@dataclass(frozen=True)
class Column:
    """One column: type, whether it must exist, its physical and typical ranges."""

    name: str
    kind: str = "float"
    required: bool = False
    physical: tuple[float, float] = (-INF, INF)
    typical: tuple[float, float] = (-INF, INF)


@dataclass(frozen=True)
class TableSchema:
    """What a table must look like."""

    columns: tuple[Column, ...]
    key: str | None = None
    min_rows: int = 1
    sep: str = ","
    comment: str | None = "#"
    names: tuple[str, ...] | None = None
    extra_columns_allowed: bool = True
    max_examples: int = 3


def validate_table(path: Path, schema: TableSchema) -> QualityReport:
    """Quality of a delimited text table against ``schema``."""
    import pandas as pd  # heavy: imported when a table is checked

    report = QualityReport()
    try:
        frame = _read(path, schema)
    except (ValueError, OSError, pd.errors.ParserError, csv.Error, UnicodeDecodeError) as exc:
        report.error("table.parse", f"cannot parse as a table: {exc}", penalty=1.0)
        return report
    if len(frame) < schema.min_rows:
        report.error("table.rows", f"{len(frame)} data rows, expected at least "
                     f"{schema.min_rows}", penalty=1.0)
        return report
    _check_columns(frame, schema, report)
    if schema.key and schema.key in frame and frame[schema.key].duplicated().any():
        dups = frame.loc[frame[schema.key].duplicated(), schema.key].head(3).tolist()
        report.error("table.key", f"key column {schema.key!r} has duplicates, e.g. {dups}",
                     penalty=0.3)
    for col in schema.columns:
        if col.name in frame and col.kind in ("float", "int"):
            _check_numeric(frame, col, schema, report)
    return report


def _read(path: Path, schema: TableSchema) -> pd.DataFrame:
    import pandas as pd

    if schema.sep == "whitespace":
        return pd.read_csv(path, sep=r"\s+", comment=schema.comment, names=schema.names,
                           header=None if schema.names else "infer", dtype=str,
                           keep_default_na=True)
    return pd.read_csv(path, sep=schema.sep, comment=schema.comment, dtype=str,
                       names=schema.names, header=None if schema.names else "infer",
                       keep_default_na=True, low_memory=False)


def _check_columns(frame: pd.DataFrame, schema: TableSchema, report: QualityReport) -> None:
    present = set(frame.columns)
    for col in schema.columns:
        if col.required and col.name not in present:
            report.error("table.schema", f"required column {col.name!r} is missing",
                         penalty=0.5, column=col.name)
    if not schema.extra_columns_allowed:
        extra = sorted(present - {c.name for c in schema.columns})
        if extra:
            report.flag("table.schema", f"unexpected columns {extra[:5]}", penalty=0.02)


def _check_numeric(
    frame: pd.DataFrame, col: Column, schema: TableSchema, report: QualityReport
) -> None:
    import pandas as pd

    raw = frame[col.name]
    values = pd.to_numeric(raw, errors="coerce")
    bad_type = raw.notna() & values.isna()
    if bad_type.any():
        frac = float(bad_type.mean())
        report.error("table.type", f"column {col.name!r}: {int(bad_type.sum())} values are "
                     f"not numbers, e.g. {raw[bad_type].head(3).tolist()}",
                     penalty=0.2 + 0.8 * frac, column=col.name)
    if col.kind == "int":
        fractional = values.notna() & (values % 1 != 0)
        if fractional.any():
            report.error("table.type", f"column {col.name!r}: {int(fractional.sum())} values "
                         "are not integers", penalty=0.2, column=col.name)
    _check_range(frame, values, col, schema, report)


def _check_range(
    frame: pd.DataFrame, values: pd.Series, col: Column, schema: TableSchema,
    report: QualityReport,
) -> None:
    lo, hi = col.physical
    impossible = values.notna() & ((values < lo) | (values > hi))
    if impossible.any():
        frac = float(impossible.sum()) / max(int(values.notna().sum()), 1)
        report.error("table.range", f"column {col.name!r}: {int(impossible.sum())} values "
                     f"outside the physical range [{lo}, {hi}]",
                     penalty=min(0.5, 0.1 + frac), column=col.name,
                     examples=_examples(frame, values, impossible, schema))
    tlo, thi = col.typical
    unusual = values.notna() & ~impossible & ((values < tlo) | (values > thi))
    if unusual.any():
        report.flag("table.range", f"column {col.name!r}: {int(unusual.sum())} values "
                    f"outside the typical range [{tlo}, {thi}] (kept: may be genuine)",
                    penalty=0.01, column=col.name,
                    examples=_examples(frame, values, unusual, schema))


def _examples(
    frame: pd.DataFrame, values: pd.Series, mask: pd.Series, schema: TableSchema
) -> list[dict[str, object]]:
    """The most extreme offending values, each with the row's key."""
    picked = values[mask].abs().sort_values(ascending=False).index[: schema.max_examples]
    low = values[mask].sort_values().index[:1]
    rows = list(dict.fromkeys([*low, *picked]))[: schema.max_examples]
    key = schema.key if schema.key and schema.key in frame else None
    return [{"row": int(i), "key": frame.at[i, key] if key else None,
             "value": float(values.at[i])} for i in rows]
