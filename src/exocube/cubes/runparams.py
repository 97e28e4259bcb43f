"""A run's parameter vector, gathered from a CSV row, a sidecar file, the NetCDF
attributes or the catalogue (in that order of precedence), plus derived values."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from exocube.catalog import Simulation, session_scope
from exocube.errors import InputDataError, ParameterError
from exocube.params import ALL_NAMES, REQUIRED_NAMES, parameter_columns, validate_params
from exocube.planet import derive

EXTRA = ("gravity_m_s2", "tidally_locked", "r_gas_j_kg_k")
WHERE = ("give them as global attributes of the file, in a sidecar <file>.params.json, in a "
         "CSV passed with --params (column file or run_id), or in the catalogue's "
         "simulations table")


def read_params_csv(path: str | Path, files: Sequence[str] = ()
                    ) -> dict[str, dict[str, float]]:
    """Rows of a parameter CSV keyed by run id, or by the resolved path of their file.

    Parameter columns take the names of :func:`exocube.params.parameter_columns`
    (the parameter's own name, else a NASA Exoplanet Archive or earlier-system
    alias). A ``file`` column names each row's file as a user writes it: a path relative to
    the CSV's folder or to the working directory, an absolute path, or a bare file
    name that is unique among ``files`` (the ingest's files). Every row must match
    one of ``files`` and every one of ``files`` must have a row. Without a ``file``
    column, rows are keyed by their ``run_id`` column (the run id in the file's
    attributes, or its name without suffix).
    """
    frame = _read_frame(path)
    known = {**parameter_columns(frame.columns), **{c: c for c in EXTRA if c in frame.columns}}
    rows = [{n: _number(row[c]) for n, c in known.items() if pd.notna(row[c])}
            for row in frame.to_dict("records")]
    if "file" in frame.columns:
        keys = match_files(path, [str(v) for v in frame["file"]], files)
    elif "run_id" in frame.columns:
        keys = [str(v) for v in frame["run_id"]]
        _no_duplicates(path, "run_id", keys, keys)
    else:
        raise InputDataError(
            f"parameter CSV {path} has neither a file nor a run_id column; name each row's "
            f"file in a column 'file' (or its run id in 'run_id'). Columns are "
            f"{list(frame.columns)}")
    return dict(zip(keys, rows, strict=True))


def _read_frame(path: str | Path) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, skipinitialspace=True)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise InputDataError(f"parameter CSV {path}: cannot be read ({exc})") from exc
    return frame.rename(columns=lambda c: str(c).strip())


def match_files(csv: str | Path, names: Sequence[str], files: Sequence[str]) -> list[str]:
    """The resolved path of the ingested file each ``file`` cell names (see above)."""
    by_path = {str(Path(f).resolve()): str(Path(f).resolve()) for f in files}
    by_name: dict[str, list[str]] = {}
    for f in by_path:
        by_name.setdefault(Path(f).name, []).append(f)
    bases = (Path(csv).resolve().parent, Path.cwd())
    keys, unmatched = [], []
    for index, name in enumerate(names):
        key = _match_one(csv, index, name.strip(), bases, by_path, by_name)
        if key is None:
            unmatched.append(f"row {index + 1} ({name!r})")
        keys.append(key)
    if unmatched:
        raise InputDataError(
            f"parameter CSV {csv}: {', '.join(unmatched)} name no file being ingested; the "
            f"file column takes a path relative to the CSV's folder ({bases[0]}) or the "
            f"working directory, an absolute path, or a file name. Fix the row, remove it, "
            f"or add the file to the command")
    _no_duplicates(csv, "file", keys, names)
    missing = sorted(set(by_path) - set(keys))
    if missing:
        raise InputDataError(
            f"parameter CSV {csv} has no row for {len(missing)} file(s) being ingested: "
            f"{', '.join(missing[:10])}{' ...' if len(missing) > 10 else ''}; add a row "
            f"for each, or leave them out of the command")
    return [k for k in keys if k is not None]


def _match_one(csv: str | Path, index: int, name: str, bases: Sequence[Path],
               by_path: Mapping[str, str], by_name: Mapping[str, list[str]]) -> str | None:
    if not name:
        raise InputDataError(f"parameter CSV {csv}: row {index + 1} has an empty file cell")
    found = {by_path[c] for c in (str((b / name).resolve()) for b in bases) if c in by_path}
    if not found and Path(name).name == name:
        found = set(by_name.get(name, []))
    if len(found) > 1:
        raise InputDataError(
            f"parameter CSV {csv}: row {index + 1} ({name!r}) could mean any of "
            f"{sorted(found)}; give the path relative to the CSV's folder")
    return found.pop() if found else None


def _no_duplicates(csv: str | Path, column: str, keys: Sequence[str | None],
                   names: Sequence[str]) -> None:
    first: dict[str, int] = {}
    for index, key in enumerate(keys):
        if key is None:
            continue
        if key in first:
            raise InputDataError(
                f"parameter CSV {csv}: rows {first[key] + 1} and {index + 1} both give the "
                f"{column} {names[index]!r} ({key}); keep one row per run")
        first[key] = index


def sidecar(path: str) -> dict[str, Any]:
    """Parameters from ``<file>.params.json`` or ``<stem>.params.json`` beside the file."""
    p = Path(path)
    for candidate in (p.with_name(p.name + ".params.json"), p.with_suffix(".params.json")):
        if candidate.is_file():
            try:
                return dict(json.loads(candidate.read_text()))
            except json.JSONDecodeError as exc:
                raise InputDataError(f"sidecar {candidate}: not valid JSON ({exc})") from exc
    return {}


def from_catalogue(database_url: str | None, run_id: str) -> dict[str, Any]:
    if database_url is None:
        return {}
    with session_scope(database_url) as session:
        row = session.scalars(sa.select(Simulation).where(Simulation.run_id == run_id)
                              ).one_or_none()
        return dict(row.parameters) if row is not None else {}


def resolve(run_id: str, path: str, attrs: Mapping[str, Any],
            csv_rows: Mapping[str, Mapping[str, float]], database_url: str | None
            ) -> dict[str, float]:
    """Merge the parameter sources, check ranges, add gravity, tidal locking and R.

    ``csv_rows`` (from :func:`read_params_csv`) is keyed by the file's resolved path
    or by run id. ``gravity_m_s2``, ``tidally_locked`` and ``r_gas_j_kg_k`` given by a
    source are kept; the ones not given come from :func:`exocube.planet.derive`, the
    rule a prediction request uses, so a store and a request agree on the same planet.
    A locked planet rotates once per orbit: its ``rotation_period_days`` is the
    orbital period, as in a request.
    """
    layers = [csv_rows.get(path, csv_rows.get(run_id, {})), sidecar(path), attrs]
    merged = _merge(layers)
    if any(n not in merged for n in REQUIRED_NAMES):
        merged = _merge([*layers, from_catalogue(database_url, run_id)])
    missing = [n for n in REQUIRED_NAMES if n not in merged]
    if missing:
        raise InputDataError(f"{path}: run {run_id!r} is missing parameters {missing}; {WHERE}")
    try:
        params = validate_params({k: merged[k] for k in ALL_NAMES if k in merged})
        planet = derive(params)
    except ParameterError as exc:
        raise InputDataError(f"{path}: run {run_id!r}: {exc}") from None
    params["gravity_m_s2"] = float(merged.get("gravity_m_s2", planet.gravity))
    params["tidally_locked"] = float(merged.get("tidally_locked", planet.tidally_locked))
    params["r_gas_j_kg_k"] = float(merged.get("r_gas_j_kg_k", planet.r_gas))
    if params["tidally_locked"] == 1.0:
        params["rotation_period_days"] = params["orbital_period_days"]
    return params


def _merge(layers: list[Mapping[str, Any]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for layer in reversed(layers):
        for key in (*ALL_NAMES, *EXTRA):
            if key in layer:
                out[key] = _number(layer[key])
    return out


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
