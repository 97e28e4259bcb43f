"""An ExoPlaSim ensemble: one output directory, one Dask task per run, one catalogue row
per run.

``<out>/ensemble.json`` names the ensemble (an id hashed from every run's configuration and
the equilibrium thresholds); a directory that holds another ensemble, or files but no
``ensemble.json``, is refused. Re-running the same command skips complete and failed runs
and continues unfinished ones from their restart files (see :mod:`exocube.gcm.exoplasim`).
Every run's row in ``simulations`` is written when it is submitted (``running``) and when
its task reports (``complete`` or ``failed``), each in its own transaction.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from distributed import Client, as_completed
from sqlalchemy import select

from exocube import __version__
from exocube.catalog import Simulation, session_scope, upgrade, utcnow
from exocube.errors import CatalogError, InputDataError
from exocube.gcm import exoplasim as driver
from exocube.gcm.equilibrium import DEFAULT_CRITERIA, EquilibriumCriteria
from exocube.gcm.exoplasim import GCM_NAME, RunOutcome, RunState
from exocube.gcm.exoplasim_config import DEFAULT_LENGTH, DesignRow, ExoPlaSimRunConfig, RunLength
from exocube.params import ALL_NAMES, OPTIONAL_DEFAULTS

log = logging.getLogger(__name__)

SAFE_PATH = re.compile(r"^[A-Za-z0-9_./+-]+$")
MANIFEST = "ensemble.json"
KIND = "exocube-exoplasim-ensemble"


@dataclass(frozen=True)
class ExoPlaSimEnsembleResult:
    """What an ensemble call produced, in design order."""

    out_dir: Path
    ensemble_id: str
    outcomes: list[RunOutcome]

    def with_status(self, status: str) -> list[RunOutcome]:
        return [o for o in self.outcomes if o.status == status]


def run_configs(rows: Sequence[DesignRow], length: RunLength, resolution: str = "T21",
                ncpus: int = 1) -> list[ExoPlaSimRunConfig]:
    return [ExoPlaSimRunConfig(row=r, length=length, resolution=resolution, ncpus=ncpus)
            for r in rows]


def ensemble_id(configs: Sequence[ExoPlaSimRunConfig], criteria: EquilibriumCriteria) -> str:
    text = json.dumps({"runs": [c.digest() for c in configs], "criteria": asdict(criteria)})
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def check_out_path(out: Path) -> None:
    """ExoPlaSim hands its paths to the shell unquoted: refuse what the shell would split."""
    path = str(out.resolve())
    if not SAFE_PATH.match(path):
        raise InputDataError(
            f"--out {path!r} has characters ExoPlaSim cannot handle (it passes paths to the "
            "shell unquoted); use a path of letters, digits and _ . / + - only")


def claim_directory(out: Path, configs: Sequence[ExoPlaSimRunConfig],
                    criteria: EquilibriumCriteria) -> str:
    """Create or re-open ``out`` for this ensemble; refuse a directory holding another
    (other design rows, year length, output or resolution; the year cap may change)."""
    ident = ensemble_id(configs, criteria)
    manifest = out / MANIFEST
    if manifest.exists():
        doc = _read_manifest(manifest)
        if doc.get("ensemble_id") != ident:
            raise InputDataError(
                f"{out} holds another ExoPlaSim ensemble (id {doc.get('ensemble_id')}, "
                f"{len(doc.get('runs', []))} runs, created by exocube {doc.get('exocube')}) "
                f"and this design/settings give id {ident}; write to another --out directory")
        _write_manifest(out, ident, configs, criteria)  # the current year cap
        return ident
    if out.exists() and any(out.iterdir()):
        raise InputDataError(
            f"{out} is not empty and has no {MANIFEST}, so it is not an exocube ExoPlaSim "
            "ensemble; write to an empty or new --out directory")
    out.mkdir(parents=True, exist_ok=True)
    _write_manifest(out, ident, configs, criteria)
    return ident


def _write_manifest(out: Path, ident: str, configs: Sequence[ExoPlaSimRunConfig],
                    criteria: EquilibriumCriteria) -> None:
    doc = {"kind": KIND, "ensemble_id": ident, "exocube": __version__,
           "exoplasim": driver.exoplasim_version(), "criteria": asdict(criteria),
           "runs": [c.to_dict() for c in configs]}
    tmp = out / f".{MANIFEST}.{uuid.uuid4().hex}.tmp"
    tmp.write_text(json.dumps(doc, indent=1))
    os.replace(tmp, out / MANIFEST)


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputDataError(f"{path} is unreadable ({exc}); it is not an ensemble "
                             "manifest exocube wrote") from exc
    if doc.get("kind") != KIND:
        raise InputDataError(f"{path} is not an exocube ExoPlaSim ensemble manifest")
    return doc


def check_catalogue(database_url: str, configs: Sequence[ExoPlaSimRunConfig]) -> None:
    """Refuse run ids the catalogue holds for another GCM or other parameters."""
    with session_scope(database_url) as session:
        for config in configs:
            row = session.scalar(select(Simulation).where(
                Simulation.run_id == config.row.run_id))
            if row is not None and not _same_run(row, config):
                raise CatalogError(
                    f"the catalogue already has run {config.row.run_id!r} from "
                    f"{row.generator} with other parameters ({row.output_uri}); rename the "
                    "run in the design or remove that simulation row")


def _same_run(row: Simulation, config: ExoPlaSimRunConfig) -> bool:
    if row.generator != GCM_NAME:
        return False
    stored = {**OPTIONAL_DEFAULTS, **(row.parameters or {})}
    planet = config.row.planet_params
    return all(name in stored and math.isclose(float(stored[name]), planet[name],
                                               rel_tol=1e-12) for name in ALL_NAMES)


def mark_submitted(database_url: str, configs: Sequence[ExoPlaSimRunConfig]) -> None:
    """Insert missing rows as ``running`` (rows already complete or failed are kept)."""
    version = _version()
    with session_scope(database_url) as session:
        for config in configs:
            row = session.scalar(select(Simulation).where(
                Simulation.run_id == config.row.run_id))
            if row is None:
                state = RunState(run_id=config.row.run_id, config_digest="", years_target=0)
                session.add(Simulation(
                    run_id=config.row.run_id, generator=GCM_NAME, version=version,
                    parameters=driver.run_parameters(config, state), status="running",
                    config=config.to_dict(), years_run=0, updated_at=utcnow()))


def record_outcome(database_url: str, outcome: RunOutcome, config: ExoPlaSimRunConfig) -> None:
    """Write one run's outcome into its ``simulations`` row."""
    with session_scope(database_url) as session:
        row = session.scalar(select(Simulation).where(Simulation.run_id == outcome.run_id))
        if row is None:
            row = Simulation(run_id=outcome.run_id, generator=GCM_NAME)
            session.add(row)
        row.version = f"{outcome.gcm_version} (exocube {__version__})"
        row.parameters = outcome.parameters
        row.status = outcome.status
        row.output_uri = Path(outcome.output).as_uri() if outcome.output else None
        row.sha256 = outcome.sha256
        row.wall_time_s = outcome.wall_time_s
        row.years_run = outcome.years_done
        row.diagnostics = outcome.diagnostics
        row.equilibrated = (bool(outcome.diagnostics["equilibrated"])
                            if outcome.diagnostics else None)
        row.config = config.to_dict()
        row.error = outcome.error
        row.log_tail = outcome.log_tail
        row.updated_at = utcnow()


