"""Where an ExoPlaSim ensemble stands: one row per run of its ``ensemble.json``.

``ensemble_status(out)`` reads the ensemble directory written by ``exocube simulate
exoplasim`` (``ensemble.json`` and each run's ``runs/<run_id>/state.json``) and never
writes; it works while the ensemble runs. ``markdown_table`` renders the rows as the
table of docs/gcm.md. A run with no state file yet is "not started".
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exocube.errors import InputDataError
from exocube.gcm.exoplasim import RunState
from exocube.gcm.exoplasim_ensemble import MANIFEST as ENSEMBLE_MANIFEST


@dataclass(frozen=True)
class RunStatus:
    """One run: its planet, how far it got, and its equilibrium diagnostics."""

    run_id: str
    tidally_locked: bool
    insolation_earth: float
    stellar_teff_k: float
    surface_pressure_bar: float
    pco2_bar: float
    rotation_period_days: float
    status: str
    years_done: int
    years_target: int
    equilibrated: bool | None
    ts_global_mean_k: float | None
    toa_net_flux_w_m2: float | None
    model_hours: float
    error: str | None


def read_json(path: Path, what: str) -> dict[str, Any]:
    """A JSON document, or an error naming ``what`` and the path."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputDataError(f"{what} {path} is unreadable ({exc})") from exc


def run_state(out: Path, run_id: str) -> RunState:
    """The run's state file, or a "not started" state when there is none."""
    path = out / "runs" / run_id / "state.json"
    if not path.is_file():
        return RunState(run_id=run_id, config_digest="", years_target=0, status="not started")
    return RunState.load(path)


def ensemble_status(out: Path) -> list[RunStatus]:
    """Every run of the ensemble in ``out``, in design order."""
    manifest = read_json(out / ENSEMBLE_MANIFEST, "the ensemble manifest")
    return [_status(cfg, run_state(out, cfg["row"]["run_id"])) for cfg in manifest["runs"]]


def _status(config: dict[str, Any], state: RunState) -> RunStatus:
    row, params = config["row"], config["row"]["params"]
    diag = state.diagnostics or {}
    finished = state.status == "complete"
    return RunStatus(
        run_id=row["run_id"], tidally_locked=bool(row["tidally_locked"]),
        insolation_earth=params["insolation_earth"], stellar_teff_k=params["stellar_teff_k"],
        surface_pressure_bar=params["surface_pressure_bar"], pco2_bar=params["pco2_bar"],
        rotation_period_days=params["rotation_period_days"], status=state.status,
        years_done=state.years_done,
        years_target=state.years_target or int(config["length"]["years"]),
        equilibrated=bool(diag["equilibrated"]) if finished and diag else None,
        ts_global_mean_k=diag.get("ts_global_mean_k") if finished else None,
        toa_net_flux_w_m2=diag.get("toa_net_flux_w_m2") if finished else None,
        model_hours=state.model_time_s / 3600.0, error=state.error)


HEADER = ("| run | locked | S [S_earth] | Teff [K] | ps [bar] | pCO2 [bar] | rotation [d] "
          "| status | years | equilibrated | ts [K] | TOA net [W m-2] | model time [h] |")


def markdown_table(rows: list[RunStatus]) -> str:
    """The rows as a Markdown table (docs/gcm.md)."""
    lines = [HEADER, "|" + "---|" * HEADER.count(" | ") + "---|"]
    for r in rows:
        cells = [r.run_id, "yes" if r.tidally_locked else "no", f"{r.insolation_earth:g}",
                 f"{r.stellar_teff_k:g}", f"{r.surface_pressure_bar:g}", f"{r.pco2_bar:g}",
                 f"{r.rotation_period_days:g}", r.status, f"{r.years_done} of {r.years_target}",
                 _flag(r.equilibrated), _num(r.ts_global_mean_k, ".1f"),
                 _num(r.toa_net_flux_w_m2, ".2f"), f"{r.model_hours:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _flag(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "no")


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None or not math.isfinite(value) else format(value, fmt)
