"""Find the trained models in the catalogue and load their checkpoints.

A checkpoint of :class:`~exocube.ml.task.SurrogateTask` always predicts the
3-D fields (mode ``datacube``); when it was trained with the scalar head it
also predicts the scalar diagnostics (mode ``scalar``), and so both at once
(mode ``joint``). Which model answers each mode is a :class:`ModelChoice`:
by default the model promoted for that mode in the catalogue
(``exocube models promote``), else the newest model able to answer it; or, per
invocation, one model by id or name, or the best by a recorded metric. No
spectral surrogate exists in exocube, so mode ``spectral`` is always
unavailable, with that reason.

Reasons for an unavailable mode are shown to HTTP clients (``/ready``), so they
name models by id and name, never by file path; the paths go to the log.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from numpy.typing import NDArray

from exocube.catalog import Model, ModelPromotion, session_scope, upgrade
from exocube.errors import ModelUnavailableError, ParameterError
from exocube.ml import StackedMembers, SurrogateTask, load_members, load_task, read_manifest
from exocube.params import SPECS
from exocube.planet import request_with_drivers, required_fields

log = logging.getLogger(__name__)

MODES: tuple[str, ...] = ("scalar", "datacube", "joint", "spectral")
MODEL_MODES: tuple[str, ...] = ("scalar", "datacube", "joint")
SPECTRAL_REASON = (
    "no spectral surrogate exists in exocube yet: the project trains 3-D climate (datacube) "
    "and scalar-diagnostic models only, and nothing predicts spectra from them; ask for mode "
    "'datacube' or 'joint' and forward-model spectra from the fields yourself"
)


@dataclass(frozen=True)
class ModelInfo:
    """What identifies the model behind an answer."""

    id: int
    name: str
    checkpoint: str
    dataset_version: str | None
    store: str | None
    recorded_mode: str
    created_at: str
    metrics: dict[str, float] = field(default_factory=dict)
    selected_by: str = "newest"
    #: The catalogue ids of an ensemble's members (empty for a single model).
    members: tuple[int, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """Every field, paths included (for the model's owner, not for the public)."""
        return {**self.public_dict(), "checkpoint": self.checkpoint, "store": self.store}

    def public_dict(self) -> dict[str, Any]:
        """What identifies the model without server file paths."""
        out = {"id": self.id, "name": self.name, "dataset_version": self.dataset_version,
               "recorded_mode": self.recorded_mode, "created_at": self.created_at,
               "metrics": dict(self.metrics), "selected_by": self.selected_by}
        if self.members:
            out["members"] = list(self.members)
        return out

    def describe(self) -> str:
        """``model 3 (surrogate; promoted), dataset v2``: for logs and the CLI."""
        return (f"model {self.id} ({self.name}; {self.selected_by}), dataset "
                f"{self.dataset_version or 'unknown'}")


@dataclass
class LoadedModel:
    """A loaded checkpoint with its catalogue record and encoded training parameters.

    An ensemble has its networks in ``members`` and, stacked to run as one, in
    ``stacked``; ``task`` is the first of them (its data spec, encoding and training hull
    are every member's)."""

    info: ModelInfo
    task: SurrogateTask
    train_encoded: NDArray[np.float64]
    members: tuple[SurrogateTask, ...] = ()
    #: An ensemble's spread calibration (see exocube.ml.ensemble); 1 where absent.
    std_scale: dict[str, float] = field(default_factory=dict)
    stacked: StackedMembers | None = None

    @property
    def modes(self) -> tuple[str, ...]:
        return ("scalar", "datacube", "joint") if self.task.has_scalars else ("datacube",)

    def chosen_by(self, how: str) -> LoadedModel:
        """The same loaded model, its info saying how it was chosen."""
        return replace(self, info=replace(self.info, selected_by=how))

    @property
    def required_fields(self) -> tuple[str, ...]:
        """The request fields this model needs (the others may be absent)."""
        return required_fields(self.task.spec.params.names)

    def training_request(self, run: str) -> dict[str, float]:
        """A request for one of the model's store runs: its parameters, or for a model on
        the climate drivers (inputs v2) a request with the run's drivers."""
        table = self.task.spec.params
        values = table.mapping(run)
        if set(values) <= set(SPECS):
            return values
        return request_with_drivers(values, bool(table.locked_of([run])[0]))

    @cached_property
    def grid(self) -> dict[str, NDArray[np.float64]]:
        """The model's coordinates ``plev``, ``lat``, ``lon`` (from its spec's Grid)."""
        return self.task.spec.grid.coords()


def load_checkpoint(row: Model) -> LoadedModel:
    """Load one catalogue row's checkpoint (or an ensemble row's members) on the CPU, in
    evaluation mode; ModelUnavailableError names a missing or corrupt member."""
    ensemble = (row.config or {}).get("ensemble") if isinstance(row.config, dict) else None
    std_scale: dict[str, float] = {}
    if isinstance(ensemble, dict):
        manifest = read_manifest(row.checkpoint_uri)
        members = tuple(load_members(manifest))
        task, std_scale = members[0], manifest.std_scale
    else:
        members = ()
        task = load_task(row.checkpoint_uri)
    spec = task.spec
    info = ModelInfo(
        id=int(row.id), name=row.name, checkpoint=row.checkpoint_uri,
        dataset_version=row.dataset_version or spec.version, store=spec.store,
        recorded_mode=row.mode, created_at=row.created_at.isoformat() if row.created_at else "",
        metrics={k: float(v) for k, v in (row.metrics or {}).items()
                 if isinstance(v, int | float)},
        members=tuple(int(i) for i in ensemble.get("members", ())) if ensemble else ())
    return LoadedModel(info=info, task=task, train_encoded=task.training_encoded(),
                       members=members, std_scale=std_scale,
                       stacked=StackedMembers(members, row.name) if len(members) > 1
                       else None)


@dataclass(frozen=True)
class ModelChoice:
    """How the model answering each mode is chosen.

    ``rule``: ``default`` (the mode's promoted model, else the newest that can answer
    it), ``newest`` (the newest, promotions ignored), ``model`` (``value`` is a
    catalogue id, or a name: the newest model of that name), ``min`` / ``max`` (the
    model with the lowest / highest recorded metric ``value``, per mode).
    """

    rule: str = "default"
    value: str | None = None

    @classmethod
    def parse(cls, model: str | None = None, select: str | None = None) -> ModelChoice:
        """From ``--model ID|NAME`` or ``--select newest|promoted|best:METRIC|min:METRIC|
        max:METRIC`` (``best`` is ``min``: exocube records losses and errors)."""
        if model is not None and select is not None:
            raise ParameterError("--model/--select", f"{model} / {select}",
                                 "one of them, not both")
        if model is not None:
            value = model.strip()
            if not value or len(value) > 128:
                raise ParameterError("--model", model, "a catalogue model id or name "
                                     "(`exocube models list` shows them)")
            return cls("model", value)
        if select is None:
            return cls()
        text = select.strip()
        if text in ("newest", "promoted"):
            return cls("newest" if text == "newest" else "default")
        rule, sep, metric = text.partition(":")
        rule = "min" if rule == "best" else rule
        if sep and rule in ("min", "max") and metric.strip():
            return cls(rule, metric.strip())
        raise ParameterError("--select", select, "newest, promoted, best:METRIC (lowest "
                             "value), min:METRIC or max:METRIC, e.g. best:val/loss")

    def label(self, row: Model) -> str:
        """How a model chosen by this rule is described (``selected_by``)."""
        if self.rule == "model":
            return f"chosen: --model {self.value}"
        if self.rule in ("min", "max"):
            value = (row.metrics or {}).get(str(self.value))
            return f"{self.rule}:{self.value} = {value:.6g}" if _is_number(
                value) else f"{self.rule}:{self.value}"
        return "newest"


DEFAULT_CHOICE = ModelChoice()


def catalogue_rows(database_url: str) -> list[Model]:
    """Every ``models`` row, newest first."""
    upgrade(database_url)
    with session_scope(database_url) as session:
        rows = session.scalars(sa.select(Model).order_by(Model.id.desc())).all()
        session.expunge_all()
    return list(rows)


def promotions(database_url: str) -> dict[str, int]:
    """The promoted model id of each mode that has one."""
    upgrade(database_url)
    with session_scope(database_url) as session:
        rows = session.scalars(sa.select(ModelPromotion)).all()
        return {p.mode: int(p.model_id) for p in rows}


class _Loader:
    """Loads each catalogue row's checkpoint at most once; notes why a row is unusable."""

    def __init__(self) -> None:
        self.loaded: dict[int, LoadedModel | None] = {}
        self.problems: dict[int, str] = {}

    def __call__(self, row: Model) -> LoadedModel | None:
        if row.id not in self.loaded:
            problem = unusable_reason(row)
            loaded = None
            if not problem:
                try:
                    loaded = load_checkpoint(row)
                except ModelUnavailableError as exc:  # an ensemble's member: noted, named
                    log.warning("catalogue model %s: %s", row.id, exc)
                    problem = f"model {row.id} ({row.name}): {exc}"
            if problem:
                self.problems[row.id] = problem
                self.loaded[row.id] = None
            else:
                self.loaded[row.id] = loaded
                log.info("loaded model %s (%s) for modes %s", row.id, row.name,
                         self.loaded[row.id].modes)  # type: ignore[union-attr]
        return self.loaded[row.id]


def unusable_reason(row: Model) -> str | None:
    """Why a row cannot be loaded (no file path: reasons reach HTTP clients), or None."""
    if row.mode not in MODEL_MODES:
        return f"model {row.id} ({row.name}) has mode {row.mode!r}, which exocube cannot load"
    if not Path(row.checkpoint_uri).is_file():
        log.warning("catalogue model %s: checkpoint %s is missing", row.id, row.checkpoint_uri)
        return f"model {row.id} ({row.name}): its checkpoint file is missing (see the log)"
    return None


def _fill(modes: Sequence[str], rows: Sequence[Model], loader: _Loader,
          chosen: dict[str, LoadedModel], label: Callable[[Model], str]) -> None:
    """Give each of ``modes`` the first row of ``rows`` that loads and can answer it."""
    for row in rows:
        if all(m in chosen for m in modes):
            return
        loaded = loader(row)
        if loaded is None:
            continue
        for mode in loaded.modes:
            if mode in modes and mode not in chosen:
                chosen[mode] = loaded.chosen_by(label(row))


def _ranked(rows: Sequence[Model], metric: str, highest: bool) -> list[Model]:
    """The rows that record ``metric`` as a finite number, best first (ties: newest)."""
    scored = [(float(r.metrics[metric]), -r.id, r) for r in rows
              if r.metrics and _is_number(r.metrics.get(metric))]
    scored.sort(key=lambda t: (-t[0] if highest else t[0], t[1]))
    return [r for *_, r in scored]


def _is_number(value: object) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(float(value)))