def _version() -> str:
    return f"{driver.exoplasim_version()} (exocube {__version__})"


@dataclass(frozen=True)
class EnsemblePlan:
    """A checked, claimed ensemble ready to submit."""

    out_dir: Path
    ensemble_id: str
    database_url: str
    configs: list[ExoPlaSimRunConfig]
    criteria: EquilibriumCriteria


def plan_ensemble(
    rows: Sequence[DesignRow], out: Path, database_url: str, *,
    length: RunLength = DEFAULT_LENGTH, resolution: str = "T21", ncpus: int = 1,
    criteria: EquilibriumCriteria = DEFAULT_CRITERIA,
) -> EnsemblePlan:
    """Check tools and catalogue, claim ``out`` and mark the runs submitted."""
    configs = run_configs(rows, length, resolution, ncpus)
    check_out_path(out)
    driver.check_tools(ncpus)
    upgrade(database_url)
    check_catalogue(database_url, configs)
    ident = claim_directory(out, configs, criteria)
    mark_submitted(database_url, configs)
    return EnsemblePlan(out, ident, database_url, configs, criteria)


def run_plan(plan: EnsemblePlan, client: Client,
             on_outcome: Callable[[RunOutcome], None] | None = None) -> ExoPlaSimEnsembleResult:
    """Submit one task per run to ``client`` and catalogue each outcome as it arrives."""
    by_id = {c.row.run_id: c for c in plan.configs}
    out = plan.out_dir.resolve()
    futures = [client.submit(driver.run_exoplasim, c.to_dict(), str(out / "runs" / c.row.run_id),
                             str(out), plan.criteria,
                             key=f"exoplasim-{plan.ensemble_id}-{c.row.run_id}", pure=False)
               for c in plan.configs]
    outcomes: dict[str, RunOutcome] = {}
    try:
        for future in as_completed(futures):
            outcome = future.result()
            record_outcome(plan.database_url, outcome, by_id[outcome.run_id])
            outcomes[outcome.run_id] = outcome
            log.info("run %s: %s after %d years", outcome.run_id, outcome.status,
                     outcome.years_done)
            if on_outcome is not None:
                on_outcome(outcome)
    except BaseException:
        client.cancel(futures)
        raise
    return ExoPlaSimEnsembleResult(plan.out_dir, plan.ensemble_id,
                          [outcomes[c.row.run_id] for c in plan.configs])


def simulate_ensemble(
    rows: Sequence[DesignRow], out: Path, database_url: str, client: Client, *,
    length: RunLength = DEFAULT_LENGTH, resolution: str = "T21", ncpus: int = 1,
    criteria: EquilibriumCriteria = DEFAULT_CRITERIA,
    on_outcome: Callable[[RunOutcome], None] | None = None,
) -> ExoPlaSimEnsembleResult:
    """Plan and run an ensemble on ``client``."""
    plan = plan_ensemble(rows, out, database_url, length=length, resolution=resolution,
                         ncpus=ncpus, criteria=criteria)
    return run_plan(plan, client, on_outcome)
