"""Predictions from the catalogue's models: validation, domain check, batched model calls."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from exocube.config import get_settings
from exocube.errors import ExocubeError, ModelUnavailableError, ParameterError
from exocube.ml import (
    DEEP_ENSEMBLE,
    SCALAR_NAMES,
    STD_HEAD,
    StackedMembers,
    SurrogateTask,
    distance_to_hull,
    mean_and_std,
)
from exocube.params import MODEL_INPUT_NAMES_V1, OPTIONAL_NAMES, validate_params
from exocube.planet import climate_drivers, required_fields
from exocube.surrogate.loading import (
    DEFAULT_CHOICE,
    MODES,
    LoadedModel,
    ModelChoice,
    select_models,
)
from exocube.surrogate.prediction import Prediction

log = logging.getLogger(__name__)

#: Distance below which a request counts as inside the training hull (as in exocube.ml.hull).
INSIDE_TOL = 1.0e-3


@dataclass(frozen=True)
class Checked:
    """A validated request: model inputs, locking flag and what was defaulted."""

    params: dict[str, float]
    defaulted: tuple[str, ...]
    tidally_locked: bool
    drivers: dict[str, float]


def check_request(values: Mapping[str, object],
                  input_names: Sequence[str] = MODEL_INPUT_NAMES_V1) -> Checked:
    """Validate one parameter mapping for a model with ``input_names`` (raises
    ParameterError; fields the model does not use may be absent) and derive its climate
    drivers and tidal locking."""
    checked = validate_params(values, required=required_fields(input_names))
    drivers = climate_drivers(checked)
    params = {**checked, "rotation_period_days": drivers.values["rotation_period_days"]}
    defaulted = tuple(n for n in OPTIONAL_NAMES if n not in values and n in input_names)
    return Checked(params, defaulted, drivers.tidally_locked, drivers.values)


def model_inputs(task: SurrogateTask, rows: Sequence[Checked], dtype: torch.dtype
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Validated rows as ``task``'s raw parameter matrix (its own parameter names) and
    locking flags."""
    table = task.spec.params
    values = torch.tensor([table.vector({**c.params, **c.drivers}) for c in rows], dtype=dtype)
    return values, torch.tensor([c.tidally_locked for c in rows])


def encode_rows(task: SurrogateTask, rows: Sequence[Checked]) -> torch.Tensor:
    """``task``'s encoding of validated rows, ``(N, n_features)`` float64."""
    return task.encode(*model_inputs(task, rows, torch.float64))