def _find(rows: Sequence[Model], value: str) -> Model:
    """The row with this id (all digits) or the newest row with this name."""
    match = [r for r in rows if (str(r.id) == value if value.isdigit() else r.name == value)]
    if not match:
        known = ", ".join(f"{r.id} ({r.name})" for r in rows[:10]) or "none"
        raise ModelUnavailableError(
            f"no catalogue model has {'id' if value.isdigit() else 'name'} {value!r} (models, "
            f"newest first: {known}); `exocube models list` shows them all")
    return match[0]


def select_models(database_url: str, choice: ModelChoice = DEFAULT_CHOICE
                  ) -> tuple[dict[str, LoadedModel], dict[str, str]]:
    """The model answering each mode under ``choice``, and why the other modes cannot be
    answered. A chosen or promoted model that cannot answer a mode leaves that mode
    unavailable: another model never stands in for it silently."""
    rows = catalogue_rows(database_url)
    loader = _Loader()
    chosen: dict[str, LoadedModel] = {}
    unavailable = {"spectral": SPECTRAL_REASON}
    if choice.rule == "model":
        _choose_one(_find(rows, str(choice.value)), choice, loader, chosen, unavailable)
    elif choice.rule == "default":
        _choose_promoted(rows, promotions(database_url), loader, chosen, unavailable)
        rest = [m for m in MODEL_MODES if m not in chosen and m not in unavailable]
        _fill(rest, rows, loader, chosen, choice.label)
    else:
        ranked = rows if choice.rule == "newest" else _ranked(rows, str(choice.value),
                                                               choice.rule == "max")
        _fill(MODEL_MODES, ranked, loader, chosen, choice.label)
    for mode in MODEL_MODES:
        if mode not in chosen and mode not in unavailable:
            unavailable[mode] = _why_none(mode, rows, choice, loader, database_url)
    return chosen, unavailable


