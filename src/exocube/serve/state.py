"""What the running service holds: settings, loaded models, cache and batcher."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from exocube.config import Settings
from exocube.errors import ExocubeError
from exocube.serve.batching import MicroBatcher
from exocube.serve.cache import PredictionCache
from exocube.surrogate import MODEL_MODES, MODES, ModelChoice, Surrogate

log = logging.getLogger(__name__)


@dataclass
class ServiceState:
    """The service's models and machinery; models are loaded by the app's lifespan."""

    settings: Settings
    database_url: str
    choice: ModelChoice = field(default_factory=ModelChoice)
    surrogate: Surrogate | None = None
    answering: dict[str, bool] = field(default_factory=dict)
    cache: PredictionCache = field(init=False)
    batcher: MicroBatcher = field(init=False)

    def __post_init__(self) -> None:
        opts = self.settings.serve
        self.cache = PredictionCache(opts.cache_size, int(opts.cache_max_mb * 2**20))
        self.batcher = MicroBatcher(lambda: self.surrogate, opts.max_batch,
                                    opts.max_wait_ms / 1000.0, opts.max_queue,
                                    opts.max_batch_fields)

    @property
    def api_keys(self) -> list[str]:
        return [k.get_secret_value() for k in self.settings.api_keys]

    async def load(self) -> None:
        """(Re)load the models ``choice`` gives (promotions are read again), probe each mode
        with a training run, and log which model answers each mode."""
        surrogate = await asyncio.to_thread(
            Surrogate.from_catalogue, self.database_url, self.settings.serve.max_hull_distance,
            self.settings.serve.torch_threads, self.choice)
        answering = await asyncio.to_thread(probe, surrogate)
        self.surrogate, self.answering = surrogate, answering
        self.cache.clear()
        for mode in MODEL_MODES:
            if mode in surrogate.models:
                log.info("mode %s: %s", mode, surrogate.models[mode].info.describe())
            else:
                log.warning("mode %s: unavailable: %s", mode, surrogate.unavailable[mode])

    def status(self) -> dict[str, dict[str, object]]:
        if self.surrogate is None:
            return {m: {"available": False, "answering": False, "model_id": None,
                        "model_name": None, "dataset_version": None, "selected_by": None,
                        "reason": "models are not loaded yet"} for m in MODES}
        out = self.surrogate.status()
        for mode, st in out.items():
            st["answering"] = self.answering.get(mode, False)
        return out

    @property
    def ready(self) -> bool:
        return self.surrogate is not None and any(self.answering.values())


def probe(surrogate: Surrogate) -> dict[str, bool]:
    """Ask each available mode for one training run's prediction; True where it answers."""
    out: dict[str, bool] = {}
    for mode, model in surrogate.models.items():
        params = model.training_request(model.task.spec.split.train[0])
        try:
            surrogate.predict(params, mode, allow_extrapolation=True)
        except ExocubeError as exc:
            log.error("model %s does not answer mode %s: %s", model.info.id, mode, exc)
            out[mode] = False
        else:
            out[mode] = True
    return out