class Surrogate:
    """The models chosen for each mode, and the domain limit for their answers."""

    def __init__(self, models: Mapping[str, LoadedModel], unavailable: Mapping[str, str],
                 max_hull_distance: float, torch_threads: int = 1) -> None:
        self.models = dict(models)
        self.unavailable = dict(unavailable)
        self.max_hull_distance = max_hull_distance
        self.torch_threads = torch_threads
        self._lock = threading.Lock()

    @classmethod
    def from_catalogue(cls, database_url: str | None = None,
                       max_hull_distance: float | None = None,
                       torch_threads: int | None = None,
                       choice: ModelChoice = DEFAULT_CHOICE) -> Surrogate:
        """Load the model ``choice`` gives for each mode (default: the promoted one, else the
        newest) from the catalogue (default: settings); the hull limit and PyTorch threads
        default to the ``serve`` settings."""
        settings = get_settings()
        models, unavailable = select_models(database_url or str(settings.database_url), choice)
        limit = max_hull_distance if max_hull_distance is not None else (
            settings.serve.max_hull_distance)
        return cls(models, unavailable, limit, torch_threads or settings.serve.torch_threads)

    def status(self) -> dict[str, dict[str, Any]]:
        """For every mode: available or not, the model's identity, or the reason."""
        out: dict[str, dict[str, Any]] = {}
        for mode in MODES:
            if mode in self.models:
                info = self.models[mode].info
                out[mode] = {"available": True, "model_id": info.id, "model_name": info.name,
                             "dataset_version": info.dataset_version, "reason": None,
                             "selected_by": info.selected_by}
            else:
                out[mode] = {"available": False, "model_id": None, "model_name": None,
                             "dataset_version": None, "reason": self.unavailable[mode],
                             "selected_by": None}
        return out

    def model_for(self, mode: str) -> LoadedModel:
        """The model answering ``mode``, or ModelUnavailableError saying why there is none."""
        if mode not in MODES:
            raise ParameterError("mode", mode, f"one of {', '.join(MODES)}")
        if mode not in self.models:
            raise ModelUnavailableError(f"mode {mode!r} is unavailable: {self.unavailable[mode]}")
        return self.models[mode]

    def predict(self, params: Mapping[str, object], mode: str = "datacube",
                allow_extrapolation: bool = False) -> Prediction:
        """Predict one planet; raise for invalid, refused or unanswerable requests."""
        (result,) = self.predict_many([params], mode, allow_extrapolation)
        if isinstance(result, ExocubeError):
            raise result
        return result

    def predict_many(self, rows: Sequence[Mapping[str, object]], mode: str = "datacube",
                     allow_extrapolation: bool = False) -> list[Prediction | ExocubeError]:
        """Predict many planets in one model call; a bad row yields its error, not a crash.

        Raises ModelUnavailableError (for every row alike) when no model answers ``mode``.
        """
        model = self.model_for(mode)
        results: list[Prediction | ExocubeError | None] = [None] * len(rows)
        checked: list[tuple[int, Checked]] = []
        names = model.task.spec.params.names
        for i, row in enumerate(rows):
            try:
                checked.append((i, check_request(row, names)))
            except ParameterError as exc:
                results[i] = exc
        if checked:
            encoded = encode_rows(model.task, [c for _, c in checked])
            accepted: list[tuple[int, Checked, float, int]] = []
            for k, (i, c) in enumerate(checked):
                dist = distance_to_hull(model.train_encoded, encoded[k].numpy())
                if dist > self.max_hull_distance and not allow_extrapolation:
                    results[i] = self._refusal(model, c, dist)
                else:
                    accepted.append((i, c, dist, k))
            if accepted:
                keep = torch.tensor([k for *_, k in accepted])
                outputs = self._run(model, mode, [c for _, c, _, _ in accepted],
                                    encoded[keep])
                for j, (i, c, dist, _) in enumerate(accepted):
                    results[i] = self._prediction(model, mode, c, dist, outputs, j)
        return [r for r in results if r is not None]

    # -- internals ----------------------------------------------------------------------------
    def _refusal(self, model: LoadedModel, checked: Checked, dist: float) -> ParameterError:
        """A ParameterError naming the parameter farthest outside the training range, or the
        hull distance when every parameter is inside its range but the combination is not."""
        train, _ = model.task.spec.training_params()
        names = model.task.spec.params.names
        lo, hi = train.min(0), train.max(0)
        worst, excess = -1, 0.0
        given = {**checked.params, **checked.drivers}
        for j, name in enumerate(names):
            x = given[name]
            e = max(lo[j] - x, x - hi[j], 0.0) / max(hi[j] - lo[j], 1e-12)
            if e > excess:
                worst, excess = j, e
        hint = (f"the request lies {dist:.3f} (encoded units, each parameter spans [-1, 1]) "
                f"from model {model.info.id}'s training hull, beyond the limit "
                f"{self.max_hull_distance}; ask for allow_extrapolation to get an "
                "extrapolated answer")
        if worst < 0:
            return ParameterError(
                "hull_distance", round(dist, 4),
                f"at most {self.max_hull_distance} from the training runs' parameter hull",
                hint="every parameter lies inside its training range but their combination "
                     "does not; " + hint)
        name = names[worst]
        return ParameterError(name, given[name],
                              f"within the training range [{lo[worst]:.4g}, {hi[worst]:.4g}]",
                              hint=hint)

    def _run(self, model: LoadedModel, mode: str, rows: list[Checked], encoded: torch.Tensor
             ) -> dict[str, np.ndarray]:
        """One batched model call (an ensemble's members stacked into one: then the members'
        mean, and their sample std, times the ensemble's ``std_scale``, under
        ``<name>_std``; a network with a std head gives its own ``<name>_std``, times its
        manifest's ``std_scale``)."""
        params, locked = model_inputs(model.task, rows, torch.float32)
        with self._lock, torch.inference_mode():
            if torch.get_num_threads() != self.torch_threads:
                torch.set_num_threads(self.torch_threads)
            if model.stacked is None:
                out = _call(model.task, mode, params, locked, encoded)
                return {k: v * model.std_scale.get(k[:-4], 1.0) if k.endswith("_std") else v
                        for k, v in out.items()}
            stacks = _call_stacked(model.stacked, mode, params, locked, encoded)
        result: dict[str, np.ndarray] = {}
        for name, stack in stacks.items():
            result[name], std = mean_and_std(stack)
            result[name + "_std"] = std * model.std_scale.get(name, 1.0)
        return result

    @staticmethod
    def _prediction(model: LoadedModel, mode: str, checked: Checked, dist: float,
                    outputs: Mapping[str, np.ndarray], k: int) -> Prediction:
        names = [] if mode == "scalar" else model.task.v3 + model.task.v2
        scalar_names = [] if mode == "datacube" else list(SCALAR_NAMES)
        fields = {n: np.ascontiguousarray(outputs[n][k], dtype=np.float32) for n in names}
        scalars = {n: float(outputs[n][k]) for n in scalar_names}
        spread = bool(model.members) or model.task.predict_std
        return Prediction(mode=mode, params=checked.params, defaulted=checked.defaulted,
                          tidally_locked=checked.tidally_locked, model=model.info,
                          hull_distance=dist, out_of_domain=dist > INSIDE_TOL,
                          coords=model.grid, fields=fields, scalars=scalars,
                          fields_std={n: np.ascontiguousarray(outputs[n + "_std"][k],
                                                              dtype=np.float32)
                                      for n in names} if spread else {},
                          scalars_std={n: float(outputs[n + "_std"][k]) for n in scalar_names}
                          if spread else {},
                          n_members=max(len(model.members), 1),
                          std_scale=dict(model.std_scale),
                          uncertainty_method=STD_HEAD if model.task.predict_std
                          else DEEP_ENSEMBLE)


def _call(task: SurrogateTask, mode: str, params: torch.Tensor, locked: torch.Tensor,
          encoded: torch.Tensor) -> dict[str, np.ndarray]:
    """One network's physical outputs; scalar mode runs the scalar head only, on the rows'
    encoded parameters."""
    if mode == "scalar":
        s, std = task.scalar_outputs(encoded.float())
        out = {name: s[:, i].numpy() for i, name in enumerate(SCALAR_NAMES)}
        if std is not None:
            out.update({f"{name}_std": std[:, i].numpy() for i, name in enumerate(SCALAR_NAMES)})
        return out
    return {k: v.numpy() for k, v in task.predict_physical(params, locked).items()}


def _call_stacked(stacked: StackedMembers, mode: str, params: torch.Tensor,
                  locked: torch.Tensor, encoded: torch.Tensor) -> dict[str, np.ndarray]:
    """Every member's physical outputs, ``(M, B, ...)``, in one stacked call; scalar mode
    runs the scalar heads only."""
    if mode == "scalar":
        s = stacked.scalars(encoded.float())
        return {n: s[..., i].numpy() for i, n in enumerate(SCALAR_NAMES)}
    return {k: v.numpy() for k, v in stacked.predict_physical(params, locked).items()}