def _choose_one(row: Model, choice: ModelChoice, loader: _Loader,
                chosen: dict[str, LoadedModel], unavailable: dict[str, str]) -> None:
    loaded = loader(row)
    if loaded is None:
        raise ModelUnavailableError(f"the chosen model (--model {choice.value}) cannot be "
                                    f"used: {loader.problems[row.id]}")
    for mode in MODEL_MODES:
        if mode in loaded.modes:
            chosen[mode] = loaded.chosen_by(choice.label(row))
        else:
            unavailable[mode] = (f"the chosen model {row.id} ({row.name}, --model "
                                 f"{choice.value}) cannot answer mode {mode!r}: it was "
                                 "trained without the scalar head")


def _choose_promoted(rows: Sequence[Model], promoted: dict[str, int], loader: _Loader,
                     chosen: dict[str, LoadedModel], unavailable: dict[str, str]) -> None:
    by_id = {r.id: r for r in rows}
    for mode, model_id in sorted(promoted.items()):
        row = by_id[model_id]
        loaded = loader(row)
        fix = (f"promote another model (`exocube models promote ID --mode {mode}`) or "
               f"remove the promotion (`exocube models unpromote --mode {mode}`)")
        if loaded is None:
            unavailable[mode] = (f"the model promoted for mode {mode!r} cannot be used: "
                                 f"{loader.problems[row.id]}; {fix}")
        elif mode not in loaded.modes:
            unavailable[mode] = (f"the model promoted for mode {mode!r}, {row.id} "
                                 f"({row.name}), cannot answer it; {fix}")
        else:
            chosen[mode] = loaded.chosen_by("promoted")


def _why_none(mode: str, rows: Sequence[Model], choice: ModelChoice, loader: _Loader,
              database_url: str) -> str:
    if not rows:
        log.warning("the catalogue at %s has no trained models", _safe_url(database_url))
        return ("the catalogue has no trained models; train one with `exocube train fit "
                "--config cfg.yaml` (or run `exocube demo`)")
    if choice.rule in ("min", "max") and not _ranked(rows, str(choice.value), False):
        names = sorted({k for r in rows for k in (r.metrics or {})})
        return (f"no catalogue model records the metric {choice.value!r} (--select "
                f"{choice.rule}:{choice.value}); recorded metrics: {', '.join(names) or 'none'}")
    need = "a model trained with the scalar head" if mode != "datacube" else "a model"
    problems = list(loader.problems.values())
    return (f"no catalogue model can answer mode {mode!r} (it needs {need})"
            + (": " + "; ".join(problems) if problems else ""))


def _safe_url(url: str) -> str:
    """The database URL without a password."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<unparsable URL>"
