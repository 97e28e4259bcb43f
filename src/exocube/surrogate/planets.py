"""Batch predictions for a NASA Exoplanet Archive ``pscomppars`` table.

Each row's archive columns map onto the eight required parameters; the
optional atmosphere parameters take their defaults (and the outputs say so).
A column the model does not use (a model on the climate drivers does not use
``st_logg``, ``st_met`` or ``st_mass``) may be empty. A row missing a value the
model needs, a value outside the valid range, or parameters
far outside the model's training data is skipped with its reason: nothing is
invented and no row stops the run. Outputs, written under temporary names and
renamed: one NetCDF store with a ``planet`` dimension, a CSV of the scalar
results and a CSV with every row's status and reason. An ensemble's uncertainty goes
with its values: the store gets a ``<field>_std`` variable beside each field and
scalar, the scalar table a ``<scalar>_std`` column beside each scalar (the members'
sample std, times the ensemble's ``std_scale``); a single model's outputs have none.
"""

from __future__ import annotations

import logging
import math
import os
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd
import xarray as xr

from exocube.errors import InputDataError
from exocube.params import ALL_NAMES, ARCHIVE_COLUMNS, OPTIONAL_NAMES, REQUIRED_NAMES, SPECS
from exocube.surrogate.prediction import Prediction
from exocube.surrogate.surrogate import Surrogate

log = logging.getLogger(__name__)

#: Archive column -> parameter name (the table of :data:`exocube.params.ARCHIVE_COLUMNS`).
COLUMN_MAP: dict[str, str] = {column: name for name, column in ARCHIVE_COLUMNS.items()}
NAME_COLUMN = "pl_name"
CHUNK = 32
T = TypeVar("T")


@dataclass
class BatchSummary:
    """What a catalogue batch did: counts, per-row reasons and the files written."""

    n_rows: int
    predicted: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    store: Path | None = None
    scalars_csv: Path | None = None
    summary_csv: Path | None = None

    @property
    def reason_counts(self) -> Counter[str]:
        """Skipped rows per kind of reason (the reason up to its first colon)."""
        return Counter(r.split(":", 1)[0] for r in self.skipped.values())


def read_pscomppars(path: Path) -> pd.DataFrame:
    """Read the archive's CSV (``#`` comment header), checking the needed columns."""
    try:
        df = pd.read_csv(path, comment="#", low_memory=False)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputDataError(f"cannot read the planet table {path}: {exc}") from exc
    missing = [c for c in (NAME_COLUMN, *COLUMN_MAP) if c not in df.columns]
    if missing:
        raise InputDataError(f"planet table {path} lacks the columns {missing}; it must be a "
                             "NASA Exoplanet Archive pscomppars table (pl_name, pl_rade, ...)")
    return df


def row_params(row: pd.Series, required: Sequence[str] = REQUIRED_NAMES
               ) -> tuple[dict[str, float] | None, str | None]:
    """The parameter mapping of one archive row, or why it cannot have one. A column of a
    parameter outside ``required`` (the fields the model uses) may be empty; its value is
    then left out."""
    missing = [c for c, n in COLUMN_MAP.items() if n in required and _is_missing(row[c])]
    if missing:
        return None, "missing value: " + ", ".join(
            f"{c} ({COLUMN_MAP[c]})" for c in missing)
    out = {}
    for col, name in COLUMN_MAP.items():
        if _is_missing(row[col]):
            continue
        spec, value = SPECS[name], float(row[col])
        if not spec.low <= value <= spec.high:
            return None, (f"out of domain: {col}={value:g} ({name} must lie in "
                          f"[{spec.low:g}, {spec.high:g}] {spec.units})")
        out[name] = value
    return out, None


