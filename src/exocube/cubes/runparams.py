"""A run's parameter vector, gathered from a CSV row, a sidecar file, the NetCDF
attributes or the catalogue (in that order of precedence), plus derived values."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from exocube.catalog import Simulation, session_scope
from exocube.errors import InputDataError, ParameterError
from exocube.params import ALL_NAMES, REQUIRED_NAMES, validate_params
from exocube.physics import R_DRY_AIR, surface_gravity

EXTRA = ("gravity_m_s2", "tidally_locked", "r_gas_j_kg_k")
WHERE = ("give them as global attributes of the file, in a sidecar <file>.params.json, in a "
         "CSV passed with --params (column run_id), or in the catalogue's simulations table")


def read_params_csv(path: str | Path) -> dict[str, dict[str, float]]:
    """Rows of a parameter CSV keyed by its ``run_id`` column."""
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise InputDataError(f"parameter CSV {path}: cannot be read ({exc})") from exc
    if "run_id" not in frame.columns:
        raise InputDataError(f"parameter CSV {path} has no run_id column; columns are "
                             f"{list(frame.columns)}")
    known = [c for c in frame.columns if c in ALL_NAMES or c in EXTRA]
    return {str(row["run_id"]): {c: float(row[c]) for c in known if pd.notna(row[c])}
            for _, row in frame.iterrows()}


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
    """Merge the parameter sources, check ranges, add gravity, tidal locking and R."""
    layers = [csv_rows.get(run_id, {}), sidecar(path), attrs]
    merged = _merge(layers)
    if any(n not in merged for n in REQUIRED_NAMES):
        merged = _merge([*layers, from_catalogue(database_url, run_id)])
    missing = [n for n in REQUIRED_NAMES if n not in merged]
    if missing:
        raise InputDataError(f"{path}: run {run_id!r} is missing parameters {missing}; {WHERE}")
    try:
        params = validate_params({k: merged[k] for k in ALL_NAMES if k in merged})
    except ParameterError as exc:
        raise InputDataError(f"{path}: run {run_id!r}: {exc}") from None
    params["gravity_m_s2"] = float(merged.get("gravity_m_s2", surface_gravity(
        params["mass_earth"], params["radius_earth"])))
    params["tidally_locked"] = float(merged.get("tidally_locked", math.isclose(
        params["rotation_period_days"], params["orbital_period_days"], rel_tol=1e-6)))
    params["r_gas_j_kg_k"] = float(merged.get("r_gas_j_kg_k", R_DRY_AIR))
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
