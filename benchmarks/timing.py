"""Timing helpers shared by the benchmark scripts."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np


def median_time(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time [s] of ``repeats`` calls of ``fn``, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def training_step(model: Any, opt: Any, batch: dict[str, Any]) -> Callable[[], None]:
    """One optimiser step of a ``SurrogateTask`` on ``batch``, as a closure."""

    def step() -> None:
        terms, _, _ = model._terms(batch)
        loss = model._total(terms)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step