def _is_missing(value: object) -> bool:
    if value is None:
        return True
    try:
        return math.isnan(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return True


def predict_catalogue(csv_path: Path, out_dir: Path, surrogate: Surrogate,
                      mode: str = "joint", allow_extrapolation: bool = False,
                      on_progress: Callable[[int], None] | None = None) -> BatchSummary:
    """Predict every usable planet of a pscomppars table; write the store and CSVs."""
    df = read_pscomppars(csv_path)
    model = surrogate.model_for(mode)  # fail before reading rows when the mode has no model
    required = model.required_fields
    summary = BatchSummary(n_rows=len(df))
    names = df[NAME_COLUMN].astype(str).tolist()
    usable: list[tuple[str, dict[str, float]]] = []
    for name, (_, row) in zip(names, df.iterrows(), strict=True):
        params, reason = row_params(row, required)
        if params is None:
            summary.skipped[name] = reason or "unusable row"
        else:
            usable.append((name, params))
    predictions: list[tuple[str, Prediction]] = []
    for start in range(0, len(usable), CHUNK):
        chunk = usable[start:start + CHUNK]
        results = surrogate.predict_many([p for _, p in chunk], mode, allow_extrapolation)
        for (name, _), res in zip(chunk, results, strict=True):
            if isinstance(res, Prediction):
                predictions.append((name, res))
            else:
                summary.skipped[name] = f"outside the training data: {res}"
        if on_progress is not None:
            on_progress(len(chunk))
    summary.predicted = [n for n, _ in predictions]
    out_dir.mkdir(parents=True, exist_ok=True)
    status = pd.DataFrame({
        NAME_COLUMN: names,
        "status": ["predicted" if n not in summary.skipped else "skipped" for n in names],
        "reason": [summary.skipped.get(n, "") for n in names]})
    summary.summary_csv = write_csv(status, out_dir / "summary.csv")
    summary.scalars_csv = write_csv(scalar_table(predictions), out_dir / "scalars.csv")
    if predictions:
        summary.store = write_store(predictions, out_dir / "predictions.nc")
    log.info("predicted %d of %d planets; skipped %d", len(predictions), len(df),
             len(summary.skipped))
    return summary


def scalar_table(predictions: list[tuple[str, Prediction]]) -> pd.DataFrame:
    """One row per predicted planet: inputs, scalars, domain flag and model identity."""
    rows = []
    for name, p in predictions:
        rows.append({NAME_COLUMN: name, **p.params, **_with_std(p.scalars, p.scalars_std),
                     "tidally_locked": p.tidally_locked, "out_of_domain": p.out_of_domain,
                     "hull_distance": p.hull_distance,
                     "defaulted": ";".join(p.defaulted), "model_id": p.model.id,
                     "dataset_version": p.dataset_version})
    return pd.DataFrame(rows, columns=None if rows else [NAME_COLUMN])


def write_store(predictions: list[tuple[str, Prediction]], path: Path) -> Path:
    """One NetCDF file with a ``planet`` dimension (written to a temporary name, renamed)."""
    first = predictions[0][1].to_dataset()
    preds = [p for _, p in predictions]
    data = {}
    outputs = [{**_with_std(p.fields, p.fields_std), **_with_std(p.scalars, p.scalars_std)}
               for p in preds]
    for var in first.data_vars:
        values = [np.asarray(o[var], dtype=np.float32) for o in outputs]
        data[var] = (("planet", *first[var].dims), np.stack(values), first[var].attrs)
    for pname in [n for n in ALL_NAMES if any(n in p.params for p in preds)]:
        data[pname] = ("planet", np.array([p.params.get(pname, np.nan) for p in preds]),
                       {"units": SPECS[pname].units, "long_name": SPECS[pname].long_name})
    data["tidally_locked"] = ("planet", np.array([p.tidally_locked for p in preds], np.int8))
    data["out_of_domain"] = ("planet", np.array([p.out_of_domain for p in preds], np.int8))
    data["hull_distance"] = ("planet", np.array([p.hull_distance for p in preds]),
                             {"long_name": "distance to the training runs' parameter hull",
                              "units": "encoded (each parameter spans [-1, 1])"})
    keep = ("Conventions", "source", "mode", "model_id", "model_name", "model_checkpoint",
            "dataset_version", "uncertainty_method", "ensemble_members",
            "ensemble_member_ids")
    attrs = {k: first.attrs[k] for k in keep if k in first.attrs}
    attrs["defaulted_params"] = ",".join(n for n in OPTIONAL_NAMES if n in preds[0].defaulted)
    out = xr.Dataset(data, coords={"planet": [n for n, _ in predictions], **first.coords},
                     attrs=attrs)
    tmp = path.with_name(path.name + ".tmp")
    out.to_netcdf(tmp, engine="netcdf4")
    os.replace(tmp, path)
    return path


def _with_std(values: Mapping[str, T], std: Mapping[str, T]) -> dict[str, T]:
    """``values``, each followed by its ``<name>_std`` where ``std`` has it."""
    out: dict[str, T] = {}
    for name, value in values.items():
        out[name] = value
        if name in std:
            out[name + "_std"] = std[name]
    return out


def write_csv(df: pd.DataFrame, path: Path, comments: Mapping[str, object] | None = None
              ) -> Path:
    """``df`` as CSV at ``path`` (temporary name, then rename), after ``# key: value`` lines."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as fh:
        fh.writelines(f"# {k}: {v}\n" for k, v in (comments or {}).items())
        df.to_csv(fh, index=False)
    os.replace(tmp, path)
    return path
